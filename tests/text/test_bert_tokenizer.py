"""BertTokenizer (in-graph) against the pure-Python reference of the original algorithm."""

import os

import keras
import pytest
import tensorflow as tf

from bert_tf.text import vocab as vocab_lib
from bert_tf.text.tokenizer import BertTokenizer
from tests.text import hard_strings as hs
from tests.text import reference_tokenization as ref

ALL_STRINGS = hs.HARD_STRINGS + hs.chaos_strings(300, seed=1)


@pytest.fixture(scope="module", params=[True, False], ids=["uncased", "cased"])
def pair(request):
    lower_case = request.param
    vocab = hs.vocab_for(ALL_STRINGS, lower_case)
    return (
        BertTokenizer(vocab=vocab, lower_case=lower_case),
        ref.ReferenceTokenizer(vocab, lower_case),
    )


def test_matches_reference_on_hard_strings(pair):
    tok, reference = pair
    got = tok.tokenize(tf.constant(ALL_STRINGS)).to_list()
    mismatches = [
        (s, [reference.vocab[i] for i in g], reference.tokenize(s))
        for s, g in zip(ALL_STRINGS, got)
        if g != reference.ids(s)
    ]
    assert not mismatches, mismatches[:3]
    # The test vocab leaves room for [UNK] and for multi-piece words: both must occur.
    flat = [i for row in got for i in row]
    assert tok.unk_id in flat
    assert any(reference.vocab[i].startswith("##") for i in flat)


def test_words_match_reference(pair):
    tok, reference = pair
    words = tok.tokenize_words(tf.constant(ALL_STRINGS)).to_list()
    for s, row in zip(ALL_STRINGS, words):
        assert [[reference.vocab[i] for i in w] for w in row] == reference.tokenize_words(s), s
    split = tok.split_words(tf.constant(ALL_STRINGS)).to_list()
    for s, row in zip(ALL_STRINGS, split):
        assert [w.decode() for w in row] == ref.basic_tokenize(s, tok.lower_case), s


def test_no_nfkc_folding():
    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "™",
        "ﬁ",
        "…",
        "tm",
        "fi",
        "...",
        ".",
        "abc",
        "ａｂｃ",
        "ＡＢＣ",
    ]
    uncased = BertTokenizer(vocab=vocab, lower_case=True)
    got = uncased.tokenize(tf.constant(["™ ﬁ … ＡＢＣ"])).to_list()[0]
    assert [vocab[i] for i in got] == ["™", "ﬁ", "…", "ａｂｃ"]  # lower-cased, not folded
    cased = BertTokenizer(vocab=vocab, lower_case=False)
    got = cased.tokenize(tf.constant(["™ ﬁ … ＡＢＣ"])).to_list()[0]
    assert [vocab[i] for i in got] == ["™", "ﬁ", "…", "ＡＢＣ"]


def test_long_words_are_unk_by_characters():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "é", "##é", "x", "##x"]
    tok = BertTokenizer(vocab=vocab, lower_case=False)
    got = tok.tokenize(tf.constant(["é" * 100, "é" * 101, "x" * 100 + "é", "x" * 3])).to_list()
    assert got == [[5] + [6] * 99, [1], [1], [7, 8, 8]]


def test_offsets_slice_original_bytes(pair):
    tok, reference = pair
    # Left out: final sigma (needs the word's context) and characters that normalize to
    # several (Hangul -> jamo), where two pieces can come from one original character.
    strings = [
        s
        for s in ALL_STRINGS
        if "Σ" not in s and not any(len(ref.strip_accents(c.lower())) > 1 for c in s)
    ]
    ids, begin, end = tok.tokenize_words_with_offsets(tf.constant(strings))
    ids, begin, end = ids.to_list(), begin.to_list(), end.to_list()
    checked = 0
    for s, wi, wb, we in zip(strings, ids, begin, end):
        raw = s.encode("utf-8")
        for word_ids, word_b, word_e in zip(wi, wb, we):
            assert word_b == sorted(word_b) and all(b < e for b, e in zip(word_b, word_e))
            for i, b, e in zip(word_ids, word_b, word_e):
                surface = ref.clean_text(raw[b:e].decode("utf-8"))
                if tok.lower_case:
                    surface = ref.strip_accents(surface.lower())
                piece = reference.vocab[i]
                if i == tok.unk_id:
                    assert surface == "".join(ref.basic_tokenize(surface, tok.lower_case))
                else:
                    expected = piece[2:] if piece.startswith("##") else piece
                    assert surface == expected, (s, b, e)
                checked += 1
            # Between consecutive pieces of a word only characters that normalize away.
            for e, b in zip(word_e, word_b[1:]):
                gap = ref.clean_text(raw[e:b].decode("utf-8"))
                assert (ref.strip_accents(gap.lower()) if tok.lower_case else gap) == "", s
    assert checked > 500


