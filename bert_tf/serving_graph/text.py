"""In-graph text handling for the serving SavedModels: clean, tokenize, map offsets (packing:
bert_tf.text.packer.pack_inputs, the one packer).

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

from bert_tf.text.tokenizer import BertTokenizer

CLS, SEP, PAD, UNK = "[CLS]", "[SEP]", "[PAD]", "[UNK]"


def clean_utf8(text):
    """string [B] -> string [B] with every invalid UTF-8 sequence replaced by U+FFFD."""
    return tf.strings.unicode_transcode(
        text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
    )


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
    _, char_starts = tf.strings.unicode_decode_with_offsets(text, "UTF-8")  # [B, (C)]
    big = tf.constant(2**62, tf.int64)
    sorted_starts = char_starts.to_tensor(default_value=big)  # [B, C]
    values = byte_offsets.to_tensor(default_value=0)  # [B, P]
    chars = tf.searchsorted(sorted_starts, values, side="left", out_type=tf.int64)
    return tf.RaggedTensor.from_tensor(chars, lengths=byte_offsets.row_lengths())
