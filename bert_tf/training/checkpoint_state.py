"""The checkpoints in a checkpoint directory, read without TensorFlow, and write failures.

TF's `checkpoint` state file lists `ckpt-<step>` prefixes (newest last); it is rewritten only
after a save is complete. `candidates` gives every checkpoint worth trying, newest first (the
listed ones, plus any `ckpt-<n>.index` the state file no longer names), so a corrupt newest
checkpoint falls back to the previous one. `last_good` is the newest listed checkpoint whose
files exist, for messages ("the last good checkpoint is ...").
"""

import errno
import glob
import os
import re
import shutil

STATE_FILE = "checkpoint"
_PATH_LINE = re.compile(r'^(all_)?model_checkpoint_path:\s*"(.*)"\s*$')
_STEP = re.compile(r"ckpt-(\d+)$")


def _listed(checkpoint_dir):
    """Prefixes named by the state file, oldest first (the latest last)."""
    path = os.path.join(checkpoint_dir, STATE_FILE)
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    latest, every = None, []
    for line in lines:
        m = _PATH_LINE.match(line.strip())
        if m:
            name = m.group(2)
            full = name if os.path.isabs(name) else os.path.join(checkpoint_dir, name)
            if m.group(1):
                every.append(full)
            else:
                latest = full
    if latest and latest not in every:
        every.append(latest)
    return every


def step_of(prefix):
    m = _STEP.search(prefix or "")
    return int(m.group(1)) if m else -1


def candidates(checkpoint_dir):
    """Every checkpoint prefix with an index file, newest (highest step) first."""
    found = {p for p in _listed(checkpoint_dir) if os.path.exists(p + ".index")}
    found.update(
        p[: -len(".index")] for p in glob.glob(os.path.join(checkpoint_dir, "ckpt-*.index"))
    )
    return sorted(found, key=step_of, reverse=True)


def last_good(checkpoint_dir):
    """The newest checkpoint the state file lists whose files exist, or None."""
    listed = [p for p in _listed(checkpoint_dir) if os.path.exists(p + ".index")]
    return max(listed, key=step_of) if listed else None


def describe_last_good(checkpoint_dir):
    latest = last_good(checkpoint_dir)
    if latest is None:
        return f"no checkpoint was written yet in {checkpoint_dir}"
    return f"the last good checkpoint is {latest} (step {step_of(latest)})"


def is_disk_full(error):
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(error)
    return "No space left on device" in text or "Disk quota exceeded" in text


def _reason(error):
    if is_disk_full(error):
        return "no space left on device"
    text = (
        getattr(error, "strerror", None) or getattr(error, "message", None) or str(error)
    ).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]


def write_failure(what, error, checkpoint_dir):
    """One line: what could not be written, why, and the last good checkpoint."""
    return (
        f"cannot write {what}: {_reason(error)}; {describe_last_good(checkpoint_dir)}, "
        "and nothing already written was changed: free space and rerun the same command "
        "to resume"
    )


def remove_partial(directory, step):
    """Removes the temporary files of a failed save of ckpt-<step> (never complete ones:
    a complete save is listed in the state file)."""
    prefix = os.path.join(directory, f"ckpt-{step}")
    if prefix in _listed(directory):
        return
    for path in glob.glob(prefix + "_temp*") + glob.glob(prefix + ".*"):
        try:
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        except OSError:
            pass  # best effort: a stale temp file does not hurt the next save
