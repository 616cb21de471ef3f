"""MultiHeadSelfAttention with one fused query/key/value projection.

Shape legend: B = batch, T = sequence length, H = hidden size, N = heads, D = H / N.
"""

import keras
import tensorflow as tf
from keras import ops

from bert_tf.layers import kernels
from bert_tf.layers.initializers import bert_initializer

# Added to the attention scores of padding keys (google-research/bert uses the same value).
MASK_VALUE = -10000.0


def attention_bias(input_mask, dtype):
    """[B, T] 1/0 mask -> additive bias [B, 1, 1, T]: 0 for real tokens, -1e4 for padding."""
    # expand_dims, not [:, None, None, :]: a new-axis slice of a [B, T] mask with both dims
    # dynamic is a StridedSlice LiteRT cannot run (export/tflite_windows.py)
    mask = ops.expand_dims(ops.expand_dims(ops.cast(input_mask, dtype), 1), 1)  # [B, 1, 1, T]
    return (1.0 - mask) * MASK_VALUE


def packed_attention_bias(sequence_ids, dtype):
    """[B, T] per-token sequence ids of packed rows (1, 2, ... per sequence, 0 = padding)
    -> additive bias [B, 1, T, T]: 0 where query and key belong to the same sequence, -1e4
    elsewhere (other sequences and padding keys). The block-diagonal mask keeps attention
    inside each sequence; a padding query sees only masked keys (its output is unused)."""
    ids = ops.cast(sequence_ids, "int32")
    same = ops.logical_and(
        ops.equal(ids[:, :, None], ids[:, None, :]),  # [B, T, T]
        ops.not_equal(ids[:, None, :], 0),
    )
    return ((1.0 - ops.cast(same, dtype)) * MASK_VALUE)[:, None, :, :]  # [B, 1, T, T]


@keras.saving.register_keras_serializable(package="bert_tf")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Scaled dot-product self-attention over all heads at once.

    The query, key and value projections are one [H, 3H] matmul; their weights are kept as
    one `qkv` kernel of shape [H, 3, N, D] so checkpoints map onto it by slicing.
    `fused_kernels`: softmax + dropout as one XLA-fused kernel in training (kernels.py).
    """

    def __init__(
        self,
        hidden_size,
        num_heads,
        dropout=0.1,
        initializer_range=0.02,
        fused_kernels=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size={hidden_size} is not divisible by num_heads={num_heads}")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads
        self.dropout_rate = dropout
        self.initializer_range = initializer_range
        self.fused_kernels = bool(fused_kernels)
        self.kernels = kernels.select(self.fused_kernels)  # chosen once (see kernels.py)
        self.dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def build(self, input_shape=None):
        h, n, d = self.hidden_size, self.num_heads, self.head_size
        init = bert_initializer(self.initializer_range)
        self.qkv_kernel = self.add_weight(name="qkv_kernel", shape=(h, 3, n, d), initializer=init)
        self.qkv_bias = self.add_weight(name="qkv_bias", shape=(3, n, d), initializer="zeros")
        self.output_kernel = self.add_weight(
            name="output_kernel", shape=(n, d, h), initializer=init
        )
        self.output_bias = self.add_weight(name="output_bias", shape=(h,), initializer="zeros")
        self.built = True

    def call(self, x, bias, training=None):
        """x: [B, T, H]; bias: [B, 1, 1, T] additive mask (see `attention_bias`), or
        [B, 1, T, T] for packed rows (see `packed_attention_bias`)."""
        b, t = ops.shape(x)[0], ops.shape(x)[1]
        n, d, h = self.num_heads, self.head_size, self.hidden_size
        # Projections as 2-D MatMul + BiasAdd: oneDNN fuses the pair into one kernel (a 3-D
        # matmul is a reshape away from its bias add, which blocks the fusion).
        x2 = tf.reshape(x, (-1, h))  # [B*T, H]
        w_qkv = tf.reshape(self.qkv_kernel, (h, 3 * h))  # [H, 3, N, D] -> [H, 3H]
        b_qkv = tf.reshape(self.qkv_bias, (3 * h,))  # [3, N, D] -> [3H]
        qkv = tf.matmul(x2, tf.cast(w_qkv, x.dtype))  # [B*T, 3H]
        qkv = tf.nn.bias_add(qkv, tf.cast(b_qkv, x.dtype))
        qkv = tf.reshape(qkv, (b, t, 3, n, d))  # [B, T, 3, N, D]
        qkv = tf.transpose(qkv, (2, 0, 3, 1, 4))  # [3, B, N, T, D]
        # unstack, not qkv[i]: the gradient of a slice is a full-size StridedSliceGrad each.
        q, k, v = tf.unstack(qkv, 3, axis=0)  # [B, N, T, D] each
        q = q * tf.cast(1.0 / (d**0.5), q.dtype)
        scores = tf.matmul(q, k, transpose_b=True)  # [B, N, T, T]
        probs = self.kernels.softmax_dropout(scores, bias, self.dropout, training)  # [B, N, T, T]
        context = tf.matmul(probs, v)  # [B, N, T, D]
        context = tf.transpose(context, (0, 2, 1, 3))  # [B, T, N, D]
        context = tf.reshape(context, (-1, h))  # [B*T, H]
        w_out = tf.reshape(self.output_kernel, (h, h))  # [N, D, H] -> [H, H]
        out = tf.matmul(context, tf.cast(w_out, x.dtype))
        out = tf.nn.bias_add(out, tf.cast(self.output_bias, x.dtype))  # [B*T, H]
        return tf.reshape(out, (b, t, h))  # [B, T, H]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size,
            num_heads=self.num_heads,
            dropout=self.dropout_rate,
            initializer_range=self.initializer_range,
            fused_kernels=self.fused_kernels,
        )
        return config
