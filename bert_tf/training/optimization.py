"""Optimizers for transformer training: AdamW and LAMB with a warmup + linear-decay schedule.

    optimizer = create_optimizer("adamw", learning_rate=1e-4, num_train_steps=10000,
                                 num_warmup_steps=1000)

* Learning rate (`WarmupLinearDecay`): linear from 0 to `learning_rate` over the warmup steps,
  then linear down to `end_learning_rate` at `num_train_steps`, constant after. The step is
  the optimizer's iteration count before the update (the first update uses lr(0)).
* Adam: `create_optimizer("adamw")` is torch.optim.AdamW's maths (bias-corrected moments,
  epsilon 1e-8 added to sqrt of the CORRECTED second moment), what users of the Hugging Face
  recipe expect; "bert_adamw" is google-research/bert's AdamWeightDecayOptimizer (no bias
  correction, epsilon 1e-6) and "keras_adamw" Keras' Adam (epsilon on the uncorrected
  second moment: early on, and for small gradients, it moves parameters much less than
  torch's). See ADAM_VARIANTS; tests/training/test_optimization.py pins which is which.
* Weight decay is decoupled (w -= lr * wd * w, as AdamW / BERT's AdamWeightDecay) and skipped
  for variables whose PATH matches `exclude_from_decay` (default: Keras' names of
  LayerNormalization layers, `*layer_norm*` / `layer_normalization`, and `*bias` variables):
  Keras' own `exclude_from_weight_decay(var_names=...)` only sees the last name component.
* Gradient clipping is by GLOBAL norm and happens after the gradients are summed over the
  replicas, so it does not depend on the number of replicas. (Keras' `global_clipnorm`
  clips each replica's partial gradient before the sum.) The `Trainer` sums the gradients
  itself and sets `reduce_gradients = False`; other callers (e.g. `model.fit`) keep the
  default, where `apply()` does the cross-replica sum.
* Layer-wise learning-rate decay (fine-tuning, `layer_decay=d`): a variable's learning rate
  is multiplied by d ** n, n = how many layers it sits below the top, which the MODEL side
  tells: `layers_below_top(paths) -> [n per path]`, a registered Keras-serializable function
  (for BERT models `bert_tf.models.param_groups.layers_below_top`). It scales the learning
  rate (the step size), including the weight-decay term, not the gradients: Adam-type
  updates are invariant to gradient scale.
* What these optimizers need of Keras' private internals is in ONE class,
  `keras_internals.KerasInternals`, guarded by tests/training/test_keras_internals_guard.py.
"""

import re

import keras
import tensorflow as tf

from bert_tf.training.keras_internals import KerasInternals

# name -> (class, Adam variant, default epsilon)
OPTIMIZER_SPECS = {
    "adamw": ("adamw", "torch", 1e-8),
    "bert_adamw": ("adamw", "bert", 1e-6),
    "keras_adamw": ("adamw", "keras", 1e-6),
    "lamb": ("lamb", None, 1e-6),
}
OPTIMIZERS = tuple(OPTIMIZER_SPECS)
# Where epsilon enters the Adam step, and whether the moments are bias-corrected
# (m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t)):
ADAM_VARIANTS = {
    "torch": "lr * m_hat / (sqrt(v_hat) + eps): torch.optim.AdamW, the Hugging Face recipe",
    "bert": "lr * m / (sqrt(v) + eps), no bias correction: google-research/bert's "
    "AdamWeightDecayOptimizer",
    "keras": "lr * m_hat / (sqrt(v) / sqrt(1 - beta2^t) + eps): epsilon on the uncorrected "
    "second moment, as keras.optimizers.Adam / tf.raw_ops.ApplyAdam",
}
DEFAULT_EXCLUDE_FROM_DECAY = (r"layer_?norm", r"(^|/|_)bias$")


@keras.saving.register_keras_serializable(package="bert_tf")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """0 -> peak linearly over `warmup_steps`, then peak -> end linearly until `decay_steps`
    (the total number of training steps), then `end_learning_rate`."""

    def __init__(self, learning_rate, warmup_steps, decay_steps, end_learning_rate=0.0):
        if warmup_steps < 0 or decay_steps < 0:
            raise ValueError(
                f"warmup_steps ({warmup_steps}) and decay_steps ({decay_steps}) must be >= 0"
            )
        if warmup_steps > decay_steps:
            raise ValueError(f"num_warmup_steps ({warmup_steps}) > num_train_steps ({decay_steps})")
        self.learning_rate = float(learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.decay_steps = int(decay_steps)
        self.end_learning_rate = float(end_learning_rate)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        peak, end = self.learning_rate, self.end_learning_rate
        warmup = float(self.warmup_steps)
        warm = peak * step / max(warmup, 1.0)
        fraction = (float(self.decay_steps) - step) / max(float(self.decay_steps) - warmup, 1.0)
        decay = end + (peak - end) * tf.clip_by_value(fraction, 0.0, 1.0)
        return tf.where(step < warmup, warm, decay)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
        }


