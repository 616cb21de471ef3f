"""What bert-tf wrote, and the checks that keep every app from replacing or removing anything
else. One helper for pre-training, fine-tuning, apps.convert, apps.create_pretraining_data
and every export.

The ownership record: a directory bert-tf writes into holds `.bert_tf_manifest.json`
(written atomically, before the files it names), one entry per top-level file or folder a
bert-tf app created there and the app that created it:

    {"format": "bert_tf_manifest", "version": 1,
     "entries": {"checkpoints": "finetune", "config.json": "finetune", "data": "default_job",
                 "model.tflite": "export.tflite", ...}}

A name is bert-tf's ("owned") when the record lists it, or it is a leftover temp file of
an owned name (`.config.json.ab12cd_9`, atomic_io's), or it is `.lock` / the record itself.
A directory written before the record existed (no record, config.json with
"format": "bert_tf") owns the exact names bert-tf model dirs held (LEGACY_NAMES); everything
else in it is the user's. `plan_model_dir` checks a run (reading only) and returns a
`RunPlan` whose `apply()` removes and records; every refusal is one `OwnershipError` line:
  * a path the run writes that exists and is not bert-tf's (e.g. the user's vocab.txt);
  * with --overwrite_model_dir, a directory that holds anything bert-tf did not write (it
    lists a few); only entries of training runs are removed (RUN_WRITERS), never the default
    job's data/ or an export written into the directory;
  * a path the run writes or removes that is a symbolic link (bert-tf never makes one);
  * an input file inside a path the run writes or removes; a --model_dir that is, contains
    or lies inside a checkpoint it reads (symlinks resolved).
Exports' temp dirs carry an owner mark (`write_owner_mark`: host, boot, pid, process start
time); `owner_is_gone` is True only for a mark of this host whose process has ended.
"""

import dataclasses
import datetime
import json
import os
import re
import shutil
import socket

from bert_tf.atomic_io import atomic_write_json
from bert_tf.errors import BertTfError
from bert_tf.model_dir import layout
from bert_tf.run_lock import LOCK_FILE, pid_alive

MANIFEST_FILE = ".bert_tf_manifest.json"
FORMAT = "bert_tf_manifest"
INTERNAL = (MANIFEST_FILE, LOCK_FILE)
# Entries --overwrite_model_dir removes: the outputs of training runs (and of a conversion
# into a model dir). Other writers' entries (the default job's data/, exports) are kept.
RUN_WRITERS = ("pretrain", "finetune", "convert", "legacy")
# The names model dirs held before the record existed ("data": the default job's inputs).
LEGACY_NAMES = (
    layout.CONFIG_FILE,
    layout.VOCAB_FILE,
    layout.VOCAB_FILE + ".tmp",
    layout.WEIGHTS_FILE,
    ".tmp." + layout.WEIGHTS_FILE,
    layout.CHECKPOINT_DIR,
    layout.LOG_DIR,
    layout.EVAL_RESULTS_FILE,
    "finetune_state.json",
    "skipped_records.json",
    "predictions.json",
    "predictions.jsonl",
    "predictions.txt",
)
LEGACY_KEPT = {"data": "default_job"}
_TEMP_LEFTOVER = re.compile(r"\.(?P<name>.+)\.[A-Za-z0-9_]{8}")  # tempfile.mkstemp's
OWNER_MARK = ".bert_tf_owner.json"


class OwnershipError(BertTfError, ValueError):
    """A run would replace or remove something bert-tf did not write (one line)."""


# ---- the record --------------------------------------------------------------------------
def read_record(directory):
    """{name: writer} of the directory's ownership record, or None without one."""
    path = os.path.join(os.fspath(directory), MANIFEST_FILE)
    if os.path.islink(path):
        raise OwnershipError(f"{path}: is a symbolic link (bert-tf never makes one)")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
        entries = values["entries"]
        if values.get("format") != FORMAT or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in entries.items()
        ):
            raise ValueError(f'expected "format": "{FORMAT}" and name: writer entries')
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise OwnershipError(
            f"{path}: unreadable ownership record ({e}); bert-tf cannot "
            "tell its files from yours here: use another directory"
        ) from None
    return dict(entries)


def _legacy_entries(directory):
    """A directory from before the record: the exact model-dir names when config.json says
    "format": "bert_tf", else nothing."""
    if not layout.is_model_dir(directory):
        return {}
    return {**{name: "legacy" for name in LEGACY_NAMES}, **LEGACY_KEPT}


