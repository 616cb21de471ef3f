"""In-graph windows over inputs longer than the packed length (tag, classify), with the
max-context rule of bert_tf/data/windows.py, so serving answers exactly as the fine-tuning
evaluation does. All windows of a request run as ONE model batch.

Shape legend: B = examples, P = pieces of one example, N = all pieces of the batch,
R = windows of the batch, L = pieces of one window, T = packed length.
"""

import collections

import tensorflow as tf

from bert_tf.data.windows import default_stride

Windows = collections.namedtuple("Windows", "ids example index start length flat_begin")

# max-context score as an exact integer: (100 * min(left, right) + window length) << 20,
# minus the window index so that the first best window wins ties (as the original).
_TIE_BITS = 20


def single_text_stride(task, seq_length):
    """Window stride of tag / single-text classify: task.doc_stride, else half a window of
    seq_length - 2 pieces, at most a window."""
    window = int(seq_length) - 2
    return min(default_stride(window, task.get("doc_stride")), window)


def split_windows(ids, window, stride, limit=None):
    """ids ragged [B, (P)] -> Windows: ids [R, (L)], example [R], index (k-th window of its
    example) [R], start (first piece) [R], length [R], flat_begin (index into ids.flat_values)
    [R]. Starts are `stride` apart (capped at `window`); an empty text has one empty window.
    `limit`: a function of the windows per example n_w [B] returning them, made to depend on
    a check (the export's request budget: ServingContext.limit_windows)."""
    ids = tf.cast(ids, tf.int64)
    window = tf.constant(window, tf.int64)
    stride = tf.minimum(tf.constant(stride, tf.int64), window)
    n = ids.row_lengths()  # [B]
    extra = tf.maximum(n - window, 0)
    n_w = 1 + (extra + stride - 1) // stride  # [B]
    if limit is not None:
        n_w = limit(n_w)
    example = tf.repeat(tf.range(tf.size(n, out_type=tf.int64)), n_w)  # [R]
    k = tf.ragged.range(n_w).flat_values  # [R]
    start = k * stride  # [R]
    length = tf.minimum(tf.gather(n, example) - start, window)  # [R]
    flat_begin = tf.gather(ids.row_starts(), example) + start  # [R]
    w_ids = tf.gather(ids.flat_values, tf.ragged.range(flat_begin, flat_begin + length))
    return Windows(w_ids, example, k, start, length, flat_begin)


def owned_positions(windows, first_position, width, num_pieces):
    """bool [R, T]: packed position p of window r holds piece j = p - first_position[r] of
    that window, and r is the piece's max-context window. Also returns the flat piece index
    [R, T] of each position (num_pieces where the position holds no piece)."""
    pos = tf.range(width, dtype=tf.int64)[None, :]  # [1, T]
    j = pos - first_position[:, None]  # [R, T]
    length = windows.length[:, None]
    is_piece = (j >= 0) & (j < length)
    score = (100 * tf.minimum(j, length - 1 - j) + length) * (1 << _TIE_BITS) - windows.index[
        :, None
    ]  # [R, T] int64
    token = tf.where(is_piece, windows.flat_begin[:, None] + j, num_pieces)  # [R, T]
    best = tf.math.unsorted_segment_max(
        tf.reshape(score, [-1]), tf.reshape(token, [-1]), num_pieces + 1
    )  # [N + 1]
    return is_piece & (score >= tf.gather(best, token)), token


def per_piece(values, owned, token, num_pieces, default):
    """values [R, T] -> [N]: each piece's value from its max-context window."""
    masked = tf.where(owned, values, tf.cast(default, values.dtype))
    sink = tf.where(owned, token, num_pieces)
    return tf.math.unsorted_segment_max(
        tf.reshape(masked, [-1]), tf.reshape(sink, [-1]), num_pieces + 1
    )[:num_pieces]
