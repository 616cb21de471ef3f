"""One run per model directory: a lock file `DIR/.lock` held while a run trains or writes.

    with RunLock(model_dir, log=print):
        ...train, write config.json, checkpoints, eval_results.json...

The lock is an exclusive `fcntl.flock` on `DIR/.lock`, held for the life of the run; the file
holds the holder's PID, host, process start time and command as JSON. The kernel drops a
flock when its process dies (SIGKILL included), so:
  * a second run on the same directory fails at once with `ModelDirLockedError` naming the
    holder (PID, host, start time);
  * a lock left by a dead process (its JSON still in the file) is taken over with a log
    note naming the old holder.
When the run ends the file is emptied; it is removed (and the directory, if the run created it
and left it empty, e.g. after a bad input) only if this run created it, so a run that fails its
checks leaves nothing behind. (A run starting in the same microseconds could then lock an
unlinked file: a window far narrower than any real double start.) On a filesystem shared
between hosts (NFS) flock reaches the other host through the lock manager; a leftover lock
naming another host whose process cannot be checked from here is refused, naming it, rather
than guessed dead.
"""

import datetime
import errno
import fcntl
import json
import os
import socket
import sys

from bert_tf.errors import BertTfError

LOCK_FILE = ".lock"


class ModelDirLockedError(BertTfError, RuntimeError):
    """Another run holds the model directory's lock."""


class NotAModelDirError(BertTfError, NotADirectoryError):
    """The model directory path is an existing file."""


def pid_alive(pid):
    """True while a process `pid` exists on this host (also one of another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _describe(holder):
    return (
        f"PID {holder.get('pid')} on host {holder.get('host')} since "
        f"{holder.get('started')} ({holder.get('command', '?')})"
    )


class RunLock:
    """Context manager holding `DIR/.lock` (see the module doc). `log(line)` gets the note
    about a taken-over stale lock."""

    def __init__(self, model_dir, log=print):
        self.model_dir = model_dir
        self.path = os.path.join(model_dir, LOCK_FILE)
        self.log = log
        self._fd = None
        self._created_dir = self._created_file = False

    def acquire(self):
        if os.path.exists(self.model_dir) and not os.path.isdir(self.model_dir):
            raise NotAModelDirError(
                f"model directory {self.model_dir} is an existing file, not a directory"
            )
        try:
            self._created_dir = not os.path.isdir(self.model_dir)
            os.makedirs(self.model_dir, exist_ok=True)
            self._created_file = not os.path.exists(self.path)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise ModelDirLockedError(
                f"cannot create the lock file {self.path}: {e.strerror or e}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = self._read(fd)
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise ModelDirLockedError(f"cannot lock {self.path}: {e.strerror}") from None
            raise ModelDirLockedError(
                f"{self.model_dir} is in use by another run: {_describe(holder)}; wait for it "
                f"to finish or use another --model_dir"
            ) from None
        previous = self._read(fd)
        if previous:
            host = socket.gethostname()
            if previous.get("host") not in (None, host):
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                raise ModelDirLockedError(
                    f"{self.path} names a run on another host: {_describe(previous)}; if that "
                    f"run is no longer running, remove {self.path}"
                )
            if previous.get("pid") != os.getpid():
                alive = isinstance(previous.get("pid"), int) and pid_alive(previous["pid"])
                self.log(
                    f"taking over the stale lock {self.path} of a run that ended without "
                    f"releasing it: {_describe(previous)}"
                    + (" (that PID now belongs to another process)" if alive else "")
                )
        self._write(fd)
        self._fd = fd
        return self

    @staticmethod
    def _read(fd):
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            text = os.read(fd, 65536).decode("utf-8", "replace").strip()
            return json.loads(text) if text else {}
        except (OSError, ValueError):
            return {"pid": "?", "host": "?", "started": "?", "command": "unreadable lock file"}

    def _write(self, fd):
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)[:300],
        }
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(holder) + "\n").encode())

    def release(self):
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            if self._created_file:
                os.remove(self.path)
                if self._created_dir and not os.listdir(self.model_dir):
                    os.rmdir(self.model_dir)
        except OSError:
            pass  # nothing here can stop the release; the flock goes with the fd
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
