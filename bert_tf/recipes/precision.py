"""The numeric runtime of one run: precision "auto" resolved in the library, and the global
Keras dtype policy (and XLA auto-clustering switch) restored when the run ends, also when it
raises, so a notebook can call `bert_tf.pretrain` and `bert_tf.finetune` in turn and keep its
own policy."""

import contextlib

import keras
import tensorflow as tf

from bert_tf.training import distribute


def resolve_precision(precision):
    """ "auto" -> the policy that is fast and safe on this machine; others unchanged."""
    return distribute.default_precision() if precision == "auto" else precision


def resolved_settings(settings):
    """A copy of a settings dict with precision "auto" resolved: for comparing a rerun with
    what a model dir records ("auto" and the policy it picks here are the same run)."""
    if settings.get("precision") != "auto":
        return settings
    return {**settings, "precision": resolve_precision("auto")}


@contextlib.contextmanager
def keras_runtime(precision, xla=None):
    """Sets the run's dtype policy (precision "auto" resolved here) and, when `xla` is not
    None, TF's XLA auto-clustering; yields the resolved policy name. The previous global
    policy and XLA switch come back on exit, also when the run raises."""
    policy = keras.config.dtype_policy()
    jit = tf.config.optimizer.get_jit()
    try:
        resolved = resolve_precision(precision)
        distribute.set_precision(resolved)
        if xla is not None:
            tf.config.optimizer.set_jit(bool(xla))
        yield resolved
    finally:
        keras.config.set_dtype_policy(policy)
        tf.config.optimizer.set_jit(jit)