def applies_weight_decay(path, exclude_patterns=DEFAULT_EXCLUDE_FROM_DECAY):
    """False for variables whose path matches a pattern (LayerNorm, biases by default)."""
    return not any(re.search(p, path, re.IGNORECASE) for p in exclude_patterns)


def lr_multipliers(paths, layer_decay, layers_below_top):
    """Per variable path: layer_decay ** layers_below_top(paths)[i] (1.0 without decay)."""
    if layer_decay is None:
        return [1.0] * len(paths)
    depths = list(layers_below_top(paths))
    if len(depths) != len(paths) or any(int(n) < 0 for n in depths):
        raise ValueError(f"layers_below_top must give one int >= 0 per variable, got {depths}")
    return [float(layer_decay) ** int(n) for n in depths]


class _DecoupledDecay(KerasInternals):
    """Per-variable weight decay and learning-rate multipliers (by path), global-norm
    clipping after the cross-replica gradient sum (see KerasInternals.clip_gradients)."""

    def _init_groups(self, exclude_from_decay, layer_decay, layers_below_top):
        self.exclude_from_decay = tuple(exclude_from_decay or ())
        self.layer_decay = None if layer_decay is None else float(layer_decay)
        if isinstance(layers_below_top, dict):  # from get_config
            layers_below_top = keras.saving.deserialize_keras_object(layers_below_top)
        self.layers_below_top = layers_below_top
        self.reduce_gradients = True
        if self.layer_decay is not None and not 0.0 < self.layer_decay <= 1.0:
            raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}")
        if self.layer_decay is not None and not callable(layers_below_top):
            raise ValueError(
                "layer_decay needs layers_below_top, a function of the variable "
                "paths (e.g. bert_tf.models.param_groups.layers_below_top)"
            )

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        paths = [getattr(v, "path", v.name) for v in var_list]
        self._decay_mask = [applies_weight_decay(p, self.exclude_from_decay) for p in paths]
        self._lr_multipliers = lr_multipliers(paths, self.layer_decay, self.layers_below_top)

    def _variable_settings(self, variable):
        index = self.variable_index(variable)
        return self._decay_mask[index], self._lr_multipliers[index]

    def _groups_config(self, config):
        fn = self.layers_below_top
        config.update(
            {
                "exclude_from_decay": list(self.exclude_from_decay),
                "layer_decay": self.layer_decay,
                "layers_below_top": None if fn is None else keras.saving.serialize_keras_object(fn),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="bert_tf")
class AdamW(_DecoupledDecay, keras.optimizers.Adam):
    """Adam with decoupled weight decay (skipped for LayerNorm/bias paths), clipping after
    the replica sum and optional layer-wise learning-rate decay (see the module doc).

    `variant` (see ADAM_VARIANTS) says where epsilon enters and whether the moments are
    bias-corrected; the three differ only in that, and all run as one XLA kernel per
    variable (`_adamw_kernel`, with the clipping factor and the weight decay inside it)."""

    def __init__(
        self,
        learning_rate=1e-3,
        weight_decay=0.01,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        global_clipnorm=None,
        exclude_from_decay=DEFAULT_EXCLUDE_FROM_DECAY,
        layer_decay=None,
        layers_below_top=None,
        variant="torch",
        name="adamw",
        **kwargs,
    ):
        if variant not in ADAM_VARIANTS:
            raise ValueError(
                f"unknown Adam variant {variant!r}: expected one of {', '.join(ADAM_VARIANTS)}"
            )
        if kwargs.get("amsgrad"):
            raise ValueError("AdamW does not support amsgrad")
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            weight_decay=weight_decay or None,
            global_clipnorm=global_clipnorm or None,
            name=name,
            **kwargs,
        )
        self.variant = variant
        self._init_groups(exclude_from_decay, layer_decay, layers_below_top)

    def clip_gradients(self, grads):
        """The replica sum, and global-norm clipping by a factor that `update_step` applies
        inside its one-pass update (no separate pass to scale every gradient)."""
        grads = self.sum_over_replicas(grads)
        self._grad_scale = clip_factor(grads, self.global_clipnorm)
        return grads

    def update_step(self, gradient, variable, learning_rate):
        decays, multiplier = self._variable_settings(variable)
        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype) * multiplier
        if isinstance(gradient, tf.IndexedSlices):
            gradient = tf.convert_to_tensor(gradient)  # Keras' update densifies too
        gradient = tf.cast(gradient, dtype)
        scale = getattr(self, "_grad_scale", None)
        if scale is not None:
            gradient_scale = tf.cast(scale, dtype)
        else:
            gradient_scale = tf.ones([], dtype)
        decay = tf.cast(self.weight_decay, dtype) * lr if decays and self.weight_decay else None
        if not self._fused_update(gradient, gradient_scale, variable, lr, decay):
            if decay is not None:
                # scalar product first: one pass over the variable, not two
                self.assign_sub(variable, variable * decay)
            self._plain_update(gradient * gradient_scale, variable, lr)

    def _adam_scalars(self, dtype):
        """(beta1^t, beta2^t, epsilon) for the update
        var -= lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + epsilon):
          keras: as is (epsilon on the uncorrected sqrt(v));
          torch: epsilon * sqrt(1 - beta2^t), which makes it lr * m_hat / (sqrt(v_hat) + eps);
          bert:  beta powers 0 (no bias correction): lr * m / (sqrt(v) + eps)."""
        t = tf.cast(self.iterations + 1, dtype)
        eps = tf.cast(self.epsilon, dtype)
        if self.variant == "bert":
            zero = tf.zeros([], dtype)
            return zero, zero, eps
        beta1_power = tf.pow(tf.cast(self.beta_1, dtype), t)
        beta2_power = tf.pow(tf.cast(self.beta_2, dtype), t)
        if self.variant == "torch":
            eps = eps * tf.sqrt(1.0 - beta2_power)
        return beta1_power, beta2_power, eps

    def _fused_update(self, gradient, gradient_scale, variable, lr, decay):
        """Clipping, weight decay and the Adam step as ONE XLA kernel (`_adamw_kernel`: each
        of the gradient, m, v and the variable read and written once) instead of ~15
        element-wise passes per variable (all-MiniLM-L6-v2, 22.7M parameters, 2 AVX2 cores:
        42 ms vs 98 ms per optimizer step with TF's fused Adam kernel and separate clip and
        decay passes). False (the caller falls back to `_plain_update`, the same
        maths) for a variable or slot that is not a TF resource variable here."""
        m, v = self.adam_slots(variable)
        targets = [_resource_handle(x) for x in (variable, m, v)]
        if any(x is None for x in targets):
            return False
        dtype = variable.dtype
        beta1_power, beta2_power, eps = self._adam_scalars(dtype)
        if getattr(self, "_adamw_fn", None) is None:
            # one XLA function per optimizer (compiled per variable shape at run time)
            self._adamw_fn = tf.function(_adamw_kernel, jit_compile=True, autograph=False)
        self._adamw_fn(
            *targets,
            gradient,
            gradient_scale,
            tf.ones([], dtype) if decay is None else 1.0 - decay,
            lr * tf.sqrt(1.0 - beta2_power) / (1.0 - beta1_power),
            tf.cast(self.beta_1, dtype),
            tf.cast(self.beta_2, dtype),
            eps,
        )
        return True

    def _plain_update(self, gradient, variable, lr):
        """`_fused_update`'s maths as element-wise ops."""
        m, v = self.adam_slots(variable)
        dtype = variable.dtype
        gradient = tf.cast(gradient, dtype)
        beta1_power, beta2_power, eps = self._adam_scalars(dtype)
        self.assign_add(m, (gradient - m) * (1.0 - tf.cast(self.beta_1, dtype)))
        self.assign_add(v, (tf.square(gradient) - v) * (1.0 - tf.cast(self.beta_2, dtype)))
        alpha = lr * tf.sqrt(1.0 - beta2_power) / (1.0 - beta1_power)
        self.assign_sub(variable, alpha * m / (tf.sqrt(v) + eps))

    def get_config(self):
        config = super().get_config()
        config.pop("amsgrad", None)
        config["variant"] = self.variant
        return self._groups_config(config)


