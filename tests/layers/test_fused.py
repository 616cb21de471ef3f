"""bert_tf.layers.fused: the XLA-fused training kernels equal the plain ops (values and
gradients), dropout masks agree between forward and backward, and the gating rules."""

import dataclasses
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import bert_tf
from bert_tf.layers import fused, kernels


def _grad(fn, *xs):
    with tf.GradientTape() as tape:
        for x in xs:
            tape.watch(x)
        y = fn(*xs)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
    return y, tape.gradient(loss, xs)


def test_bias_gelu_is_exact_erf_gelu_with_its_gradient():
    h = tf.constant(np.linspace(-6, 6, 4 * 25, dtype="float32").reshape(4, 25))
    b = tf.constant(np.linspace(-1, 1, 25, dtype="float32"))
    y, (dh, db) = _grad(fused.bias_gelu, h, b)
    x = h.numpy() + b.numpy()
    erf = np.vectorize(math.erf)
    ref = x * 0.5 * (1 + erf(x / math.sqrt(2)))
    np.testing.assert_allclose(y.numpy(), ref, atol=2e-6)
    deriv = 0.5 * (1 + erf(x / math.sqrt(2))) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(dh.numpy(), 2 * ref * deriv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(db.numpy(), (2 * ref * deriv).sum(0), rtol=1e-5, atol=1e-4)


def test_dropout_add_layer_norm_matches_plain_ops():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2, 3, 16)).astype("float32"))
    a = tf.constant(rng.normal(size=(2, 3, 16)).astype("float32"))
    gamma = tf.Variable(rng.normal(size=16).astype("float32"))
    beta = tf.Variable(rng.normal(size=16).astype("float32"))

    def plain(x, a):
        s = x + a
        mean, var = tf.nn.moments(s, axes=[-1], keepdims=True)
        return (s - mean) * tf.math.rsqrt(var + 1e-12) * gamma + beta

    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, a])
        got = fused.dropout_add_layer_norm(x, a, gamma, beta, [1, 2], 0.0, 1e-12)
        want = plain(x, a)
        lg, lw = tf.reduce_sum(got**3), tf.reduce_sum(want**3)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)
    for g, w in zip(tape.gradient(lg, [x, a, gamma, beta]), tape.gradient(lw, [x, a, gamma, beta])):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-4)


def test_softmax_and_dropout_masks_agree_forward_and_backward():
    rng = np.random.default_rng(1)
    scores = tf.constant(rng.normal(size=(2, 2, 8, 8)).astype("float32"))
    bias = tf.constant([[[[0.0] * 6 + [-1e4] * 2]], [[[0.0] * 8]]])
    probs = fused.masked_softmax_dropout(scores, bias, [0, 0], 0.0)
    np.testing.assert_allclose(probs.numpy(), tf.nn.softmax(scores + bias).numpy(), atol=1e-6)

    x = tf.constant(rng.uniform(1, 2, size=(64, 64)).astype("float32"))
    y, (dx,) = _grad(lambda x: fused.dropout(x, 0.25, tf.constant([3, 4])), x)
    kept = y.numpy() != 0
    assert 0.70 < kept.mean() < 0.80
    np.testing.assert_allclose(y.numpy()[kept], x.numpy()[kept] / 0.75, rtol=1e-6)
    # d(sum y^2)/dx = 2 y * mask / 0.75: zero exactly where the forward dropped
    np.testing.assert_allclose(dx.numpy(), 2 * y.numpy() * kept / 0.75, rtol=1e-5)


