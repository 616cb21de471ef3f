"""Packed rows give the same per-sequence MLM/NSP losses and gradients as the unpacked batch
of the same sequences (no cross-contamination), on the plain and the fused training paths,
on one device and under MirroredStrategy (2 logical CPUs, own process)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import bert_tf
from bert_tf.layers import fused, kernels
from bert_tf.models.encoder import PackedInputError
from tests.models import packing_case as pc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def model():
    keras.utils.set_random_seed(1)
    return bert_tf.BertPretrainer(bert_tf.BertEncoder(pc.tiny_config()))


def _check_equal(model, training):
    ex = pc.make_examples()
    fu, lu = pc.unpacked_batch(ex)
    fp, lp = pc.packed_batch(ex)
    assert fp["input_word_ids"].shape[0] < len(pc.LENGTHS)  # really packed
    np.testing.assert_array_equal(fp["input_sequence_ids"].numpy().max(1), [1, 2, 2, 3])
    # sequence 1 (5 tokens) shares its row with others: its own gradient must not move
    r, _, _ = pc.locations(ex)[1]
    assert fp["input_sequence_ids"].numpy()[r].max() >= 2
    vu, tu, gu, ou = pc.losses_and_grads(model, fu, lu, ex, False, 1, training)
    vp, tp, gp, op = pc.losses_and_grads(model, fp, lp, ex, True, 1, training)
    for (mu, nu), (mp, np_) in zip(vu, vp):
        np.testing.assert_allclose(mp, mu, rtol=1e-5, atol=1e-6)
        assert abs(np_ - nu) < 1e-5
    assert abs(tp - tu) < 1e-5 and tu > 1.0
    assert pc.worst_relative(gu, gp) < 1e-5
    assert pc.worst_relative(ou, op) < 1e-5
    assert max(np.abs(g).max() for g in op) > 1e-4  # a real gradient


def test_packed_losses_and_gradients_equal_unpacked(model):
    _check_equal(model, training=False)


def test_packed_equal_unpacked_on_the_fused_training_path(monkeypatch):
    monkeypatch.setattr(kernels, "MIN_FUSED_WIDTH", 0)  # build the tiny model fused
    keras.utils.set_random_seed(1)
    model = bert_tf.BertPretrainer(bert_tf.BertEncoder(pc.tiny_config()))
    assert all(block.fused_kernels for block in model.encoder.blocks)
    calls = []
    real = fused.masked_softmax_dropout
    monkeypatch.setattr(
        fused, "masked_softmax_dropout", lambda *a, **k: calls.append(a[1].shape) or real(*a, **k)
    )
    _check_equal(model, training=True)
    biases = {tuple(s) for s in calls}
    assert (len(pc.LENGTHS), 1, 1, pc.T) in biases  # unpacked: key mask
    assert any(s[2] == pc.T for s in biases)  # packed: [B, 1, T, T]


def test_other_sequences_in_a_row_cannot_change_a_sequence(model):
    """Changing every token of the other sequences of a row leaves the first sequence's
    hidden states and NSP logit unchanged bit for bit."""
    ex = pc.make_examples()
    fp, _ = pc.packed_batch(ex)
    seq = fp["input_sequence_ids"].numpy()
    ids = fp["input_word_ids"].numpy().copy()
    others = seq > 1
    ids[others] = (ids[others] + 7) % 45 + 5
    changed = dict(fp, input_word_ids=tf.constant(ids))
    a, b = model.encoder(fp), model.encoder(changed)
    first = tf.constant(seq == 1)
    np.testing.assert_array_equal(
        tf.boolean_mask(a["sequence_output"], first).numpy(),
        tf.boolean_mask(b["sequence_output"], first).numpy(),
    )
    assert not np.allclose(
        tf.boolean_mask(a["sequence_output"], ~first).numpy(),
        tf.boolean_mask(b["sequence_output"], ~first).numpy(),
    )
    na, nb = model(fp)["nsp_logits"].numpy(), model(changed)["nsp_logits"].numpy()
    np.testing.assert_array_equal(na[:, 0], nb[:, 0])


def test_unpacked_call_unchanged_and_bad_packed_inputs(model):
    ex = pc.make_examples()
    fu, _ = pc.unpacked_batch(ex)
    out = model(fu)
    assert out["nsp_logits"].shape == (len(pc.LENGTHS), 2)
    assert out["mlm_logits"].shape == (len(pc.LENGTHS), pc.P0, 50)
    fp, _ = pc.packed_batch(ex)
    with pytest.raises(PackedInputError, match="next_sentence_positions"):
        model({k: v for k, v in fp.items() if k != "next_sentence_positions"})
    with pytest.raises(PackedInputError, match="input_sequence_ids"):
        model.encoder({k: v for k, v in fp.items() if k != "input_sequence_ids"})


_MIRRORED = r"""
import json
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import bert_tf
from tests.models import packing_case as pc
from bert_tf.tasks.pretraining import PretrainingObjective
from bert_tf.training.objective import loss_share as _loss_share

ex = pc.make_examples()
objective = PretrainingObjective()

def grads(model, features, labels):
    # the Trainer's loss contract: each replica's share, summed over replicas
    with tf.GradientTape() as tape:
        out = model(features, training=True)
        loss, _ = objective.compute_loss(labels, out)
        b = tf.cast(tf.shape(features["input_word_ids"])[0], tf.float32)
        ctx = tf.distribute.get_replica_context()
        share = _loss_share(loss, b, ctx.all_reduce("SUM", b) if ctx else b)
    return share, [tf.convert_to_tensor(g) for g in tape.gradient(share,
                                                                   model.trainable_variables)]

keras.utils.set_random_seed(1)
single = bert_tf.BertPretrainer(bert_tf.BertEncoder(pc.tiny_config()))
fu, lu = pc.unpacked_batch(ex)
loss_u, grads_u = grads(single, fu, lu)
fp, lp = pc.packed_batch(ex)
rows = int(fp["input_word_ids"].shape[0])
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    mirrored = bert_tf.BertPretrainer(bert_tf.BertEncoder(pc.tiny_config()))
    mirrored.set_weights(single.get_weights())
half = rows // 2
def replica():
    i = tf.distribute.get_replica_context().replica_id_in_sync_group
    part = lambda d: {k: tf.where(i == 0, v[:half], v[half:2 * half]) for k, v in d.items()}
    return grads(mirrored, part(fp), part(lp))
loss_p, grads_p = strategy.run(replica)
loss_p = float(strategy.reduce("SUM", loss_p, axis=None))
grads_p = [strategy.reduce("SUM", g, axis=None).numpy() for g in grads_p]
print(json.dumps({"rows": rows, "loss_unpacked": float(loss_u), "loss_packed": loss_p,
                  "worst": pc.worst_relative([g.numpy() for g in grads_u], grads_p)}))
"""


def test_packed_under_mirrored_strategy_equals_unpacked_single_device():
    """Packed rows split over 2 MirroredStrategy replicas (Trainer loss contract) give the
    loss and gradients of the unpacked batch on one device."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    # `python -c` from the repo root: `tests.models.packing_case` imports from the checkout
    result = subprocess.run(
        [sys.executable, "-c", _MIRRORED],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["rows"] == 4, out
    assert abs(out["loss_packed"] - out["loss_unpacked"]) < 1e-5, out
    assert out["worst"] < 1e-5, out
