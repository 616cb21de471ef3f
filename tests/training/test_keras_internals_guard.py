"""Fails loudly, naming the method, when a Keras upgrade removes, renames or changes the private
optimizer internals that bert_tf.training.keras_internals.KerasInternals relies on, or stops
calling its overrides."""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_tf.training import optimization
from bert_tf.training.keras_internals import KerasInternals

_RELIED_ON = {**KerasInternals.OVERRIDDEN, **KerasInternals.CALLED}


def _keras_definition(name):
    """The Keras class (not ours) defining optimizer method `name`, and the function."""
    for cls in keras.optimizers.Adam.__mro__:
        if name in vars(cls):
            return cls, vars(cls)[name]
    pytest.fail(
        f"Keras {keras.__version__}: keras.optimizers.Adam has no method {name}; "
        f"bert_tf.training.keras_internals.KerasInternals relies on it (update it)"
    )


@pytest.mark.parametrize("name", sorted(_RELIED_ON))
def test_private_method_exists_with_the_signature_relied_on(name):
    cls, fn = _keras_definition(name)
    params = tuple(inspect.signature(fn).parameters)
    assert params == _RELIED_ON[name], (
        f"Keras {keras.__version__} changed {cls.__module__}.{cls.__name__}.{name}"
        f"{inspect.signature(fn)}; KerasInternals relies on {name}({', '.join(_RELIED_ON[name])})"
    )


@pytest.mark.parametrize("cls", [optimization.AdamW, optimization.Lamb])
def test_our_overrides_shadow_the_keras_ones(cls):
    for name in KerasInternals.OVERRIDDEN:
        assert getattr(cls, name) is getattr(KerasInternals, name), (
            f"{cls.__name__}.{name} is not KerasInternals.{name}: the mixin must come before "
            f"the Keras class"
        )


def test_keras_calls_every_override_and_the_adam_slots_are_there(monkeypatch):
    """One `apply()` of our AdamW: Keras must call each overridden private method once, and
    `_momentums` / `_velocities` must be Adam's slots in the order of the built variables."""
    calls = []
    for name in KerasInternals.OVERRIDDEN:
        real = getattr(KerasInternals, name)
        monkeypatch.setattr(
            KerasInternals,
            name,
            lambda self, *a, _n=name, _r=real: calls.append(_n) or _r(self, *a),
        )
    kernel = keras.Variable(np.ones((2, 2), "float32"), name="kernel")
    bias = keras.Variable(np.zeros(2, "float32"), name="bias")
    optimizer = optimization.create_optimizer("adamw", 0.1, 10, clip_norm=1.0)
    optimizer.apply([tf.zeros((2, 2)), tf.constant([6.0, 8.0])], [kernel, bias])
    for name in KerasInternals.OVERRIDDEN:
        assert calls.count(name) == 1, (
            f"Keras {keras.__version__} no longer calls {name} from apply() (calls: {calls}); "
            f"KerasInternals' override of it is dead: clipping/decay would silently change"
        )
    for name in KerasInternals.ADAM_SLOTS:
        slots = getattr(optimizer, name, None)
        assert slots is not None and len(slots) == 2, (
            f"Keras {keras.__version__}: Adam has no slot list {name}; KerasInternals.adam_slots "
            f"reads it"
        )
    assert optimizer.variable_index(bias) == 1 and optimizer.variable_index(kernel) == 0
    m, v = optimizer.adam_slots(bias)
    assert m.shape == (2,) and float(m.numpy()[0]) != 0.0  # updated by this step
    # the clip ran on the gradients Keras applied: global norm 10 -> 1, so the first Adam
    # moment is (1 - beta_1) * clipped gradient = 0.1 * [0.6, 0.8]
    np.testing.assert_allclose(m.numpy(), [0.06, 0.08], rtol=1e-5)
    assert v is optimizer._velocities[1]