def owned_entries(directory):
    """{name: writer} of the existing top-level entries bert-tf wrote in `directory`."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return {}
    names = set(os.listdir(directory))
    record = read_record(directory)
    record = _legacy_entries(directory) if record is None else record
    owned = {name: writer for name, writer in record.items() if name in names}
    for name in names - set(owned):
        leftover = _TEMP_LEFTOVER.fullmatch(name)
        if leftover and leftover["name"] in record:
            owned[name] = record[leftover["name"]]
    owned.update({name: "internal" for name in INTERNAL if name in names})
    return owned


def foreign_entries(directory):
    """The sorted top-level names in `directory` that bert-tf did not write."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return []
    return sorted(set(os.listdir(directory)) - set(owned_entries(directory)))


def record(directory, entries, drop=()):
    """Adds {name: writer} `entries` to the directory's record (atomically; created with the
    directory if missing), keeping the entries that still exist, dropping `drop`."""
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    old = read_record(directory)
    old = _legacy_entries(directory) if old is None else old
    names = set(os.listdir(directory))
    kept = {n: w for n, w in old.items() if n in names and n not in drop}
    atomic_write_json(
        os.path.join(directory, MANIFEST_FILE),
        {"format": FORMAT, "version": 1, "entries": {**kept, **entries}},
    )


def listing(directory, names, limit=4):
    """ "a, b/, c and 2 more" (folders end in /)."""
    shown = [n + ("/" if os.path.isdir(os.path.join(directory, n)) else "") for n in names]
    more = f" and {len(shown) - limit} more" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


# ---- path relations ----------------------------------------------------------------------
def _real(path):
    return os.path.realpath(os.fspath(path))


def _inside(path, parent):
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)


def checkpoint_dir_of(path):
    """The directory a checkpoint path reads from (a Google checkpoint prefix's folder)."""
    path = os.fspath(path)
    return (
        path
        if os.path.isdir(path) or not os.path.exists(path + ".index")
        else (os.path.dirname(path) or ".")
    )


def check_apart(
    target, source, target_flag="--model_dir", source_flag="--init_checkpoint", kept=()
):
    """Refuses a `target` directory that is, contains or lies inside `source` (realpaths).
    `kept`: entries of `target` that bert-tf wrote and this run neither writes nor removes
    (e.g. the default job's phase-1 dir); a source inside one of them is allowed."""
    t, s = _real(target), _real(checkpoint_dir_of(source))
    relation = (
        "is"
        if t == s
        else "lies inside"
        if _inside(t, s)
        else "contains"
        if _inside(s, t)
        else None
    )
    if relation == "contains" and os.path.relpath(s, t).split(os.sep)[0] in kept:
        return
    if relation:
        raise OwnershipError(
            f"{target_flag}={target} {relation} {source_flag}={source}; "
            f"write to a directory apart from what the run reads"
        )


def check_inputs_outside(directory, names, inputs):
    """Refuses an input `(flag, path)` that is or lies inside `directory`/name (realpaths)."""
    real = _real(directory)
    targets = [(n, os.path.join(real, n)) for n in names]
    for flag, path in inputs:
        if not path or "://" in os.fspath(path):
            continue
        where = _real(path)
        for name, target in targets:
            if _inside(where, target):
                relation = "is" if where == target else "lies inside"
                raise OwnershipError(
                    f"{flag}={path} {relation} {os.path.join(directory, name)}, which this "
                    f"run writes or removes; move it out of {directory}"
                )


