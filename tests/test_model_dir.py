"""ModelDir: the three directory kinds, one-line errors, atomic writes, and that nobody but
bert_tf/model_dir opens a directory's config files."""

import ast
import errno
import hashlib
import os
import pathlib

import pytest

from bert_tf import atomic_io
from bert_tf.checkpoints import writers
from bert_tf.file_modes import current_umask
from bert_tf.model_dir import (
    CheckpointError,
    ModelDir,
    ModelDirError,
    ModelDirFileNotFoundError,
    ModelDirWriteError,
)
from bert_tf.model_dir.task_model import write_model_dir
from bert_tf.models import BertEncoder, BertPretrainer

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def three_kinds(tmp_path, tiny_config, tiny_vocab_file):
    """{kind: path} for a bert-tf, a Hugging Face and a Google directory of one model."""
    model = BertPretrainer(BertEncoder(tiny_config))
    paths = {
        "bert_tf": str(tmp_path / "model"),
        "hf": str(tmp_path / "hf"),
        "google": str(tmp_path / "cased_L-2_H-128_A-2"),
    }
    write_model_dir(paths["bert_tf"], model, tiny_vocab_file, lower_case=False, seq_length=24)
    writers.save_hf(model.encoder, paths["hf"], tiny_vocab_file, lower_case=True)
    writers.save_google(model.encoder, paths["google"], tiny_vocab_file)
    return paths


def test_recognises_the_three_kinds(three_kinds, tiny_config, tmp_path):
    for kind, path in three_kinds.items():
        d = ModelDir(path)
        assert d.kind == kind, path
        got = d.encoder_config()
        assert got.to_dict() == tiny_config.to_dict(), kind
        assert d.vocab_file() == os.path.join(path, "vocab.txt")
        assert d.exists() is (kind == "bert_tf")
    # casing: recorded (bert-tf), tokenizer_config.json (HF), the directory name (Google)
    assert [ModelDir(three_kinds[k]).lower_case for k in ("bert_tf", "hf", "google")] == [
        False,
        True,
        False,
    ]
    assert ModelDir(three_kinds["bert_tf"]).preprocessing()[1:] == (False, 24)
    assert ModelDir(three_kinds["hf"]).preprocessing()[1:] == (True, None)
    # a Google checkpoint prefix is a Google source too, its vocab next to it
    prefix = ModelDir(os.path.join(three_kinds["google"], "bert_model.ckpt"))
    assert prefix.kind == "google"
    assert prefix.encoder_config().num_layers == tiny_config.num_layers
    assert prefix.vocab_path == os.path.join(three_kinds["google"], "vocab.txt")
    # without a tokenizer_config.json, an HF dir's casing comes from its (uncased) vocab
    os.remove(os.path.join(three_kinds["hf"], "tokenizer_config.json"))
    assert ModelDir(three_kinds["hf"]).lower_case is True
    assert ModelDir(three_kinds["hf"]).preprocessing()[1] is None
    (tmp_path / "empty").mkdir()
    assert ModelDir(str(tmp_path / "empty")).kind is None


def test_one_line_errors_name_the_file_and_field(three_kinds, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="empty: not a BERT checkpoint directory"):
        ModelDir(str(empty)).encoder_config()
    with pytest.raises(ModelDirFileNotFoundError, match="empty: no vocab.txt"):
        ModelDir(str(empty)).vocab_file()
    hf = ModelDir(three_kinds["hf"])
    pathlib.Path(hf.file("config.json")).write_text('{"model_type": "bert"}')
    with pytest.raises(CheckpointError) as e:
        hf.encoder_config()
    assert str(e.value) == f"{hf.file('config.json')}: missing field 'vocab_size'"
    pathlib.Path(hf.file("config.json")).write_text('{"model_type": "roberta"}')
    with pytest.raises(CheckpointError, match="model_type 'roberta', expected 'bert'"):
        hf.encoder_config()
    d = ModelDir(three_kinds["bert_tf"])
    text = pathlib.Path(d.config_path).read_text()
    pathlib.Path(d.config_path).write_text(
        text.replace('"type": "pretraining"', '"type": "poetry"')
    )
    with pytest.raises(ModelDirError) as e:
        d.read_config()
    assert str(e.value).startswith(f"{d.config_path}: task.type: expected one of (")
    assert str(e.value).endswith("got 'poetry'")
    pathlib.Path(d.config_path).write_text(text[:-20])
    with pytest.raises(ModelDirError, match=r"config.json: invalid JSON \(") as e:
        d.read_config()
    assert "\n" not in str(e.value)
    os.remove(d.file("vocab.txt"))
    pathlib.Path(d.config_path).write_text(text)
    with pytest.raises(
        ModelDirFileNotFoundError,
        match="config.json: preprocessing.vocab_file .*vocab.txt does not exist",
    ):
        d.preprocessing()


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    atomic_io.atomic_write_json(str(path), {"b": 1, "a": [1, 2]})
    assert path.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(atomic_io.AtomicWriteError) as e:
        atomic_io.atomic_write_json(str(path), {"new": True})
    assert str(e.value) == (
        f"cannot write {path}: no space left on device; its previous version, if any, is unchanged"
    )
    assert path.read_text().startswith('{\n  "a"')  # the old file, whole
    assert os.listdir(tmp_path) == ["results.json"]  # no temp file left
    monkeypatch.setattr(os, "fsync", real_fsync)
    atomic_io.atomic_write_text(str(path), "new\n")
    assert path.read_text() == "new\n"


