"""Class labels of classification data: `LabelMap` (class names <-> ids, from the training data
or given) and `encode_regression` (numbers for regression). Labels arrive as strings from
`bert_tf.data.classification.read_examples`; every bad label names its file, line and field."""

import math

from bert_tf.data.errors import DataError
from bert_tf.settings import ConfigError


def _sort_key(label):
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def _is_number(label):
    try:
        float(label)
    except ValueError:
        return False
    return True


def _check_one_kind(examples):
    numbers = [e for e in examples if _is_number(e.label)]
    if not numbers or len(numbers) == len(examples):
        return
    names = [e for e in examples if not _is_number(e.label)]
    odd, other = (numbers, names) if len(numbers) <= len(names) else (names, numbers)
    kinds = (
        ("a class id (number)", "class names")
        if odd is numbers
        else ("a class name", "class ids (numbers)")
    )
    seen = sorted({e.label for e in other}, key=_sort_key)[:4]
    raise DataError(
        odd[0].source,
        f"{odd[0].label!r} is {kinds[0]} but the other labels are "
        f"{kinds[1]} ({', '.join(map(repr, seen))}); use one kind in the whole "
        f"file",
        field="label",
    )


class LabelMap:
    """Class names <-> ids. Names come from the training data, sorted (numerically when all
    are numbers, so GLUE's "0"/"1" keep their ids and class 1 is the positive class), or
    are given explicitly."""

    def __init__(self, names):
        names = [str(n) for n in names]
        if len(set(names)) != len(names):
            raise ConfigError(f"--label_names: duplicate names in {names}")
        if len(names) < 2:
            raise ConfigError(f"--label_names: need at least 2 classes, got {names}")
        self.names = names
        self.ids = {n: i for i, n in enumerate(names)}

    @classmethod
    def from_examples(cls, examples, path="the training data"):
        """The sorted label set of `examples` (read from `path`); labels that mix class ids
        (numbers) and class names ("1", "neg", "0", "pos") fail naming the first label of the
        rarer kind, fewer than 2 classes naming the file."""
        _check_one_kind(examples)
        names = sorted({e.label for e in examples}, key=_sort_key)
        if len(names) < 2:
            raise DataError(
                path,
                f"need at least 2 classes, got {names} (a classifier needs "
                "examples of each class; --regression for numbers)",
                field="label",
            )
        return cls(names)

    def encode(self, examples, allow_unseen=False):
        """Label ids; unseen labels fail (file:line) or, if allowed, become -1 and are
        counted (returned as the second value)."""
        ids, unseen = [], 0
        for e in examples:
            if e.label in self.ids:
                ids.append(self.ids[e.label])
            elif allow_unseen:
                ids.append(-1)
                unseen += 1
            else:
                raise DataError(
                    e.source,
                    f"label {e.label!r} does not occur in the training "
                    f"data (known: {', '.join(self.names)})",
                    field="label",
                )
        return ids, unseen


def encode_regression(examples):
    values = []
    for e in examples:
        try:
            value = float(e.label)
        except (TypeError, ValueError):
            raise DataError(
                e.source, f"expected a number for regression, got {e.label!r}", field="label"
            ) from None
        if not math.isfinite(value):
            raise DataError(
                e.source, f"expected a finite number for regression, got {e.label!r}", field="label"
            )
        values.append(value)
    return values
