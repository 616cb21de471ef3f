"""Real-world file quirks in every task reader (BOM, CRLF, whitespace-only separators, column
layouts, spaced answers) are accepted; everything that cannot be right (bytes that are not
UTF-8, mixed label kinds, tags outside the scheme, impossible questions in v1 mode, duplicate
ids, directories, binary corpora) is a one-line error naming the file and line."""

import json

import pytest

from bert_tf.data import classification as c
from bert_tf.data import conll, squad
from bert_tf.data import labels as label_map
from bert_tf.data.errors import DataError
from bert_tf.data.pretraining import create as pd
from bert_tf.errors import BertTfError

BOM = b"\xef\xbb\xbf"


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(path)


def one_line(error):
    text = str(error.value)
    assert "\n" not in text and isinstance(error.value, BertTfError), text
    return text


# ---- BOM and CRLF -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, data",
    [
        ("a.tsv", BOM + b"sentence\tlabel\r\nhi there\tpos\r\n\r\nyo\tneg\r\n"),
        ("b.csv", BOM + b'sentence,label\r\n"hi there",pos\r\n\r\nyo,neg\r\n'),
        (
            "c.jsonl",
            BOM + b'{"sentence": "hi there", "label": "pos"}\r\n\r\n'
            b'{"sentence": "yo", "label": "neg"}\r\n',
        ),
    ],
)
def test_bom_and_crlf_are_accepted(tmp_path, name, data):
    examples = c.read_examples(write(tmp_path, name, data))
    assert [(e.text_a, e.label) for e in examples] == [("hi there", "pos"), ("yo", "neg")]
    line = 3 if name.endswith(".jsonl") else 4  # JSONL has no header line
    assert examples[1].source.endswith(f"{name}:{line}")


def test_csv_quoted_field_over_crlf_lines(tmp_path):
    path = write(tmp_path, "d.csv", b'sentence,label\r\n"two\r\nlines, one field",pos\r\nx,neg\r\n')
    examples = c.read_examples(path)
    assert examples[0].text_a == "two\r\nlines, one field" and examples[1].source.endswith(":4")


# ---- bytes that are not UTF-8, directories ------------------------------------------------
@pytest.mark.parametrize(
    "name, data, line, column",
    [
        ("a.tsv", b"sentence\tlabel\nok\t1\ncaf\xe9\t0\n", 3, 4),
        ("b.csv", BOM + b"sentence,label\nok,1\nok,1\n\xff,0\n", 4, 1),
        ("c.jsonl", b'{"sentence": "ok", "label": 1}\n{"sentence": "\xc3(", "label": 1}\n', 2, 15),
    ],
)
def test_non_utf8_byte_names_file_and_line(tmp_path, name, data, line, column):
    path = write(tmp_path, name, data)
    with pytest.raises(DataError) as error:
        c.read_examples(path)
    byte = data.splitlines()[line - 1].lstrip(BOM)[column - 1]
    assert one_line(error) == (
        f"{path}:{line}: not UTF-8: byte 0x{byte:02x} at column {column} (expected UTF-8 "
        "text; re-encode the file, e.g. `iconv -f latin1 -t utf-8`)"
    )


def test_non_utf8_in_conll_and_squad(tmp_path):
    path = write(tmp_path, "x.conll", b"John B-PER\nlives O\n\nM\xfcnchen B-LOC\n")
    with pytest.raises(DataError, match=r"x.conll:4: not UTF-8: byte 0xfc at column 2 "):
        conll.read_sentences(path)
    data = json.dumps(_squad([_qa("q1", "London", 14)]), indent=1).encode()
    data = data.replace(b"Where", b"Wh\xffere")
    path = write(tmp_path, "s.json", data)
    line = data[: data.index(b"\xff")].count(b"\n") + 1
    assert line > 5
    with pytest.raises(DataError, match=rf"s.json:{line}: not UTF-8: byte 0xff"):
        squad.read_examples(path)


@pytest.mark.parametrize("read", [c.read_examples, conll.read_sentences, squad.read_examples])
def test_directory_is_not_a_file(tmp_path, read):
    (tmp_path / "d.tsv").mkdir()
    with pytest.raises(DataError) as error:
        read(str(tmp_path / "d.tsv"))
    assert one_line(error) == f"{tmp_path}/d.tsv: is a directory, expected a file"
    with pytest.raises(DataError, match="no such file"):
        read(str(tmp_path / "missing.tsv"))