def test_model_dir_write_failure_names_the_last_good_checkpoint(tmp_path, monkeypatch):
    d = ModelDir(str(tmp_path))
    d.write_eval_results({"accuracy": 0.5})
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "ckpt-7.index").write_bytes(b"")
    (tmp_path / "checkpoints" / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-7"\nall_model_checkpoint_paths: "ckpt-7"\n'
    )
    monkeypatch.setattr(
        os,
        "replace",
        lambda *a: (_ for _ in ()).throw(OSError(errno.EDQUOT, "Disk quota exceeded")),
    )
    with pytest.raises(ModelDirWriteError) as e:
        d.write_eval_results({"accuracy": 0.9})
    assert str(e.value) == (
        f"cannot write {d.eval_results_path}: no space left on device; its previous version, "
        f"if any, is unchanged; the last good checkpoint is {tmp_path}/checkpoints/ckpt-7 "
        "(step 7)"
    )
    assert d.read_eval_results() == {"accuracy": 0.5}


# ---- nobody else opens config files ------------------------------------------------------
CONFIG_FILES = {"config.json", "bert_config.json", "tokenizer_config.json"}
READERS = {"open", "read_json", "load", "loads", "GFile", "read_text"}
LIBRARY = ("bert_tf", "export", "apps")
OWNER = ROOT / "bert_tf" / "model_dir"
# Files that still read a config file themselves (each should call the ModelDir method
# named in a comment, and then leave this set): none.
PENDING = set()


def _docstrings(tree):
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(getattr(body[0], "value", None), ast.Constant)
            ):
                out.add(id(body[0].value))
    return out


def config_file_readers(path):
    """Lines of `path` that name a config file in code (not in docs or messages), or read a
    `.config_path` (or a name set from one) with open/read_json/json.load."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs, found = _docstrings(tree), []
    in_messages = {
        id(c) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for c in ast.walk(node)
    }
    config_names = {
        t.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(
            isinstance(n, ast.Attribute) and n.attr == "config_path" for n in ast.walk(node.value)
        )
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and node.value in CONFIG_FILES
            and id(node) not in docs
            and id(node) not in in_messages
        ):
            found.append(node.lineno)
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in READERS and any(
                (isinstance(n, ast.Attribute) and n.attr == "config_path")
                or (isinstance(n, ast.Name) and n.id in config_names)
                for a in node.args
                for n in ast.walk(a)
            ):
                found.append(node.lineno)
    return found


def test_only_model_dir_code_opens_config_files(tmp_path):
    offenders = {}
    for package in LIBRARY:
        for path in sorted((ROOT / package).rglob("*.py")):
            if OWNER in path.parents:
                continue
            lines = config_file_readers(path)
            rel = str(path.relative_to(ROOT))
            if bool(lines) != (rel in PENDING):
                offenders[rel] = lines  # a new reader, or a PENDING file that is done
    assert offenders == {}
    # the check does see a reader when there is one
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import json, os\n"
        "def f(d):\n"
        "    p = d.config_path\n"
        "    return json.load(open(p))\n"
        "def g(root):\n"
        "    return open(os.path.join(root, 'bert_config.json')).read()\n"
    )
    assert sorted(set(config_file_readers(probe))) == [4, 6]


def test_what_other_modules_read_through_model_dir(three_kinds, tiny_config, tmp_path):
    from bert_tf.model_dir import encoder_values_from_json

    d = ModelDir(three_kinds["bert_tf"])
    assert d.training_record() == {}
    assert d.read_config_if_any()["preprocessing"]["seq_length"] == 24
    assert ModelDir(str(tmp_path / "nothing")).training_record() is None
    assert d.task() == {"type": "pretraining"}
    # an encoder config from any of the JSON files: bert-tf, Hugging Face, Google
    for path in (
        d.config_path,
        os.path.join(three_kinds["hf"], "config.json"),
        os.path.join(three_kinds["google"], "bert_config.json"),
    ):
        assert encoder_values_from_json(path) == tiny_config.to_dict(), path
    d.write_json("state.json", {"history": [1]})
    assert d.read_json("state.json") == {"history": [1]}


def test_one_glob_expander(tmp_path):
    from bert_tf import input_files

    for name in ("b.txt", "a.txt", "c.log"):
        (tmp_path / name).write_text(name)
    pattern = f" {tmp_path}/*.txt , {tmp_path}/a.txt,,{tmp_path}/*.log"
    assert input_files.expand_patterns(pattern, ValueError) == [
        str(tmp_path / "a.txt"),
        str(tmp_path / "b.txt"),
        str(tmp_path / "c.log"),
    ]
    with pytest.raises(KeyError, match="nope"):
        input_files.expand_patterns([f"{tmp_path}/nope*"], KeyError)
    assert input_files.file_sha256(str(tmp_path / "a.txt")) == hashlib.sha256(b"a.txt").hexdigest()
