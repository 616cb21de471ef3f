"""Classification readers (TSV/CSV/JSONL/TFDS), labels, features and their errors."""

import os

import numpy as np
import pytest

from bert_tf.data import classification as c
from bert_tf.data import labels as label_map
from bert_tf.data.batching import batch_order, make_dataset
from bert_tf.data.errors import DataError

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_tsv_fixture_and_label_map():
    examples = c.read_examples(os.path.join(FIXTURES, "classify_train.tsv"))
    assert [e.text_a for e in examples[:2]] == ["good movie", "great movie"]
    assert examples[0].source.endswith("classify_train.tsv:2")
    labels = label_map.LabelMap.from_examples(examples)
    assert labels.names == ["neg", "pos"]
    assert labels.encode(examples)[0] == [1, 1, 0, 0, 1, 0]


def test_numeric_labels_sort_numerically():
    assert label_map.LabelMap(sorted(["10", "2", "1"], key=label_map._sort_key)).names == [
        "1",
        "2",
        "10",
    ]


def test_csv_with_quoted_multiline_field_and_pairs(tmp_path):
    path = write(tmp_path, "d.csv", 'id,s1,s2,y\n1,"a, b\nc",x,1\n\n2,d,"e ""q""",0\n')
    stats = c.ReadStats()
    ex = c.read_examples(path, "s1", "s2", "y", stats=stats)
    assert [(e.text_a, e.text_b, e.label) for e in ex] == [
        ("a, b\nc", "x", "1"),
        ("d", 'e "q"', "0"),
    ]
    assert ex[1].source.endswith("d.csv:5") and stats.blank_lines == 1


def test_jsonl(tmp_path):
    path = write(
        tmp_path, "d.jsonl", '{"sentence": "hi", "label": 1}\n\n{"sentence": "yo", "label": 0}\n'
    )
    assert [(e.text_a, e.label) for e in c.read_examples(path)] == [("hi", "1"), ("yo", "0")]


@pytest.mark.parametrize(
    "name, text, message",
    [
        (
            "a.tsv",
            "text\tlabel\nhi\t1\n",
            r"a.tsv:1: no column 'sentence' \(--text_a_column\) in the header; "
            r"found: 'text', 'label'",
        ),
        ("b.tsv", "sentence\tlabel\nhi\t1\nthere\n", r"b.tsv:3: expected 2 fields .*got 1"),
        ("c.tsv", "sentence\tlabel\nhi\t1\n\t0\n", r"c.tsv:3: sentence: empty or missing value"),
        (
            "d.jsonl",
            '{"sentence": "a", "label": 1}\n{"sentence": "b"\n',
            r"d.jsonl:2: invalid JSON",
        ),
        ("e.jsonl", '{"sentence": "a"}\n', r"e.jsonl:1: no key 'label'"),
        ("f.xml", "x", r"f.xml: unknown format"),
    ],
)
def test_bad_input_names_file_line_field(tmp_path, name, text, message):
    with pytest.raises(DataError, match=message):
        c.read_examples(write(tmp_path, name, text))


def test_unseen_eval_label_fails_or_counts():
    labels = label_map.LabelMap(["neg", "pos"])
    ex = [c.Example("x", label="neutral", source="eval.tsv:7")]
    with pytest.raises(DataError, match=r"eval.tsv:7: label: label 'neutral' does not occur"):
        labels.encode(ex)
    assert labels.encode(ex, allow_unseen=True) == ([-1], 1)


def test_regression_labels():
    assert label_map.encode_regression([c.Example("a", label="3.5")]) == [3.5]
    with pytest.raises(DataError, match="x.tsv:2: label: expected a number"):
        label_map.encode_regression([c.Example("a", label="high", source="x.tsv:2")])


