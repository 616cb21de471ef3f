"""KerasInternals: the ONE place where bert-tf's optimizers touch private Keras internals.

A Keras upgrade may rename or change these without notice; tests/training/
test_keras_internals_guard.py checks every one of them against the installed Keras (signature
and that Keras still calls the overrides) and fails naming the method.
"""

import tensorflow as tf


class KerasInternals:
    """Mixin for a `keras.optimizers.Optimizer` subclass (listed before the Keras class).

    It relies on these private members of Keras 3 (checked on 3.15:
    keras/src/optimizers/base_optimizer.py, keras/src/backend/tensorflow/optimizer.py,
    keras/src/optimizers/adam.py):

    overridden (Keras' `apply()` calls them, in this order, for every update):
      _clip_gradients(self, grads) -> grads
          -> `self.clip_gradients(grads)`: the cross-replica sum (when `reduce_gradients`),
             then global-norm clipping
      _apply_weight_decay(self, variables)
          -> nothing: the subclass decays each variable in `update_step`, by its path
      _all_reduce_sum_gradients(self, grads_and_vars) -> grads_and_vars
          -> identity: the sum was done in `clip_gradients` (or by the Trainer)
    called:
      _get_variable_index(self, variable) -> int: the variable's position in the list the
          optimizer was built with (`variable_index`)
    read (set by `keras.optimizers.Adam.build`, indexed like the built variables):
      _momentums, _velocities: Adam's first and second moment slots (`adam_slots`)
    """

    OVERRIDDEN = {
        "_clip_gradients": ("self", "grads"),
        "_apply_weight_decay": ("self", "variables"),
        "_all_reduce_sum_gradients": ("self", "grads_and_vars"),
    }
    CALLED = {"_get_variable_index": ("self", "variable")}
    ADAM_SLOTS = ("_momentums", "_velocities")

    # ---- the public face the subclasses use
    def variable_index(self, variable):
        return self._get_variable_index(variable)

    def adam_slots(self, variable):
        """(m, v): Adam's slot variables of `variable` (a keras.optimizers.Adam subclass)."""
        index = self._get_variable_index(variable)
        return self._momentums[index], self._velocities[index]

    def sum_over_replicas(self, grads):
        """`grads` summed over the replicas (if `reduce_gradients` and more than one)."""
        ctx = tf.distribute.get_replica_context()
        if (
            getattr(self, "reduce_gradients", True)
            and ctx is not None
            and ctx.num_replicas_in_sync > 1
        ):
            grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, list(grads))
        return grads

    def clip_gradients(self, grads):
        """Sums `grads` over the replicas (`sum_over_replicas`), then clips them to
        `global_clipnorm` by their global norm."""
        grads = self.sum_over_replicas(grads)
        if self.global_clipnorm:
            grads, _ = tf.clip_by_global_norm(list(grads), self.global_clipnorm)
        return grads

    # ---- the overrides of private Keras methods
    def _clip_gradients(self, grads):
        return self.clip_gradients(grads)

    def _apply_weight_decay(self, variables):
        pass  # decayed per variable in the subclass's update_step

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return grads_and_vars  # summed (if needed) in clip_gradients, or by Trainer
