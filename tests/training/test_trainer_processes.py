"""Trainer across processes: SIGKILL + resume, MirroredStrategy on 2 logical CPUs and
MultiWorkerMirroredStrategy with 2 worker processes, each against one uninterrupted
single-device run of the same job (tests/training/train_worker.py)."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import ROOT

# run from the repo root, where `tests` is importable
WORKER = [sys.executable, "-m", "tests.training.train_worker"]
TIMEOUT = 180


def run_worker(*args, env=None):
    full_env = dict(os.environ, **(env or {}))
    result = subprocess.run(
        [*WORKER, *args], capture_output=True, text=True, timeout=TIMEOUT, env=full_env, cwd=ROOT
    )
    return result


def stdout_lines(result):
    return [line for line in result.stdout.splitlines() if line.strip()]


def load(path):
    npz = np.load(path)
    weights = [npz[f"w{i}"] for i in range(len([k for k in npz.files if k.startswith("w")]))]
    return int(npz["step"]), weights, json.loads(str(npz["eval"])), list(npz["lines"])


def assert_same_weights(a, b, rtol=1e-5, atol=1e-6):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def assert_same_eval(results, expected, rel=1e-5):
    """Eval metrics equal within `rel`, the partial-batch entry included."""
    results = dict(results)
    assert results.pop("partial") == pytest.approx(expected["partial"], rel=rel)
    assert results == pytest.approx({k: v for k, v in expected.items() if k != "partial"}, rel=rel)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted single-device run: 12 steps, global batch 8, checkpoints every 4."""
    directory = tmp_path_factory.mktemp("reference")
    out = str(directory / "result.npz")
    result = run_worker(f"--checkpoint_dir={directory / 'ckpt'}", f"--out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    return load(out)


@pytest.mark.slow  # keeps the default suite near 15 min; the slow suite runs it
def test_resume_after_sigkill(tmp_path, reference):
    ckpt = tmp_path / "ckpt"
    args = [f"--checkpoint_dir={ckpt}", f"--out={tmp_path / 'result.npz'}"]
    proc = subprocess.Popen(
        [*WORKER, *args, "--sleep=0.3"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.time() + TIMEOUT
        while not (ckpt / "checkpoint").exists():  # the first complete checkpoint
            assert proc.poll() is None, "worker ended before writing a checkpoint"
            assert time.time() < deadline, "no checkpoint written in time"
            time.sleep(0.05)
        time.sleep(random.uniform(0.0, 1.2))  # anywhere, even mid-save
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    state = (ckpt / "checkpoint").read_text()
    saved_step = int(state.split('model_checkpoint_path: "ckpt-')[1].split('"')[0])
    assert 4 <= saved_step < 12

    result = run_worker(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = stdout_lines(result)
    assert lines[0].startswith("restored ") and f"(step {saved_step})" in lines[0]
    assert lines[1].startswith(f"step {saved_step + 1}/12 ")
    step, weights, eval_results, _ = load(tmp_path / "result.npz")
    ref_step, ref_weights, ref_eval, _ = reference
    assert step == ref_step == 12
    assert_same_weights(weights, ref_weights, rtol=1e-6, atol=1e-7)
    assert_same_eval(eval_results, ref_eval, rel=1e-6)


def test_mirrored_two_cpu_replicas_match_one_device(tmp_path, reference):
    result = run_worker(
        "--mode=mirrored",
        "--odd_batch_check",
        f"--checkpoint_dir={tmp_path / 'ckpt'}",
        f"--out={tmp_path / 'r.npz'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    odd = [line for line in stdout_lines(result) if line.startswith("ODD_BATCH_ERROR:")]
    assert odd == [
        "ODD_BATCH_ERROR: global batch size 5 is not divisible by the 2 replicas "
        "of the distribution strategy; use a multiple of 2"
    ]
    step, weights, eval_results, lines = load(tmp_path / "r.npz")
    assert step == 12
    assert_same_weights(weights, reference[1])
    assert_same_eval(eval_results, reference[2])
    # The logged training loss of each step matches too (global-batch normalization).
    ref_losses = [line.split()[2] for line in reference[3] if line.startswith("step ")]
    assert [line.split()[2] for line in lines if line.startswith("step ")] == ref_losses


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # ~10 s on a quiet machine, 40 s on a loaded one (2 TF processes + gRPC)
def test_multi_worker_two_processes_match_one_device(tmp_path, reference):
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        )
        procs.append(
            subprocess.Popen(
                [
                    *WORKER,
                    "--mode=multi_worker",
                    f"--checkpoint_dir={tmp_path / 'c'}",
                    f"--out={tmp_path / f'r{index}.npz'}",
                ],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        outputs = [p.communicate(timeout=TIMEOUT) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    assert not (tmp_path / "r1.npz").exists()  # only the chief writes
    assert not [n for n in os.listdir(tmp_path / "c") if n.startswith(".worker_tmp")]
    step, weights, eval_results, _ = load(tmp_path / "r0.npz")
    assert step == 12
    assert_same_weights(weights, reference[1])
    assert_same_eval(eval_results, reference[2])