def test_features_are_packed_once_and_batches_pad_to_their_longest(tiny_vocab_file):
    from bert_tf.text.tokenizer import BertTokenizer

    tok = BertTokenizer(vocab_file=tiny_vocab_file, lower_case=True)
    ex = [
        c.Example("good movie", "bad"),
        c.Example("the quick brown fox jumps over", "dog"),
        c.Example("great", "a"),
    ]
    f = c.build_features(ex, tok, max_seq_length=6, labels=[1, 0, 1])
    # [CLS] good movie [SEP] bad [SEP]; the long pair truncated longest-first to 6
    assert [tok.id_to_token(i) for i in f.row(0)] == [
        "[CLS]",
        "good",
        "movie",
        "[SEP]",
        "bad",
        "[SEP]",
    ]
    assert [tok.id_to_token(i) for i in f.row(1)] == [
        "[CLS]",
        "the",
        "quick",
        "[SEP]",
        "dog",
        "[SEP]",
    ]
    assert list(f.lengths) == [6, 6, 5]
    batches = batch_order(f.lengths, 2)  # eval: sorted by length
    assert [list(b) for b in batches] == [[2, 0], [1]]
    (inputs, labels), _ = list(make_dataset(f, batches).as_numpy_iterator())
    assert inputs["input_word_ids"].shape == (2, 6)
    assert inputs["input_mask"].tolist() == [[1, 1, 1, 1, 1, 0], [1] * 6]
    assert inputs["input_type_ids"][1].tolist() == [0, 0, 0, 0, 1, 1]
    assert labels.tolist() == [1, 1]


def test_train_batch_order_is_bucketed_seeded_and_complete():
    lengths = np.arange(100) % 17 + 3
    a = batch_order(lengths, 8, shuffle=True, seed=3)
    assert batch_order(lengths, 8, shuffle=True, seed=3)[5].tolist() == a[5].tolist()
    assert sorted(np.concatenate(a).tolist()) == list(range(100))
    spread = np.mean([np.ptp(lengths[b]) for b in a])
    assert spread < 4  # random batches would spread ~14


def test_tfds_local_dataset(tmp_path):
    """A tiny TFDS dataset prepared locally (nothing downloadable here) and read by name."""
    import tensorflow_datasets as tfds

    class TinySentiment(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {
                        "sentence": tfds.features.Text(),
                        "label": tfds.features.ClassLabel(names=["negative", "positive"]),
                    }
                ),
            )

        def _split_generators(self, dl_manager):
            return {
                "train": self._generate_examples(["good movie", "bad movie"], [1, 0]),
                "validation": self._generate_examples(["great"], [1]),
            }

        def _generate_examples(self, texts, labels):
            for i, (t, y) in enumerate(zip(texts, labels)):
                yield i, {"sentence": t, "label": y}

    TinySentiment(data_dir=str(tmp_path)).download_and_prepare()
    ex = c.read_examples("tfds:tiny_sentiment:validation", tfds_data_dir=str(tmp_path))
    assert [(e.text_a, e.label) for e in ex] == [("great", "positive")]
    with pytest.raises(DataError, match="no column 'sentence1'"):
        c.read_examples("tfds:tiny_sentiment", "sentence1", tfds_data_dir=str(tmp_path))
    with pytest.raises(DataError, match="tfds:glue/sst2: not prepared under"):
        c.read_examples("tfds:glue/sst2", tfds_data_dir=str(tmp_path))


def test_long_single_texts_become_overlapping_windows(tiny_vocab_file):
    from bert_tf.text.tokenizer import BertTokenizer

    tok = BertTokenizer(vocab_file=tiny_vocab_file, lower_case=True)
    words = "the quick brown fox jumps over the lazy dog".split()
    ex = [c.Example(" ".join(words)), c.Example("good")]
    f, example_of = c.build_window_features(ex, tok, max_seq_length=6, labels=[1, 0])
    # 9 pieces, windows of 4 starting every 2: [0:4] [2:6] [4:8] [6:9]; "good" one window
    rows = [[tok.id_to_token(i) for i in f.row(r)] for r in range(len(f))]
    assert rows[0] == ["[CLS]", "the", "quick", "brown", "fox", "[SEP]"]
    assert rows[1][1:-1] == words[2:6] and rows[3][1:-1] == words[6:9]
    assert rows[4] == ["[CLS]", "good", "[SEP]"]
    assert example_of.tolist() == [0, 0, 0, 0, 1]
    assert f.labels["label"].tolist() == [1, 1, 1, 1, 0]
    f, example_of = c.build_window_features(ex, tok, 6, doc_stride=4)
    assert example_of.tolist() == [0, 0, 0, 1] and "label" not in f.labels