# ---- labels -------------------------------------------------------------------------------
def test_labels_mixing_ids_and_names_fail(tmp_path):
    path = write(tmp_path, "m.tsv", "sentence\tlabel\na\t1\nb\tneg\nc\t0\nd\tpos\ne\tneg\n")
    examples = c.read_examples(path)
    with pytest.raises(DataError) as error:
        label_map.LabelMap.from_examples(examples)
    assert one_line(error) == (
        f"{path}:2: label: '1' is a class id (number) but the other labels are class names "
        "('neg', 'pos'); use one kind in the whole file"
    )
    ok = c.read_examples(write(tmp_path, "n.tsv", "sentence\tlabel\na\t1\nb\t0\nc\t2\n"))
    assert label_map.LabelMap.from_examples(ok).names == ["0", "1", "2"]


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
def test_regression_label_must_be_finite(tmp_path, value):
    path = write(tmp_path, "r.tsv", f"sentence\tlabel\na\t1.5\nb\t{value}\n")
    with pytest.raises(DataError) as error:
        label_map.encode_regression(c.read_examples(path))
    assert one_line(error) == (
        f"{path}:3: label: expected a finite number for regression, got '{value}'"
    )


# ---- CoNLL layouts and tag schemes --------------------------------------------------------
def test_conll_layouts(tmp_path):
    """Tab- or space-separated, 2..N columns (tag last), -DOCSTART-, a tab-only separator
    line, CRLF and a BOM."""
    data = (
        BOM + b"-DOCSTART- -X- -X- O\r\n\r\n"
        b"EU\tNNP\tB-NP\tB-ORG\r\nrejects\tVBZ\tB-VP\tO\r\n\t\r\n"
        b"Peter NNP B-NP B-PER\r\nBlackburn NNP I-NP I-PER\r\n \r\n"
        b"-DOCSTART- O\r\nBonn B-LOC\r\n"
    )
    sentences = conll.read_sentences(write(tmp_path, "x.conll", data))
    assert [s.words for s in sentences] == [["EU", "rejects"], ["Peter", "Blackburn"], ["Bonn"]]
    assert [s.tags for s in sentences] == [["B-ORG", "O"], ["B-PER", "I-PER"], ["B-LOC"]]
    assert [s.lines for s in sentences] == [[3, 4], [6, 7], [10]]
    assert sentences[0].columns[0] == ["EU", "NNP", "B-NP", "B-ORG"]


@pytest.mark.parametrize(
    "tag, problem",
    [
        ("PER", "no B-/I- prefix (a bare type is not an IOB tag)"),
        ("o", "the O/B-/I- prefix must be upper-case"),
        ("b-per", "the O/B-/I- prefix must be upper-case"),
        ("S-PER", "S-/E- tags are BIOES: pass --tag_scheme=bioes"),
    ],
)
def test_tags_outside_the_scheme_fail(tmp_path, tag, problem):
    path = write(tmp_path, "t.conll", f"John B-PER\nSmith I-PER\n\nsaid O\nBob {tag}\n")
    with pytest.raises(DataError) as error:
        conll.read_sentences(path)
    assert one_line(error) == (
        f"{path}:5: tag: tag {tag!r}: {problem} (--tag_scheme=iob: expected O, B-TYPE or I-TYPE)"
    )
    conll.read_sentences(path, need_tags=False)  # prediction input: no tags to check


def test_bioes_scheme_is_read_as_iob2(tmp_path):
    path = write(tmp_path, "b.conll", "New B-LOC\nYork E-LOC\nis O\nbig O\nBob S-PER\nAl S-PER\n")
    (sentence,) = conll.read_sentences(path, tag_scheme="bioes")
    assert sentence.tags == ["B-LOC", "I-LOC", "O", "O", "B-PER", "B-PER"]
    assert sentence.columns[1] == ["York", "E-LOC"]  # written back as it was
    with pytest.raises(
        DataError,
        match=r"b.conll:1: tag: tag 'X-LOC': not a tag of the "
        r"scheme \(--tag_scheme=bioes",
    ):
        conll.read_sentences(write(tmp_path, "b.conll", "New X-LOC\n"), tag_scheme="bioes")


