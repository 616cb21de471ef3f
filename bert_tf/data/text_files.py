"""Opening task-data files the same way in every reader: UTF-8 (a leading BOM is dropped),
any line end (LF, CRLF), and one-line errors that name the file and line.

    check_file(path)           a directory, a missing path or a non-regular file -> DataError
    iter_lines(path)           the decoded lines, line ends kept (for csv.reader and friends)
    read_text(path)            the whole decoded text (for JSON)
    looks_binary(path)         why the file's head is not text (NUL bytes, mostly non-UTF-8)

A byte that is not UTF-8 fails with "<file>:<line>: not UTF-8: byte 0xff at column 12 ...".
"""

import codecs
import json
import os

from bert_tf.data.errors import DataError
from bert_tf.input_files import gfile, is_remote

BINARY_SNIFF_BYTES = 8192


def check_file(path):
    """Raises DataError unless `path` is a readable regular file."""
    if os.path.isdir(path):
        raise DataError(path, "is a directory, expected a file")
    if not os.path.exists(path):
        raise DataError(path, "no such file")
    if not os.path.isfile(path):
        raise DataError(path, "not a regular file")
    if not os.access(path, os.R_OK):
        raise DataError(path, "not readable (permission denied)")


def _decode_error(path, data, error, line):
    """DataError for a UnicodeDecodeError in `data` (one line of bytes, or the whole file)."""
    line_start = data.rfind(b"\n", 0, error.start) + 1
    line += data.count(b"\n", 0, error.start)
    return DataError(
        path,
        f"not UTF-8: byte 0x{data[error.start]:02x} at column "
        f"{error.start - line_start + 1} (expected UTF-8 text; re-encode the file, "
        f"e.g. `iconv -f latin1 -t utf-8`)",
        line=line,
    )


def _decode(path, data, line):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _decode_error(path, data, e, line) from None


def iter_lines(path):
    """Yields the file's lines as str (line ends kept), streaming; BOM dropped."""
    check_file(path)
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            yield _decode(path, raw, number)


def iter_json_objects(path, on_blank=None):
    """Yields (line number, dict) for each JSON object line of a JSONL file; blank lines are
    skipped (`on_blank()` called for each). Bad JSON or a non-object is a DataError."""
    for number, line in enumerate(iter_lines(path), 1):
        if not line.strip():
            if on_blank is not None:
                on_blank()
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(path, f"invalid JSON ({e.msg})", line=number) from None
        if not isinstance(row, dict):
            raise DataError(path, f"expected a JSON object, got {type(row).__name__}", line=number)
        yield number, row


def read_text(path):
    """The whole file as str; BOM dropped; a bad byte names its line."""
    check_file(path)
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    return _decode(path, data, 1)


def looks_binary(path, size=BINARY_SNIFF_BYTES):
    """Why the file's first `size` bytes are not text ("NUL byte at offset 12", "38% of the
    bytes are not UTF-8"), or None. Text has no NUL bytes (UTF-16 text has: it is not UTF-8
    either), and at most a stray bad byte."""
    if is_remote(path):
        with gfile().GFile(path, "rb") as f:
            head = f.read(size)
    else:
        with open(path, "rb") as f:
            head = f.read(size)
    offset = head.find(b"\x00")
    if offset >= 0:
        return f"NUL byte at offset {offset}"
    if len(head) == size:
        head = head[:-3]  # a character cut at the end of the sample is not an error
    bad = head.decode("utf-8", errors="replace").count("\ufffd")
    if head and bad > 0.1 * len(head):
        return f"{100 * bad // len(head)}% of the first {len(head)} bytes are not UTF-8"
    return None
