"""The situations of the data-loss tests (tests/test_ownership.py, tests/apps/test_data_loss.py)
and `tree`, the hash of every byte a user has under a folder."""

import hashlib
import json
import os


def tree(root):
    """{relative path: sha256 of a file / "dir" / "-> target" of a symlink} of `root`."""
    out = {}
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(parent, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                out[rel] = "-> " + os.readlink(path)
            elif os.path.isdir(path):
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


def write(path, text="user data\n"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def home_like(root):
    """A folder bert-tf never wrote, holding the names a model dir has (and more)."""
    for name in (
        "logs/today.log",
        "checkpoints/backup.zip",
        "Documents/cv.odt",
        "predictions.xlsx",
        "vocab.txt",
        "eval_results.json",
    ):
        write(os.path.join(root, name))
    write(os.path.join(root, "config.json"), json.dumps({"theme": "dark"}))
    return str(root)


def legacy_model_dir(root, extra=()):
    """A model dir written before the ownership record existed."""
    write(
        os.path.join(root, "config.json"),
        json.dumps(
            {"format": "bert_tf", "encoder": {}, "preprocessing": {}, "task": {"type": "classify"}}
        ),
    )
    for name in (
        "vocab.txt",
        "model.weights.h5",
        "eval_results.json",
        "predictions.jsonl",
        "checkpoints/ckpt-1.index",
        "logs/train/events",
        "data/train.txt",
    ) + extra:
        write(os.path.join(root, name))
    return str(root)