def test_gating(monkeypatch):
    """The fused kernels run only in training (Python `training=True`), only where the layer
    was built with them, and an encoder builds them only where it is wide enough; no
    environment variable is read."""
    calls = []
    real = fused.masked_softmax_dropout
    monkeypatch.setattr(
        fused, "masked_softmax_dropout", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    scores, bias = tf.zeros((4, 2, 8, 8)), tf.zeros((4, 1, 1, 8))
    dropout = keras.layers.Dropout(0.0)
    kernels.FUSED.softmax_dropout(scores, bias, dropout, True)
    assert len(calls) == 1
    for training in (False, None):
        kernels.FUSED.softmax_dropout(scores, bias, dropout, training)
    kernels.PLAIN.softmax_dropout(scores, bias, dropout, True)
    assert len(calls) == 1
    assert kernels.select(True) is kernels.FUSED and kernels.select(False) is kernels.PLAIN
    assert kernels.wanted(True, 512) and kernels.wanted(True, 256)
    assert not kernels.wanted(True, 64)  # too narrow to gain
    assert not kernels.wanted(False, 1024)  # switched off
    monkeypatch.setenv("BERT_TF_FUSED", "0")  # no longer read
    assert kernels.wanted(True, 512)


def _fused_and_plain_encoders(config, dtype, monkeypatch):
    """Two encoders with the same weights, built with and without the fused kernels."""
    monkeypatch.setattr(kernels, "MIN_FUSED_WIDTH", 0)  # the tiny model too
    plain = bert_tf.BertEncoder(dataclasses.replace(config, fused_kernels=False), dtype=dtype)
    fast = bert_tf.BertEncoder(config, dtype=dtype)
    fast.set_weights(plain.get_weights())
    assert all(b.fused_kernels and b.attention.fused_kernels for b in fast.blocks)
    assert not any(b.fused_kernels or b.attention.fused_kernels for b in plain.blocks)
    return plain, fast


@pytest.mark.parametrize(
    "precision,shapes",
    [("float32", "static"), ("mixed_bfloat16", "static"), ("float32", "dynamic")],
)
def test_encoder_training_fused_equals_plain(monkeypatch, tiny_config, precision, shapes):
    """Fused kernels = plain ops, values and gradients, for static shapes and for
    variable-length batches ([None, None] inputs, as fine-tuning feeds them): an encoder
    built with fused_kernels=True against the same weights built with False."""
    config = dataclasses.replace(tiny_config, hidden_dropout=0.0, attention_dropout=0.0)
    dtype = None if precision == "float32" else precision
    plain, fast = _fused_and_plain_encoders(config, dtype, monkeypatch)
    rng = np.random.default_rng(0)
    feed = {
        "input_word_ids": tf.constant(rng.integers(0, config.vocab_size, (3, 12)), tf.int32),
        "input_mask": tf.constant([[1] * 12, [1] * 12, [1] * 7 + [0] * 5], tf.int32),
        "input_type_ids": tf.zeros((3, 12), tf.int32),
    }
    w = tf.constant(rng.normal(size=(3, 12, config.hidden_size)).astype("float32"))

    calls = []
    real = fused.dropout_add_layer_norm
    monkeypatch.setattr(
        fused, "dropout_add_layer_norm", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    spec = {
        k: tf.TensorSpec([None, None] if shapes == "dynamic" else v.shape, tf.int32)
        for k, v in feed.items()
    }

    def run(encoder):
        @tf.function(input_signature=[spec])
        def step(feed):
            with tf.GradientTape() as tape:
                out = encoder(feed, training=True)
                loss = tf.reduce_sum(tf.cast(out["sequence_output"], tf.float32) * w)
            return out["sequence_output"], tape.gradient(loss, encoder.trainable_variables)

        return step(feed)

    (seq_p, grads_p) = run(plain)
    assert not calls
    (seq_f, grads_f) = run(fast)
    assert len(calls) == 2 * config.num_layers  # two add+LayerNorm per block
    tol = 1e-5 if precision == "float32" else 0.05
    np.testing.assert_allclose(
        tf.cast(seq_f, tf.float32).numpy(),
        tf.cast(seq_p, tf.float32).numpy(),
        atol=tol * 10,
        rtol=tol,
    )
    for v, gp, gf in zip(plain.trainable_variables, grads_p, grads_f):
        assert (gp is None) == (gf is None), v.path
        if gp is None:  # the pooler: not in the loss
            continue
        gp, gf = tf.convert_to_tensor(gp).numpy(), tf.convert_to_tensor(gf).numpy()
        scale = np.abs(gp).max() + 1e-12
        assert np.abs(gf - gp).max() / scale < tol, v.path


def test_dropout_mask_statistics_odd_sizes_and_seeds():
    """16-bit masks: keep rate within 3 sigma of 1 - rate, mean preserved, odd element
    counts handled, same seed -> same mask, another seed -> another mask."""
    x = tf.ones((1001, 999))  # n odd: 999,999 elements
    y = fused.dropout(x, 0.1, tf.constant([1, 2])).numpy()
    kept = (y != 0).mean()
    sigma = np.sqrt(0.1 * 0.9 / y.size)
    assert abs(kept - 0.9) < 3 * sigma, kept
    assert abs(y.mean() - 1.0) < 4 * sigma / 0.9
    np.testing.assert_array_equal(fused.dropout(x, 0.1, tf.constant([1, 2])).numpy(), y)
    other = fused.dropout(x, 0.1, tf.constant([1, 3])).numpy()
    assert ((other != 0) != (y != 0)).mean() > 0.1
    # the kept values carry the exact 1 / P(keep) of the 16-bit threshold
    np.testing.assert_allclose(y[y != 0], 65536.0 / (65536.0 - 6554.0), rtol=1e-6)


_MIRRORED_SCRIPT = r"""
import json, sys
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import bert_tf
from bert_tf.layers import fused, kernels
kernels.MIN_FUSED_WIDTH = 0          # build the tiny model with the fused kernels
config = bert_tf.BertConfig.preset("tiny", vocab_size=50, num_layers=2, hidden_size=32,
                                   num_heads=2, intermediate_size=64, hidden_dropout=0.0,
                                   attention_dropout=0.0, max_position_embeddings=16)
rng = np.random.default_rng(0)
ids = rng.integers(5, 50, (4, 10)).astype("int32")
mask = np.ones((4, 10), "int32"); mask[3, 6:] = 0
feed = {"input_word_ids": ids, "input_mask": mask, "input_type_ids": np.zeros_like(ids)}
target = rng.normal(size=(4, 10, 32)).astype("float32")
calls = []
real = fused.dropout_add_layer_norm
fused.dropout_add_layer_norm = lambda *a, **k: calls.append(1) or real(*a, **k)

def grads(encoder, rows):
    spec = {k: tf.TensorSpec([None, None], tf.int32) for k in feed}   # variable length
    @tf.function(input_signature=[spec, tf.TensorSpec([None, None, 32])])
    def step(x, t):
        with tf.GradientTape() as tape:
            out = encoder(x, training=True)["sequence_output"]
            loss = tf.reduce_sum((out - t) ** 2)
        variables = encoder.trainable_variables
        return [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)   # pooler: None
                for g, v in zip(tape.gradient(loss, variables), variables)]
    return step({k: v[rows] for k, v in feed.items()}, target[rows])

tf.keras.utils.set_random_seed(1)
encoder = bert_tf.BertEncoder(config)
single = [tf.convert_to_tensor(g).numpy() for g in grads(encoder, slice(0, 4))]
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    tf.keras.utils.set_random_seed(1)
    mirrored = bert_tf.BertEncoder(config)
    mirrored.set_weights(encoder.get_weights())
def replica():
    i = tf.distribute.get_replica_context().replica_id_in_sync_group
    return [tf.convert_to_tensor(g) for g in grads(mirrored, slice(2 * i, 2 * i + 2))]
per_replica = strategy.run(lambda: replica())
summed = [strategy.reduce("SUM", g, axis=None).numpy() for g in per_replica]
worst = max(float(np.abs(a - b).max() / (np.abs(a).max() + 1e-12))
            for a, b in zip(single, summed))
print(json.dumps({"fused_calls": len(calls), "worst": worst}))
"""


@pytest.mark.slow  # keeps the default suite near 15 min; the slow suite runs it
def test_fused_kernels_under_mirrored_strategy_match_one_device():
    """Two MirroredStrategy replicas (2 logical CPUs, own process) running the fused kernels
    on variable-length batches sum to the single-device gradients of the global batch."""
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    # `python -c` from the repo root: bert_tf installed or in the checkout
    result = subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["fused_calls"] >= 2 * 2 * 2  # 2 blocks x 2 per block, single + mirrored
    assert out["worst"] < 1e-5, out
