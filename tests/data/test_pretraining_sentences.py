"""Sentence splitting and document streaming for pre-training input."""

from bert_tf.data.pretraining import sentences


def test_split_sentences_rules():
    text = (
        'Mr. Smith went to Washington. He met Dr. J. R. Jones there! "Was it fun?" she '
        "asked. It was, e.g. the food. 3 more days passed.  Then (at last) rain."
    )
    assert sentences.split_sentences(text) == [
        "Mr. Smith went to Washington.",
        "He met Dr. J. R. Jones there!",
        '"Was it fun?" she asked.',
        "It was, e.g. the food.",
        "3 more days passed.",
        "Then (at last) rain.",
    ]
    assert sentences.split_sentences("no terminal punctuation here") == [
        "no terminal punctuation here"
    ]
    assert sentences.split_sentences("  \n ") == []
    assert sentences.split_sentences("He said \u201cGo.\u201d Then left.") == [
        "He said \u201cGo.\u201d",
        "Then left.",
    ]


def test_detect_format():
    one_per_line = ["The cat sat.", "It was warm.", "", "New document here.", "Yes!"]
    wrapped = [
        "In the beginning God created the heaven and the earth. And the earth was",
        "without form, and void; and darkness was upon the face of the deep.",
        "And the Spirit of God moved upon the face of the waters. And God said,",
    ]
    assert sentences.detect_format(one_per_line) == "sentences"
    assert sentences.detect_format(wrapped) == "prose"
    assert sentences.detect_format(["One. Two. Three.", "Four. Five."]) == "prose"


def test_iter_documents_both_formats(tmp_path):
    sent = tmp_path / "s.txt"
    sent.write_text("First sentence.\nSecond one. Still line two.\n\n\nDoc two.\n")
    assert list(sentences.iter_documents(str(sent), "sentences")) == [
        ["First sentence.", "Second one. Still line two."],
        ["Doc two."],
    ]
    prose = tmp_path / "p.txt"
    prose.write_text(
        "Genesis 1\n\n  1 In the beginning God made it. And it was\ngood. Yes.\n"
        "\nA new block. Another sentence here.\n"
    )
    stats = {}
    docs = list(sentences.iter_documents(str(prose), "auto", stats=stats))
    assert stats == {"format": "prose", "lines": 6}
    assert docs == [
        ["Genesis 1", "1 In the beginning God made it.", "And it was good.", "Yes."],
        ["A new block.", "Another sentence here."],
    ]


def test_huge_documents_are_cut(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("".join(f"Sentence number {i}.\n" for i in range(25)))
    docs = list(sentences.iter_documents(str(path), "sentences", max_document_sentences=10))
    assert [len(d) for d in docs] == [10, 10, 5]
    assert docs[2][-1] == "Sentence number 24."
    # Prose without any blank line is also cut, in order, without losing text.
    path.write_text(" ".join(f"Sentence number {i}." for i in range(25)) * 1 + "\n")
    docs = list(sentences.iter_documents(str(path), "prose", max_document_sentences=10))
    assert [len(d) for d in docs] == [10, 10, 5]
    assert sum(docs, []) == [f"Sentence number {i}." for i in range(25)]
