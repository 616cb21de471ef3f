"""Finding the corrupt or truncated record in a set of TFRecord files.

tf.data reports a damaged record as `DataLossError: corrupted record at 802902` (or
`truncated record at ...`) without naming the file. `find_corrupt_record(files)` reads the
files one by one (framing and CRCs checked by TF's reader, nothing parsed)
and returns the first damaged one with the number of good records before the damage and the
byte offset, so the caller can name it and, if asked to, read only the good records of that
file (`pretraining_dataset(record_limits={path: good_records})`).

The scan runs only after a read failed; it never runs on the healthy path.
"""

import dataclasses
import os
import re

import tensorflow as tf

SCAN_BATCH = 4096
_OFFSET = re.compile(r"(corrupted|truncated) record at (\d+)")


@dataclasses.dataclass
class CorruptRecord:
    path: str
    good_records: int  # records before the damage (all readable)
    offset: int  # byte offset of the damaged record (-1 if TF did not say)
    reason: str  # TF's one-line reason, e.g. "corrupted record at 802902"

    @property
    def skipped_bytes(self):
        size = os.path.getsize(self.path)
        return size - self.offset if self.offset >= 0 else None

    def describe(self):
        where = f" at byte offset {self.offset}" if self.offset >= 0 else ""
        return (
            f"{self.path}: record {self.good_records + 1} is corrupt or truncated{where} "
            f"({self.reason})"
        )


def _reason(error):
    text = (getattr(error, "message", None) or str(error)).strip()
    m = _OFFSET.search(text)
    if m:
        return m.group(0), int(m.group(2))
    return (text.splitlines()[0] if text else type(error).__name__)[:200], -1


def _count_readable(dataset):
    """(records read before an error, the error or None)."""
    count = 0
    try:
        for batch in dataset:
            count += int(batch.shape[0])
    except (
        tf.errors.DataLossError,
        tf.errors.InvalidArgumentError,
        tf.errors.OutOfRangeError,
    ) as e:
        return count, e
    return count, None


def scan_file(path):
    """A CorruptRecord for `path`, or None if every record reads."""
    count, error = _count_readable(tf.data.TFRecordDataset(path).batch(SCAN_BATCH))
    if error is None:
        return None
    # TF's reader stops a file at its first damaged record: what ignore_errors() lets through
    # is exactly the good records before it.
    good = (
        tf.data.TFRecordDataset(path)
        .ignore_errors()
        .reduce(tf.constant(0, tf.int64), lambda n, _: n + 1)
    )
    reason, offset = _reason(error)
    return CorruptRecord(path, int(good), offset, reason)


def find_corrupt_record(files, skip=()):
    """The first damaged file among `files` (not in `skip`), or None."""
    for path in files:
        if path in skip:
            continue
        found = scan_file(path)
        if found is not None:
            return found
    return None
