"""Trainer recovery, in process: the dropout RNG is part of the checkpoint (resume equals an
uninterrupted run), a corrupt newest checkpoint falls back to the previous one, and a full
disk while saving is one line naming the last good checkpoint."""

import errno
import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_tf.training import optimization
from bert_tf.training.checkpointing import CheckpointWriteError
from bert_tf.training.trainer import Trainer


class MSE:
    metric_names = ()

    def compute_loss(self, labels, outputs):
        return tf.square(outputs[:, 0] - labels), {}  # [B]


def build_model():
    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, name="dense"),
            keras.layers.Dropout(0.5, name="dropout"),
            keras.layers.Dense(1, name="head"),
        ]
    )


def dataset():
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, x.sum(1))).repeat().batch(8)


def make(directory, progress=None):
    return Trainer(
        build_model(),
        MSE(),
        optimization.create_optimizer("adamw", 1e-2, 10, 1),
        checkpoint_dir=str(directory),
        checkpoint_every_steps=3,
        log_every_steps=5,
        progress_fn=progress,
    )


def weights(trainer):
    return [v.numpy() for v in trainer.model.weights]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    trainer = make(tmp_path_factory.mktemp("ref"))
    trainer.train(dataset(), 10)
    return weights(trainer)


def test_resume_with_dropout_equals_uninterrupted_run(tmp_path, uninterrupted):
    first = make(tmp_path)
    first.train(dataset(), 7)  # checkpoints at 3, 6 and 7
    rng = first._rng_variables[0].numpy().copy()
    resumed = make(tmp_path)
    assert resumed.current_step == 7
    np.testing.assert_array_equal(resumed._rng_variables[0].numpy(), rng)
    resumed.train(dataset(), 10)
    for a, b in zip(weights(resumed), uninterrupted):
        np.testing.assert_array_equal(a, b)


def test_without_the_rng_state_resume_would_differ(tmp_path, uninterrupted):
    """The check above has teeth: a fresh dropout RNG on resume moves the weights."""
    first = make(tmp_path)
    first.train(dataset(), 7)
    resumed = make(tmp_path)
    fresh = build_model().get_layer("dropout").seed_generator.state.numpy()
    resumed._rng_variables[0].assign(fresh)
    resumed.train(dataset(), 10)
    assert max(np.abs(a - b).max() for a, b in zip(weights(resumed), uninterrupted)) > 1e-4


def test_corrupt_newest_checkpoint_falls_back_to_previous(tmp_path, uninterrupted):
    make(tmp_path).train(dataset(), 9)  # ckpt-3, ckpt-6, ckpt-9
    data_file = glob.glob(str(tmp_path / "ckpt-9.data-*"))[0]
    with open(data_file, "r+b") as f:
        f.truncate(os.path.getsize(data_file) // 2)
    lines = []
    resumed = make(tmp_path, progress=lines.append)
    assert resumed.current_step == 6
    assert len(lines) == 1 and lines[0].startswith("checkpoint ckpt-9 cannot be restored (")
    assert "resumed from the newest one that can, ckpt-6 (step 6)" in lines[0]
    assert os.path.exists(data_file) and os.path.exists(tmp_path / "ckpt-3.index")
    resumed.train(dataset(), 10)
    for a, b in zip(weights(resumed), uninterrupted):
        np.testing.assert_array_equal(a, b)


def test_disk_full_while_saving_names_the_last_good_checkpoint(tmp_path, monkeypatch):
    trainer = make(tmp_path)
    trainer.train(dataset(), 3)
    saved = sorted(os.listdir(tmp_path))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(trainer.manager, "save", full)
    with pytest.raises(CheckpointWriteError) as e:
        trainer.train(dataset(), 6)
    assert str(e.value) == (
        f"cannot write checkpoint ckpt-6 in {tmp_path}: no space left on device; the last "
        f"good checkpoint is {tmp_path}/ckpt-3 (step 3), and nothing already written was "
        "changed: free space and rerun the same command to resume"
    )
    assert sorted(os.listdir(tmp_path)) == saved
    monkeypatch.undo()
    assert make(tmp_path).current_step == 3


def test_tf_disk_full_error_is_recognized(tmp_path, monkeypatch):
    """TF maps ENOSPC to RESOURCE_EXHAUSTED with the OS message."""
    trainer = make(tmp_path)

    def full(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(
            None,
            None,
            f"{tmp_path}/ckpt-3_temp/part-00000-of-00001.data-00000-of-00001; "
            "No space left on device",
        )

    monkeypatch.setattr(trainer.manager, "save", full)
    with pytest.raises(
        CheckpointWriteError, match="no space left on device; no checkpoint was written yet in"
    ):
        trainer.train(dataset(), 3)
