"""Content fingerprints of a run's input files, recorded in the model directory.

A model directory records what produced it: the settings (config.json "training") and, under
"training" -> "input_fingerprints", a fingerprint of every input file. A rerun compares both
and refuses a different run in one line (see `describe_differences`).

Fingerprint of one file: {"size": bytes, "sha256": hex, "method": "full" | "sampled"}.
  * full (files up to FULL_HASH_LIMIT = 64 MiB): the SHA-256 of the whole content, streamed
    in 1 MiB blocks.
  * sampled (larger files, e.g. pre-training shards or weights): the SHA-256 of the size
    (8 bytes), the first MiB and the last MiB. A change that keeps the size and both ends
    (an edit in the middle of a multi-GB file) goes unnoticed; any appended, removed or
    truncated data, and any different file, is seen. Reading 2 MiB per file keeps a
    1000-shard data set at seconds.
Modification times are not used: copying or touching a file keeps its fingerprint, and a
rewrite with the same size and mtime does not.
A directory (an --init_checkpoint) is fingerprinted file by file (top level, hidden files
and run outputs such as eval_results.json excluded); a `tfds:` source by its name only.
"""

import hashlib
import os

FULL_HASH_LIMIT = 64 << 20
BLOCK = 1 << 20
# Files a model directory gains from being used or trained on, not its content.
_VOLATILE = ("eval_results.json", "finetune_state.json", "predictions")


def file_fingerprint(path):
    size = os.path.getsize(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        if size <= FULL_HASH_LIMIT:
            for block in iter(lambda: f.read(BLOCK), b""):
                digest.update(block)
            method = "full"
        else:
            digest.update(size.to_bytes(8, "little"))
            digest.update(f.read(BLOCK))
            f.seek(size - BLOCK)
            digest.update(f.read(BLOCK))
            method = "sampled"
    return {"size": size, "sha256": digest.hexdigest(), "method": method}


def _dir_fingerprint(path):
    files = {}
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if name.startswith(".") or name.startswith(_VOLATILE) or not os.path.isfile(full):
            continue
        files[name] = file_fingerprint(full)["sha256"]
    digest = hashlib.sha256("\n".join(f"{k} {v}" for k, v in files.items()).encode())
    return {"files": len(files), "sha256": digest.hexdigest(), "method": "directory"}


def fingerprint(source):
    """The fingerprint of a file, a directory or a `tfds:` name (None for None)."""
    if source is None:
        return None
    if isinstance(source, str) and source.startswith("tfds:"):
        return {
            "tfds": source,
            "sha256": hashlib.sha256(source.encode()).hexdigest(),
            "method": "name",
        }
    if os.path.isdir(source):
        return _dir_fingerprint(source)
    return file_fingerprint(source)


def files_fingerprint(paths, list_limit=1000):
    """One fingerprint for a list of files (e.g. record shards, in the given order's sorted
    set): sha256 over the per-file digests; the per-file digests by base name are kept when
    there are at most `list_limit` files (to name the file that differs)."""
    per_file = {path: file_fingerprint(path)["sha256"] for path in sorted(set(paths))}
    digest = hashlib.sha256("\n".join(sorted(per_file.values())).encode())
    out = {
        "files": len(per_file),
        "sha256": digest.hexdigest(),
        "bytes": sum(os.path.getsize(p) for p in per_file),
    }
    if len(per_file) <= list_limit:
        out["per_file"] = {os.path.basename(p): d for p, d in per_file.items()}
    return out


def _short(fp):
    return "none" if fp is None else fp["sha256"][:12]


def _files_detail(old, new):
    a, b = old.get("per_file"), new.get("per_file")
    if not a or not b:
        return f"{old.get('files')} vs {new.get('files')} files"
    known = set(a.values())
    changed = sorted(name for name, d in b.items() if d not in known)
    if changed:
        return f"e.g. {changed[0]} is new or changed; {len(changed)} of {len(b)} files"
    return f"{len(a)} recorded files vs {len(b)} now"


def describe_differences(recorded, current):
    """['train_file content differs (sha256 abc... vs def...)', ...] for two dicts
    {name: fingerprint}; names missing from `recorded` are not compared."""
    out = []
    for name in sorted(current):
        if name not in recorded:
            continue
        old, new = recorded[name], current[name]
        if (old or {}).get("sha256") == (new or {}).get("sha256"):
            continue
        if old is not None and new is not None and "per_file" in old:
            out.append(f"{name} content differs ({_files_detail(old, new)})")
        else:
            out.append(
                f"{name} content differs (sha256 {_short(old)}... recorded, {_short(new)}... now)"
            )
    return out


def describe_setting_differences(recorded, current, ignore=()):
    """['learning_rate=0.001 recorded, 0.002 now', ...] over the keys of `current`."""
    out = []
    for key in sorted(current):
        if key in ignore or key not in recorded:
            continue
        if recorded[key] != current[key]:
            out.append(f"{key}={recorded[key]!r} recorded, {current[key]!r} now")
    return out