def _resource_handle(variable):
    """The resource handle of a Keras or tf.Variable (inside `strategy.extended.update`, the
    local replica's), or None if it has none."""
    if isinstance(variable, keras.Variable):
        variable = variable.value  # the backing tf.Variable
    if not isinstance(variable, tf.Variable):
        return None
    try:
        return variable.handle
    except (AttributeError, ValueError):
        return None


def _adamw_kernel(var, m, v, gradient, gradient_scale, decay, alpha, beta_1, beta_2, epsilon):
    """One pass of AdamW over the variables of resource handles `var`, `m`, `v`:
    g = gradient * gradient_scale (clipping); m += (g - m)(1 - beta_1);
    v += (g^2 - v)(1 - beta_2); var = var * decay - alpha * m / (sqrt(v) + epsilon)
    (decay = 1 - lr * weight_decay: the decoupled decay before the step, as torch's AdamW).
    Handles, not variable objects: under a distribution strategy each replica's own."""
    dtype = gradient.dtype

    def read(handle):
        return tf.raw_ops.ReadVariableOp(resource=handle, dtype=dtype)

    g = gradient * gradient_scale
    m_new = read(m) + (g - read(m)) * (1.0 - beta_1)
    v_new = read(v) + (tf.square(g) - read(v)) * (1.0 - beta_2)
    updated = read(var) * decay - alpha * m_new / (tf.sqrt(v_new) + epsilon)
    tf.raw_ops.AssignVariableOp(resource=m, value=m_new)
    tf.raw_ops.AssignVariableOp(resource=v, value=v_new)
    tf.raw_ops.AssignVariableOp(resource=var, value=updated)


