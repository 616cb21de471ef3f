"""Packing WordPiece segments into BERT inputs: [CLS] a [SEP] (b [SEP] ...), padded.

The ONE packer of the project: `pack_inputs` packs a ragged batch for training
(bert_tf.data readers), `load_preprocessor`, the TF Hub preprocessor (any seq_length tensor) and
the serving SavedModels (pad to the batch's longest, waterfall truncation for QA); `pack_row`
packs one example with dense ops for the batch-1 TFLite graphs (LiteRT runs no ragged ops).
Both truncate with the same function (`TRIMMERS`), so every format keeps the same pieces.

Truncation is the original BERT's `_truncate_seq_pair` (pop one token from the end of the
longer segment until the pair fits; on a tie pop from the second), generalized to any number
of segments: pop from the longest, ties popping from the later segment. Its result in closed
form: every segment is cut to a common cap c (the largest with sum(min(len, c)) <= budget), and
the tokens left in the budget go, one each, to the earliest segments that were cut.
"""

import keras
import tensorflow as tf

from bert_tf.text import ragged_ops


@tf.autograph.experimental.do_not_convert
def waterfall_lengths(lengths, max_total):
    """lengths int [B, S] -> the kept lengths [B, S]: the first segments stay whole, the later
    ones get what is left (question answering keeps the question, cuts the context)."""
    lengths = tf.cast(lengths, tf.int64)
    before = tf.math.cumsum(lengths, axis=-1, exclusive=True)  # [B, S]
    return tf.minimum(lengths, tf.maximum(tf.cast(max_total, tf.int64) - before, 0))


@tf.autograph.experimental.do_not_convert
def trim_lengths(lengths, max_total):
    """lengths int [B, S] -> the kept lengths [B, S] (longest-first truncation to max_total)."""
    lengths = tf.cast(lengths, tf.int64)
    max_total = tf.cast(max_total, tf.int64)
    caps = tf.range(max_total + 1)  # [C]
    totals = tf.reduce_sum(tf.minimum(lengths[:, None, :], caps[None, :, None]), -1)  # [B, C]
    cap = tf.reduce_sum(tf.cast(totals <= max_total, tf.int64), -1) - 1  # [B]
    kept = tf.minimum(lengths, cap[:, None])  # [B, S]
    spare = max_total - tf.reduce_sum(kept, -1)  # [B]
    cut = lengths > cap[:, None]
    rank = tf.math.cumsum(tf.cast(cut, tf.int64), axis=-1, exclusive=True)
    return kept + tf.cast(tf.logical_and(cut, rank < spare[:, None]), tf.int64)


def _as_pieces(segment):
    """ragged [B, (pieces)] or [B, (words), (pieces)] -> int32 ragged [B, (pieces)]."""
    if not isinstance(segment, tf.RaggedTensor):
        segment = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(segment))
    if segment.ragged_rank > 1:
        segment = segment.merge_dims(1, -1)
    return tf.cast(segment, tf.int32)


@tf.autograph.experimental.do_not_convert
def _keep_first(segment, keep):
    """ragged [B, (L)] -> its first keep[b] items of each row."""
    rows = ragged_ops.row_ids(segment.row_splits)
    pos = tf.range(tf.shape(segment.values, out_type=tf.int64)[0]) - tf.gather(
        segment.row_splits, rows
    )
    mask = pos < tf.gather(keep, rows)
    kept = tf.minimum(segment.row_lengths(), keep)
    splits = tf.concat([tf.zeros([1], tf.int64), tf.math.cumsum(kept)], 0)
    return tf.RaggedTensor.from_row_splits(
        tf.boolean_mask(segment.values, mask), splits, validate=False
    )


TRIMMERS = {"longest_first": trim_lengths, "waterfall": waterfall_lengths}


def _check_length(seq_length, num):
    """seq_length: a Python int (ValueError now) or an int scalar tensor (an assert in the
    graph: the TF Hub preprocessor's bert_pack_inputs takes any length) -> int32 value."""
    if not isinstance(seq_length, (tf.Tensor, tf.Variable)):
        if seq_length < num + 1:
            raise ValueError(
                f"pack_inputs: seq_length {seq_length} is too short for {num} "
                f"segment(s) (needs at least {num + 1} for [CLS] and the [SEP]s)"
            )
        return int(seq_length)
    seq_length = tf.cast(seq_length, tf.int32)
    check = tf.debugging.assert_greater_equal(
        seq_length,
        num + 1,
        message=f"bert_pack_inputs: seq_length too short for {num} "
        f"segment(s) (needs at least {num + 1})",
    )
    with tf.control_dependencies([check]):
        return tf.identity(seq_length)


