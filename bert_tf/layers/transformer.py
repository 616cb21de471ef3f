"""TransformerBlock: post-LayerNorm BERT layer (self-attention, then feed-forward).

Shape legend: B = batch, T = sequence length, H = hidden size, I = intermediate size.
"""

import keras
import tensorflow as tf

from bert_tf.layers import kernels
from bert_tf.layers.activations import get_activation
from bert_tf.layers.attention import MultiHeadSelfAttention
from bert_tf.layers.initializers import bert_initializer


@keras.saving.register_keras_serializable(package="bert_tf")
class TransformerBlock(keras.layers.Layer):
    """x -> LN(x + Drop(Attn(x))) -> LN(y + Drop(W2 act(W1 y)))  (the original BERT layout).

    `fused_kernels`: the dropout/residual/LayerNorm, GELU and softmax steps run as XLA-fused
    kernels in training (bert_tf/layers/kernels.py); False: plain TF ops. Chosen here, once;
    inference and export graphs are the plain ops either way."""

    def __init__(
        self,
        hidden_size,
        num_heads,
        intermediate_size,
        hidden_act="gelu",
        hidden_dropout=0.1,
        attention_dropout=0.1,
        layer_norm_eps=1e-12,
        initializer_range=0.02,
        fused_kernels=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.fused_kernels = bool(fused_kernels)
        # The element-wise kernels, chosen once here: XLA-fused in training, or plain ops.
        self.kernels = kernels.select(self.fused_kernels)
        init = bert_initializer(initializer_range)
        policy = self.dtype_policy
        self.attention = MultiHeadSelfAttention(
            hidden_size,
            num_heads,
            attention_dropout,
            initializer_range,
            fused_kernels=fused_kernels,
            dtype=policy,
            name="attention",
        )
        self.attention_dropout_layer = keras.layers.Dropout(hidden_dropout, dtype=policy)
        self.attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, dtype=policy, name="attention_layer_norm"
        )
        self.intermediate = keras.layers.Dense(
            intermediate_size,
            activation=get_activation(hidden_act),
            kernel_initializer=init,
            dtype=policy,
            name="intermediate",
        )
        self.output_dense = keras.layers.Dense(
            hidden_size, kernel_initializer=init, dtype=policy, name="output"
        )
        self.output_dropout = keras.layers.Dropout(hidden_dropout, dtype=policy)
        self.output_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, dtype=policy, name="output_layer_norm"
        )

    def build(self, input_shape=None):
        h = self.hidden_size
        self.attention.build((None, None, h))
        self.attention_layer_norm.build((None, None, h))
        self.intermediate.build((None, None, h))
        self.output_dense.build((None, None, self.intermediate_size))
        self.output_layer_norm.build((None, None, h))
        self.built = True

    def call(self, x, bias, training=None):
        """x: [B, T, H]; bias: [B, 1, 1, T] additive attention mask ([B, 1, T, T] for
        packed rows)."""
        k = self.kernels  # plain or XLA-fused element-wise steps (kernels.py)
        # Sub-layer 1: multi-head self-attention, dropout, residual, LayerNorm.
        a = self.attention(x, bias, training=training)  # [B, T, H]
        x = k.add_norm(
            x, a, self.attention_dropout_layer, self.attention_layer_norm, training
        )  # [B, T, H]
        # Sub-layer 2: position-wise feed-forward W2 act(W1 x + b1) + b2, dropout, residual,
        # LayerNorm.
        h = _matmul_2d(self.intermediate, x)  # [B*T, I]
        h = k.bias_act(h, self.intermediate, self.hidden_act, training)  # [B*T, I]
        f = tf.nn.bias_add(
            _matmul_2d(self.output_dense, h), tf.cast(self.output_dense.bias, h.dtype)
        )  # [B*T, H]
        f = tf.reshape(f, tf.shape(x))  # [B, T, H]
        return k.add_norm(x, f, self.output_dropout, self.output_layer_norm, training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size,
            num_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            hidden_act=self.hidden_act,
            hidden_dropout=self.hidden_dropout,
            attention_dropout=self.attention_dropout,
            layer_norm_eps=self.layer_norm_eps,
            initializer_range=self.initializer_range,
            fused_kernels=self.fused_kernels,
        )
        return config


def _matmul_2d(dense, x):
    """The matmul of `dense` on x reshaped to [B*T, in]; its bias is added by the caller
    (`tf.nn.bias_add` right after a 2-D MatMul: oneDNN fuses the pair, and an exact or tanh
    GELU after them, into one kernel, which a 3-D matmul, a reshape away from its bias add,
    prevents). Same weights, same maths as calling the layer."""
    x2 = tf.reshape(x, (-1, dense.kernel.shape[0]))  # [B*T, in]
    return tf.matmul(x2, tf.cast(dense.kernel, x2.dtype))  # [B*T, out]