def clip_factor(grads, clip_norm):
    """The factor tf.clip_by_global_norm scales `grads` by: clip_norm / max(norm, clip_norm)
    (NaN for a non-finite norm), or None when `clip_norm` is None/0 (no clipping)."""
    if not clip_norm:
        return None
    norm = tf.linalg.global_norm([g for g in grads if g is not None])
    clip = tf.cast(clip_norm, norm.dtype)
    factor = clip * tf.minimum(1.0 / norm, 1.0 / clip)
    return tf.where(tf.math.is_finite(norm), factor, tf.constant(float("nan"), norm.dtype))


@keras.saving.register_keras_serializable(package="bert_tf")
class Lamb(_DecoupledDecay, keras.optimizers.Optimizer):
    """LAMB (You et al. 2019, as used for BERT): Adam direction + weight decay, scaled per
    variable by the trust ratio ||w|| / ||update||. LayerNorm/bias variables get neither the
    weight decay nor the trust ratio (as the BERT LAMB reference)."""

    def __init__(
        self,
        learning_rate=1e-3,
        weight_decay=0.01,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        global_clipnorm=None,
        exclude_from_decay=DEFAULT_EXCLUDE_FROM_DECAY,
        layer_decay=None,
        layers_below_top=None,
        name="lamb",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay or None,
            global_clipnorm=global_clipnorm or None,
            name=name,
            **kwargs,
        )
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self._init_groups(exclude_from_decay, layer_decay, layers_below_top)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"]
        )

    def update_step(self, gradient, variable, learning_rate):
        decays, multiplier = self._variable_settings(variable)
        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype) * multiplier
        gradient = tf.cast(gradient, dtype)
        t = tf.cast(self.iterations + 1, dtype)
        index = self.variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]  # Lamb's own slots
        self.assign_add(m, (gradient - m) * (1.0 - self.beta_1))
        self.assign_add(v, (tf.square(gradient) - v) * (1.0 - self.beta_2))
        m_hat = m / (1.0 - tf.pow(tf.cast(self.beta_1, dtype), t))
        v_hat = v / (1.0 - tf.pow(tf.cast(self.beta_2, dtype), t))
        update = m_hat / (tf.sqrt(v_hat) + self.epsilon)
        if decays:
            if self.weight_decay:
                update += tf.cast(self.weight_decay, dtype) * variable
            w_norm = tf.norm(variable)
            u_norm = tf.norm(update)
            ratio = tf.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, 1.0)
            update = ratio * update
        self.assign_sub(variable, lr * update)

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return self._groups_config(config)


def create_optimizer(
    name="adamw",
    learning_rate=1e-4,
    num_train_steps=10000,
    num_warmup_steps=0,
    weight_decay=0.01,
    end_learning_rate=0.0,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=None,
    clip_norm=1.0,
    layer_decay=None,
    layers_below_top=None,
    exclude_from_decay=DEFAULT_EXCLUDE_FROM_DECAY,
):
    """An optimizer of OPTIMIZER_SPECS (adamw = torch.optim.AdamW's maths, bert_adamw = the
    original BERT optimizer, keras_adamw = Keras' Adam epsilon, lamb) with
    `WarmupLinearDecay`, decay-exclusion by path, global-norm clipping (`clip_norm` None/0 =
    off) and optional layer-wise learning-rate decay (see module doc). `epsilon` None = the
    name's default (adamw 1e-8 as torch and transformers' TrainingArguments; 1e-6 for the
    others, as google-research/bert). Create it inside `strategy.scope()` (or hand the
    Trainer a callable that does)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: expected one of {', '.join(OPTIMIZERS)}")
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}")
    if num_train_steps <= 0:
        raise ValueError(f"num_train_steps must be positive, got {num_train_steps}")
    schedule = WarmupLinearDecay(
        learning_rate, num_warmup_steps, num_train_steps, end_learning_rate
    )
    kind, variant, default_epsilon = OPTIMIZER_SPECS[name]
    extra = {"variant": variant} if kind == "adamw" else {}
    cls = AdamW if kind == "adamw" else Lamb
    return cls(
        learning_rate=schedule,
        weight_decay=weight_decay,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=default_epsilon if epsilon is None else epsilon,
        global_clipnorm=clip_norm,
        exclude_from_decay=exclude_from_decay,
        layer_decay=layer_decay,
        layers_below_top=layers_below_top,
        **extra,
    )
