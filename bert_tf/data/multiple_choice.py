"""Multiple-choice examples (SWAG) from SWAG's published CSV or from JSONL.

    read_examples(path, need_label=True) -> [ChoiceExample]

*.csv: SWAG as published (header `video-id,fold-ind,startphrase,sent1,sent2,gold-source,
  ending0,...,ending3,label`, RFC 4180 quoting). The context is `sent1`; choice i is
  `sent2 + " " + ending<i>` (the BERT paper's SWAG setup: the second sentence's start is
  completed by each ending). Any number of `ending<i>` columns (>= 2) is accepted; the
  unlabeled test file (no `label` column) reads with need_label=False.
*.jsonl / *.json: one object per line, {"context": str, "choices": [str, ...], "label": int}
  with >= 2 choices, the same number on every line.
Every problem is a one-line `DataError` naming the file, line and field: a missing column,
an empty text, a label that is not an index of a choice, a row whose choice count differs.
"""

import csv
import dataclasses
import os
import re
import sys

import numpy as np
import tensorflow as tf

from bert_tf.data.batching import RaggedFeatures
from bert_tf.data.batching import make_dataset as make_rows_dataset
from bert_tf.data.errors import DataError
from bert_tf.data.text_files import check_file, iter_json_objects, iter_lines
from bert_tf.text.packer import pack_inputs

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
_ENDING = re.compile(r"ending(\d+)")
# ASCII digits only: str.isdigit() also accepts "²" or "①", which int() refuses.
_INDEX = re.compile(r"-?[0-9]+")


@dataclasses.dataclass
class ChoiceExample:
    context: str
    choices: list
    label: int | None = None  # index into choices; None for unlabeled data
    source: str = ""  # "file:line"


def _label(path, line, value, num_choices):
    if isinstance(value, bool) or value is None:
        value = None
    elif isinstance(value, str) and _INDEX.fullmatch(value.strip()):
        value = int(value)
    if not isinstance(value, int) or not 0 <= value < num_choices:
        raise DataError(
            path,
            f"expected a choice index 0..{num_choices - 1}, got {value!r}",
            line=line,
            field="label",
        )
    return value


def _text(path, line, field, value):
    if not isinstance(value, str) or not value.strip():
        raise DataError(path, "expected a non-empty string", line=line, field=field)
    return value


def _read_swag_csv(path, need_label):
    examples = []
    reader = csv.reader(iter_lines(path))  # BOM, CRLF, bad bytes named by line
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise DataError(path, "empty file (expected the SWAG header line)") from None
    endings = sorted((int(m.group(1)), h) for h in header if (m := _ENDING.fullmatch(h)))
    wanted = ["sent1", "sent2"] + (["label"] if need_label else [])
    missing = [c for c in wanted if c not in header]
    if missing or len(endings) < 2 or [i for i, _ in endings] != list(range(len(endings))):
        raise DataError(
            path,
            f"expected SWAG columns sent1, sent2, ending0..endingN "
            f"(N >= 1){', label' if need_label else ''}; found: "
            f"{', '.join(header)}",
            line=1,
        )
    line = reader.line_num + 1
    for fields in reader:
        start, line = line, reader.line_num + 1
        if not fields or all(not x.strip() for x in fields):
            continue
        if len(fields) != len(header):
            raise DataError(
                path,
                f"expected {len(header)} fields (as the header), got {len(fields)}",
                line=start,
            )
        row = dict(zip(header, fields))
        sent2 = row["sent2"].strip()
        choices = [
            " ".join(x for x in (sent2, _text(path, start, name, row[name]).strip()) if x)
            for _, name in endings
        ]
        label = (
            _label(path, start, row["label"], len(choices))
            if need_label or row.get("label", "").strip()
            else None
        )
        examples.append(
            ChoiceExample(
                _text(path, start, "sent1", row["sent1"]), choices, label, f"{path}:{start}"
            )
        )
    return examples