# ---- SQuAD --------------------------------------------------------------------------------
CONTEXT = "John lives in London. He likes it."


def _qa(qid, text, start, impossible=None):
    qa = {"id": qid, "question": "Where?", "answers": [{"text": text, "answer_start": start}]}
    if impossible is not None:
        qa["is_impossible"] = impossible
        qa["answers"] = [] if impossible else qa["answers"]
    return qa


def _squad(qas, context=CONTEXT):
    return {
        "version": "v2.0",
        "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}],
    }


def test_squad_answers_with_spaces_are_stripped(tmp_path):
    qas = [_qa("a", " London ", 13), _qa("b", "London. ", 14), _qa("c", "  London", 14)]
    stats = squad.SquadStats()
    examples = squad.read_examples(
        write(tmp_path, "s.json", BOM + json.dumps(_squad(qas)).encode()),
        offset_errors="fail",
        stats=stats,
    )
    for e in examples:
        assert e.context[e.answer_start : e.answer_start + len(e.answer_text)] == e.answer_text
    assert [(e.answer_start, e.answer_text) for e in examples] == [
        (14, "London"),
        (14, "London."),
        (14, "London"),
    ]
    assert stats.offsets_fixed == 0 and stats.answers_dropped == 0


def test_squad_v2_file_in_v1_mode_fails(tmp_path):
    qas = [_qa("a", "London", 14, impossible=False), _qa("b", "", 0, impossible=True)]
    path = write(tmp_path, "s.json", json.dumps(_squad(qas)))
    with pytest.raises(DataError) as error:
        squad.read_examples(path, allow_impossible=False)
    assert one_line(error) == (
        f"{path}: data[0].paragraphs[0].qas[1].is_impossible: question id 'b' has "
        "is_impossible=true (a SQuAD v2.0 file) but SQuAD v2.0 is off "
        "(--noversion_2_with_negative)"
    )
    assert len(squad.read_examples(path)) == 2
    answerable = write(tmp_path, "t.json", json.dumps(_squad(qas[:1])))
    assert len(squad.read_examples(answerable, allow_impossible=False)) == 1


def test_squad_duplicate_ids_fail(tmp_path):
    data = _squad([_qa("a", "London", 14)])
    data["data"].append({"paragraphs": [{"context": "Paris.", "qas": [_qa("a", "Paris", 0)]}]})
    path = write(tmp_path, "s.json", json.dumps(data))
    with pytest.raises(DataError) as error:
        squad.read_examples(path)
    assert one_line(error) == (
        f"{path}: data[1].paragraphs[0].qas[0].id: duplicate question id "
        "'a' (also at data[0].paragraphs[0].qas[0]): ids must be unique"
    )


# ---- pre-training input -------------------------------------------------------------------
def test_pretraining_refuses_binary_files(tmp_path):
    text = write(tmp_path, "ok.txt", "One sentence.\nAnother one.\n")
    assert pd.expand_input_files(text) == [text]
    gz = write(tmp_path, "corpus.txt.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03abc")
    with pytest.raises(pd.PretrainingDataError) as error:
        pd.expand_input_files(f"{text},{gz}")
    assert one_line(error) == (
        f"{gz}: not a text file (NUL byte at offset 3); expected UTF-8 "
        "text (decompress archives first)"
    )
    noise = write(tmp_path, "noise.bin", bytes(range(128, 256)) * 4)
    with pytest.raises(
        pd.PretrainingDataError,
        match=r"noise.bin: not a text file \(100% of "
        r"the first 512 bytes are not UTF-8\)",
    ):
        pd.expand_input_files(noise)


def test_pretraining_text_with_bom_and_crlf(tmp_path):
    from bert_tf.data.pretraining import sentences

    path = write(tmp_path, "c.txt", BOM + b"First one.\r\nSecond one.\r\n\r\nNext doc.\r\n")
    assert list(sentences.iter_documents(path, "sentences")) == [
        ["First one.", "Second one."],
        ["Next doc."],
    ]
