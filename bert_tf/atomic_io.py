"""The one way bert-tf writes a small file: atomically.

`atomic_write_text(path, text)` writes to a temp file in the same directory, flushes and
fsyncs it, gives it the mode a plain `open()` would (0666 & ~umask, usually 0644: `mkstemp`
makes 0600, and a server running as another user must read model files), then renames it over
`path`. A reader sees the old file or the new one, never half of one; a failed write (e.g. a
full disk) removes the temp file, leaves the old file unchanged and raises `AtomicWriteError`,
one line naming the file. `atomic_write_bytes` is the same for bytes, `atomic_write_json` for
a JSON value (2-space indent, sorted keys, final newline: the layout of every JSON file
bert-tf writes).

A URI (`gs://...`, anything with "://") goes through `tf.io.gfile` (write a temp object, then
rename with overwrite), which is as atomic as the file system allows.
"""

import errno
import json
import os
import tempfile

from bert_tf.errors import BertTfError
from bert_tf.file_modes import current_umask


class AtomicWriteError(BertTfError, OSError):
    """A file could not be written; its previous version, if any, is unchanged.
    `path` and `reason` say which file and why."""

    def __init__(self, path, reason):
        super().__init__(
            f"cannot write {path}: {reason}; its previous version, if any, is unchanged"
        )
        self.path, self.reason = path, reason


def failure_reason(error):
    """A short reason for a failed write: "no space left on device" for a full disk."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on device"
    text = (getattr(error, "strerror", None) or str(error) or type(error).__name__).strip()
    if "No space left on device" in text or "Disk quota exceeded" in text:
        return "no space left on device"
    return text.splitlines()[0][:200]


def write_failed(path, error):
    """The AtomicWriteError for a failed write of `path`."""
    return AtomicWriteError(path, failure_reason(error))


def atomic_write_text(path, text):
    """Writes `text` (UTF-8) to `path` atomically (see the module doc)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path, data):
    """Writes `data` (bytes) to `path` atomically (see the module doc)."""
    path = os.fspath(path)
    if "://" in path:
        _gfile_write(path, data)
        return
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and not isinstance(e, BertTfError):
            raise write_failed(path, e) from None
        raise


def json_text(values):
    """The text bert-tf writes for a JSON value."""
    return json.dumps(values, indent=2, sort_keys=True) + "\n"


def atomic_write_json(path, values):
    atomic_write_text(path, json_text(values))


def _gfile_write(path, data):
    import tensorflow as tf  # heavy: only remote (URI) outputs need TF's file systems

    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with tf.io.gfile.GFile(tmp, "wb") as f:
            f.write(data)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    except (tf.errors.OpError, OSError) as e:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)
        raise write_failed(path, e) from None
