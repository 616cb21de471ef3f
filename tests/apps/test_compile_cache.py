"""The persistent XLA compilation cache the training apps turn on (apps/compile_cache.py)."""

import os
import subprocess
import sys

import tensorflow as tf

from apps import compile_cache

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A fresh process that starts as the training apps do (apps.compile_cache imported before
# TensorFlow), then compiles the fused LayerNorm kernel (forward and backward) for one shape
# inside a tf.function, as the Trainer runs it, and prints what it computed.
_SCRIPT = """
from apps import compile_cache
print("DIR", compile_cache.DIRECTORY)
import tensorflow as tf
from bert_tf.layers import fused
@tf.function
def step(x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fused.dropout_add_layer_norm(x, x * 0.5, tf.ones([4]), tf.zeros([4]), [1, 2], 0.1, 1e-6)
        loss = tf.reduce_sum(y * y * tf.range(4, dtype=tf.float32))
    return loss, tf.reduce_sum(tape.gradient(loss, x) ** 2)
loss, grad = step(tf.reshape(tf.range(24, dtype=tf.float32), [2, 3, 4]) / 7.0)
print("VALUES", float(loss), float(grad))
"""


def _run(env):
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        env={**os.environ, **env, "PYTHONPATH": ROOT},
        capture_output=True,
        text=True,
        check=True,
    )
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    return lines["DIR"], lines["VALUES"]


def _entries(directory):
    return sorted(
        (name, os.stat(os.path.join(directory, name)).st_mtime_ns)
        for name in os.listdir(directory)
        if name.endswith(".pb")
    )


def test_a_second_process_loads_the_kernels_the_first_compiled(tmp_path):
    cache = str(tmp_path / "a home with spaces" / "xla")
    env = {"BERT_TF_XLA_CACHE": cache, "TF_XLA_FLAGS": ""}
    directory, first = _run(env)
    assert directory == cache
    written = _entries(cache)
    assert len(written) >= 2  # the forward and the backward kernel
    directory, second = _run(env)
    assert second == first  # the loaded kernels compute what the compiled ones did
    assert _entries(cache) == written  # nothing compiled (and so written) again
    assert not [n for n in os.listdir(cache) if n.endswith(".tmp")]


def test_off_with_0_and_a_users_own_cache_directory_stands(monkeypatch):
    monkeypatch.setenv("BERT_TF_XLA_CACHE", "0")
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0")
    assert compile_cache.enable() is None
    assert os.environ["TF_XLA_FLAGS"] == "--tf_xla_auto_jit=0"
    mine = "--tf_xla_persistent_cache_directory=/somewhere/mine"
    monkeypatch.setenv("BERT_TF_XLA_CACHE", "")
    monkeypatch.setenv("TF_XLA_FLAGS", mine)
    assert compile_cache.enable() is None
    assert os.environ["TF_XLA_FLAGS"] == mine


def test_off_where_the_directory_cannot_be_written(monkeypatch, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("BERT_TF_XLA_CACHE", str(blocker / "xla"))
    monkeypatch.setenv("TF_XLA_FLAGS", "")
    assert compile_cache.enable() is None  # TF would fail every compile it cannot save
    assert os.environ["TF_XLA_FLAGS"] == ""


def test_default_directory_is_per_tf_version_and_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("BERT_TF_CACHE", str(tmp_path))
    monkeypatch.setenv("BERT_TF_XLA_CACHE", "")
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0")
    directory = compile_cache.enable()
    assert directory == os.path.join(
        str(tmp_path), f"xla-tf{tf.__version__}-{compile_cache.host_key()}"
    )
    assert os.environ["TF_XLA_FLAGS"] == (
        f'--tf_xla_auto_jit=0 --tf_xla_persistent_cache_directory="{directory}"'
    )
    assert len(compile_cache.host_key()) == 12
