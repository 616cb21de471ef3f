"""Sentence(-pair) classification / regression examples from TSV, CSV, JSONL or TFDS.

    read_examples(source, text_a_column="sentence", text_b_column=None, label_column="label")
source is one of
    *.tsv (GLUE style: tab-separated, header line, no quoting), *.csv (header line, RFC 4180
    quoting, fields may span lines), *.jsonl / *.json (one JSON object per line),
    "tfds:NAME[:SPLIT]" (e.g. "tfds:glue/sst2:validation"; read from `tfds_data_dir`, never
    downloaded).
Rules: blank lines are skipped (and counted); a missing column names the file and the header it
found; an empty text or label field fails naming file, line and column. Labels are kept as
strings (TFDS class ids become their class names) until `bert_tf.data.labels.LabelMap` turns
them into ids; a label
seen in evaluation but not in training fails naming file and line unless allowed (then it is
counted and the example can never be predicted right).
"""

import csv
import dataclasses
import logging
import sys

import numpy as np
import tensorflow as tf

from bert_tf.data.batching import RaggedFeatures
from bert_tf.data.errors import DataError
from bert_tf.data.text_files import check_file, iter_json_objects, iter_lines
from bert_tf.data.windows import default_stride, window_starts
from bert_tf.settings import ConfigError
from bert_tf.text.packer import pack_inputs

log = logging.getLogger(__name__)  # never the root logger: the caller owns it

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclasses.dataclass
class Example:
    text_a: str
    text_b: str | None = None
    label: str | None = None  # class name, or the score as a string for regression
    source: str = ""  # "file:line" for error messages and predictions


@dataclasses.dataclass
class ReadStats:
    examples: int = 0
    blank_lines: int = 0


def _check_columns(path, header, wanted):
    for kind, name in wanted:
        if name is not None and name not in header:
            found = ", ".join(repr(h) for h in header)
            raise DataError(
                path, f"no column {name!r} ({kind}) in the header; found: {found}", line=1
            )


def _make_example(path, line, row, text_a_column, text_b_column, label_column, need_label):
    def field(name, required=True):
        value = row.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise DataError(path, "empty or missing value", line=line, field=name)
            return None
        if not isinstance(value, (str, int, float, bool)):
            raise DataError(
                path,
                f"expected a string or number, got {type(value).__name__}",
                line=line,
                field=name,
            )
        return str(value) if not isinstance(value, bool) else str(int(value))

    return Example(
        text_a=field(text_a_column),
        text_b=field(text_b_column) if text_b_column else None,
        label=field(label_column, need_label) if label_column else None,
        source=f"{path}:{line}",
    )


def _read_delimited(path, delimiter, columns, need_label, stats):
    text_a_column, text_b_column, label_column = columns
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    examples = []
    reader = csv.reader(iter_lines(path), delimiter=delimiter, quoting=quoting)
    rows = _csv_rows(path, reader)
    try:
        header, _ = next(rows)
    except StopIteration:
        raise DataError(path, "empty file (expected a header line)") from None
    header = [h.strip() for h in header]
    _check_columns(
        path,
        header,
        [
            ("--text_a_column", text_a_column),
            ("--text_b_column", text_b_column),
            ("--label_column", label_column if need_label else None),
        ],
    )
    for fields, line in rows:
        if not fields or all(not x.strip() for x in fields):
            stats.blank_lines += 1
            continue
        if len(fields) != len(header):
            raise DataError(
                path, f"expected {len(header)} fields (as the header), got {len(fields)}", line=line
            )
        examples.append(
            _make_example(
                path,
                line,
                dict(zip(header, fields)),
                text_a_column,
                text_b_column,
                label_column,
                need_label,
            )
        )
    return examples


def _csv_rows(path, reader):
    """Yields (fields, first line number of the row); a csv.Error names its line."""
    start_line = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(path, f"malformed CSV ({e})", line=reader.line_num) from None
        yield fields, start_line
        start_line = reader.line_num + 1


def _read_jsonl(path, columns, need_label, stats):
    text_a_column, text_b_column, label_column = columns
    examples = []

    def blank():
        stats.blank_lines += 1

    for line_number, row in iter_json_objects(path, on_blank=blank):
        for kind, name in (
            ("--text_a_column", text_a_column),
            ("--text_b_column", text_b_column),
            ("--label_column", label_column if need_label else None),
        ):
            if name is not None and name not in row:
                raise DataError(
                    path,
                    f"no key {name!r} ({kind}); found: {', '.join(map(repr, row))}",
                    line=line_number,
                )
        examples.append(
            _make_example(
                path, line_number, row, text_a_column, text_b_column, label_column, need_label
            )
        )
    return examples


def parse_tfds_source(source):
    """'tfds:glue/sst2:validation' -> ('glue/sst2', 'validation'); None if not a TFDS source."""
    if not source.startswith("tfds:"):
        return None
    rest = source[len("tfds:") :]
    name, _, split = rest.partition(":")
    return name, split or "train"


