"""The Python API equals the CLI: `bert_tf.finetune(FinetuneConfig(...))` and
`bert_tf.pretrain(PretrainConfig(...))` run in-process (as from a notebook), resolve
precision "auto" themselves, and leave the global Keras dtype policy as they found it, also
when the run fails. config.json records the config and reads back into an equal one."""

import contextlib
import json
import logging
import os
import random

import keras
import numpy as np
import pytest
import tensorflow as tf

import bert_tf
from bert_tf.errors import BertTfError
from bert_tf.recipes import finetuning
from bert_tf.recipes.pretrain_config import PretrainingJobError
from bert_tf.recipes.pretraining import PretrainingRecipe
from bert_tf.recipes.run_record import RunMismatchError
from bert_tf.training import distribute
from tests.apps.test_finetune import FIXTURES, tiny_model_dir  # noqa: F401
from tests.apps.test_pretrain import _settings, data  # noqa: F401

# A policy no run here picks, so "restored" cannot pass by accident.
OUTSIDE = "mixed_float16"


@pytest.fixture
def outside_policy():
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(OUTSIDE)
    yield
    keras.config.set_dtype_policy(before)


def _policy_seen(seen):
    """A progress function noting the global policy at each training progress line (the
    "data:" line of fine-tuning comes before the model is built, under the caller's)."""

    def progress(line):
        if not line.startswith("data:"):
            seen.append(keras.config.dtype_policy().name)

    return progress


def _seed_everything(seed=7):
    keras.utils.set_random_seed(seed)  # random, numpy, tf.random.set_seed, keras' global
    tf.random.get_global_generator().reset_from_seed(seed)


def _draws():
    """The next values of every global random source a caller may use."""
    return (
        random.random(),
        np.random.rand(2).tolist(),
        tf.random.uniform([2]).numpy().tolist(),
        tf.random.get_global_generator().normal([2]).numpy().tolist(),
        keras.random.uniform([2]).numpy().tolist(),
    )


@contextlib.contextmanager
def caller_state_kept():
    """The run inside must leave the caller's logging (a plain Python process: no root
    handler; here an unusual root level) and random state as it found them: the draws
    after the run equal those the caller's seeds give without it."""
    _seed_everything()
    expected = _draws()
    _seed_everything()
    root = logging.getLogger()
    pytest_handlers, pytest_level = root.handlers[:], root.level
    for handler in pytest_handlers:
        root.removeHandler(handler)
    root.setLevel(logging.ERROR)
    try:
        yield
        added, level = root.handlers[:], root.level
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in pytest_handlers:
            root.addHandler(handler)
        root.setLevel(pytest_level)
    assert (added, logging.getLevelName(level)) == ([], "ERROR")
    assert _draws() == expected


def _finetune_config(init, model_dir, **changes):
    return bert_tf.FinetuneConfig(
        **{
            "task": "classify",
            "init_checkpoint": init,
            "model_dir": model_dir,
            "train_file": os.path.join(FIXTURES, "classify_train.tsv"),
            "eval_file": os.path.join(FIXTURES, "classify_eval.tsv"),
            "epochs": 1,
            "batch_size": 4,
            "max_seq_length": 16,
            "log_every_steps": 1000,
            **changes,
        }
    )


def test_finetune_precision_auto_in_process(
    tiny_model_dir,
    tmp_path,  # noqa: F811
    outside_policy,
):
    out = str(tmp_path / "ft")
    config = _finetune_config(tiny_model_dir, out)
    assert config.precision == "auto"
    seen = []
    with caller_state_kept():
        results = bert_tf.finetune(config, progress=_policy_seen(seen))
    assert keras.config.dtype_policy().name == OUTSIDE
    assert seen and set(seen) == {distribute.default_precision()}  # "auto", resolved
    assert results["epochs"] == 1 and 0 <= results["accuracy"] <= 1
    with open(os.path.join(out, "config.json")) as f:
        training = json.load(f)["training"]
    assert training["precision"] == "auto"
    assert bert_tf.FinetuneConfig.from_record(training) == config
    # the same settings again: complete, nothing to do (the recorded config is this one)
    assert bert_tf.finetune(config, progress=print) == results
    # a model dir that recorded the policy "auto" picked here (older bert-tf resolved it in
    # the app) is the same run; another policy is not
    path = os.path.join(out, "config.json")
    for recorded, same in ((distribute.default_precision(), True), ("mixed_float16", False)):
        with open(path) as f:
            values = json.load(f)
        values["training"]["precision"] = recorded
        with open(path, "w") as f:
            json.dump(values, f)
        if same:
            assert bert_tf.finetune(config, progress=print) == results
        else:
            with pytest.raises(
                RunMismatchError,
                match=f"precision='mixed_float16' recorded, '{distribute.default_precision()}'",
            ):
                bert_tf.finetune(config, progress=print)


