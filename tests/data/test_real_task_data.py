"""demo_data/task_data.py: real corpora from the registries as bert-tf task files."""

import collections

from bert_tf.data import classification, conll
from demo_data import task_data

FIRST_BROWN_LINE = (
    "The/at Fulton/np-tl County/nn-tl Grand/jj-tl Jury/nn-tl said/vbd "
    "Friday/nr an/at investigation/nn of/in Atlanta's/np$ recent/jj "
    "Durwood/np Pye/np City/nn-tl of/in-tl Atlanta/np-tl ./."
)


def test_brown_tags_become_iob2_name_chunks():
    words, tags = task_data.brown_sentence_tags(FIRST_BROWN_LINE)
    assert words[:5] == ["The", "Fulton", "County", "Grand", "Jury"]
    assert tags == [
        "O",
        "B-TITLE",
        "I-TITLE",
        "I-TITLE",
        "I-TITLE",
        "O",
        "O",
        "O",
        "O",
        "O",
        "B-NAME",
        "O",
        "B-NAME",
        "I-NAME",
        "B-TITLE",
        "I-TITLE",
        "I-TITLE",
        "O",
    ]


def test_brown_names_files_read_as_a_tag_task(tmp_path):
    train, held = task_data.brown_names_conll(str(tmp_path), train=300, held_out=100)
    train_s = conll.read_sentences(train)
    held_s = conll.read_sentences(held)
    assert (len(train_s), len(held_s)) == (300, 100)
    assert train_s[0].words[:2] == ["The", "Fulton"] and train_s[0].tags[1] == "B-TITLE"
    counts = collections.Counter(t for s in train_s for t in s.tags)
    assert set(counts) == {"O", "B-NAME", "I-NAME", "B-TITLE", "I-TITLE"}
    assert 0.05 < 1 - counts["O"] / sum(counts.values()) < 0.25  # rare positives
    # split by document: no eval sentence is a training sentence
    assert not {tuple(s.words) for s in held_s} & {tuple(s.words) for s in train_s}


def test_sms_spam_split(tmp_path):
    train, held = task_data.sms_spam_tsv(str(tmp_path), train=200, held_out=100)
    train_e = classification.read_examples(train)
    held_e = classification.read_examples(held)
    assert (len(train_e), len(held_e)) == (200, 100)
    assert {e.label for e in train_e} == {"ham", "spam"}
    again, _ = task_data.sms_spam_tsv(str(tmp_path / "again"), train=200, held_out=100)
    assert open(again, encoding="utf-8").read() == open(train, encoding="utf-8").read()