def _read_tfds(source, columns, need_label, data_dir, stats):
    import tensorflow_datasets as tfds  # heavy: only when asked for

    name, split = parse_tfds_source(source)
    text_a_column, text_b_column, label_column = columns
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        if not builder.is_prepared():
            raise DataError(
                source,
                f"not prepared under {builder.data_dir!r} (no download is "
                "attempted: pass --tfds_data_dir with the prepared dataset)",
            )
        dataset = builder.as_dataset(split=split)
    except DataError:
        raise
    except Exception as e:  # tfds raises many types; keep one line
        raise DataError(
            source,
            f"cannot load from TFDS (data_dir={data_dir!r}): "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
        ) from None
    features = builder.info.features
    keys = list(features.keys())
    _check_columns(
        source,
        keys,
        [
            ("--text_a_column", text_a_column),
            ("--text_b_column", text_b_column),
            ("--label_column", label_column if need_label else None),
        ],
    )
    label_feature = features[label_column] if label_column in keys else None
    names = getattr(label_feature, "names", None)
    examples = []
    for i, row in enumerate(tfds.as_numpy(dataset)):
        values = {}
        for key in (text_a_column, text_b_column, label_column):
            if key is None or key not in row:
                continue
            value = row[key]
            if isinstance(value, bytes):
                value = value.decode("utf-8")
            elif hasattr(value, "item"):
                value = value.item()
            if key == label_column and names is not None:
                if value < 0:  # GLUE test splits have label -1: no label
                    value = None
                else:
                    value = names[value]
            values[key] = value
        examples.append(
            _make_example(
                source, i + 1, values, text_a_column, text_b_column, label_column, need_label
            )
        )
    return examples


def read_examples(
    source,
    text_a_column="sentence",
    text_b_column=None,
    label_column="label",
    need_label=True,
    tfds_data_dir=None,
    stats=None,
):
    """Reads classification examples; see the module docstring for formats and rules."""
    stats = stats if stats is not None else ReadStats()
    columns = (text_a_column, text_b_column, label_column)
    if parse_tfds_source(source):
        examples = _read_tfds(source, columns, need_label, tfds_data_dir, stats)
    else:
        check_file(source)
        lower = source.lower()
        if lower.endswith((".jsonl", ".json", ".ndjson")):
            examples = _read_jsonl(source, columns, need_label, stats)
        elif lower.endswith(".csv"):
            examples = _read_delimited(source, ",", columns, need_label, stats)
        elif lower.endswith((".tsv", ".txt")):
            examples = _read_delimited(source, "\t", columns, need_label, stats)
        else:
            raise DataError(
                source, "unknown format: expected .tsv, .csv, .jsonl or tfds:NAME[:SPLIT]"
            )
    if not examples:
        raise DataError(source, "no examples")
    stats.examples = len(examples)
    if stats.blank_lines:
        log.warning("%s: skipped %d blank line(s)", source, stats.blank_lines)
    return examples


def build_features(examples, tokenizer, max_seq_length, labels=None, chunk_size=512):
    """Tokenizes and packs every example once ([CLS] a [SEP] (b [SEP]), longest-first
    truncation to max_seq_length, as the preprocessor); returns unpadded `RaggedFeatures`
    with `labels` (a list of class ids or floats) under "label"."""
    pair = any(e.text_b is not None for e in examples)
    word_ids, type_ids = [], []
    for start in range(0, len(examples), chunk_size):
        part = examples[start : start + chunk_size]
        segments = [tokenizer.tokenize(tf.constant([e.text_a for e in part]))]
        if pair:
            segments.append(tokenizer.tokenize(tf.constant([e.text_b or "" for e in part])))
        packed = pack_inputs(
            segments,
            max_seq_length,
            tokenizer.cls_id,
            tokenizer.sep_id,
            tokenizer.pad_id,
            pad_to_longest=True,
        )
        lengths = tf.reduce_sum(packed["input_mask"], axis=1).numpy()
        ids = packed["input_word_ids"].numpy()
        types = packed["input_type_ids"].numpy()
        for i, n in enumerate(lengths):
            word_ids.append(ids[i, :n])
            type_ids.append(types[i, :n])
    label_dict = {"label": labels} if labels is not None else {}
    return RaggedFeatures.from_lists(word_ids, type_ids, label_dict)


def build_window_features(
    examples, tokenizer, max_seq_length, labels=None, doc_stride=None, chunk_size=512
):
    """Single-text examples longer than max_seq_length - 2 pieces, read in windows
    `[CLS] pieces [SEP]` of that many pieces, `doc_stride` apart (default half a window;
    bert_tf/data/windows.py). Every window carries its example's label.
    Returns (RaggedFeatures [one row per window], example index of each window [R])."""
    budget = max_seq_length - 2
    if budget < 1:
        raise ConfigError(
            f"--max_seq_length={max_seq_length}: too short for windows of [CLS] pieces [SEP]"
        )
    stride = default_stride(budget, doc_stride)
    word_ids, window_labels, example_of = [], [], []
    for start in range(0, len(examples), chunk_size):
        part = examples[start : start + chunk_size]
        pieces = tokenizer.tokenize(tf.constant([e.text_a for e in part])).to_list()
        for i, ids in enumerate(pieces, start):
            for w in window_starts(len(ids), budget, stride):
                word_ids.append([tokenizer.cls_id] + ids[w : w + budget] + [tokenizer.sep_id])
                example_of.append(i)
                if labels is not None:
                    window_labels.append(labels[i])
    type_ids = [[0] * len(x) for x in word_ids]
    label_dict = {"label": np.asarray(window_labels)} if labels is not None else {}
    return (
        RaggedFeatures.from_lists(word_ids, type_ids, label_dict),
        np.asarray(example_of, np.int64),
    )
