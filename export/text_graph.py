"""In-graph text handling for the serving SavedModels: clean, tokenize, pack, map offsets.

Everything here builds plain TF core / tf.text ops, so an exported graph loads in a process that
imports only `tensorflow` and `tensorflow_text`.

Shape legend: B = batch, P = word pieces of one segment, T = packed sequence length,
C = characters of one input string.

Conventions of the exported signatures:
  * Inputs are first passed through `clean_utf8`: invalid UTF-8 bytes become U+FFFD, so every
    input has a defined answer; character offsets refer to this cleaned text (identical to the
    input for valid UTF-8, and to Python's `bytes.decode("utf-8", "replace")` for the common
    single-bad-byte case).
  * Offsets are CHARACTER (Unicode code point) offsets, end exclusive, like Python slicing.
  * Batches are padded to their own longest packed sequence (capped at seq_length), never less
    than 2 ([CLS] [SEP]); with `pad_to_longest=False` always to seq_length.
"""

import tensorflow as tf

from bert_tf.text.packer import pack_inputs, trim_lengths
from bert_tf.text.tokenizer import BertTokenizer

CLS, SEP, PAD, UNK = "[CLS]", "[SEP]", "[PAD]", "[UNK]"


def clean_utf8(text):
    """string [B] -> string [B] with every invalid UTF-8 sequence replaced by U+FFFD."""
    return tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace",
                                        replacement_char=0xFFFD)


def make_tokenizer(vocab_file, lower_case):
    """The project's in-graph BERT tokenizer (the original algorithm, bert_tf.text.tokenizer)
    as an object with `tokenize_with_offsets(string [B]) -> (ids, starts, ends)`, each a
    RaggedTensor [B, (P)]: int64 ids and BYTE offsets into the input strings."""
    return _ProjectTokenizer(vocab_file, lower_case)


class _ProjectTokenizer(tf.Module):
    """Adapts bert_tf.text.tokenizer.BertTokenizer to (ids, starts, ends) ragged [B, (P)]."""

    def __init__(self, vocab_file, lower_case):
        super().__init__()
        self.tokenizer = BertTokenizer(vocab_file=vocab_file, lower_case=lower_case)

    def tokenize_with_offsets(self, text):
        ids, starts, ends = self.tokenizer.tokenize_with_offsets(text)
        ids, starts, ends = (_flatten_pieces(x) for x in (ids, starts, ends))
        return tf.cast(ids, tf.int64), tf.cast(starts, tf.int64), tf.cast(ends, tf.int64)


def _flatten_pieces(x):
    if isinstance(x, tf.RaggedTensor) and x.ragged_rank > 1:
        return x.merge_dims(1, -1)
    return x


def byte_to_char_offsets(text, byte_offsets):
    """Maps BYTE offsets [B, (P)] into valid UTF-8 `text` [B] to CHARACTER offsets [B, (P)].

    Works for start offsets and for exclusive end offsets: the character index is the number of
    characters that start before the byte offset."""
    _, char_starts = tf.strings.unicode_decode_with_offsets(text, "UTF-8")   # [B, (C)]
    big = tf.constant(2 ** 62, tf.int64)
    sorted_starts = char_starts.to_tensor(default_value=big)                  # [B, C]
    values = byte_offsets.to_tensor(default_value=0)                          # [B, P]
    chars = tf.searchsorted(sorted_starts, values, side="left", out_type=tf.int64)
    return tf.RaggedTensor.from_tensor(chars, lengths=byte_offsets.row_lengths())


def _keep_first(segment, keep):
    """ragged [B, (P)] -> the first keep[b] pieces of each row (core ops only)."""
    pos = tf.ragged.range(segment.row_lengths())                              # [B, (P)]
    return tf.ragged.boolean_mask(segment, pos < keep[:, None])


def pack(segments, seq_length, cls_id, sep_id, pad_to_longest=True, trimmer="longest_first"):
    """Packs 1 or 2 ragged id segments [B, (P)] as [CLS] a [SEP] (b [SEP]).

    Truncation: "longest_first" = the original BERT's (bert_tf.text.packer); "waterfall"
    keeps the first segment whole and truncates the later one (question answering). Only TF
    core ops (no tf.text trimmer ops, which older TF Serving builds lack). Returns the encoder
    inputs (int32 [B, T]) and the trimmed segments."""
    segments = [tf.cast(s, tf.int32) for s in segments]
    budget = seq_length - len(segments) - 1
    lengths = tf.stack([s.row_lengths() for s in segments], axis=1)          # [B, S]
    if trimmer == "waterfall":
        keep, left = [], tf.constant(budget, tf.int64)
        for i in range(len(segments)):
            k = tf.minimum(lengths[:, i], left)
            keep.append(k)
            left = left - k
        keep = tf.stack(keep, axis=1)
    else:
        keep = trim_lengths(lengths, budget)                                  # [B, S]
    trimmed = [_keep_first(s, keep[:, i]) for i, s in enumerate(segments)]
    inputs = pack_inputs(trimmed, seq_length, cls_id, sep_id, 0, pad_to_longest)
    width = tf.shape(inputs["input_word_ids"])[1]
    extra = tf.maximum(2 - width, 0)                  # an empty batch still has T >= 2
    inputs = {k: tf.pad(v, [[0, 0], [0, extra]]) for k, v in inputs.items()}
    return inputs, trimmed


def pack_to_length(segments, seq_length, cls_id, sep_id, pad_id=0):
    """Packs 1 or 2 ragged id segments ([B, (P)] or [B, (W), (P)]) as [CLS] a [SEP] (b [SEP])
    padded to `seq_length`, which may be a scalar int32 TENSOR (the Hub preprocessor's
    bert_pack_inputs takes any length). Longest-first truncation, as bert_tf.text.packer.
    Returns dict of int32 [B, seq_length]."""
    segments = [tf.cast(s.merge_dims(1, -1) if s.ragged_rank > 1 else s, tf.int32)
                for s in segments]
    seq_length = tf.cast(seq_length, tf.int32)
    n = len(segments)
    check = tf.debugging.assert_greater_equal(
        seq_length, n + 1, message=f"bert_pack_inputs: seq_length too short for {n} "
                                   f"segment(s) (needs at least {n + 1})")
    with tf.control_dependencies([check]):
        lengths = tf.stack([s.row_lengths() for s in segments], axis=1)      # [B, S]
    keep = trim_lengths(lengths, seq_length - n - 1)                          # [B, S]
    batch = segments[0].nrows()

    def column(value):                                                        # [B, (1)]
        return tf.RaggedTensor.from_tensor(tf.fill(tf.stack([batch, 1]), value))

    ids, types = [column(cls_id)], [column(0)]
    for i, segment in enumerate(segments):
        kept = _keep_first(segment, keep[:, i])
        ids += [kept, column(sep_id)]
        types += [tf.ones_like(kept) * i, column(i)]
    ids, types = tf.concat(ids, axis=1), tf.concat(types, axis=1)            # [B, (T)]
    shape = tf.stack([tf.cast(batch, tf.int32), seq_length])
    return {"input_word_ids": ids.to_tensor(default_value=pad_id, shape=shape),
            "input_mask": tf.ones_like(ids).to_tensor(default_value=0, shape=shape),
            "input_type_ids": types.to_tensor(default_value=0, shape=shape)}
