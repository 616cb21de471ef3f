"""Writing an export where a server will find it: private temp dirs, modes, stale clean-up.

Every export is built in a hidden temp directory next to its final place and renamed into
place when complete (TF Serving ignores names that are not numbers). Two fix-ups:
* modes: the finished tree gets 0755 dirs / 0644 files (umask respected), see
  bert_tf.file_modes, so a server running as another user can read it;
* stale temp dirs: an export killed mid-way (SIGKILL, power loss) leaves its temp dir behind.
  Every temp dir carries bert-tf's owner mark (bert_tf/ownership.py: host, boot, pid,
  process start time) while it is being written. The next export into the same directory
  removes only marked dirs whose process is gone on this host, with one log line each; an
  unmarked `.export-*` (a user's `.export-backup/`, another tool's) or another host's is
  never touched, however old. The mark is removed just before the rename into place.
Temp dirs are named `.export-<host>-<pid>-<random>`.
"""

import errno
import logging
import os
import re
import shutil
import socket
import tempfile

from bert_tf import ownership
from bert_tf.file_modes import apply_default_modes

log = logging.getLogger(__name__)

TEMP_PREFIX = ".export-"


def _host():
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


def temp_dir(parent):
    """A new private temp dir in `parent`, marked as this process's."""
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f"{TEMP_PREFIX}{_host()}-{os.getpid()}-")
    ownership.write_owner_mark(tmp)
    return tmp


def clean_stale_temp_dirs(parent):
    """Removes the `.export-*` dirs in `parent` that carry bert-tf's owner mark of a process
    of this host that has ended (logging each); returns their paths."""
    if not os.path.isdir(parent):
        return []
    removed = []
    for name in sorted(os.listdir(parent)):
        path = os.path.join(parent, name)
        if not name.startswith(TEMP_PREFIX) or os.path.islink(path) or not os.path.isdir(path):
            continue
        mark = ownership.read_owner_mark(path)
        if ownership.owner_is_gone(mark):
            shutil.rmtree(path, ignore_errors=True)
            log.warning(
                "removed stale export temp dir %s (its export process %s is gone; "
                "left by a killed export)",
                path,
                mark["pid"],
            )
            removed.append(path)
    return removed


def finish(tmp):
    """Makes a complete temp tree readable (see bert_tf.file_modes) and removes its owner
    mark, just before it is renamed into place."""
    os.remove(os.path.join(tmp, ownership.OWNER_MARK))
    return apply_default_modes(tmp)


def is_disk_full(exc):
    """True for a write that failed because the device is full (OSError ENOSPC, or TF's
    file-system error carrying that message)."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return "no space left on device" in str(exc).lower()


def disk_full_message(target, last_good):
    """One line for a full disk during an export: what was not written, what is still good."""
    good = f"the last good export is {last_good}" if last_good else "no earlier export exists"
    return (
        f"cannot write {target}: no space left on device; nothing was published (its temp "
        f"dir was removed) and {good}, unchanged"
    )
