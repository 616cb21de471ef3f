"""MaskedLMHead: predicts the original tokens at the masked positions.

Shape legend: B = batch, T = sequence length, P = masked positions per example, H = hidden,
V = vocab size.
"""

import keras
from keras import ops

from bert_tf.layers.activations import get_activation
from bert_tf.layers.initializers import bert_initializer


def gather_positions(sequence, positions):
    """sequence [B, T, H], positions int [B, P] -> [B, P, H]."""
    positions = ops.cast(positions, "int32")
    return ops.take_along_axis(sequence, ops.expand_dims(positions, -1), axis=1)  # [B, P, H]


@keras.saving.register_keras_serializable(package="bert_tf")
class MaskedLMHead(keras.layers.Layer):
    """dense + activation + LayerNorm, then a decoder tied to the word embeddings + bias.

    Logits are computed only at `masked_positions`, never for the whole sequence.
    With `embedding_layer` (a `keras.layers.Embedding`) the decoder is that layer's matrix
    transposed (the original BERT); without it, the head owns an untied [H, V] decoder.
    The tie is not part of the config: the model that owns both layers re-creates it.
    """

    def __init__(
        self,
        vocab_size,
        hidden_size,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        initializer_range=0.02,
        embedding_layer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.hidden_act = hidden_act
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.embedding_layer = embedding_layer
        self.transform = keras.layers.Dense(
            hidden_size,
            activation=get_activation(hidden_act),
            kernel_initializer=bert_initializer(initializer_range),
            dtype=self.dtype_policy,
            name="transform",
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, dtype=self.dtype_policy, name="layer_norm"
        )

    def build(self, input_shape=None):
        self.transform.build((None, None, self.hidden_size))
        self.layer_norm.build((None, None, self.hidden_size))
        if self.embedding_layer is None:
            self.decoder_kernel = self.add_weight(
                name="decoder_kernel",
                shape=(self.hidden_size, self.vocab_size),
                initializer=bert_initializer(self.initializer_range),
            )
        self.output_bias = self.add_weight(
            name="output_bias", shape=(self.vocab_size,), initializer="zeros"
        )
        self.built = True

    def call(self, sequence_output, masked_positions):
        x = gather_positions(sequence_output, masked_positions)  # [B, P, H]
        x = self.layer_norm(self.transform(x))  # [B, P, H]
        if self.embedding_layer is not None:
            table = ops.cast(self.embedding_layer.embeddings, x.dtype)  # [V, H]
            logits = ops.matmul(x, ops.transpose(table))  # [B, P, V]
        else:
            logits = ops.matmul(x, ops.cast(self.decoder_kernel, x.dtype))
        return ops.cast(logits, "float32") + ops.cast(self.output_bias, "float32")

    def compute_output_shape(self, sequence_output_shape, masked_positions_shape):
        return tuple(masked_positions_shape) + (self.vocab_size,)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            hidden_act=self.hidden_act,
            layer_norm_eps=self.layer_norm_eps,
            initializer_range=self.initializer_range,
        )
        return config
