"""Trainer, in process: accumulation, NaN stop, checkpoints (corrupt, incompatible, init_fn),
loss forms, evaluation, summaries, loss scaling."""

import glob
import hashlib
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_tf.training import distribute, optimization
from bert_tf.training.checkpointing import CheckpointRestoreError
from bert_tf.training.objective import Ratio
from bert_tf.training.trainer import NonFiniteLossError, Trainer


class CE:
    """Per-example cross-entropy; the loss form and a NaN from `nan_at` are configurable."""

    metric_names = ("accuracy",)

    def __init__(self, form="vector", nan_at=0):
        self.form, self.nan_at, self.step = form, nan_at, None

    def compute_loss(self, labels, outputs):
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=outputs)
        if self.nan_at:
            ce = ce + tf.where(self.step + 1 >= self.nan_at, float("nan"), 0.0)
        correct = tf.cast(
            tf.equal(tf.argmax(outputs, -1, output_type=tf.int32), labels), tf.float32
        )
        loss = {
            "vector": ce,
            "scalar": tf.reduce_mean(ce),
            "ratio": Ratio(ce, tf.ones_like(ce)),
            "list": [0.5 * ce, Ratio(0.5 * ce, tf.ones_like(ce))],
        }[self.form]
        return loss, {"accuracy": (tf.reduce_sum(correct), tf.size(correct))}


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    return x, y


def dataset(batch, n=64):
    return tf.data.Dataset.from_tensor_slices(data(n)).repeat().batch(batch, drop_remainder=True)


def model_fn(hidden=8):
    def build():
        keras.utils.set_random_seed(3)
        return keras.Sequential(
            [
                keras.Input((5,)),
                keras.layers.Dense(hidden, activation="tanh", name="dense"),
                keras.layers.Dense(2, name="head"),
            ]
        )

    return build


def make_trainer(tmp_path, objective=None, optimizer=None, hidden=8, **kwargs):
    kwargs.setdefault("log_every_steps", 2)
    kwargs.setdefault("checkpoint_every_steps", 4)
    kwargs.setdefault("progress_fn", None)
    return Trainer(
        model_fn(hidden)(),
        objective or CE(),
        optimizer or optimization.create_optimizer("adamw", 0.05, 20, 2, clip_norm=1.0),
        checkpoint_dir=str(tmp_path / "ckpt"),
        **kwargs,
    )


def weights(trainer):
    return [v.numpy() for v in trainer.model.weights]


