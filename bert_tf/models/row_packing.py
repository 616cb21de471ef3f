"""The encoder's training forward pass over a padded batch packed into fewer, full rows.

Fine-tuning batches are uniformly random (the reference recipe's statistics), so each is padded
to its longest example while most rows are far shorter: on real sentences over half of the
compute goes to padding. In training, `encode_packed` packs the batch's sequences into rows of
a fixed width (the run's maximum sequence length; first-fit decreasing, in the graph), runs the
encoder on the packed rows (positions restart at 0 for each sequence, attention is
block-diagonal: bert_tf/models/encoder.py's packed-row extension) and scatters the outputs
back to the batch's rows and width. A sequence's outputs at its real tokens are those of the
padded pass (each token sees exactly the tokens it saw there, at the same positions), padding
positions are 0; the loss and its gradients, taken over the whole batch by the caller, are the
reference's. Only the work on padding is saved. Brown names at seq 64, random batches of 32
(2.28x the real tokens when padded): the packed rows hold 1.06x the real tokens; the training
step runs 1.32x faster (forward + backward 1.26x) than with length-sorted chunks (1.38x the
real tokens, the approach this replaced), on 2 AVX2 cores (docs/benchmarks.md).

Rows of a fixed width W rather than of each batch's own padded length: the fused training
kernels (bert_tf/layers/fused.py) compile once per shape, and [R, W] takes far fewer shapes than
[R, T] (Brown names at seq 64, 3 epochs of random batches of 32: 11 shapes instead of 27; the
rows hold 1.06x the real tokens either way).

Shape legend: B = batch, T = the batch's padded length, W = the packed rows' width (>= T),
H = hidden size, R = packed rows.
"""

from collections.abc import Callable
from typing import Any

import tensorflow as tf


def sequence_lengths(mask: tf.Tensor) -> tf.Tensor:
    """[B, T] 1/0 mask -> [B]: one past each row's last real token (a mask with gaps is never
    cut short)."""
    positions = tf.range(1, tf.shape(mask)[1] + 1)[None, :]  # [1, T]
    return tf.reduce_max(tf.cast(mask > 0, tf.int32) * positions, axis=1)


def pack_plan(lengths: tf.Tensor, width: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """First-fit decreasing of sequences of `lengths` [B] (each <= `width`) into rows of
    `width`: (row [B], offset [B], rows used R). Rows used are a prefix (first fit)."""
    n = tf.shape(lengths)[0]
    order = tf.argsort(lengths, direction="DESCENDING", stable=True)  # [B]
    sizes = tf.gather(lengths, order)  # [B], longest first

    def place(
        i: tf.Tensor, fill: tf.Tensor, rows: tf.Tensor, offsets: tf.Tensor
    ) -> tuple[tf.Tensor, ...]:
        size = sizes[i]
        row = tf.argmax(tf.cast(fill + size <= width, tf.int32), output_type=tf.int32)
        at = [[i]]
        rows = tf.tensor_scatter_nd_update(rows, at, [row])
        offsets = tf.tensor_scatter_nd_update(offsets, at, [fill[row]])
        fill = tf.tensor_scatter_nd_add(fill, [[row]], [size])
        return i + 1, fill, rows, offsets

    zeros = tf.zeros([n], tf.int32)
    _, fill, rows, offsets = tf.while_loop(
        lambda i, *_: i < n, place, (tf.constant(0), zeros, zeros, zeros)
    )
    inverse = tf.math.invert_permutation(order)  # [B]
    used = tf.reduce_sum(tf.cast(fill > 0, tf.int32))
    return tf.gather(rows, inverse), tf.gather(offsets, inverse), used


def encode_packed(
    encode: Callable[[dict[str, tf.Tensor]], dict[str, Any]],
    inputs: dict[str, tf.Tensor],
    row_width: int,
) -> list[tf.Tensor]:
    """`encode(packed_inputs)` (int [R, W] `input_word_ids`, `input_type_ids`,
    `input_position_ids`, `input_sequence_ids` -> {"encoder_outputs" [[R, W, H]]}) on the
    batch of `inputs` (int [B, T] `input_word_ids`, `input_type_ids`, `input_mask`, one
    sequence per row) packed into rows of W = max(row_width, T); returns the encoder_outputs
    in the batch's layout, [[B, T, H]] (see the module doc)."""
    mask = tf.cast(inputs["input_mask"], tf.int32)
    batch, width = tf.shape(mask)[0], tf.shape(mask)[1]
    packed_width = tf.maximum(width, row_width)  # W
    lengths = sequence_lengths(mask)  # [B]
    row, offset, rows = pack_plan(lengths, packed_width)
    slots = rows * packed_width  # R * W packed positions; slot `slots` takes the padding
    j = tf.range(width)[None, :]  # [1, T]
    real = j < lengths[:, None]  # [B, T]
    dest = tf.where(real, (row * packed_width + offset)[:, None] + j, slots)  # [B, T]
    flat_dest = tf.reshape(dest, [-1, 1])  # [B*T, 1]

    def pack(values: tf.Tensor) -> tf.Tensor:  # int [B, T] -> [R, W]; padding slots 0
        out = tf.scatter_nd(flat_dest, tf.reshape(values, [-1]), [slots + 1])
        return tf.reshape(out[:slots], [rows, packed_width])  # [R*W] -> [R, W]

    sequence_ids = tf.where(real & (mask > 0), tf.range(1, batch + 1)[:, None], 0)  # [B, T]
    packed = {
        "input_word_ids": pack(tf.cast(inputs["input_word_ids"], tf.int32)),
        "input_type_ids": pack(tf.cast(inputs["input_type_ids"], tf.int32)),
        "input_position_ids": pack(tf.broadcast_to(j, [batch, width])),
        "input_sequence_ids": pack(sequence_ids),
    }
    outputs = encode(packed)

    def unpack(x: tf.Tensor) -> tf.Tensor:  # [R, W, H] -> [B, T, H]; padding positions 0
        hidden = tf.shape(x)[-1]
        flat = tf.concat([tf.reshape(x, [slots, hidden]), tf.zeros([1, hidden], x.dtype)], 0)
        return tf.gather(flat, dest)  # [B, T, H]

    return [unpack(x) for x in outputs["encoder_outputs"]]
