"""The original BERT tokenizer for ONE string, built only from ops a TFLite interpreter runs
(and `TFLiteTokenizer`, what a task's TFLite graph tokenizes with).

LiteRT's builtins plus tf.text's TFLite kernels (`SELECT_TFTEXT_OPS`) have no Unicode decoder or
encoder and no string concatenation. This graph works around that (same algorithm and char
table as bert_tf.text.tokenizer, which the SavedModels use):

  1. bytes: tf.text ByteSplitter (TFText>ByteSplitWithOffsets) -> uint8 [N];
  2. UTF-8 decoding with integer ops on the bytes (lead/continuation patterns, shifted copies
     of the byte array): code points [C], each invalid sequence -> U+FFFD (maximal subparts,
     like Python's `decode("utf-8", "replace")`), with byte offsets;
  3. the per-code-point facts (drop / space / CJK / punctuation / uncased mapping) from the
     two-level char table (gathers; bit fields read with floor_div / floor_mod, since TFLite
     has no BITWISE_AND);
  4. words exactly as bert_tf.text.tokenizer forms them (cumsum / where / gather);
  5. UTF-8 encoding of the normalized code points back to bytes with integer ops, each byte
     turned into a one-byte string by a gather from a 256-entry string table, and the bytes of
     each word joined by tf.text's n-gram string join (TFText>NgramsStringJoin) over
     fixed-width [G, 8] groups, three levels deep (words up to 512 bytes; words over
     `max_chars_per_word` characters are [UNK] anyway);
  6. tf.text FastWordpieceTokenizer on the words; piece offsets mapped back to the original
     bytes and characters.

Shapes: N bytes, C characters (code points), M normalized code points, K normalized bytes,
W words, P pieces, G groups.
"""

import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.python.ops.byte_splitter import gen_byte_splitter
from tensorflow_text.python.ops.ngrams_op import gen_ngrams_op

from bert_tf.text import char_table as ct
from bert_tf.text import vocab as vocab_lib

MAX_CHARS_PER_WORD = 100
JOIN_WIDTH = 8  # strings joined per n-gram group
JOIN_LEVELS = 3  # JOIN_WIDTH ** JOIN_LEVELS = 512 bytes per word at most

_no_autograph = tf.autograph.experimental.do_not_convert


def _bit(flags, bit):
    """flags int32 >= 0, bit a power of two -> bool (TFLite has no BITWISE_AND)."""
    return tf.equal(tf.math.floormod(tf.math.floordiv(flags, bit), 2), 1)


def _row_ids(counts):
    """counts int32 [R] >= 0 -> int32 [sum(counts)]: the row of each value (tf.repeat of
    range(R), built from a segment sum and a cumsum only)."""
    total = tf.reduce_sum(counts)
    starts = tf.math.cumsum(counts, exclusive=True)  # [R]
    marks = tf.math.unsorted_segment_sum(tf.ones_like(starts), starts, total + 1)[:total]
    return tf.math.cumsum(marks) - 1


def _shift(x, k, fill):
    """x [N] -> [N] with x[i + k] (fill past the end)."""
    return tf.concat([x[k:], tf.fill([k], fill)], 0)[: tf.shape(x)[0]]


