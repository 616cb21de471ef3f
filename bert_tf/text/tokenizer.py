"""In-graph original-BERT tokenizer (google-research/bert tokenization.py semantics).

The whole algorithm runs on TF ops (no py_function), so it works in tf.data, tf.function and
in a SavedModel loaded by a process that imports only tensorflow + tensorflow_text:

  1. decode UTF-8 to code points with their byte offsets in the input;
  2. look up each code point in a table built from `unicodedata` (char_table.py): drop
     controls, whitespace, CJK, punctuation, and (uncased) strip_Mn(NFD(lower(cp)));
  3. Greek final sigma (Python's str.lower context rule) from the table's cased bits;
  4. words = runs of normalized code points between whitespace, with every punctuation
     character and CJK ideograph a word of its own;
  5. WordPiece with tf.text's FastWordpieceTokenizer (greedy longest-match-first, "##");
     words over `max_chars_per_word` characters become [UNK];
  6. piece offsets mapped back through the normalization to byte offsets in the ORIGINAL
     strings (a piece covers the original characters its normalized characters came from).

Unlike tf.text's BertTokenizer / FastBertTokenizer there is no NFKC case folding: "™", "ﬁ",
full-width letters and "…" stay as the original BERT keeps them.
"""

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from bert_tf.tensor_types import Tensor
from bert_tf.text import char_table as ct
from bert_tf.text import ragged_ops
from bert_tf.text import vocab as vocab_lib

MAX_CHARS_PER_WORD = 100

# The graph code has no data-dependent Python control flow; skipping AutoGraph's source
# conversion makes tracing (tf.function, tf.data, SavedModel export) seconds faster.
_no_autograph = tf.autograph.experimental.do_not_convert


def _exclusive_cumsum(x: Tensor) -> Tensor:
    return tf.math.cumsum(x, exclusive=True)


class _Tables:
    """The char table as graph constants (created once per tokenizer, eagerly)."""

    def __init__(self) -> None:
        t = ct.build()
        self.index = tf.constant(t["index"], tf.int32)
        self.data = tf.constant(t["data"], tf.int32)
        self.multi_splits = tf.constant(t["multi_splits"], tf.int32)
        self.multi_values = tf.constant(t["multi_values"], tf.int32)

    def lookup(self, cps: Tensor) -> Tensor:
        block = tf.gather(self.index, tf.bitwise.right_shift(cps, ct.BLOCK_BITS))
        return tf.gather(self.data, block * ct.BLOCK + tf.bitwise.bitwise_and(cps, ct.BLOCK - 1))


def _has(flags: Tensor, bit: int) -> Tensor:
    return tf.not_equal(tf.bitwise.bitwise_and(flags, bit), 0)


def _utf8_length(cps: Tensor) -> Tensor:
    return (
        1
        + tf.cast(cps >= 0x80, tf.int32)
        + tf.cast(cps >= 0x800, tf.int32)
        + tf.cast(cps >= 0x10000, tf.int32)
    )


