"""Dense task heads: NSP, sentence classification, token classification and span prediction.

Shape legend: B = batch, T = sequence length, H = hidden size, C = classes.
Logits are always float32, also under mixed precision.
"""

import keras
from keras import ops

from bert_tf.layers.initializers import bert_initializer


class _DenseHead(keras.layers.Layer):
    """dropout -> dense(num_outputs) on the last axis, float32 logits."""

    def __init__(self, num_outputs, dropout=0.0, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.num_outputs = num_outputs
        self.dropout_rate = dropout
        self.initializer_range = initializer_range
        self.dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.dense = keras.layers.Dense(
            num_outputs,
            kernel_initializer=bert_initializer(initializer_range),
            dtype=self.dtype_policy,
            name="dense",
        )

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.built = True

    def call(self, x, training=None):
        return ops.cast(self.dense(self.dropout(x, training=training)), "float32")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_outputs,)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_outputs=self.num_outputs,
            dropout=self.dropout_rate,
            initializer_range=self.initializer_range,
        )
        return config


@keras.saving.register_keras_serializable(package="bert_tf")
class NextSentenceHead(_DenseHead):
    """pooled_output [B, H] -> NSP logits [B, 2] (0 = is next, 1 = random, as the original)."""

    def __init__(self, num_outputs=2, dropout=0.0, initializer_range=0.02, **kwargs):
        super().__init__(num_outputs, dropout, initializer_range, **kwargs)


@keras.saving.register_keras_serializable(package="bert_tf")
class ClassificationHead(_DenseHead):
    """pooled_output [B, H] -> logits [B, C] (C = 1 for regression)."""


@keras.saving.register_keras_serializable(package="bert_tf")
class TokenClassificationHead(_DenseHead):
    """sequence_output [B, T, H] -> per-token logits [B, T, C]."""


@keras.saving.register_keras_serializable(package="bert_tf")
class SpanHead(keras.layers.Layer):
    """sequence_output [B, T, H] -> start_logits, end_logits [B, T]; padding gets -1e4."""

    def __init__(self, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.initializer_range = initializer_range
        self.dense = keras.layers.Dense(
            2,
            kernel_initializer=bert_initializer(initializer_range),
            dtype=self.dtype_policy,
            name="dense",
        )

    def build(self, sequence_output_shape, input_mask_shape=None):
        self.dense.build(sequence_output_shape)
        self.built = True

    def call(self, sequence_output, input_mask):
        logits = ops.cast(self.dense(sequence_output), "float32")  # [B, T, 2]
        penalty = (1.0 - ops.cast(input_mask, "float32")) * -10000.0  # [B, T]
        return logits[..., 0] + penalty, logits[..., 1] + penalty  # [B, T] each

    def compute_output_shape(self, sequence_output_shape, input_mask_shape=None):
        return tuple(sequence_output_shape[:-1]), tuple(sequence_output_shape[:-1])

    def get_config(self):
        config = super().get_config()
        config.update(initializer_range=self.initializer_range)
        return config
