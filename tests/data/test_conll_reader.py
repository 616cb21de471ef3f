"""CoNLL reader (IOB1 / IOB2 fixtures), first-piece labels, long-sentence windows, output."""

import os

import pytest

from bert_tf.data import conll
from bert_tf.data.errors import DataError
from bert_tf.evaluation import tagging

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")
IOB1 = os.path.join(FIXTURES, "conll_iob1.txt")
IOB2 = os.path.join(FIXTURES, "conll_iob2.txt")


def test_reads_sentences_skipping_docstart():
    s = conll.read_sentences(IOB1)
    assert len(s) == 3
    assert s[0].words == ["John", "lives", "in", "London", "."]
    assert s[0].tags == ["I-PER", "O", "O", "I-LOC", "O"]
    assert s[0].lines == [3, 4, 5, 6, 7] and s[2].source.endswith("conll_iob1.txt:19")
    assert s[2].tags[:2] == ["I-PER", "B-PER"]


def test_iob1_and_iob2_fixtures_hold_the_same_entities():
    one, two = conll.read_sentences(IOB1), conll.read_sentences(IOB2)
    assert tagging.detect_scheme([s.tags for s in one]) == "iob1"
    assert tagging.detect_scheme([s.tags for s in two]) == "iob2"
    for a, b in zip(one, two):
        assert tagging.get_chunks(a.tags) == tagging.get_chunks(b.tags)
    assert tagging.get_chunks(one[2].tags)[:2] == [("PER", 0, 0), ("PER", 1, 1)]
    assert conll.tag_names(two) == ["O", "B-LOC", "B-PER"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("a B-PER\nb\n", r"x.txt:2: tag: expected at least 2 columns"),
        (
            "a NN B-PER\nb B-PER\n",
            r"x.txt:2: expected 3 columns \(as the sentence's first line\), "
            r"got 2",
        ),
        ("-DOCSTART- -X- O\n\n", r"x.txt: no sentences"),
    ],
)
def test_bad_input(tmp_path, text, message):
    path = tmp_path / "x.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        conll.read_sentences(str(path))


def tokenizer(tiny_vocab_file):
    from bert_tf.text.tokenizer import BertTokenizer

    return BertTokenizer(vocab_file=tiny_vocab_file, lower_case=True)


def test_labels_on_first_piece_and_long_sentences_split(tiny_vocab_file):
    tok = tokenizer(tiny_vocab_file)
    sentences = [
        conll.Sentence(["unaffable", "John", "runs"], ["O", "B-PER", "O"], [1, 2, 3], source="x:1")
    ]
    tag_ids = {"O": 0, "B-PER": 1}
    f, windows = conll.build_features(sentences, tok, 16, tag_ids)
    # un ##aff ##able | john | r ##un ##s? -> whatever the vocab gives, first piece carries it
    pieces = [tok.id_to_token(i) for i in f.row(0)]
    assert pieces[:5] == ["[CLS]", "un", "##aff", "##able", "john"]
    labels = f.ragged_row("tags", 0).tolist()
    assert labels[:5] == [-1, 0, -1, -1, 1] and labels[-1] == -1
    assert windows[0].positions[:2] == [1, 4]
    stats = conll.TagFeatureStats()
    f, windows = conll.build_features(sentences, tok, 6, tag_ids, stats=stats)
    # 6 pieces [un ##aff ##able john r? ...] in windows of 4, stride 2: each word is owned by
    # the window where its first piece has the most context
    n = len(f.row(0)) - 2 + 2 * (len(windows) - 1)
    assert stats.sentences_split == 1 and len(f) == len(windows) >= 2
    assert [w.piece_start for w in windows] == list(range(0, 2 * len(windows), 2))
    assert windows[0].words[:2] == [0, 1] and windows[0].positions[:2] == [1, 4]
    owners = {}
    for k, w in enumerate(windows):
        for word, owns in zip(w.words, w.owns):
            if owns:
                assert word not in owners
                owners[word] = k
    assert sorted(owners) == [0, 1, 2] and n >= 6
    assert owners[1] == 1  # "john": piece 3, context 1|0 in window 0, 1|2 in window 1
    tags = conll.stitch_predictions(
        sentences,
        windows,
        [
            ["B-PER"] * len(w.words) if k == 1 else ["O"] * len(w.words)
            for k, w in enumerate(windows)
        ],
    )
    assert tags[0][1] == "B-PER" and tags[0][0] == "O"
    _, first = conll.build_features(sentences, tok, 6, tag_ids, first_window_only=True)
    assert len(first) == 1


def test_unseen_tag_fails_with_line(tiny_vocab_file):
    s = conll.read_sentences(IOB1)
    with pytest.raises(DataError, match=r"conll_iob1.txt:3: tag: tag 'I-PER' does not occur"):
        conll.build_features(s, tokenizer(tiny_vocab_file), 16, {"O": 0, "I-LOC": 1})


def test_write_predictions_roundtrip(tmp_path):
    s = conll.read_sentences(IOB2)
    out = tmp_path / "pred.txt"
    conll.write_predictions(str(out), s, [x.tags for x in s])
    lines = out.read_text().splitlines()
    assert lines[0] == "John NNP B-NP B-PER B-PER"
    back = conll.read_sentences(str(out))
    assert [x.tags for x in back] == [x.tags for x in s]