def test_grad_accumulation_equals_one_big_batch(tmp_path):
    big = make_trainer(tmp_path / "big")
    big.train(dataset(16), 5)
    accumulated = make_trainer(tmp_path / "acc", grad_accum_steps=4)
    accumulated.train(dataset(4), 5)
    assert accumulated.current_step == 5
    for a, b in zip(weights(big), weights(accumulated)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    moved = make_trainer(tmp_path / "small")
    moved.train(dataset(4), 5)  # one micro-batch per step: a different trajectory
    assert not np.allclose(weights(moved)[0], weights(big)[0], atol=1e-4)


def test_loss_forms_agree_with_per_example_vector(tmp_path):
    """Scalar mean, Ratio(ce, 1) and [0.5 ce, Ratio(0.5 ce, 1)] all equal the mean CE."""
    reference = make_trainer(tmp_path / "vector")
    reference.train(dataset(8), 2)
    for form in ("scalar", "ratio", "list"):
        other = make_trainer(tmp_path / form, objective=CE(form))
        other.train(dataset(8), 2)
        for a, b in zip(weights(reference), weights(other)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=form)


def test_train_reports_and_evaluate_matches_numpy(tmp_path):
    lines = []
    trainer = make_trainer(
        tmp_path, progress_fn=lines.append, log_dir=str(tmp_path / "logs"), steps_per_loop=3
    )
    result = trainer.train(dataset(8), 6)
    step_lines = [line for line in lines if line.startswith("step ")]
    assert [line.split()[1] for line in step_lines] == ["2/6", "4/6", "6/6"]
    for key in ("loss=", "accuracy=", "lr=", "ex/s=", "eta="):
        assert key in step_lines[-1]
    assert set(result) == {"loss", "accuracy", "learning_rate", "grad_norm", "examples_per_second"}
    assert result["learning_rate"] == pytest.approx(0.05 * (20 - 6) / 18, rel=1e-5)

    x, y = data(60)
    results = trainer.evaluate(tf.data.Dataset.from_tensor_slices((x, y)).batch(16))
    logits = trainer.model(x).numpy()
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    assert results["loss"] == pytest.approx(-logp[np.arange(60), y].mean(), rel=1e-5)
    assert results["accuracy"] == pytest.approx((logits.argmax(-1) == y).mean())
    assert trainer.evaluate(tf.data.Dataset.from_tensor_slices((x, y)).batch(16), steps=1)[
        "accuracy"
    ] == pytest.approx((logits[:16].argmax(-1) == y[:16]).mean())

    tags = {}
    for path in glob.glob(str(tmp_path / "logs" / "*" / "events.out.tfevents.*")):
        split = os.path.basename(os.path.dirname(path))
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.setdefault(split, set()).add(value.tag)
    assert {"loss", "accuracy", "learning_rate", "examples_per_second"} <= tags["train"]
    assert {"loss", "accuracy"} <= tags["eval"]


def test_checkpoints_resume_and_keep(tmp_path):
    trainer = make_trainer(tmp_path, keep_checkpoints=2)
    trainer.train(dataset(8), 10)
    names = sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "ckpt" / "*.index")))
    assert names == ["ckpt-10.index", "ckpt-8.index"]  # every 4 + the end, keep 2
    again = make_trainer(tmp_path, keep_checkpoints=2)
    assert again.current_step == 10
    assert int(again.optimizer.iterations.numpy()) == 10
    for a, b in zip(weights(trainer), weights(again)):
        np.testing.assert_array_equal(a, b)
    assert again.train(dataset(8), 10) == {}  # already done


def test_nan_loss_stops_without_saving_bad_state(tmp_path):
    objective = CE(nan_at=7)
    trainer = make_trainer(tmp_path, objective=objective)
    objective.step = trainer.step
    with pytest.raises(NonFiniteLossError) as e:
        trainer.train(dataset(8), 12)
    message = str(e.value)
    assert "step 7" in message and "loss=nan" in message and "\n" not in message
    assert f"the last checkpoint ({tmp_path}/ckpt/ckpt-4) holds the last good state" in message
    assert trainer.current_step == 6
    assert all(np.isfinite(w).all() for w in weights(trainer))
    assert os.path.basename(tf.train.latest_checkpoint(str(tmp_path / "ckpt"))) == "ckpt-4"
    restored = make_trainer(tmp_path)
    assert restored.current_step == 4
    assert all(np.isfinite(w).all() for w in weights(restored))


def test_nan_loss_before_any_checkpoint_names_no_checkpoint(tmp_path):
    objective = CE(nan_at=2)
    trainer = make_trainer(tmp_path, objective=objective)
    objective.step = trainer.step
    with pytest.raises(NonFiniteLossError) as e:
        trainer.train(dataset(8), 12)
    assert "no checkpoint was written yet" in str(e.value) and "ckpt" not in str(e.value)
    assert tf.train.latest_checkpoint(str(tmp_path / "ckpt")) is None


def _digest(directory):
    return {
        p: hashlib.sha256(open(p, "rb").read()).hexdigest()
        for p in sorted(glob.glob(os.path.join(directory, "*")))
    }


