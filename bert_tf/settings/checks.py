"""A settings field's value checked against its declaration: the annotation (type), `choices`
and `bounds` of `setting(...)` (bert_tf/settings/__init__.py). One mechanism for every field
of every recipe config and task settings class, run when they are built; a value that does
not fit is one line naming the field as its flag, expected vs got:

    --epochs: expected an integer >= 1, got '3' (str)
    --learning_rate: expected a finite number > 0, got nan

Accepted and normalized: numpy / other `numbers.Integral` for int fields (stored as int); any
real number for float fields (stored as float; never NaN or infinite); `os.PathLike` for str
fields (stored as str); a tuple for list fields (stored as a list). Refused: a bool for a
number (True is not 1 epoch), a float for an int (4.0 is not a batch size), a str for a list
of strings (label_names="neg,pos" is the flag's comma syntax, not a Python list: refused,
pass ["neg", "pos"]; a field that takes a comma string says so in its annotation, as
input_files: str | list[str] does).
"""

import math
import numbers
import os
import types
import typing

_NONE = type(None)


def parse_bounds(text):
    """ "[1, inf)" -> (1, True, inf, False): low, low included, high, high included."""
    if text is None:
        return None
    left, right = text[0], text[-1]
    low, high = (float(x) for x in text[1:-1].split(","))
    if left not in "[(" or right not in "])" or low > high:
        raise ValueError(f"bad bounds {text!r}: expected e.g. '[0, 1)' or '(0, inf)'")
    return low, left == "[", high, right == "]"


def _number(x):
    return str(int(x)) if float(x).is_integer() else str(x)


def describe_bounds(bounds):
    """(1, True, inf, False) -> ">= 1"; (0, True, 1, False) -> "in [0, 1)"."""
    low, low_in, high, high_in = bounds
    if high == math.inf:
        return f"{'>=' if low_in else '>'} {_number(low)}"
    return f"in {'[' if low_in else '('}{_number(low)}, {_number(high)}{']' if high_in else ')'}"


def _within(value, bounds):
    low, low_in, high, high_in = bounds
    return (low <= value if low_in else low < value) and (
        value <= high if high_in else value < high
    )


# kind -> (description, converter returning the stored value or None when it does not fit)
def _to_int(v):
    return int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else None


def _to_float(v):
    return float(v) if isinstance(v, numbers.Real) and not isinstance(v, bool) else None


def _to_str(v):
    if isinstance(v, os.PathLike):
        v = os.fspath(v)
    return v if isinstance(v, str) else None


def _to_list_of_str(v):
    if not isinstance(v, (list, tuple)):
        return None
    items = [_to_str(x) for x in v]
    return None if any(x is None for x in items) else items


_KINDS = {
    int: ("an integer", _to_int),
    float: ("a number", _to_float),
    str: ("a string (or os.PathLike)", _to_str),
    bool: ("a bool", lambda v: v if isinstance(v, bool) else None),
    dict: ("a dict", lambda v: v if isinstance(v, dict) else None),
    list: ("a list of strings", _to_list_of_str),
}


def _members(annotation):
    """int | None -> [int, NoneType]; list[str] -> [list]."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [typing.get_origin(a) or a for a in typing.get_args(annotation)]
    return [typing.get_origin(annotation) or annotation]


def _convert(value, members):
    """(True, stored value) for the first member type the value fits, else (False, None)."""
    for kind in members:
        if kind is _NONE:
            if value is None:
                return True, None
            continue
        if kind in _KINDS:
            out = _KINDS[kind][1](value)
            if out is not None:
                return True, out
        elif isinstance(value, kind):  # a class such as BertConfig
            return True, value
    return False, None


def _expected(members):
    names = [_KINDS[k][0] if k in _KINDS else f"a {k.__name__}" for k in members if k is not _NONE]
    return " or ".join(names) + (" or None" if _NONE in members else "")


def choices_of(metadata):
    """The choices of a field (its metadata), a tuple or None; declared as a function of
    no arguments, they are what it returns now."""
    choices = metadata.get("choices")
    return tuple(choices()) if callable(choices) else choices


def describe_value(value):
    """repr (cut at 80 characters) and type: "'3' (str)"."""
    text = repr(value)
    return f"{text if len(text) <= 80 else text[:77] + '...'} ({type(value).__name__})"


def checked_value(name, value, annotation, metadata, required, error):
    """The value to store for field `name`, or raises `error` (one line)."""
    if value is None and required:
        raise error(f"--{name} is required")
    members = _members(annotation)
    bounds = metadata.get("bounds")
    ok, stored = _convert(value, members)
    if not ok:
        within = f" {describe_bounds(bounds)}" if bounds else ""
        raise error(f"--{name}: expected {_expected(members)}{within}, got {describe_value(value)}")
    value = stored
    choices = choices_of(metadata)
    if choices and value not in choices:
        raise error(f"--{name}: expected one of {', '.join(choices)}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        what = "a finite number" + (f" {describe_bounds(bounds)}" if bounds else "")
        raise error(f"--{name}: expected {what}, got {value!r}")
    if (
        bounds
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not _within(value, bounds)
    ):
        what = "an integer" if isinstance(value, int) else "a finite number"
        unset = " or None" if _NONE in members else ""
        raise error(f"--{name}: expected {what} {describe_bounds(bounds)}{unset}, got {value!r}")
    return value
