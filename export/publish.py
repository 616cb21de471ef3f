"""Writing an export where a server will find it: private temp dirs, modes, stale clean-up.

Every export is built in a hidden temp directory next to its final place and renamed into
place when complete (TF Serving ignores names that are not numbers). Two fix-ups:
* modes: the finished tree gets 0755 dirs / 0644 files (umask respected), see
  bert_tf.file_modes, so a server running as another user can read it;
* stale temp dirs: an export killed mid-way (SIGKILL, power loss) leaves its temp dir behind.
  The next export into the same directory removes the ones no running export can own: those
  named after a process of this host that no longer exists, and any older than
  STALE_AFTER_SECONDS (no export runs that long), with one log line each.
Temp dirs are named `.export-<host>-<pid>-<random>` so that the owner can be checked.
"""

import errno
import logging
import os
import re
import shutil
import socket
import tempfile
import time

from bert_tf.file_modes import apply_default_modes
from bert_tf.run_lock import pid_alive

log = logging.getLogger(__name__)

TEMP_PREFIX = ".export-"
STALE_AFTER_SECONDS = 24 * 3600
_OWNED = re.compile(r"\.export-(?P<host>[A-Za-z0-9_.]+)-(?P<pid>\d+)-[A-Za-z0-9_]+")


def _host():
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


def temp_dir(parent):
    """A new private temp dir in `parent` named after this host and process."""
    os.makedirs(parent, exist_ok=True)
    return tempfile.mkdtemp(dir=parent, prefix=f"{TEMP_PREFIX}{_host()}-{os.getpid()}-")


def _newest_mtime(root):
    newest = os.lstat(root).st_mtime
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            try:
                newest = max(newest, os.lstat(os.path.join(parent, name)).st_mtime)
            except OSError:
                pass
    return newest


def _stale_reason(path, name, max_age, now):
    """Why the temp dir at `path` is stale, or None while an export may still own it."""
    owner = _OWNED.fullmatch(name)
    if owner and owner["host"] == _host() and not pid_alive(int(owner["pid"])):
        return f"its export process {owner['pid']} is gone"
    age = now - _newest_mtime(path)
    if age > max_age:
        return f"untouched for {age / 3600:.1f} h"
    return None


def clean_stale_temp_dirs(parent, max_age=STALE_AFTER_SECONDS, now=None):
    """Removes stale `.export-*` dirs in `parent` (logging each); returns their paths."""
    if not os.path.isdir(parent):
        return []
    now = time.time() if now is None else now
    removed = []
    for name in sorted(os.listdir(parent)):
        path = os.path.join(parent, name)
        if not name.startswith(TEMP_PREFIX) or os.path.islink(path) or not os.path.isdir(path):
            continue
        reason = _stale_reason(path, name, max_age, now)
        if reason:
            shutil.rmtree(path, ignore_errors=True)
            log.warning("removed stale export temp dir %s (%s; left by a killed export)",
                        path, reason)
            removed.append(path)
    return removed


def finish(tmp):
    """Makes a complete temp tree readable (see bert_tf.file_modes) before it is renamed."""
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
    return (f"cannot write {target}: no space left on device; nothing was published (its temp "
            f"dir was removed) and {good}, unchanged")