def test_incompatible_checkpoint_is_a_clear_error(tmp_path):
    make_trainer(tmp_path).train(dataset(8), 4)
    before = _digest(str(tmp_path / "ckpt"))
    with pytest.raises(
        CheckpointRestoreError, match="cannot restore any of the 1 checkpoint.*ckpt-4"
    ):
        make_trainer(tmp_path, hidden=16)
    assert _digest(str(tmp_path / "ckpt")) == before


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    make_trainer(tmp_path).train(dataset(8), 4)
    data_file = glob.glob(str(tmp_path / "ckpt" / "ckpt-4.data-*"))[0]
    with open(data_file, "r+b") as f:
        f.truncate(os.path.getsize(data_file) // 2)
    before = _digest(str(tmp_path / "ckpt"))
    with pytest.raises(CheckpointRestoreError, match="corrupt or from a different model") as e:
        make_trainer(tmp_path)
    assert "remove" not in str(e.value) and "delete" not in str(e.value)
    assert _digest(str(tmp_path / "ckpt")) == before


def test_state_file_naming_missing_checkpoint(tmp_path):
    os.makedirs(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "checkpoint").write_text('model_checkpoint_path: "ckpt-9"\n')
    with pytest.raises(CheckpointRestoreError, match="ckpt-9|names no readable checkpoint"):
        make_trainer(tmp_path)


def test_incomplete_save_is_ignored(tmp_path):
    """Data files of a save that was killed before the state file was updated."""
    make_trainer(tmp_path).train(dataset(8), 4)
    (tmp_path / "ckpt" / "ckpt-8.data-00000-of-00001").write_bytes(b"partial")
    assert make_trainer(tmp_path).current_step == 4


def test_init_fn_only_without_checkpoint(tmp_path):
    calls = []

    def init_fn(model):
        calls.append(1)
        model.get_layer("head").bias.assign([5.0, -5.0])

    trainer = make_trainer(tmp_path, init_fn=init_fn)
    assert calls == [1]
    np.testing.assert_array_equal(trainer.model.get_layer("head").bias.numpy(), [5.0, -5.0])
    trainer.train(dataset(8), 4)
    make_trainer(tmp_path, init_fn=init_fn)
    assert calls == [1]


def test_reserved_metric_name(tmp_path):
    class Bad(CE):
        metric_names = ("loss",)

    with pytest.raises(ValueError, match="clash"):
        make_trainer(tmp_path, objective=Bad())


def test_mixed_float16_uses_loss_scaling(tmp_path):
    distribute.set_precision("mixed_float16")
    try:
        trainer = make_trainer(tmp_path)
        assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
        result = trainer.train(dataset(8), 4)
        assert np.isfinite(result["loss"]) and trainer.current_step == 4
        assert int(trainer.optimizer.iterations.numpy()) == 4
    finally:
        distribute.set_precision("float32")


def test_variables_without_gradient_are_left_alone(tmp_path):
    """A head the loss does not use gets neither an update nor weight decay."""

    class LogitsOnly(CE):
        def compute_loss(self, labels, outputs):
            return super().compute_loss(labels, outputs["logits"])

    def build():
        keras.utils.set_random_seed(3)
        x = keras.Input((5,))
        return keras.Model(
            x,
            {
                "logits": keras.layers.Dense(2, name="used")(x),
                "aux": keras.layers.Dense(2, name="unused")(x),
            },
        )

    trainer = Trainer(
        build(),
        LogitsOnly(),
        optimization.create_optimizer("adamw", 0.05, 10, 0, weight_decay=0.5),
        checkpoint_dir=str(tmp_path / "c"),
        progress_fn=None,
    )
    unused = trainer.model.get_layer("unused").kernel.numpy().copy()
    used = trainer.model.get_layer("used").kernel.numpy().copy()
    trainer.train(dataset(8), 3)
    np.testing.assert_array_equal(trainer.model.get_layer("unused").kernel.numpy(), unused)
    assert not np.allclose(trainer.model.get_layer("used").kernel.numpy(), used)


def test_model_or_optimizer_built_outside_the_strategy_scope_is_refused(tmp_path):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        inside = model_fn()()
        optimizer = optimization.create_optimizer("adamw", 0.05, 20, 2)
    outside = model_fn()()
    with pytest.raises(ValueError, match="the model was built outside strategy.scope"):
        Trainer(outside, CE(), optimizer, strategy=strategy, checkpoint_dir=str(tmp_path))
    with pytest.raises(ValueError, match="the optimizer was built outside strategy.scope"):
        Trainer(
            inside,
            CE(),
            optimization.create_optimizer("adamw", 0.05, 20, 2),
            strategy=strategy,
            checkpoint_dir=str(tmp_path),
        )
    trainer = Trainer(
        inside, CE(), optimizer, strategy=strategy, progress_fn=None, checkpoint_dir=str(tmp_path)
    )
    assert trainer.model is inside and trainer.optimizer is optimizer