def decode_utf8(b):
    """bytes int32 [N] -> (code points int32 [C], first byte of each int32 [C]). Invalid
    sequences decode to U+FFFD, one per maximal subpart."""
    b1, b2, b3 = _shift(b, 1, 0), _shift(b, 2, 0), _shift(b, 3, 0)
    is_cont = (b >= 0x80) & (b < 0xC0)
    n = tf.where(
        b < 0x80,
        1,
        tf.where(
            (b >= 0xC2) & (b < 0xE0),
            2,
            tf.where((b >= 0xE0) & (b < 0xF0), 3, tf.where((b >= 0xF0) & (b < 0xF5), 4, 0)),
        ),
    )  # 0: never a lead
    lo = tf.where(tf.equal(b, 0xE0), 0xA0, tf.where(tf.equal(b, 0xF0), 0x90, 0x80))
    hi = tf.where(tf.equal(b, 0xED), 0x9F, tf.where(tf.equal(b, 0xF4), 0x8F, 0xBF))
    ok1 = (n >= 2) & (b1 >= lo) & (b1 <= hi)
    ok2 = ok1 & (n >= 3) & (b2 >= 0x80) & (b2 < 0xC0)
    ok3 = ok2 & (n >= 4) & (b3 >= 0x80) & (b3 < 0xC0)
    took = tf.cast(ok1, tf.int32) + tf.cast(ok2, tf.int32) + tf.cast(ok3, tf.int32)  # [N]
    valid = tf.equal(took + 1, n)
    # A continuation byte starts a character unless the nearest earlier non-continuation
    # byte (at most 3 back) took it.
    consumed = tf.zeros_like(is_cont)
    run = tf.ones_like(is_cont)  # bytes i-1 .. i-d+1 are all continuations
    for d in (1, 2, 3):
        prev_took = tf.concat([tf.fill([d], -1), took], 0)[: tf.shape(b)[0]]
        prev_cont = tf.concat([tf.fill([d], False), is_cont], 0)[: tf.shape(b)[0]]
        consumed = consumed | (run & tf.logical_not(prev_cont) & (prev_took >= d))
        run = run & prev_cont
    starts_char = tf.logical_not(is_cont & consumed)
    cont = lambda x: tf.math.floormod(x, 64)  # noqa: E731
    cp = tf.where(
        tf.equal(n, 1),
        b,
        tf.where(
            tf.equal(n, 2),
            tf.math.floormod(b, 32) * 64 + cont(b1),
            tf.where(
                tf.equal(n, 3),
                tf.math.floormod(b, 16) * 4096 + cont(b1) * 64 + cont(b2),
                tf.math.floormod(b, 8) * 262144 + cont(b1) * 4096 + cont(b2) * 64 + cont(b3),
            ),
        ),
    )
    cp = tf.where(valid, cp, 0xFFFD)
    first = tf.cast(tf.where(starts_char)[:, 0], tf.int32)  # [C]
    return tf.gather(cp, first), first


def encode_utf8(cps):
    """code points int32 [M] -> (bytes int32 [K], char of each byte int32 [K],
    bytes per code point int32 [M])."""
    n = (
        1
        + tf.cast(cps >= 0x80, tf.int32)
        + tf.cast(cps >= 0x800, tf.int32)
        + tf.cast(cps >= 0x10000, tf.int32)
    )
    src = _row_ids(n)  # [K]
    t = tf.range(tf.size(src)) - tf.gather(tf.math.cumsum(n, exclusive=True), src)
    n_b = tf.gather(n, src)
    shift = tf.gather(tf.constant([1, 64, 4096, 262144], tf.int32), n_b - 1 - t)
    v = tf.math.floordiv(tf.gather(cps, src), shift)
    lead = tf.gather(tf.constant([0, 0, 0xC0, 0xE0, 0xF0], tf.int32), n_b)
    byte = tf.where(tf.equal(t, 0), lead + v, 0x80 + tf.math.floormod(v, 64))
    return byte, src, n


def join_groups(strings, starts, lengths, levels=JOIN_LEVELS, width=JOIN_WIDTH):
    """strings [S] whose LAST entry is "" (the padding), groups of consecutive strings
    (starts, lengths int32 [G], lengths <= width ** levels) -> the concatenation of each
    group, string [G]. Only gathers and n-gram joins (TFLite has no string concat)."""
    if levels > 1:
        parts = (lengths + width - 1) // width  # [G] subgroups
        sub_group = _row_ids(parts)  # [H]
        first_part = tf.math.cumsum(parts, exclusive=True)  # [G]
        k = tf.range(tf.size(sub_group)) - tf.gather(first_part, sub_group)
        # one extra, empty subgroup at the end: the next level's padding string
        sub_start = tf.concat([tf.gather(starts, sub_group) + k * width, [0]], 0)
        sub_len = tf.concat([tf.minimum(width, tf.gather(lengths, sub_group) - k * width), [0]], 0)
        joined = join_groups(strings, sub_start, sub_len, 1, width)  # [H + 1]
        return join_groups(joined, first_part, parts, levels - 1, width)
    slot = tf.range(width)[None, :]  # [1, width]
    index = tf.where(slot < lengths[:, None], starts[:, None] + slot, tf.size(strings) - 1)
    grid = tf.gather(strings, tf.reshape(index, [-1]))  # [G * width]
    # Rows of exactly `width` strings -> one n-gram per row. (The dense-input path of the
    # n-gram kernel corrupts memory for more than a few rows in TF 2.21; the ragged one not.)
    splits = tf.range(tf.size(lengths, out_type=tf.int64) + 1) * width
    # The raw op: tf_text.ngrams() also traces a (pruned) sliding window with asserts, which
    # takes seconds per call to trace.
    joined, _ = gen_ngrams_op.tf_text_ngrams_string_join(
        input_values=grid, input_row_splits=[splits], width=width, axis=-1, string_separator=""
    )  # [G]
    return joined


