"""The element-wise steps of attention and of a transformer block, chosen ONCE when a layer is
built (`select(fused_kernels)`), never per call.

    softmax_dropout(scores, bias, dropout, training)   dropout(softmax(scores + bias))
    add_norm(x, a, dropout, norm, training)            LayerNorm(x + dropout(a))
    bias_act(h, dense, act, training)                  act(h + b): the bias and activation of
                                                       `dense` (h = its matmul, already done;
                                                       act = the activation's name)

`PLAIN` runs TF ops through the Keras layers. `FUSED` runs the XLA-compiled kernels of
`bert_tf.layers.fused` when `training is True` (the same maths: the tests compare values and
gradients) and the plain ops otherwise, so inference and export graphs (SavedModel, TF Hub,
TFLite) contain exactly the plain ops whatever the choice.

`BertConfig.fused_kernels` (default True) asks for the fused kernels; `BertEncoder` uses them
in blocks at least `MIN_FUSED_WIDTH` wide, where they gain (narrower ones, such as the tiny
test models, would pay an XLA compilation per new batch shape for little).

Shape legend: B = batch, T = sequence length, N = heads, H = hidden size, I = intermediate.
"""

import tensorflow as tf

from bert_tf.layers import fused

# The narrowest hidden size that gets the fused kernels (read when an encoder is built).
MIN_FUSED_WIDTH = 256


def wanted(fused_kernels, hidden_size):
    """The build-time choice for a block of width `hidden_size`: True if `fused_kernels`
    asks for the fused kernels and the block is at least `MIN_FUSED_WIDTH` wide."""
    return bool(fused_kernels) and hidden_size >= MIN_FUSED_WIDTH


def _seed(dropout):
    """The [2] seed of a Keras Dropout layer's next mask (unused when its rate is 0)."""
    return dropout.seed_generator.next() if dropout.rate > 0 else [0, 0]


class PlainKernels:
    """TF ops through the Keras layers (also the inference path of `FusedKernels`)."""

    fused = False

    def softmax_dropout(self, scores, bias, dropout, training):
        z = tf.cast(scores, tf.float32) + tf.cast(bias, tf.float32)  # [B, N, T, T]
        probs = tf.cast(tf.nn.softmax(z, axis=-1), scores.dtype)  # [B, N, T, T]
        return dropout(probs, training=training)

    def add_norm(self, x, a, dropout, norm, training):
        return norm(x + dropout(a, training=training))  # [B, T, H]

    def bias_act(self, h, dense, act, training):
        return dense.activation(tf.nn.bias_add(h, tf.cast(dense.bias, h.dtype)))


class FusedKernels(PlainKernels):
    """The XLA-fused kernels in training (`training is True`), the plain ops otherwise."""

    fused = True

    def softmax_dropout(self, scores, bias, dropout, training):
        if training is not True:
            return super().softmax_dropout(scores, bias, dropout, training)
        return fused.masked_softmax_dropout(scores, bias, _seed(dropout), dropout.rate)

    def add_norm(self, x, a, dropout, norm, training):
        if training is not True:
            return super().add_norm(x, a, dropout, norm, training)
        return fused.dropout_add_layer_norm(
            x, a, norm.gamma, norm.beta, _seed(dropout), dropout.rate, norm.epsilon
        )

    def bias_act(self, h, dense, act, training):
        if training is not True or act != "gelu":  # the fused kernel is the exact GELU
            return super().bias_act(h, dense, act, training)
        return fused.bias_gelu(h, dense.bias)  # [B*T, I]


PLAIN = PlainKernels()
FUSED = FusedKernels()


def select(fused_kernels):
    """The kernels a layer built with `fused_kernels` (bool) uses for its whole life."""
    return FUSED if fused_kernels else PLAIN
