"""Multiple-choice readers: SWAG CSV as published, JSONL, one-line errors, features."""

import os

import numpy as np
import pytest

from bert_tf.data import multiple_choice as mc
from bert_tf.data.errors import DataError
from bert_tf.errors import BertTfError

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")


def test_swag_csv_context_choices_and_quoted_commas():
    examples = mc.read_examples(os.path.join(FIXTURES, "swag_train.csv"))
    assert len(examples) == 4
    e = examples[1]
    assert e.context == "John lives in paris, france."
    assert e.choices == [
        "He is a brown dog.",
        "He loves the capital of france.",
        "He jumps in london, over the dog.",
        "He is the quick fox.",
    ]
    assert e.label == 1 and e.source.endswith("swag_train.csv:3")
    assert examples[0].choices[2] == "It reads a terrible movie, slowly."
    assert [x.label for x in examples] == [0, 1, 2, 3]


def test_swag_unlabeled_test_file_reads_for_prediction():
    path = os.path.join(FIXTURES, "swag_test_unlabeled.csv")
    examples = mc.read_examples(path, need_label=False)
    assert [e.label for e in examples] == [None, None]
    assert examples[1].choices[0] == "John does."
    with pytest.raises(DataError, match=r"swag_test_unlabeled.csv:1: expected SWAG columns"):
        mc.read_examples(path)  # training needs the label column


def test_jsonl_any_number_of_choices():
    examples = mc.read_examples(os.path.join(FIXTURES, "choice.jsonl"))
    assert [len(e.choices) for e in examples] == [3, 3, 3]
    assert examples[2].label == 2 and examples[0].context == "john lives in paris"


@pytest.mark.parametrize(
    "lines, message",
    [
        (
            [
                '{"context": "a", "choices": ["x", "y"], "label": 0}',
                '{"context": "b", "choices": ["x", "y", "z"], "label": 1}',
            ],
            r"bad.jsonl:2: choices: expected 2 choices \(as line 1\), got 3",
        ),
        (
            ['{"context": "a", "choices": ["x"], "label": 0}'],
            r"bad.jsonl:1: choices: expected a list of >= 2 strings",
        ),
        (
            ['{"context": "a", "choices": ["x", "y"], "label": 2}'],
            r"bad.jsonl:1: label: expected a choice index 0..1, got 2",
        ),
        (
            ['{"context": "", "choices": ["x", "y"], "label": 0}'],
            r"bad.jsonl:1: context: expected a non-empty string",
        ),
        (
            ['{"context": "a", "choices": ["x", ""], "label": 0}'],
            r"bad.jsonl:1: choices\[1\]: expected a non-empty string",
        ),
        (['{"context": "a", "choices": ["x", "y"]'], r"bad.jsonl:1: invalid JSON"),
    ],
)
def test_jsonl_errors_are_one_line_with_line_number(tmp_path, lines, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BertTfError, match=message) as info:
        mc.read_examples(str(path))
    assert "\n" not in str(info.value) and isinstance(info.value, ValueError)


def test_swag_csv_errors(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("sent1,sent2,ending0,ending1,label\na,b,c,d,0\na,b,c,d,x\n")
    with pytest.raises(DataError, match=r"s.csv:3: label: expected a choice index 0..1"):
        mc.read_examples(str(path))
    path.write_text("sent1,sent2,ending0,ending1,label\na,b,c,,1\n")
    with pytest.raises(DataError, match=r"s.csv:2: ending1: expected a non-empty string"):
        mc.read_examples(str(path))
    path.write_text("sent1,sent2,ending0,label\na,b,c,0\n")
    with pytest.raises(DataError, match=r"s.csv:1: expected SWAG columns"):
        mc.read_examples(str(path))
    with pytest.raises(DataError, match=r"x.txt: unknown multiple-choice format"):
        (tmp_path / "x.txt").write_text("a")
        mc.read_examples(str(tmp_path / "x.txt"))


@pytest.mark.parametrize("label", ["\u00b2", "\u2460", "\u0661", "1.0", " "])
def test_swag_csv_label_that_is_no_ascii_index_names_file_line_and_field(tmp_path, label):
    """ "\u00b2".isdigit() is True but int() refuses it: one DataError line, not a bare
    `invalid literal for int()`."""
    path = tmp_path / "s.csv"
    path.write_text(
        f"sent1,sent2,ending0,ending1,label\na,b,c,d,0\na,b,c,d,{label}\n", encoding="utf-8"
    )
    with pytest.raises(DataError) as info:
        mc.read_examples(str(path))
    assert str(info.value) == (f"{path}:3: label: expected a choice index 0..1, got {label!r}")


def test_features_pack_context_and_each_choice(tiny_vocab_file):
    from bert_tf.text.tokenizer import BertTokenizer

    tok = BertTokenizer(vocab_file=tiny_vocab_file, lower_case=True)
    examples = mc.read_examples(os.path.join(FIXTURES, "choice.jsonl"))
    features = mc.build_features(examples, tok, max_seq_length=8)
    assert len(features) == 3 and features.num_choices == 3
    vocab = open(tiny_vocab_file).read().split("\n")
    row = [vocab[i] for i in features.rows.row(1)]  # example 0, choice 1
    # 4 + 3 pieces for a budget of 5: longest-first trimming (the original) -> 3 + 2
    assert row == ["[CLS]", "john", "lives", "in", "[SEP]", "a", "lazy", "[SEP]"]
    types = features.rows.type_ids[features.rows.row_splits[1] : features.rows.row_splits[2]]
    assert types.tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(features.labels, [0, 1, 2])
    lengths = features.rows.lengths.reshape(3, 3)
    np.testing.assert_array_equal(features.lengths, lengths.max(1))
    # a dataset batch: [b, C, T] inputs and [b] labels, T = the batch's longest (<= 8)
    ds = mc.make_dataset(features, [np.array([2, 0])])
    inputs, labels = next(iter(ds))
    assert inputs["input_word_ids"].shape == (2, 3, 8)
    np.testing.assert_array_equal(labels.numpy(), [2, 0])
    np.testing.assert_array_equal(inputs["input_word_ids"][1, 1, :8], features.rows.row(1))


def test_non_utf8_byte_and_bom_are_read_like_the_other_readers(tmp_path):
    """The multiple-choice readers share the task readers' text layer: a BOM is dropped, CRLF
    works, and a bad byte is a one-line error naming the file and line."""
    good = tmp_path / "bom.jsonl"
    good.write_bytes(b'\xef\xbb\xbf{"context": "a", "choices": ["b", "c"], "label": 1}\r\n')
    assert [e.label for e in mc.read_examples(str(good))] == [1]
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(
        b'{"context": "a", "choices": ["b", "c"], "label": 0}\n'
        b'{"context": "caf\xe9", "choices": ["b", "c"], "label": 0}\n'
    )
    with pytest.raises(DataError) as info:
        mc.read_examples(str(bad))
    assert str(info.value).startswith(f"{bad}:2: not UTF-8: byte 0xe9")