def test_failing_finetune_restores_the_policy(
    tiny_model_dir,
    tmp_path,
    monkeypatch,  # noqa
    outside_policy,
):
    seen = []

    def broken(path):
        seen.append(keras.config.dtype_policy().name)
        raise RuntimeError("no encoder today")

    monkeypatch.setattr(finetuning, "load_encoder", broken)
    with pytest.raises(RuntimeError, match="no encoder today"):
        bert_tf.finetune(
            _finetune_config(tiny_model_dir, str(tmp_path / "ft"), precision="float32")
        )
    assert seen == ["float32"]
    assert keras.config.dtype_policy().name == OUTSIDE


def test_finetune_writes_nothing_when_the_checkpoint_cannot_restore(tiny_model_dir, tmp_path):  # noqa: F811
    """config.json is written after the trainer restored DIR/checkpoints (as pre-training
    does): a checkpoint dir that cannot be restored leaves DIR without config.json."""
    from bert_tf import ownership

    out = tmp_path / "ft"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-3"\n')
    ownership.record(out, {"checkpoints": "finetune"})  # as an earlier run left it
    record = (out / ownership.MANIFEST_FILE).read_bytes()
    with pytest.raises(BertTfError, match="names no readable checkpoint"):
        bert_tf.finetune(_finetune_config(tiny_model_dir, str(out), precision="float32"))
    assert sorted(os.listdir(out)) == [ownership.MANIFEST_FILE, "checkpoints"]
    assert (out / ownership.MANIFEST_FILE).read_bytes() == record


def test_pretrain_precision_auto_in_process(data, tmp_path, outside_policy):  # noqa: F811
    values = _settings(
        data, str(tmp_path / "pt"), steps=2, checkpoint_every_steps=2, log_every_steps=1
    )
    config = bert_tf.PretrainConfig(**values)
    assert config.precision == "auto"
    seen = []
    with caller_state_kept():
        results = bert_tf.pretrain(config, progress=_policy_seen(seen))
    assert keras.config.dtype_policy().name == OUTSIDE
    assert set(seen) == {distribute.default_precision()}
    assert results["step"] == 2 and 0 <= results["masked_lm_accuracy"] <= 1
    with open(os.path.join(values["model_dir"], "config.json")) as f:
        training = json.load(f)["training"]
    recorded = bert_tf.PretrainConfig.from_record(training)
    # the unset lengths and masking were resolved (128/20 defaults or the model dir's)
    assert recorded == bert_tf.PretrainConfig(
        **{**values, "dynamic_masking": False, "whole_word_masking": False}
    )


def test_failing_pretrain_restores_the_policy(
    data,
    tmp_path,
    monkeypatch,  # noqa: F811
    outside_policy,
):
    config = bert_tf.PretrainConfig(
        **_settings(data, str(tmp_path / "pt"), steps=1, num_warmup_steps=0), precision="float32"
    )
    seen = []

    def broken(*args):
        seen.append(keras.config.dtype_policy().name)
        raise RuntimeError("no trainer today")

    monkeypatch.setattr(PretrainingRecipe, "build", broken)
    with pytest.raises(RuntimeError, match="no trainer today"):
        bert_tf.pretrain(config)
    assert seen == ["float32"]
    assert keras.config.dtype_policy().name == OUTSIDE
    # bad input (checked inside the run) restores it too, and writes nothing
    bad = bert_tf.PretrainConfig(
        **_settings(data, str(tmp_path / "bad"), steps=1, num_warmup_steps=2)
    )
    with pytest.raises(PretrainingJobError, match="num_warmup_steps"):
        bert_tf.pretrain(bad)
    assert keras.config.dtype_policy().name == OUTSIDE
    assert not os.path.exists(bad.model_dir)
