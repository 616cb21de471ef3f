"""apps.convert: import into a bert-tf model dir and export to HF / Google, never clobbering."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bert_tf import BertClassifier, BertEncoder, BertPretrainer, load_encoder, load_task_model
from bert_tf.checkpoints import writers
from bert_tf.checkpoints.convert import convert
from bert_tf.checkpoints.sources import CheckpointError
from bert_tf.model_dir.task_model import write_model_dir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(0.0, 0.3, v.shape).astype("float32"))
    return model


def _same(a, b):
    assert len(a.weights) == len(b.weights)
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.path)


def _run(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "apps.convert", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def hf_dir(tiny_config, tiny_vocab_file, tmp_path):
    encoder = _randomize(BertEncoder(tiny_config))
    path = str(tmp_path / "hf")
    writers.save_hf(encoder, path, tiny_vocab_file, lower_case=False)
    return path, encoder


def test_cli_imports_and_refuses_to_overwrite(hf_dir, tmp_path):
    src, encoder = hf_dir
    out = str(tmp_path / "model")
    result = _run(f"--input={src}", f"--output={out}", "--to=bert_tf", "--seq_length=64")
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["task"] == {"type": "pretraining"}
    assert config["preprocessing"] == {
        "vocab_file": "vocab.txt",
        "lower_case": False,
        "seq_length": 64,
    }
    _same(encoder, load_encoder(out))
    before = sorted(os.listdir(out))
    mtime = os.path.getmtime(os.path.join(out, "model.weights.h5"))

    result = _run(f"--input={src}", f"--output={out}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"convert: {out}: exists and is not empty (pass overwrite to replace it)"
    )
    assert sorted(os.listdir(out)) == before
    assert os.path.getmtime(os.path.join(out, "model.weights.h5")) == mtime


def test_cli_documents_every_flag():
    result = _run("--helpfull")
    for flag in ("--input", "--output", "--to", "--overwrite", "--seq_length"):
        assert flag in result.stdout, flag


def test_round_trip_through_every_format(tiny_config, tiny_vocab_file, tmp_path):
    model = _randomize(BertPretrainer(BertEncoder(tiny_config)))
    start = str(tmp_path / "start")
    write_model_dir(start, model, tiny_vocab_file, True)
    convert(start, str(tmp_path / "hf"), "hf")
    convert(str(tmp_path / "hf"), str(tmp_path / "google"), "google")
    convert(str(tmp_path / "google"), str(tmp_path / "end"), "bert_tf")
    end = load_task_model(str(tmp_path / "end"))
    assert isinstance(end, BertPretrainer)
    _same(model, end)  # MLM and NSP heads survive too
    assert open(os.path.join(tmp_path / "end", "vocab.txt")).read() == open(tiny_vocab_file).read()
    # No staging directories are left next to the outputs.
    assert sorted(os.listdir(tmp_path)) == ["end", "google", "hf", "start", "vocab.txt"]


def test_overwrite_replaces_only_an_earlier_conversion(hf_dir, tiny_config, tmp_path):
    src, _ = hf_dir
    out = tmp_path / "out"
    convert(src, str(out), "hf")
    assert json.load(open(out / ".bert_tf_manifest.json"))["entries"]["config.json"] == "convert"
    with pytest.raises(CheckpointError, match="exists and is not empty"):
        convert(src, str(out), "google")
    convert(src, str(out), "google", overwrite=True)
    assert "config.json" not in os.listdir(out) and "bert_model.ckpt.index" in os.listdir(out)
    (out / "old.txt").write_text("x")  # a file of the user's: never replaced
    with pytest.raises(
        CheckpointError,
        match=r"holds files bert-tf's runs and conversions "
        r"did not write \(old.txt\)",
    ):
        convert(src, str(out), "hf", overwrite=True)
    assert (out / "old.txt").read_text() == "x" and "bert_model.ckpt.index" in os.listdir(out)


def test_task_model_exports_its_encoder(tiny_config, tiny_vocab_file, tmp_path, caplog):
    model = _randomize(BertClassifier(BertEncoder(tiny_config), 3))
    src = str(tmp_path / "clf")
    write_model_dir(
        src, model, tiny_vocab_file, True, task={"type": "classify", "label_names": ["a", "b", "c"]}
    )
    convert(src, str(tmp_path / "hf"), "hf")
    assert "writing its encoder only" in caplog.text
    _same(model.encoder, load_encoder(str(tmp_path / "hf")))
    # bert_tf -> bert_tf keeps the task.
    convert(src, str(tmp_path / "copy"), "bert_tf")
    copy = load_task_model(str(tmp_path / "copy"))
    assert isinstance(copy, BertClassifier) and copy.num_classes == 3
    _same(model, copy)


def test_failed_conversion_leaves_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError):
        convert(str(tmp_path / "empty"), str(tmp_path / "out"), "hf")
    assert sorted(os.listdir(tmp_path)) == ["empty"]


@pytest.mark.parametrize("to", ["hf", "google"])
def test_outputs_are_readable_by_other_users_as_the_umask_allows(hf_dir, tmp_path, to):
    import stat

    src, _ = hf_dir
    out = str(tmp_path / ("out_" + to))
    old = os.umask(0o022)
    try:
        convert(src, out, to)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o755  # not mkdtemp's 0700
    for name in os.listdir(out):
        assert stat.S_IMODE(os.stat(os.path.join(out, name)).st_mode) == 0o644, name


def test_cli_config_with_fewer_layers_than_the_weights_fails(hf_dir, tmp_path):
    """A config that does not fit its weights is refused in one line (strict loading), and
    nothing is written."""
    src, _ = hf_dir
    config_path = os.path.join(src, "config.json")
    config = json.load(open(config_path))
    config["num_hidden_layers"] = 1
    json.dump(config, open(config_path, "w"))
    out = str(tmp_path / "model")
    result = _run(f"--input={src}", f"--output={out}", "--to=bert_tf")
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(
        f"convert: {src}/model.safetensors: 16 tensor(s) not used by the model (the checkpoint "
        "has 2 layers, its config num_hidden_layers=1): encoder.layer.1."
    ), line
    assert line.endswith(" ... (loading is strict: a checkpoint must fit its config exactly)")
    assert not os.path.exists(out) and sorted(os.listdir(tmp_path)) == ["hf", "vocab.txt"]
