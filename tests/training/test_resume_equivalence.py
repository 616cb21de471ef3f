"""Resume equals an uninterrupted run: a fine-tune and a pre-training job, SIGKILLed at
several points and rerun, end with the same weights, optimizer state and eval results as the
uninterrupted job (one device, and MirroredStrategy on 2 logical CPUs). Each job runs in a
subprocess (tests/training/resume_worker.py); tiny model, 9 steps, a checkpoint every step.
Slow: each case is 3-7 TF processes (about a minute each on a busy 2-core machine)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.apps.test_finetune import FIXTURES, tiny_model_dir  # noqa: F401
from tests.apps.test_pretrain import PREDS, SEQ, data  # noqa: F401
from tests.conftest import ROOT

# run from the repo root, where `tests` is importable
WORKER = [sys.executable, "-m", "tests.training.resume_worker"]
TIMEOUT = 900
STEPS = 9


def finetune_settings(init, model_dir):
    return {
        "task": "classify",
        "init_checkpoint": init,
        "model_dir": model_dir,
        "train_file": os.path.join(FIXTURES, "classify_train.tsv"),
        "eval_file": os.path.join(FIXTURES, "classify_eval.tsv"),
        "epochs": 3,
        "batch_size": 2,
        "learning_rate": 2e-3,
        "warmup_proportion": 0.2,
        "precision": "float32",
        "seed": 3,
        "checkpoint_every_steps": 1,
        "max_seq_length": 64,
        "log_every_steps": 1,
    }


def pretrain_settings(data, model_dir):  # noqa: F811
    return {
        "encoder_config": data["config"],
        "vocab_file": data["vocab"],
        "input_files": data["train"],
        "eval_files": data["eval"],
        "model_dir": model_dir,
        "global_batch_size": 8,
        "max_seq_length": SEQ,
        "max_predictions_per_seq": PREDS,
        "num_train_steps": STEPS,
        "num_warmup_steps": 2,
        "learning_rate": 1e-3,
        "checkpoint_every_steps": 1,
        "log_every_steps": 1,
        "precision": "float32",
        "dynamic_masking": True,
    }


def command(job, settings, mirrored):
    return [*WORKER, job, json.dumps(settings)] + (["--mirrored"] if mirrored else [])


def run(job, settings, mirrored):
    result = subprocess.run(
        command(job, settings, mirrored), capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def latest_step(checkpoint_dir):
    try:
        text = open(os.path.join(checkpoint_dir, "checkpoint")).read()
    except OSError:
        return -1
    return int(text.split('model_checkpoint_path: "ckpt-')[1].split('"')[0])


def run_and_kill(job, settings, mirrored, after_step):
    """Starts the job and SIGKILLs it once checkpoint `after_step` is complete."""
    checkpoints = os.path.join(settings["model_dir"], "checkpoints")
    proc = subprocess.Popen(
        command(job, settings, mirrored),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        deadline = time.time() + TIMEOUT
        while latest_step(checkpoints) < after_step:
            assert proc.poll() is None, "the job ended before it could be killed"
            assert time.time() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = latest_step(checkpoints)
    assert after_step <= killed_at < STEPS, killed_at
    return killed_at


def final_state(model_dir):
    """{variable name: value} of the last checkpoint (weights, optimizer slots and step, RNG)
    and the eval results without timings."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(model_dir, "checkpoints", f"ckpt-{STEPS}"))
    names = [
        n
        for n in reader.get_variable_to_shape_map()
        if not n.startswith(("save_counter", "_CHECKPOINTABLE"))
    ]
    variables = {n: reader.get_tensor(n) for n in names}
    results = json.load(open(os.path.join(model_dir, "eval_results.json")))
    drop = ("seconds", "per_second", "wall", "train_loss", "train_last_loss")
    results = {k: v for k, v in results.items() if not any(d in k for d in drop)}
    return variables, results


def assert_same_state(a, b):
    (va, ra), (vb, rb) = a, b
    assert sorted(va) == sorted(vb)
    assert any(n.startswith("rng/") for n in va)
    worst = max(float(np.max(np.abs(va[n].astype(np.float64) - vb[n]), initial=0.0)) for n in va)
    print(f"resumed vs uninterrupted: max abs difference {worst:.3g} over {len(va)} variables")
    for name in va:
        np.testing.assert_allclose(va[name], vb[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert ra == pytest.approx(rb, rel=1e-5)


@pytest.fixture(scope="module")
def settings_for(tiny_model_dir, data):  # noqa: F811
    def make(job, model_dir):
        if job == "finetune":
            return finetune_settings(tiny_model_dir, model_dir)
        return pretrain_settings(data, model_dir)

    return make


@pytest.mark.slow
@pytest.mark.parametrize("mirrored", [False, True], ids=["one_device", "mirrored_2cpu"])
@pytest.mark.parametrize("job", ["finetune", "pretrain"])
def test_killed_and_resumed_equals_uninterrupted(settings_for, tmp_path, job, mirrored):
    reference = str(tmp_path / "reference")
    run(job, settings_for(job, reference), mirrored)
    expected = final_state(reference)
    kill_points = [2, 4, 7] if not mirrored else [4]
    for after in kill_points:
        model_dir = str(tmp_path / f"killed_after_{after}")
        settings = settings_for(job, model_dir)
        killed_at = run_and_kill(job, settings, mirrored, after)
        out = run(job, settings, mirrored)
        assert f"(step {killed_at})" in out and "taking over the stale lock" in out, out
        assert_same_state(final_state(model_dir), expected)
