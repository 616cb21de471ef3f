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

import os

import tensorflow as tf
import tensorflow_text as tf_text

CLS, SEP, PAD, UNK = "[CLS]", "[SEP]", "[PAD]", "[UNK]"


def read_vocab(path):
    with open(path, encoding="utf-8") as f:
        tokens = [line.rstrip("\n").rstrip("\r") for line in f]
    while tokens and not tokens[-1]:
        tokens.pop()
    for special in (CLS, SEP, UNK):
        if special not in tokens:
            raise ValueError(f"{path}: vocab has no {special} token")
    return tokens


def clean_utf8(text):
    """string [B] -> string [B] with every invalid UTF-8 sequence replaced by U+FFFD."""
    return tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace",
                                        replacement_char=0xFFFD)


class _StandInTokenizer(tf.Module):
    """tf.text BertTokenizer (NFKC-folding normalizer) used until bert_tf.text lands."""

    def __init__(self, vocab, lower_case):
        super().__init__()
        init = tf.lookup.KeyValueTensorInitializer(
            tf.constant(vocab), tf.range(len(vocab), dtype=tf.int64))
        self.table = tf.lookup.StaticVocabularyTable(init, num_oov_buckets=1)
        self.tokenizer = tf_text.BertTokenizer(self.table, lower_case=lower_case,
                                               token_out_type=tf.int64,
                                               unknown_token=UNK)

    def tokenize_with_offsets(self, text):
        ids, starts, ends = self.tokenizer.tokenize_with_offsets(text)  # [B, (W), (P)]
        return ids.merge_dims(1, 2), starts.merge_dims(1, 2), ends.merge_dims(1, 2)


# BERT_TF_EXPORT_TOKENIZER=tf_text forces the stand-in (tf.text BertTokenizer, NFKC folding).
USE_PROJECT_TOKENIZER = os.environ.get("BERT_TF_EXPORT_TOKENIZER", "project") != "tf_text"


def make_tokenizer(vocab_file, lower_case):
    """The project's in-graph BERT tokenizer if available, else the tf.text stand-in.

    Returns an object with `tokenize_with_offsets(string [B]) -> (ids, starts, ends)`, each a
    RaggedTensor [B, (P)]: int ids and BYTE offsets into the input strings."""
    try:
        if not USE_PROJECT_TOKENIZER:
            raise ImportError("stand-in requested")
        from bert_tf.text.tokenizer import BertTokenizer  # noqa: WPS433 (optional dependency)
    except ImportError:
        return _StandInTokenizer(read_vocab(vocab_file), lower_case)
    return _ProjectTokenizer(BertTokenizer, vocab_file, lower_case)


class _ProjectTokenizer(tf.Module):
    """Adapts bert_tf.text.tokenizer.BertTokenizer to (ids, starts, ends) ragged [B, (P)]."""

    def __init__(self, cls, vocab_file, lower_case):
        super().__init__()
        self.tokenizer = cls(vocab_file=vocab_file, lower_case=lower_case)

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


def pack(segments, seq_length, cls_id, sep_id, pad_to_longest=True, trimmer="round_robin"):
    """Packs 1 or 2 ragged id segments [B, (P)] as [CLS] a [SEP] (b [SEP]).

    Truncation: "round_robin" = original BERT's longest-first for pairs; "waterfall" keeps the
    first segment whole and truncates the later one (question answering). Returns the encoder
    inputs (int32 [B, T]) and the trimmed segments."""
    budget = seq_length - len(segments) - 1
    if trimmer == "waterfall":
        trimmed = tf_text.WaterfallTrimmer(budget).trim(segments)
    else:
        trimmed = tf_text.RoundRobinTrimmer(budget).trim(segments)
    ids, type_ids = tf_text.combine_segments(trimmed, start_of_sequence_id=cls_id,
                                             end_of_segment_id=sep_id)        # [B, (T)]
    mask = tf.ones_like(ids)
    if pad_to_longest:
        width = tf.maximum(tf.cast(ids.bounding_shape(axis=1), tf.int32), 2)
    else:
        width = tf.constant(seq_length, tf.int32)
    batch = tf.cast(ids.nrows(), tf.int32)

    def dense(x):
        return tf.cast(x.to_tensor(default_value=0, shape=tf.stack([batch, width])), tf.int32)

    inputs = {"input_word_ids": dense(ids), "input_mask": dense(mask),
              "input_type_ids": dense(type_ids)}
    return inputs, trimmed