@keras.saving.register_keras_serializable(package="bert_tf")
class BertTokenizer(keras.layers.Layer):
    """Strings -> WordPiece ids, exactly as the original BERT tokenizer.

    Args:
      vocab: list of tokens (id = position), or None to read `vocab_file`.
      vocab_file: path of a vocab.txt (one token per line).
      lower_case: True for uncased vocabs (lower-case + accent stripping); None infers it from
        the vocab (uncased iff no token has an upper-case letter).
      max_chars_per_word: longer words become [UNK] (the original's 100).
    """

    def __init__(
        self,
        vocab: Sequence[str] | None = None,
        vocab_file: str | None = None,
        lower_case: bool | None = None,
        max_chars_per_word: int = MAX_CHARS_PER_WORD,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trainable", False)
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        if (vocab is None) == (vocab_file is None):
            raise ValueError(
                "BertTokenizer: pass exactly one of vocab (a token list) or vocab_file"
            )
        self.vocab_file = vocab_file
        if vocab is None:
            tokens = vocab_lib.load_vocab(vocab_file)
        else:
            tokens = vocab_lib.check_vocab([str(t) for t in vocab], source="vocab list")
        self._tokens = tuple(tokens)
        self._from_list = vocab is not None
        self.lower_case = (
            vocab_lib.infer_lower_case(tokens) if lower_case is None else bool(lower_case)
        )
        self.max_chars_per_word = int(max_chars_per_word)
        ids = vocab_lib.special_token_ids(tokens)
        self.pad_id, self.unk_id = ids["pad_id"], ids["unk_id"]
        self.cls_id, self.sep_id, self.mask_id = ids["cls_id"], ids["sep_id"], ids["mask_id"]
        self._tables = _Tables()
        # Words longer than max_chars_per_word never reach WordPiece (they are replaced by the
        # literal "[UNK]" token), so the byte limit only has to cover 4 bytes per character.
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=vocab_lib.unique_for_matching(tokens),
            suffix_indicator=vocab_lib.SUFFIX_INDICATOR,
            max_bytes_per_word=4 * self.max_chars_per_word + 4,
            token_out_type=tf.int32,
            unknown_token=vocab_lib.UNK,
            no_pretokenization=True,
        )
        self._vocab_tensor = tf.constant(list(tokens))
        self.built = True  # no weights

    # ---- properties ----------------------------------------------------------------------
    @property
    def vocab(self) -> list[str]:
        return list(self._tokens)

    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    def id_to_token(self, i: int) -> str:
        return self._tokens[i]

    def token_to_id(self, token: str) -> int:
        return len(self._tokens) - 1 - self._tokens[::-1].index(token)

    # ---- pre-tokenization (clean, normalize, split into words) -----------------------------
    @_no_autograph
    def _pretokenize(self, strings: Tensor) -> dict[str, Tensor]:
        """strings [B] -> dict of flat tensors describing the words.

        Shapes: N input code points (all rows), M normalized code points, W words."""
        strings = tf.convert_to_tensor(strings, tf.string)
        cps, starts, ends, row, row_start, row_end = _decode(strings)
        entry = self._tables.lookup(cps)
        flags = tf.bitwise.bitwise_and(entry, ct.FLAG_MASK)
        payload = tf.bitwise.right_shift(entry, ct.PAYLOAD_SHIFT)
        kind = tf.bitwise.bitwise_and(flags, ct.KIND_MASK)
        is_space = tf.equal(kind, ct.KIND_SPACE)
        is_cjk = tf.equal(kind, ct.KIND_CJK)
        if self.lower_case:
            src, norm, norm_punct = self._lower_cased(cps, flags, payload, kind, row_start, row_end)
        else:
            keep = tf.logical_or(tf.equal(kind, ct.KIND_NORMAL), is_cjk)
            src = tf.where(keep)[:, 0]  # [M]
            norm = tf.gather(cps, src)
            norm_punct = tf.gather(_has(flags, ct.PUNCT), src)
        words = _words(src, norm_punct, is_cjk, is_space, row_start)
        return {
            "norm": norm,
            "src": src,
            "word_id": words["word_id"],
            "word_first": words["word_first"],
            "word_chars": words["word_chars"],
            "num_words": words["num_words"],
            "starts": starts,
            "ends": ends,
            "word_row": tf.gather(row, tf.gather(src, words["word_first"])),
            "word_begin": tf.gather(starts, tf.gather(src, words["word_first"])),
            "word_end": tf.gather(ends, tf.gather(src, words["word_last"])),
            "batch_size": tf.shape(strings, out_type=tf.int64)[0],
        }

    def _lower_cased(
        self,
        cps: Tensor,
        flags: Tensor,
        payload: Tensor,
        kind: Tensor,
        row_start: Tensor,
        row_end: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Lower-casing + accent stripping: each code point maps to 0, 1 or several (a
        table's multi entry). -> src [M] (source code point of each output), norm [M],
        norm_punct [M] (the output is punctuation)."""
        n = tf.shape(cps, out_type=tf.int64)[0]
        multi = _has(flags, ct.MAP_MULTI)
        safe_payload = tf.where(multi, payload, 0)
        multi_start = tf.gather(self._tables.multi_splits, safe_payload)
        multi_len = tf.gather(self._tables.multi_splits, safe_payload + 1) - multi_start
        n_out = tf.where(_has(flags, ct.MAP_EMPTY), 0, tf.where(multi, multi_len, 1))
        final_sigma = self._final_sigma(cps, flags, kind, row_start, row_end)
        src = tf.repeat(tf.range(n), n_out)  # [M] source code point
        m = tf.shape(src, out_type=tf.int64)[0]
        pos = tf.cast(
            tf.range(m) - tf.gather(_exclusive_cumsum(tf.cast(n_out, tf.int64)), src), tf.int32
        )
        src_multi = tf.gather(multi, src)
        multi_idx = tf.where(src_multi, tf.gather(multi_start, src) + pos, 0)
        norm = tf.where(
            src_multi,
            tf.gather(self._tables.multi_values, multi_idx),
            tf.gather(cps + payload, src),
        )
        norm = tf.where(tf.gather(final_sigma, src), ct.FINAL_SIGMA, norm)  # [M]
        norm_punct = _has(tf.bitwise.bitwise_and(self._tables.lookup(norm), ct.PUNCT), ct.PUNCT)
        return src, norm, norm_punct

    @_no_autograph
    def _final_sigma(
        self, cps: Tensor, flags: Tensor, kind: Tensor, row_start: Tensor, row_end: Tensor
    ) -> Tensor:
        """[N] bool: capital sigmas that Python's str.lower() maps to final sigma.

        Context = the whitespace-delimited token (CJK characters also delimit it); dropped
        characters and case-ignorable ones are skipped; final iff the previous relevant
        character is cased and the next one is not (or there is none)."""
        boundary = tf.logical_or(tf.equal(kind, ct.KIND_SPACE), tf.equal(kind, ct.KIND_CJK))
        ignorable = tf.logical_or(_has(flags, ct.CASE_IGNORABLE), tf.equal(kind, ct.KIND_DROP))
        stop = tf.logical_or(boundary, tf.logical_not(ignorable))
        cased_stop = tf.logical_and(
            tf.logical_and(stop, tf.logical_not(boundary)), _has(flags, ct.CASED)
        )
        n = tf.shape(cps, out_type=tf.int64)[0]
        # Stop positions plus a sentinel n ("none"), which is never cased.
        stop_pos = tf.concat([tf.where(stop)[:, 0], tf.reshape(n, [1])], 0)  # [S + 1]
        cased_stop = tf.concat([cased_stop, [False]], 0)  # [N + 1]
        s = tf.shape(stop_pos, out_type=tf.int64)[0] - 1
        before = _exclusive_cumsum(tf.cast(stop, tf.int64))  # stops before i
        after = before + tf.cast(stop, tf.int64)  # index of next stop after i
        prev = tf.gather(stop_pos, tf.where(before > 0, before - 1, s))
        prev_cased = tf.logical_and(prev >= row_start, tf.gather(cased_stop, prev))
        nxt = tf.gather(stop_pos, after)
        next_cased = tf.logical_and(nxt < row_end, tf.gather(cased_stop, nxt))
        is_sigma = tf.equal(cps, ct.CAPITAL_SIGMA)
        return tf.logical_and(is_sigma, tf.logical_and(prev_cased, tf.logical_not(next_cased)))

    @_no_autograph
    def _word_strings(self, pre: dict[str, Tensor]) -> Tensor:
        splits = tf.concat(
            [pre["word_first"], tf.reshape(tf.size(pre["norm"], out_type=tf.int64), [1])], 0
        )
        words = tf.RaggedTensor.from_row_splits(pre["norm"], splits, validate=False)
        return tf.strings.unicode_encode(words, "UTF-8")  # [W]

    # ---- public API ----------------------------------------------------------------------
    @_no_autograph
    def split_words(self, strings: Tensor) -> tf.RaggedTensor:
        """strings [B] -> ragged string [B, (words)]: the normalized words (basic tokenizer
        output) that WordPiece sees."""
        pre = self._pretokenize(strings)
        return ragged_ops.from_sorted_row_ids(
            self._word_strings(pre), pre["word_row"], pre["batch_size"]
        )

    @_no_autograph
    def _tokenize(self, strings: Tensor, with_offsets: bool) -> tuple[Tensor, Tensor, Tensor]:
        pre = self._pretokenize(strings)
        words = self._word_strings(pre)
        long_word = pre["word_chars"] > self.max_chars_per_word
        words = tf.where(long_word, vocab_lib.UNK, words)  # -> exactly one [UNK] piece
        if not with_offsets:
            ids = self._wordpiece.tokenize(words)  # [W, (P)]
            return (
                ragged_ops.from_sorted_row_ids(ids, pre["word_row"], pre["batch_size"]),
                None,
                None,
            )
        ids, begin, end = self._wordpiece.tokenize_with_offsets(words)
        piece_word = ragged_ops.row_ids(ids.row_splits)  # [P]
        # Byte offset (in the normalized words) -> normalized code point -> source character.
        norm_bytes = _utf8_length(pre["norm"])  # [M]
        norm_byte_start = _exclusive_cumsum(tf.cast(norm_bytes, tf.int64))
        byte_to_char = tf.repeat(tf.range(tf.shape(norm_bytes, out_type=tf.int64)[0]), norm_bytes)
        word_byte = tf.gather(tf.gather(norm_byte_start, pre["word_first"]), piece_word)
        piece_long = tf.gather(long_word, piece_word)
        b = tf.where(piece_long, tf.zeros_like(begin.values), begin.values)  # dtype-safe in graphs
        e = tf.where(piece_long, tf.ones_like(end.values), end.values)
        first_char = tf.gather(byte_to_char, word_byte + b)
        last_char = tf.gather(byte_to_char, word_byte + e - 1)
        piece_begin = tf.gather(pre["starts"], tf.gather(pre["src"], first_char))
        piece_end = tf.gather(pre["ends"], tf.gather(pre["src"], last_char))
        piece_begin = tf.where(piece_long, tf.gather(pre["word_begin"], piece_word), piece_begin)
        piece_end = tf.where(piece_long, tf.gather(pre["word_end"], piece_word), piece_end)

        def nest(values: Tensor) -> tf.RaggedTensor:
            pieces = ids.with_values(values)
            return ragged_ops.from_sorted_row_ids(pieces, pre["word_row"], pre["batch_size"])

        return nest(ids.values), nest(piece_begin), nest(piece_end)

    def tokenize_words(self, strings: Tensor) -> tf.RaggedTensor:
        """strings [B] -> int32 ragged [B, (words), (pieces)]."""
        return self._tokenize(strings, with_offsets=False)[0]

    def tokenize(self, strings: Tensor) -> tf.RaggedTensor:
        """strings [B] -> int32 ragged [B, (pieces)]."""
        return self.tokenize_words(strings).merge_dims(1, 2)

    def tokenize_words_with_offsets(
        self, strings: Tensor
    ) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
        """-> (ids, begin, end), each ragged [B, (words), (pieces)]; offsets are int64 byte
        offsets into the original strings: strings[b][begin:end] is the piece's source text."""
        return self._tokenize(strings, with_offsets=True)

    def tokenize_with_offsets(
        self, strings: Tensor
    ) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
        """-> (ids int32, begin int64, end int64), each ragged [B, (pieces)]."""
        return tuple(t.merge_dims(1, 2) for t in self._tokenize(strings, with_offsets=True))

    @_no_autograph
    def detokenize(self, ids: Tensor) -> Tensor:
        """ids [B, (pieces)] -> strings [B]: pieces joined by spaces, "##" pieces glued to the
        previous one (the normalized text, not the original)."""
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(ids))
        if ids.ragged_rank > 1:
            ids = ids.merge_dims(1, -1)
        tokens = tf.gather(self._vocab_tensor, ids)
        text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        return tf.strings.regex_replace(text, " ##", "")

    def call(self, strings: Tensor) -> tf.RaggedTensor:
        return self.tokenize(strings)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "lower_case": self.lower_case,
                "max_chars_per_word": self.max_chars_per_word,
                "vocab": self.vocab if self._from_list else None,
                "vocab_file": None if self._from_list else self.vocab_file,
            }
        )
        return config


