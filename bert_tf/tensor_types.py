"""Names used in the type hints of tensor arguments and results.

TensorFlow and Keras ship no type stubs, so to the type checker these are `Any`; to a reader
they say what a signature takes: `Tensor` is a tf.Tensor, a NumPy array or, while a functional
model is built, a symbolic keras.KerasTensor.
"""

from collections.abc import Mapping
from typing import Any

Tensor = Any
Tensors = Mapping[str, Tensor]  # named inputs or outputs ("input_word_ids", "logits", ...)
DTypePolicy = Any  # a keras.DTypePolicy or its name ("mixed_bfloat16")