class TFLiteBertTokenizer(tf.Module):
    """Original-BERT WordPiece for one string, in ops LiteRT runs with tf.text's registrar."""

    def __init__(self, vocab, lower_case, max_chars_per_word=MAX_CHARS_PER_WORD):
        super().__init__()
        tokens = vocab_lib.check_vocab([str(t) for t in vocab], source="vocab list")
        self.lower_case = bool(lower_case)
        self.max_chars_per_word = int(max_chars_per_word)
        table = ct.build()
        self._index = tf.constant(table["index"], tf.int32)
        self._data = tf.constant(table["data"], tf.int32)
        self._multi_splits = tf.constant(table["multi_splits"], tf.int32)
        self._multi_values = tf.constant(table["multi_values"], tf.int32)
        self._byte_strings = tf.constant([bytes([i]) for i in range(256)] + [b""])
        self._unk_bytes = tf.constant(list(vocab_lib.UNK.encode("ascii")), tf.int32)
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=vocab_lib.unique_for_matching(tokens),
            suffix_indicator=vocab_lib.SUFFIX_INDICATOR,
            max_bytes_per_word=4 * self.max_chars_per_word + 4,
            token_out_type=tf.int32,
            unknown_token=vocab_lib.UNK,
            no_pretokenization=True,
        )

    def _lookup(self, cps):
        block = tf.gather(self._index, tf.math.floordiv(cps, ct.BLOCK))
        return tf.gather(self._data, block * ct.BLOCK + tf.math.floormod(cps, ct.BLOCK))

    @_no_autograph
    def _normalize(self, cps):
        """code points [C] -> (normalized code points [M], source char [M], their isolate flag
        [M], is_space [C])."""
        entry = self._lookup(cps)
        flags = tf.math.floormod(entry, ct.FLAG_MASK + 1)
        payload = tf.math.floordiv(entry, ct.FLAG_MASK + 1)
        kind = tf.math.floormod(flags, ct.KIND_MASK + 1)
        is_space = tf.equal(kind, ct.KIND_SPACE)
        is_cjk = tf.equal(kind, ct.KIND_CJK)
        if self.lower_case:
            multi = _bit(flags, ct.MAP_MULTI)
            safe = tf.where(multi, payload, 0)
            multi_start = tf.gather(self._multi_splits, safe)
            multi_len = tf.gather(self._multi_splits, safe + 1) - multi_start
            n_out = tf.where(_bit(flags, ct.MAP_EMPTY), 0, tf.where(multi, multi_len, 1))
            sigma = self._final_sigma(cps, flags, kind)
            src = _row_ids(n_out)  # [M]
            pos = tf.range(tf.size(src)) - tf.gather(tf.math.cumsum(n_out, exclusive=True), src)
            src_multi = tf.gather(multi, src)
            norm = tf.where(
                src_multi,
                tf.gather(
                    self._multi_values, tf.where(src_multi, tf.gather(multi_start, src) + pos, 0)
                ),
                tf.gather(cps + payload, src),
            )
            norm = tf.where(tf.gather(sigma, src), ct.FINAL_SIGMA, norm)
            punct = _bit(tf.math.floormod(self._lookup(norm), ct.FLAG_MASK + 1), ct.PUNCT)
        else:
            keep = tf.equal(kind, ct.KIND_NORMAL) | is_cjk
            src = tf.cast(tf.where(keep)[:, 0], tf.int32)
            norm = tf.gather(cps, src)
            punct = tf.gather(_bit(flags, ct.PUNCT), src)
        return norm, src, punct | tf.gather(is_cjk, src), is_space

    @_no_autograph
    def _final_sigma(self, cps, flags, kind):
        """[C] bool: capital sigmas Python's str.lower() maps to final sigma (see
        bert_tf.text.tokenizer._final_sigma; here for one row)."""
        boundary = tf.equal(kind, ct.KIND_SPACE) | tf.equal(kind, ct.KIND_CJK)
        ignorable = _bit(flags, ct.CASE_IGNORABLE) | tf.equal(kind, ct.KIND_DROP)
        stop = boundary | tf.logical_not(ignorable)
        cased_stop = stop & tf.logical_not(boundary) & _bit(flags, ct.CASED)
        n = tf.size(cps)
        stop_pos = tf.concat([tf.cast(tf.where(stop)[:, 0], tf.int32), [n]], 0)  # [S + 1]
        cased_stop = tf.concat([cased_stop, [False]], 0)  # [C + 1]
        s = tf.size(stop_pos) - 1
        before = tf.math.cumsum(tf.cast(stop, tf.int32), exclusive=True)
        after = before + tf.cast(stop, tf.int32)
        prev_cased = tf.gather(cased_stop, tf.gather(stop_pos, tf.where(before > 0, before - 1, s)))
        next_cased = tf.gather(cased_stop, tf.gather(stop_pos, after))
        return tf.equal(cps, ct.CAPITAL_SIGMA) & prev_cased & tf.logical_not(next_cased)

    @_no_autograph
    def tokenize_with_offsets(self, text):
        """text string [1] -> dict of int32 [P]: `ids`, byte offsets `byte_start`/`byte_end`
        and character offsets `char_start`/`char_end` (end exclusive) into the text, plus
        `num_chars` (scalar). A batch of more than one string is refused at run time (a
        RESHAPE to [1] fails)."""
        text = tf.reshape(text, [1])
        raw = gen_byte_splitter.tf_text_byte_split_with_offsets(input_values=text)
        b = tf.cast(raw[0], tf.int32)  # [N]
        cps, first_byte = decode_utf8(b)  # [C]
        num_bytes, num_chars = tf.size(b), tf.size(cps)
        end_byte = tf.concat([first_byte[1:], [num_bytes]], 0)  # [C]
        norm, src, isolate, is_space = self._normalize(cps)  # [M]
        m = tf.size(norm)
        # words: start at an isolated char, right after one, after whitespace, at 0
        space_seg = tf.math.cumsum(tf.cast(is_space, tf.int32))  # [C]
        seg = tf.gather(space_seg, src)
        prev = tf.maximum(tf.range(m) - 1, 0)
        new_word = (
            isolate
            | tf.gather(isolate, prev)
            | tf.not_equal(seg, tf.gather(seg, prev))
            | tf.equal(tf.range(m), 0)
        )
        word_first = tf.cast(tf.where(new_word)[:, 0], tf.int32)  # [W]
        word_last = tf.concat([word_first, [m]], 0)[1:] - 1
        word_chars = word_last - word_first + 1
        nbytes, byte_char, char_bytes = encode_utf8(norm)  # [K]
        char_byte_start = tf.math.cumsum(char_bytes, exclusive=True)  # [M]
        word_byte = tf.gather(char_byte_start, word_first)  # [W]
        word_len = tf.gather(char_byte_start + char_bytes, word_last) - word_byte
        # byte strings: the normalized bytes, then "[UNK]" (a last group), then "" (padding)
        k = tf.size(nbytes)
        byte_ids = tf.concat([nbytes, self._unk_bytes, [256]], 0)
        w = tf.size(word_first)
        long_word = word_chars > self.max_chars_per_word
        limit = JOIN_WIDTH**JOIN_LEVELS
        words = join_groups(
            tf.gather(self._byte_strings, byte_ids),
            tf.concat([word_byte, [k]], 0),
            tf.concat([tf.minimum(word_len, limit), [len(vocab_lib.UNK)]], 0),
        )
        words = tf.gather(words, tf.where(long_word, w, tf.range(w)))  # [W]
        ids, begin, end = self._wordpiece.tokenize_with_offsets(words)  # [W, (P)]
        piece_word = tf.cast(ids.value_rowids(), tf.int32)  # [P]
        begin, end = tf.cast(begin.values, tf.int32), tf.cast(end.values, tf.int32)
        piece_long = tf.gather(long_word, piece_word)
        begin = tf.where(piece_long, 0, begin)
        end = tf.where(piece_long, 1, end)
        wb = tf.gather(word_byte, piece_word)
        first_src = tf.gather(src, tf.gather(byte_char, wb + begin))  # [P] source char
        last_src = tf.gather(src, tf.gather(byte_char, wb + end - 1))
        first_src = tf.where(
            piece_long, tf.gather(src, tf.gather(word_first, piece_word)), first_src
        )
        last_src = tf.where(piece_long, tf.gather(src, tf.gather(word_last, piece_word)), last_src)
        return {
            "ids": ids.values,
            "byte_start": tf.gather(first_byte, first_src),
            "byte_end": tf.gather(end_byte, last_src),
            "char_start": first_src,
            "char_end": last_src + 1,
            "num_chars": num_chars,
            "num_bytes": num_bytes,
        }