def _read_jsonl(path, need_label):
    examples = []
    for line, row in iter_json_objects(path):
        choices = row.get("choices")
        if not isinstance(choices, list) or len(choices) < 2:
            raise DataError(
                path,
                f"expected a list of >= 2 strings, got {choices!r:.60}",
                line=line,
                field="choices",
            )
        choices = [_text(path, line, f"choices[{i}]", c) for i, c in enumerate(choices)]
        if examples and len(choices) != len(examples[0].choices):
            raise DataError(
                path,
                f"expected {len(examples[0].choices)} choices (as line "
                f"{examples[0].source.rsplit(':', 1)[1]}), got {len(choices)}",
                line=line,
                field="choices",
            )
        label = (
            _label(path, line, row.get("label"), len(choices))
            if need_label or row.get("label") is not None
            else None
        )
        examples.append(
            ChoiceExample(
                _text(path, line, "context", row.get("context")), choices, label, f"{path}:{line}"
            )
        )
    return examples


def read_examples(path, need_label=True):
    """The file's examples (see the module doc); every example has the same choice count."""
    check_file(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".csv":
        examples = _read_swag_csv(path, need_label)
    elif ext in (".jsonl", ".json"):
        examples = _read_jsonl(path, need_label)
    else:
        raise DataError(
            path, f"unknown multiple-choice format {ext!r} (expected .csv as SWAG, or .jsonl)"
        )
    if not examples:
        raise DataError(path, "no examples")
    return examples


def build_features(examples, tokenizer, max_seq_length, chunk_size=512):
    """Per example, its C sequences `[CLS] context [SEP] choice_i [SEP]` (longest-first
    truncation to max_seq_length, as the original), tokenized once and stored unpadded.

    Returns `ChoiceFeatures`: row e * C + i of `rows` is choice i of example e."""
    c = len(examples[0].choices)
    word_ids, type_ids = [], []
    for start in range(0, len(examples), chunk_size):
        part = examples[start : start + chunk_size]
        contexts = [e.context for e in part for _ in range(c)]
        choices = [x for e in part for x in e.choices]
        segments = [
            tokenizer.tokenize(tf.constant(contexts)),
            tokenizer.tokenize(tf.constant(choices)),
        ]
        packed = pack_inputs(
            segments,
            max_seq_length,
            tokenizer.cls_id,
            tokenizer.sep_id,
            tokenizer.pad_id,
            pad_to_longest=True,
        )
        lengths = tf.reduce_sum(packed["input_mask"], axis=1).numpy()
        ids, types = packed["input_word_ids"].numpy(), packed["input_type_ids"].numpy()
        for i, n in enumerate(lengths):
            word_ids.append(ids[i, :n])
            type_ids.append(types[i, :n])
    labels = [e.label if e.label is not None else -1 for e in examples]
    rows = RaggedFeatures.from_lists(word_ids, type_ids)
    return ChoiceFeatures(rows, c, np.asarray(labels, np.int32))


@dataclasses.dataclass
class ChoiceFeatures:
    """N examples of C packed sequences each. `rows`: RaggedFeatures of N * C sequences
    (example-major); `labels` int32 [N] (-1 = unlabeled). `lengths` [N] is an example's
    longest sequence, which the length-bucketed batching sorts by."""

    rows: object
    num_choices: int
    labels: object

    def __len__(self):
        return len(self.labels)

    @property
    def lengths(self):
        return self.rows.lengths.reshape(-1, self.num_choices).max(axis=1)


def make_dataset(features, batches, with_labels=True, compile_cost_tokens=0):
    """tf.data batches of whole examples: inputs int32 [b, C, T] (T = the batch's longest
    sequence, as bert_tf.data.batching pads, `compile_cost_tokens` as there), labels int32
    [b]. `batches` index examples."""
    c = features.num_choices
    row_batches = [
        (np.asarray(b)[:, None] * c + np.arange(c)[None, :]).reshape(-1) for b in batches
    ]  # [b * C] each

    def fold(inputs):
        return {
            k: tf.reshape(v, [-1, c, tf.shape(v)[1]])  # [b*C, T] -> [b, C, T]
            for k, v in inputs.items()
        }

    inputs = make_rows_dataset(
        features.rows, row_batches, with_labels=False, compile_cost_tokens=compile_cost_tokens
    ).map(fold)
    if not with_labels:
        return inputs
    width = max(len(b) for b in batches)
    index = np.full([len(batches), width], -1, np.int64)
    for i, b in enumerate(batches):
        index[i, : len(b)] = b
    labels = tf.constant(features.labels, tf.int32)
    label_batches = tf.data.Dataset.from_tensor_slices(index).map(
        lambda idx: tf.gather(labels, tf.boolean_mask(idx, idx >= 0))
    )  # [b]
    return tf.data.Dataset.zip((inputs, label_batches)).prefetch(tf.data.AUTOTUNE)
