"""Activation lookup by the names BertConfig accepts."""

import keras


def gelu(x):
    """Exact GELU, x * Phi(x) with the erf-based normal CDF (the original BERT's)."""
    return keras.activations.gelu(x, approximate=False)


def gelu_approximate(x):
    """The tanh approximation of GELU."""
    return keras.activations.gelu(x, approximate=True)


_ACTIVATIONS = {
    "gelu": gelu,
    "gelu_approximate": gelu_approximate,
    "relu": keras.activations.relu,
    "tanh": keras.activations.tanh,
}


def get_activation(name):
    if name not in _ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]