def _decode(strings: Tensor) -> tuple[Tensor, ...]:
    """strings [B] -> code points [N] int32, their byte starts and ends [N] int64, their row
    [N], and the first / one-past-last code point index of that row [N]."""
    cps_rt, starts_rt = tf.strings.unicode_decode_with_offsets(
        strings, "UTF-8", errors="replace", replacement_char=0xFFFD
    )
    cps = cps_rt.values  # [N] int32
    starts = starts_rt.values  # [N] int64 byte offsets
    row = ragged_ops.row_ids(cps_rt.row_splits)  # [N] int64
    splits = cps_rt.row_splits  # [B+1]
    n = tf.shape(cps, out_type=tf.int64)[0]
    idx = tf.range(n)
    row_start = tf.gather(splits, row)
    row_end = tf.gather(splits, row + 1)
    byte_len = tf.strings.length(strings, unit="BYTE")
    next_start = tf.gather(starts, tf.minimum(idx + 1, tf.maximum(n - 1, 0)))
    ends = tf.where(
        idx + 1 == row_end, tf.cast(tf.gather(byte_len, row), tf.int64), next_start
    )  # [N]
    return cps, starts, ends, row, row_start, row_end


def _words(
    src: Tensor, norm_punct: Tensor, is_cjk: Tensor, is_space: Tensor, row_start: Tensor
) -> dict[str, Tensor]:
    """Words: a new word starts at a punctuation or CJK character, right after one, after
    whitespace, and at the start of each input string. -> word_id [M], word_first /
    word_last / word_chars [W], num_words W."""
    n = tf.shape(is_space, out_type=tf.int64)[0]
    m = tf.shape(src, out_type=tf.int64)[0]
    isolate = tf.logical_or(norm_punct, tf.gather(is_cjk, src))
    space_seg = tf.math.cumsum(tf.cast(tf.logical_or(is_space, tf.range(n) == row_start), tf.int64))
    seg = tf.gather(space_seg, src)
    prev = tf.maximum(tf.range(m) - 1, 0)
    new_word = tf.logical_or(
        tf.logical_or(isolate, tf.gather(isolate, prev)),
        tf.logical_or(tf.not_equal(seg, tf.gather(seg, prev)), tf.range(m) == 0),
    )
    word_first = tf.where(new_word)[:, 0]  # [W]
    word_last = tf.concat([word_first, tf.reshape(m, [1])], 0)[1:] - 1  # [W]
    return {
        "word_id": tf.math.cumsum(tf.cast(new_word, tf.int64)) - 1,  # [M]
        "word_first": word_first,
        "word_last": word_last,
        "word_chars": word_last - word_first + 1,
        "num_words": tf.shape(word_first, out_type=tf.int64)[0],
    }
