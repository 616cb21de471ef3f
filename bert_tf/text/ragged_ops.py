"""Small ragged helpers that stay linear in the number of values.

`RaggedTensor.value_rowids()` is built on tf.repeat, which materializes [rows, longest row]:
a batch with one long text pays for every row at that length. These use a segment sum and a
cumsum instead (also plain ops for TF Serving / TFLite)."""

import tensorflow as tf


def row_ids(row_splits):
    """row_splits int64 [R+1] -> the row of each value, int64 [row_splits[-1]]."""
    row_splits = tf.cast(row_splits, tf.int64)
    n = row_splits[-1]
    inner = row_splits[1:-1]  # where rows 1..R-1 start (empty rows repeat)
    marks = tf.math.unsorted_segment_sum(tf.ones_like(inner), inner, n + 1)[:n]
    return tf.math.cumsum(marks)


def from_sorted_row_ids(values, rowids, nrows):
    """Ragged [nrows, (...)] from values and their sorted row ids (no validation ops)."""
    counts = tf.math.unsorted_segment_sum(tf.ones_like(rowids), rowids, nrows)
    splits = tf.concat([tf.zeros([1], tf.int64), tf.math.cumsum(counts)], 0)
    return tf.RaggedTensor.from_row_splits(values, splits, validate=False)
