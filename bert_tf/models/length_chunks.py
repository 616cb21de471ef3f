"""The encoder's training forward pass over length-sorted chunks of a padded batch.

Fine-tuning batches are uniformly random (the reference recipe's statistics), so each is padded
to its longest example while most rows are far shorter: on real sentences over half of the
compute goes to padding. In training, `encode_in_chunks` sorts the rows by length, splits them
into `chunks` groups of consecutive rows, runs each group padded only to its own longest row
(rounded up to a multiple of 8, so the fused kernels see few shapes) and puts the outputs back
in the batch's row order and width. A row's outputs at its real tokens do not depend on the
padding after it (attention to padding is masked), so they are the unchunked pass's (padding
positions beyond a chunk's width are 0 instead of unused values); the loss and its gradients,
taken over the whole batch by the caller, are the reference's. Only work on padding is saved.

Shape legend: B = batch, T = the batch's padded length, H = hidden size, K = chunks,
Tk = a chunk's padded length.
"""

from collections.abc import Callable
from typing import Any

import tensorflow as tf

PAD_TO_MULTIPLE_OF = 8


def _width(lengths: tf.Tensor, rows: tf.Tensor, limit: tf.Tensor) -> tf.Tensor:
    """The padded length of a chunk: its longest row rounded up to a multiple of 8, at most
    `limit` (and at least 1, also for an empty chunk)."""
    longest = tf.maximum(tf.reduce_max(tf.gather(lengths, rows)), 1)  # empty: int min -> 1
    rounded = (longest + PAD_TO_MULTIPLE_OF - 1) // PAD_TO_MULTIPLE_OF * PAD_TO_MULTIPLE_OF
    return tf.minimum(rounded, limit)


def _merge(parts: list[tf.Tensor], inverse: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """K chunk tensors [Bk, Tk, ...] -> [B, T, ...] in the batch's row order, zero-padded."""
    padded = []
    for x in parts:
        pad = [[0, 0], [0, width - tf.shape(x)[1]]] + [[0, 0]] * (len(x.shape) - 2)
        padded.append(tf.pad(x, pad))  # [Bk, T, ...]
    return tf.gather(tf.concat(padded, 0), inverse)  # [B, T, ...]


def encode_in_chunks(
    encode: Callable[[dict[str, tf.Tensor]], dict[str, Any]],
    inputs: dict[str, tf.Tensor],
    chunks: int,
) -> dict[str, Any]:
    """`encode(chunk_inputs)` (the dict `inputs` holds: int [b, t] `input_word_ids`,
    `input_type_ids`, `input_mask`, one sequence per row -> {"sequence_output" [b, t, H],
    "pooled_output" [b, H], "encoder_outputs" [[b, t, H]]}) run on `chunks` length-sorted
    groups of rows; the same outputs for the whole [B, T] batch (see the module doc). The
    chunks are unrolled in the graph (a tf.while_loop over them was measured no faster to
    trace or run)."""
    mask = inputs["input_mask"]
    batch, width = tf.shape(mask)[0], tf.shape(mask)[1]
    positions = tf.range(1, width + 1)[None, :]  # [1, T]
    # [B]: one past each row's last real token (a mask with gaps is never cut short)
    lengths = tf.reduce_max(tf.cast(mask > 0, tf.int32) * positions, axis=1)
    order = tf.argsort(lengths, stable=True)  # [B], shortest first
    parts = []
    for k in range(chunks):
        rows = order[(k * batch) // chunks : ((k + 1) * batch) // chunks]  # [Bk]
        w = _width(lengths, rows, width)
        parts.append(encode({name: tf.gather(x, rows)[:, :w] for name, x in inputs.items()}))
    inverse = tf.math.invert_permutation(order)  # [B]
    layers = len(parts[0]["encoder_outputs"])
    return {
        "sequence_output": _merge([p["sequence_output"] for p in parts], inverse, width),
        "pooled_output": tf.gather(tf.concat([p["pooled_output"] for p in parts], 0), inverse),
        "encoder_outputs": [
            _merge([p["encoder_outputs"][i] for p in parts], inverse, width) for i in range(layers)
        ],
    }
