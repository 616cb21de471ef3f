"""BertEmbeddings: word + position + segment embeddings, then LayerNorm and dropout.

Shape legend: B = batch, T = sequence length, H = hidden size, V = vocab size.
"""

import keras
from keras import ops

from bert_tf.layers.initializers import bert_initializer


@keras.saving.register_keras_serializable(package="bert_tf")
class BertEmbeddings(keras.layers.Layer):
    """Sums the three BERT embeddings. Exposes `word_embeddings` for tying to the MLM decoder."""

    def __init__(
        self,
        vocab_size,
        hidden_size,
        max_position_embeddings=512,
        type_vocab_size=2,
        dropout=0.1,
        layer_norm_eps=1e-12,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.dropout_rate = dropout
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        init = bert_initializer(initializer_range)
        self.word_embeddings = keras.layers.Embedding(
            vocab_size,
            hidden_size,
            embeddings_initializer=init,
            dtype=self.dtype_policy,
            name="word_embeddings",
        )
        self.position_embeddings = keras.layers.Embedding(
            max_position_embeddings,
            hidden_size,
            embeddings_initializer=init,
            dtype=self.dtype_policy,
            name="position_embeddings",
        )
        self.type_embeddings = keras.layers.Embedding(
            type_vocab_size,
            hidden_size,
            embeddings_initializer=init,
            dtype=self.dtype_policy,
            name="type_embeddings",
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, dtype=self.dtype_policy, name="layer_norm"
        )
        self.dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def build(self, input_shape=None):
        self.word_embeddings.build((None, None))
        self.position_embeddings.build((None,))
        self.type_embeddings.build((None, None))
        self.layer_norm.build((None, None, self.hidden_size))
        self.built = True

    def call(self, input_word_ids, input_type_ids, position_ids=None, training=None):
        """position_ids: optional int [B, T] (packed rows: restarting at 0 for each
        sequence); None = 0..T-1 for every row."""
        words = self.word_embeddings(input_word_ids)  # [B, T, H]
        if position_ids is None:
            seq_length = ops.shape(input_word_ids)[1]
            positions = self.position_embeddings(ops.arange(seq_length))  # [T, H]
            positions = ops.expand_dims(positions, 0)  # [1, T, H]
        else:
            positions = self.position_embeddings(position_ids)  # [B, T, H]
        types = self.type_embeddings(input_type_ids)  # [B, T, H]
        x = words + positions + types  # [B, T, H]
        x = self.layer_norm(x)
        return self.dropout(x, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.hidden_size,)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            dropout=self.dropout_rate,
            layer_norm_eps=self.layer_norm_eps,
            initializer_range=self.initializer_range,
        )
        return config