@tf.autograph.experimental.do_not_convert
def pack_inputs(
    segments,
    seq_length,
    cls_id,
    sep_id,
    pad_id=0,
    pad_to_longest=False,
    pad_to_multiple_of=1,
    trimmer="longest_first",
):
    """Packs 1..S segments into the encoder inputs.

    Args:
      segments: list of int ragged [B, (pieces)] (or [B, (words), (pieces)]).
      seq_length: total length T including [CLS] and one [SEP] per segment (an int, or an
        int scalar tensor checked in the graph).
      pad_to_longest: pad only to the batch's longest packed row (<= seq_length; at least
        [CLS] + the [SEP]s, also for an empty batch).
      pad_to_multiple_of: with pad_to_longest, round that length up to a multiple of this
        (capped at seq_length), so that batches come in few shapes.
      trimmer: "longest_first" (the original BERT's) or "waterfall" (TRIMMERS).

    Returns dict of int32 [B, T] (T = seq_length, or the batch longest): input_word_ids
    (padded with pad_id), input_mask (1 = real token), input_type_ids (segment index).
    """
    if isinstance(segments, (tf.Tensor, tf.RaggedTensor)):
        segments = [segments]
    segments = [_as_pieces(s) for s in segments]
    num = len(segments)
    if num < 1:
        raise ValueError("pack_inputs: need at least one segment")
    seq_length = _check_length(seq_length, num)
    lengths = tf.stack([s.row_lengths() for s in segments], axis=1)  # [B, S]
    keep = TRIMMERS[trimmer](lengths, seq_length - num - 1)
    batch = segments[0].nrows()

    def column(value):
        return tf.RaggedTensor.from_tensor(tf.fill(tf.stack([batch, 1]), value))

    ids, types = [column(tf.constant(cls_id, tf.int32))], [column(tf.constant(0, tf.int32))]
    for i, segment in enumerate(segments):
        kept = _keep_first(segment, keep[:, i])
        ids += [kept, column(tf.constant(sep_id, tf.int32))]
        types += [tf.ones_like(kept) * i, column(tf.constant(i, tf.int32))]
    ids = tf.concat(ids, axis=1)  # [B, (T)]
    types = tf.concat(types, axis=1)
    mask = tf.ones_like(ids)
    width = seq_length
    if pad_to_longest:
        m = int(pad_to_multiple_of)
        longest = tf.maximum(tf.cast(tf.reduce_max(ids.row_lengths()), tf.int32), num + 1)
        width = tf.minimum((longest + m - 1) // m * m, seq_length)
    shape = (
        tf.stack([tf.cast(batch, tf.int32), width])
        if isinstance(width, tf.Tensor)
        else [None, width]
    )
    return {
        "input_word_ids": ids.to_tensor(default_value=pad_id, shape=shape),
        "input_mask": mask.to_tensor(default_value=0, shape=shape),
        "input_type_ids": types.to_tensor(default_value=0, shape=shape),
    }


@tf.autograph.experimental.do_not_convert
def pack_row(segments, seq_length, cls_id, sep_id, trimmer="longest_first"):
    """One example, dense ops only (the batch-1 TFLite graphs: LiteRT runs no ragged ops):
    segments int32 [P_i] -> (ids, types) int32 [T], [CLS] a [SEP] (b [SEP]) unpadded, truncated
    by the same TRIMMERS as pack_inputs to `seq_length` (an int, or an int32 tensor)."""
    num = len(segments)
    lengths = tf.stack([tf.size(s) for s in segments])[None, :]  # [1, S]
    keep = tf.cast(TRIMMERS[trimmer](lengths, seq_length - num - 1)[0], tf.int32)  # [S]
    ids, types = [tf.constant([cls_id], tf.int32)], [tf.zeros([1], tf.int32)]
    for i, segment in enumerate(segments):
        ids += [tf.cast(segment, tf.int32)[: keep[i]], tf.constant([sep_id], tf.int32)]
        types.append(tf.fill(tf.reshape(keep[i] + 1, [1]), tf.constant(i, tf.int32)))
    return tf.concat(ids, 0), tf.concat(types, 0)


@keras.saving.register_keras_serializable(package="bert_tf")
class BertPacker(keras.layers.Layer):
    """Keras layer around `pack_inputs`: a segment or list of segments -> dict of int32
    [B, T] input_word_ids / input_mask / input_type_ids."""

    def __init__(
        self,
        seq_length=128,
        cls_id=101,
        sep_id=102,
        pad_id=0,
        pad_to_longest=False,
        pad_to_multiple_of=1,
        **kwargs,
    ):
        kwargs.setdefault("trainable", False)
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        self.seq_length = int(seq_length)
        self.cls_id, self.sep_id, self.pad_id = int(cls_id), int(sep_id), int(pad_id)
        self.pad_to_longest = bool(pad_to_longest)
        self.pad_to_multiple_of = int(pad_to_multiple_of)
        self.built = True  # no weights

    def call(self, segments):
        return pack_inputs(
            list(segments) if isinstance(segments, (list, tuple)) else segments,
            self.seq_length,
            self.cls_id,
            self.sep_id,
            self.pad_id,
            self.pad_to_longest,
            self.pad_to_multiple_of,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "seq_length": self.seq_length,
                "cls_id": self.cls_id,
                "sep_id": self.sep_id,
                "pad_id": self.pad_id,
                "pad_to_longest": self.pad_to_longest,
                "pad_to_multiple_of": self.pad_to_multiple_of,
            }
        )
        return config