def test_offsets_hand_computed():
    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "caf",
        "##e",
        "res",
        "##ume",
        "!",
        "中",
        "i",
    ]
    tok = BertTokenizer(vocab=vocab, lower_case=True)
    text = " Café\u200b RÉSUMÉ! 中İ"
    ids, begin, end = tok.tokenize_with_offsets(tf.constant([text]))
    assert ids.to_list() == [[5, 6, 7, 8, 9, 10, 11]]
    raw = text.encode()
    pieces = [raw[b:e].decode() for b, e in zip(begin.to_list()[0], end.to_list()[0])]
    assert pieces == ["Caf", "é", "RÉS", "UMÉ", "!", "中", "İ"]  # dropped \u200b: no piece
    assert begin.dtype == tf.int64 and ids.dtype == tf.int32


def test_batch_shapes_and_empty_rows():
    tok = BertTokenizer(vocab=hs.vocab_for([], True, extra=("hello", "world")), lower_case=True)
    out = tok.tokenize(tf.constant(["", "hello", " \x00 ", "hello world"]))
    assert out.shape.rank == 2 and out.row_lengths().numpy().tolist() == [0, 1, 0, 2]
    words = tok.tokenize_words(tf.constant(["", "hello world"]))
    assert words.to_list()[0] == [] and len(words.to_list()[1]) == 2
    empty = tok.tokenize(tf.constant([], tf.string))
    assert empty.nrows().numpy() == 0


def test_in_tf_function_and_dataset(pair):
    tok, reference = pair
    fn = tf.function(tok.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    strings = hs.HARD_STRINGS[:12]
    assert fn(tf.constant(strings)).to_list() == [reference.ids(s) for s in strings]
    with_offsets = tf.function(
        tok.tokenize_with_offsets, input_signature=[tf.TensorSpec([None], tf.string)]
    )
    for got, expected in zip(
        with_offsets(tf.constant(strings)), tok.tokenize_with_offsets(tf.constant(strings))
    ):
        assert got.to_list() == expected.to_list()
    ds = tf.data.Dataset.from_tensor_slices(strings).batch(5).map(tok.tokenize)
    got = [row for batch in ds for row in batch.to_list()]
    assert got == [reference.ids(s) for s in strings]


def test_properties_and_detokenize(tiny_vocab_file):
    tok = BertTokenizer(vocab_file=tiny_vocab_file)
    assert tok.lower_case is True  # inferred: the tiny vocab is uncased
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 1, 2, 3, 4)
    assert tok.vocab_size == len(tok.vocab) and tok.vocab[:2] == ["[PAD]", "[UNK]"]
    ids = tok.tokenize(tf.constant(["The unaffable fox!"]))
    assert [tok.vocab[i] for i in ids.to_list()[0]] == ["the", "un", "##aff", "##able", "fox", "!"]
    assert tok.detokenize(ids).numpy().tolist() == [b"the unaffable fox !"]


def test_get_config_round_trip(tiny_vocab_file):
    for kwargs in (
        {"vocab_file": tiny_vocab_file, "lower_case": True},
        {"vocab": vocab_lib.load_vocab(tiny_vocab_file), "lower_case": False},
    ):
        tok = BertTokenizer(**kwargs)
        clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(tok))
        assert isinstance(clone, BertTokenizer)
        assert clone.get_config() == tok.get_config()
        s = tf.constant(["Hello World, the LAZY dog"])
        assert clone.tokenize(s).to_list() == tok.tokenize(s).to_list()


def test_bad_construction(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        BertTokenizer()
    with pytest.raises(vocab_lib.VocabError, match="no such|not found"):
        BertTokenizer(vocab_file=str(tmp_path / "missing.txt"))


@pytest.mark.real_weights
def test_real_vocab_parity(minilm_dir):
    vocab = vocab_lib.load_vocab(os.path.join(minilm_dir, "vocab.txt"))
    tok = BertTokenizer(vocab=vocab, lower_case=True)
    reference = ref.ReferenceTokenizer(vocab, True)
    got = tok.tokenize(tf.constant(ALL_STRINGS)).to_list()
    assert got == [reference.ids(s) for s in ALL_STRINGS]
    cased = BertTokenizer(vocab=vocab, lower_case=False)
    reference = ref.ReferenceTokenizer(vocab, False)
    assert cased.tokenize(tf.constant(ALL_STRINGS)).to_list() == [
        reference.ids(s) for s in ALL_STRINGS
    ]


@pytest.mark.real_weights
@pytest.mark.real_data
def test_real_text_parity(minilm_dir):
    """Real messy text (SMS: emoji, mixed scripts, odd punctuation) + KJV-style prose."""
    import csv

    from demo_data import assets

    with open(assets.sms_spam_csv(), encoding="utf-8", errors="replace") as f:
        texts = [row[-1] for row in list(csv.reader(f))[1:]]
    vocab = vocab_lib.load_vocab(os.path.join(minilm_dir, "vocab.txt"))
    for lower_case in (True, False):
        tok = BertTokenizer(vocab=vocab, lower_case=lower_case)
        reference = ref.ReferenceTokenizer(vocab, lower_case)
        got = tok.tokenize(tf.constant(texts)).to_list()
        bad = [t for t, g in zip(texts, got) if g != reference.ids(t)]
        assert not bad, (len(bad), bad[:3])
