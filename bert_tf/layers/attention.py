"""MultiHeadSelfAttention with one fused query/key/value projection.

Shape legend: B = batch, T = sequence length, H = hidden size, N = heads, D = H / N.
"""

import keras
from keras import ops

from bert_tf.layers.initializers import bert_initializer

# Added to the attention scores of padding keys (google-research/bert uses the same value).
MASK_VALUE = -10000.0


def attention_bias(input_mask, dtype):
    """[B, T] 1/0 mask -> additive bias [B, 1, 1, T]: 0 for real tokens, -1e4 for padding."""
    mask = ops.cast(input_mask, dtype)[:, None, None, :]  # [B, 1, 1, T]
    return (1.0 - mask) * MASK_VALUE


@keras.saving.register_keras_serializable(package="bert_tf")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Scaled dot-product self-attention over all heads at once.

    The query, key and value projections are one [H, 3H] matmul; their weights are kept as
    one `qkv` kernel of shape [H, 3, N, D] so checkpoints map onto it by slicing.
    """

    def __init__(self, hidden_size, num_heads, dropout=0.1, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size={hidden_size} is not divisible by num_heads={num_heads}")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads
        self.dropout_rate = dropout
        self.initializer_range = initializer_range
        self.dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def build(self, input_shape=None):
        h, n, d = self.hidden_size, self.num_heads, self.head_size
        init = bert_initializer(self.initializer_range)
        self.qkv_kernel = self.add_weight(name="qkv_kernel", shape=(h, 3, n, d), initializer=init)
        self.qkv_bias = self.add_weight(name="qkv_bias", shape=(3, n, d), initializer="zeros")
        self.output_kernel = self.add_weight(name="output_kernel", shape=(n, d, h),
                                             initializer=init)
        self.output_bias = self.add_weight(name="output_bias", shape=(h,), initializer="zeros")
        self.built = True

    def call(self, x, bias, training=None):
        """x: [B, T, H]; bias: [B, 1, 1, T] additive mask (see `attention_bias`)."""
        b, t = ops.shape(x)[0], ops.shape(x)[1]
        n, d = self.num_heads, self.head_size
        qkv = ops.matmul(x, ops.reshape(self.qkv_kernel, (self.hidden_size, 3 * n * d)))
        qkv = qkv + ops.reshape(self.qkv_bias, (3 * n * d,))           # [B, T, 3*N*D]
        qkv = ops.reshape(qkv, (b, t, 3, n, d))                        # [B, T, 3, N, D]
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))                      # [3, B, N, T, D]
        q, k, v = qkv[0], qkv[1], qkv[2]                               # [B, N, T, D] each
        q = q * ops.cast(1.0 / (d ** 0.5), q.dtype)
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))         # [B, N, T, T]
        scores = ops.cast(scores, "float32") + ops.cast(bias, "float32")
        probs = ops.cast(ops.softmax(scores, axis=-1), x.dtype)        # [B, N, T, T]
        probs = self.dropout(probs, training=training)
        context = ops.matmul(probs, v)                                 # [B, N, T, D]
        context = ops.transpose(context, (0, 2, 1, 3))                 # [B, T, N, D]
        context = ops.reshape(context, (b, t, n * d))                  # [B, T, H]
        out = ops.matmul(context, ops.reshape(self.output_kernel, (n * d, self.hidden_size)))
        return out + self.output_bias                                  # [B, T, H]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, num_heads=self.num_heads,
                      dropout=self.dropout_rate, initializer_range=self.initializer_range)
        return config
