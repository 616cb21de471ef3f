"""Windows over one long input in a TFLite graph (batch 1): the pieces of a text are read in
windows `stride` apart, each packed with a fixed prefix ([CLS], or [CLS] question [SEP]) and
padded to the longest window (at most seq_length), all windows as ONE model batch; each piece
is owned by the window where it has the most context. The same rules as the SavedModel
(export/serving_windows.py, bert_tf/data/windows.py), in ops LiteRT runs: no ragged tensors.

Shapes: N pieces, Q prefix pieces, R windows, T = the longest window (<= seq_length).
"""

import collections

import tensorflow as tf

Windows = collections.namedtuple("Windows", "start length first index")

# max-context score as an exact integer: (100 * min(left, right) + window length) * 4096,
# minus the window index so that the first best window wins ties (as the original)
_TIE = 4096


def pack_windows(prefix, pieces, window, stride, seq_length, sep_id, second_type=0):
    """prefix int32 [Q], pieces int32 [N] -> (inputs: input_word_ids / input_mask /
    input_type_ids int32 [R, T], Windows of [R] tensors). Row r is prefix + pieces[start_r :
    start_r + length_r] + [SEP], then padding; the window part has type `second_type`. Starts
    are min(window, stride) apart until a window reaches the end (the original rule); no
    pieces -> one empty window."""
    nq, nc = tf.size(prefix), tf.size(pieces)
    stride = tf.minimum(window, stride)
    n_w = 1 + (tf.maximum(nc - window, 0) + stride - 1) // stride
    k = tf.range(n_w)  # [R]
    w_start = k * stride
    w_len = tf.maximum(tf.minimum(nc - w_start, window), 0)  # [R]
    # T = the longest window's row (prefix + pieces + [SEP]), at most seq_length: a short
    # text pays only for its own length. Padding does not change the masked model's outputs.
    width = tf.minimum(nq + tf.reduce_max(w_len) + 1, seq_length)
    pos = tf.range(width)[None, :]  # [1, T]
    # source vector: prefix, pieces, [PAD]; each cell picks an index into it
    src = tf.concat([prefix, pieces, [0]], 0)
    in_window = (pos >= nq) & (pos < nq + w_len[:, None])  # [R, T]
    index = tf.where(
        pos < nq,
        tf.broadcast_to(pos, tf.shape(in_window)),
        tf.where(in_window, pos + w_start[:, None], nq + nc),
    )
    ids = tf.where(tf.equal(pos, nq + w_len[:, None]), sep_id, tf.gather(src, index))
    mask = tf.cast(pos <= nq + w_len[:, None], tf.int32)
    types = tf.cast(pos >= nq, tf.int32) * mask * second_type
    return (
        {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types},
        Windows(w_start, w_len, nq, k),
    )


def owned_positions(win, width, num_pieces):
    """-> (is_piece bool [R, T]: position p of window r holds a piece; token int32 [R, T]: its
    index in the text's pieces (0 elsewhere); is_max bool [R, T]: r is that piece's
    max-context window)."""
    pos = tf.range(width)[None, :]
    j = pos - win.first  # [R, T]
    length = win.length[:, None]
    is_piece = (j >= 0) & (j < length)
    score = (tf.minimum(j, length - 1 - j) * 100 + length) * _TIE - win.index[:, None]
    token = tf.where(is_piece, j + win.start[:, None], 0)
    sink = tf.where(is_piece, token, num_pieces)
    best = tf.math.unsorted_segment_max(
        tf.reshape(score, [-1]), tf.reshape(sink, [-1]), num_pieces + 1
    )  # [N + 1]
    return is_piece, token, is_piece & (score >= tf.gather(best, sink))


def per_piece(values, is_max, token, num_pieces, default):
    """values [R, T] -> [N]: each piece's value from its max-context window."""
    masked = tf.where(is_max, values, tf.cast(default, values.dtype))
    sink = tf.where(is_max, token, num_pieces)
    return tf.math.unsorted_segment_max(
        tf.reshape(masked, [-1]), tf.reshape(sink, [-1]), num_pieces + 1
    )[:num_pieces]