# ---- a run's plan ------------------------------------------------------------------------
@dataclasses.dataclass
class RunPlan:
    """What a checked run will do to its directory: remove `removes`, then record `writes`
    as written by `writer` (`apply`, after every check passed)."""

    directory: str
    writer: str
    writes: tuple
    removes: tuple = ()

    def apply(self, log=None):
        """Removes the owned entries of --overwrite_model_dir, records `writes`; returns the
        removed names."""
        for name in self.removes:
            path = os.path.join(self.directory, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.remove(path)
        if self.removes and log:
            log(
                f"--overwrite_model_dir: removed the previous run's "
                f"{', '.join(self.removes)} from {self.directory} (only files bert-tf wrote)"
            )
        record(self.directory, {name: self.writer for name in self.writes}, drop=self.removes)
        return list(self.removes)


def plan_model_dir(model_dir, writer, writes, *, overwrite=False, inputs=(), sources=()):
    """Checks a run on `model_dir` (reads only; see the module doc) and returns its RunPlan.
    `writes`: the top-level names it writes; `inputs`: (flag, path) files it reads;
    `sources`: (flag, path) checkpoints it reads. Raises OwnershipError."""
    model_dir = os.fspath(model_dir)
    if os.path.lexists(model_dir) and not os.path.isdir(model_dir):
        raise OwnershipError(f"--model_dir={model_dir}: exists and is not a directory")
    names = set(os.listdir(model_dir)) if os.path.isdir(model_dir) else set()
    owned = owned_entries(model_dir)
    kept = {n for n, w in owned.items() if w not in RUN_WRITERS and n not in writes}
    for flag, source in sources:
        if source:
            check_apart(model_dir, source, source_flag=flag, kept=kept)
    foreign = sorted(names - set(owned))
    if overwrite and foreign:
        raise OwnershipError(
            f"--model_dir={model_dir} holds files bert-tf did not write ("
            f"{listing(model_dir, foreign)}); --overwrite_model_dir removes only what "
            "bert-tf wrote and refuses a directory holding anything else: move them or use "
            "a new --model_dir"
        )
    in_the_way = sorted(n for n in writes if n in names and n not in owned)
    if in_the_way:
        raise OwnershipError(
            f"--model_dir={model_dir} holds {listing(model_dir, in_the_way)}, which bert-tf "
            "did not write and this run would replace; use an empty or new --model_dir"
        )
    removes = tuple(sorted(n for n, w in owned.items() if w in RUN_WRITERS)) if overwrite else ()
    touched = sorted(set(writes) | set(removes))
    links = [n for n in touched if os.path.islink(os.path.join(model_dir, n))]
    if links:
        raise OwnershipError(
            f"--model_dir={model_dir}: {listing(model_dir, links)} is a "
            "symbolic link; bert-tf writes and removes only real files and "
            "folders it made (point --model_dir at the real directory)"
        )
    check_inputs_outside(model_dir, touched, inputs)
    return RunPlan(model_dir, writer, tuple(writes), removes)


def check_replace(directory, names, writer, overwrite, flag="--output"):
    """Refuses to replace an existing `names` entry of `directory` unless an earlier run of
    `writer` wrote it and `overwrite` is set. Returns the names to record."""
    directory = os.fspath(directory)
    owned = owned_entries(directory)
    for name in names:
        path = os.path.join(directory, name)
        if not os.path.lexists(path):
            continue
        by = None if os.path.islink(path) else owned.get(name)
        if by != writer:
            whose = (
                "bert-tf did not write it"
                if by in (None, "internal")
                else "it is a bert-tf model dir's own file"
                if by == "legacy"
                else f"bert-tf's {by} wrote it, not {writer}"
            )
            raise OwnershipError(
                f"{flag}: {path} exists and {whose}; it is never replaced: choose another path"
            )
        if not overwrite:
            raise OwnershipError(
                f"{flag}: {path} exists (an earlier {writer} wrote it); "
                "pass --overwrite to replace it"
            )
    return list(names)


# ---- owner marks of temp dirs ------------------------------------------------------------
def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def _process_start(pid):
    """Start time of process `pid` in clock ticks since boot (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def write_owner_mark(directory):
    """Marks a temp dir as this process's: host, boot, pid, process start time."""
    atomic_write_json(
        os.path.join(directory, OWNER_MARK),
        {
            "host": socket.gethostname(),
            "boot_id": _boot_id(),
            "pid": os.getpid(),
            "process_start": _process_start(os.getpid()),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
    )


def read_owner_mark(directory):
    """The owner mark of a temp dir, or None (no mark, or not bert-tf's)."""
    path = os.path.join(directory, OWNER_MARK)
    if os.path.islink(path) or not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            mark = json.load(f)
    except (OSError, ValueError):
        return None
    return mark if isinstance(mark, dict) and isinstance(mark.get("pid"), int) else None


def owner_is_gone(mark):
    """True only when the marked process ran on this host and has ended (or the host
    rebooted, or its PID now belongs to a process started later)."""
    if not mark or mark.get("host") != socket.gethostname():
        return False
    if mark.get("boot_id") and mark.get("boot_id") != _boot_id():
        return True
    if not pid_alive(mark["pid"]):
        return True
    started = mark.get("process_start")
    return started is not None and _process_start(mark["pid"]) not in (None, started)
