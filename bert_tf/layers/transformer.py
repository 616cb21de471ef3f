"""TransformerBlock: post-LayerNorm BERT layer (self-attention, then feed-forward).

Shape legend: B = batch, T = sequence length, H = hidden size, I = intermediate size.
"""

import keras
import tensorflow as tf

from bert_tf.layers import fused
from bert_tf.layers.activations import get_activation
from bert_tf.layers.attention import MultiHeadSelfAttention
from bert_tf.layers.initializers import bert_initializer


@keras.saving.register_keras_serializable(package="bert_tf")
class TransformerBlock(keras.layers.Layer):
    """x -> LN(x + Drop(Attn(x))) -> LN(y + Drop(W2 act(W1 y)))  (the original BERT layout)."""

    def __init__(self, hidden_size, num_heads, intermediate_size, hidden_act="gelu",
                 hidden_dropout=0.1, attention_dropout=0.1, layer_norm_eps=1e-12,
                 initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        init = bert_initializer(initializer_range)
        policy = self.dtype_policy
        self.attention = MultiHeadSelfAttention(hidden_size, num_heads, attention_dropout,
                                                initializer_range, dtype=policy, name="attention")
        self.attention_dropout_layer = keras.layers.Dropout(hidden_dropout, dtype=policy)
        self.attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, dtype=policy, name="attention_layer_norm")
        self.intermediate = keras.layers.Dense(
            intermediate_size, activation=get_activation(hidden_act), kernel_initializer=init,
            dtype=policy, name="intermediate")
        self.output_dense = keras.layers.Dense(hidden_size, kernel_initializer=init, dtype=policy,
                                               name="output")
        self.output_dropout = keras.layers.Dropout(hidden_dropout, dtype=policy)
        self.output_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, dtype=policy, name="output_layer_norm")

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
        a = self.attention(x, bias, training=training)                                  # [B, T, H]
        if fused.use_fused(a, training):
            return self._fused_call(x, a)
        x = self.attention_layer_norm(x + self.attention_dropout_layer(a, training=training))
        hidden = self.intermediate.activation(self._dense_2d(self.intermediate, x))   # [B*T, I]
        f = tf.reshape(self._dense_2d(self.output_dense, hidden), tf.shape(x))         # [B, T, H]
        return self.output_layer_norm(x + self.output_dropout(f, training=training))  # [B, T, H]

    @staticmethod
    def _dense_2d(layer, x):
        """`layer` (a Dense) as a 2-D MatMul + BiasAdd on x reshaped to [B*T, in]: oneDNN
        fuses MatMul + BiasAdd (+ an exact or tanh GELU after it) into one kernel, which a
        3-D matmul (a reshape between matmul and bias) prevents. Same weights, same maths."""
        x2 = tf.reshape(x, (-1, layer.kernel.shape[0]))                       # [B*T, in]
        y = tf.matmul(x2, tf.cast(layer.kernel, x2.dtype))                   # [B*T, out]
        return tf.nn.bias_add(y, tf.cast(layer.bias, y.dtype))

    def _fused_call(self, x, a):
        """The same maths in training, with XLA-fused element-wise kernels (see fused.py)."""
        def add_norm(x, a, dropout_layer, norm):
            rate = dropout_layer.rate
            seed = dropout_layer.seed_generator.next() if rate > 0 else [0, 0]
            return fused.dropout_add_layer_norm(x, a, norm.gamma, norm.beta, seed, rate,
                                                norm.epsilon)

        x = add_norm(x, a, self.attention_dropout_layer, self.attention_layer_norm)
        x2 = tf.reshape(x, (-1, self.hidden_size))                                 # [B*T, H]
        if self.hidden_act == "gelu":
            kernel = tf.cast(self.intermediate.kernel, x.dtype)
            hidden = fused.bias_gelu(tf.matmul(x2, kernel), self.intermediate.bias)  # [B*T, I]
        else:
            hidden = self.intermediate.activation(self._dense_2d(self.intermediate, x2))
        f = tf.reshape(self._dense_2d(self.output_dense, hidden), tf.shape(x))      # [B, T, H]
        return add_norm(x, f, self.output_dropout, self.output_layer_norm)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, num_heads=self.num_heads,
                      intermediate_size=self.intermediate_size, hidden_act=self.hidden_act,
                      hidden_dropout=self.hidden_dropout,
                      attention_dropout=self.attention_dropout,
                      layer_norm_eps=self.layer_norm_eps,
                      initializer_range=self.initializer_range)
        return config