def fast_bert_tokenize(vocab, lower_case):
    """The former TFLite tokenizer (tf.text FastBertTokenizer, NFKC case folding for uncased
    vocabs), kept as an option: text string [1] -> ids int32 [P]. It has no character
    offsets, so it serves classifiers only."""
    tokenizer = tf_text.FastBertTokenizer(
        vocab=list(vocab),
        token_out_type=tf.int32,
        lower_case_nfd_strip_accents=bool(lower_case),
        unknown_token=vocab_lib.UNK,
    )

    def tokenize(text):
        return tokenizer.tokenize(tf.reshape(text, [1])).flat_values  # [P]

    return tokenize


def substrings(text, starts, ends):
    """text string [1], byte offsets int32 [E] -> string [E] (tf.text's TFLite
    ByteSplitByOffsets kernel; the raw op traces much faster than ByteSplitter's wrapper)."""
    values, _ = gen_byte_splitter.tf_text_byte_split_by_offsets(
        input_values=text,
        input_start_offsets=starts,
        input_end_offsets=ends,
        input_row_splits=tf.stack([tf.constant(0, tf.int64), tf.size(starts, out_type=tf.int64)]),
    )
    return values


class TFLiteTokenizer:
    """The tokenizer a TFLite task graph gets (TFLiteContext.tokenizer): `exact` (the original
    BERT algorithm, TFLiteBertTokenizer: ids and offsets) or `fast` (tf.text's
    FastBertTokenizer: ids only)."""

    KINDS = ("exact", "fast")

    def __init__(self, vocab, lower_case, kind="exact"):
        self.kind = kind
        self.cls_id, self.sep_id = vocab.index("[CLS]"), vocab.index("[SEP]")
        self.is_continuation = tf.constant([t.startswith("##") for t in vocab])
        if kind == "exact":
            self.exact = TFLiteBertTokenizer(vocab, lower_case)
        else:
            self.fast = fast_bert_tokenize(vocab, lower_case)

    def ids(self, text):
        """text string [1] -> ids int32 [P]."""
        if self.kind == "exact":
            return self.exact.tokenize_with_offsets(text)["ids"]
        return self.fast(text)

    def with_offsets(self, text, task_type):
        """text string [1] -> TFLiteBertTokenizer.tokenize_with_offsets (ids and offsets)."""
        if self.kind != "exact":
            raise ValueError(
                f"{task_type}: the TFLite graph needs character offsets, which "
                f"only the exact tokenizer gives (use --tokenizer=exact)"
            )
        return self.exact.tokenize_with_offsets(text)


__all__ = [
    "TFLiteBertTokenizer",
    "TFLiteTokenizer",
    "decode_utf8",
    "encode_utf8",
    "fast_bert_tokenize",
    "join_groups",
    "substrings",
]
