"""Pre-training task: MLM + NSP losses and metrics against hand-computed values; the task's
model and objective."""

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from bert_tf.tasks import pretraining as po

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _ce(logits, label):
    """Cross entropy of one row of logits, by hand."""
    z = sum(math.exp(v) for v in logits)
    return math.log(z) - logits[label]


# 2 examples, P = 2 predictions each, V = 3.
MLM_LOGITS = [[[2.0, 0.0, 0.0], [0.0, 1.0, 3.0]], [[0.0, 0.5, 0.0], [1.0, 1.0, 1.0]]]
MLM_IDS = [[0, 1], [1, 0]]
MLM_WEIGHTS = [[1.0, 1.0], [1.0, 0.0]]  # the last prediction is padding
NSP_LOGITS = [[1.0, -1.0], [0.0, 2.0]]
NSP_LABELS = [[0], [0]]


def _batch():
    labels = {
        "masked_lm_ids": tf.constant(MLM_IDS),
        "masked_lm_weights": tf.constant(MLM_WEIGHTS),
        "next_sentence_labels": tf.constant(NSP_LABELS),
    }
    outputs = {"mlm_logits": tf.constant(MLM_LOGITS), "nsp_logits": tf.constant(NSP_LOGITS)}
    return labels, outputs


def _expected():
    mlm = [_ce(MLM_LOGITS[0][0], 0), _ce(MLM_LOGITS[0][1], 1), _ce(MLM_LOGITS[1][0], 1)]
    nsp = [_ce(NSP_LOGITS[0], 0), _ce(NSP_LOGITS[1], 0)]
    return sum(mlm) / 3, sum(nsp) / 2


def test_losses_match_hand_computed_values():
    labels, outputs = _batch()
    mlm, nsp = _expected()
    # mlm = (log(e^2+2)-2 + log(1+e+e^3)-1 + log(2+e^.5)-.5) / 3, by hand
    assert mlm == pytest.approx((0.2395448 + 2.1698460 + 0.7943768) / 3, abs=1e-6)
    np.testing.assert_allclose(po.masked_lm_loss(labels, outputs).numpy(), mlm, rtol=1e-6)
    np.testing.assert_allclose(po.next_sentence_loss(labels, outputs).numpy(), nsp, rtol=1e-6)
    np.testing.assert_allclose(po.pretraining_loss(labels, outputs).numpy(), mlm + nsp, rtol=1e-6)
    np.testing.assert_allclose(
        po.PretrainingObjective()(labels, outputs).numpy(), mlm + nsp, rtol=1e-6
    )


def test_padding_predictions_do_not_count():
    labels, outputs = _batch()
    # Changing the logits and label of the weight-0 prediction changes nothing.
    logits = np.array(MLM_LOGITS)
    logits[1, 1] = [9.0, -9.0, 0.0]
    ids = np.array(MLM_IDS)
    ids[1, 1] = 1
    changed = dict(outputs, mlm_logits=tf.constant(logits, tf.float32))
    changed_labels = dict(labels, masked_lm_ids=tf.constant(ids))
    np.testing.assert_allclose(
        po.masked_lm_loss(changed_labels, changed).numpy(),
        po.masked_lm_loss(labels, outputs).numpy(),
        rtol=1e-7,
    )


def test_metric_sums_and_keras_metrics():
    labels, outputs = _batch()
    sums = {k: (float(n), float(d)) for k, (n, d) in po.metric_sums(labels, outputs).items()}
    # argmax: [0, 2] vs ids [0, 1]; [1, *] vs [1, pad] -> 2 correct of 3 weighted.
    assert sums["masked_lm_accuracy"] == (2.0, 3.0)
    # NSP argmax [0, 1] vs labels [0, 0] -> 1 of 2.
    assert sums["next_sentence_accuracy"] == (1.0, 2.0)
    mlm, nsp = _expected()
    assert sums["masked_lm_loss"][0] / 3 == pytest.approx(mlm, rel=1e-6)
    assert sums["next_sentence_loss"][0] / 2 == pytest.approx(nsp, rel=1e-6)


def test_trainer_contract_gives_the_hand_computed_values():
    from bert_tf.training import objective as trainer

    labels, outputs = _batch()
    objective = po.PretrainingObjective()
    assert set(objective.metric_names).isdisjoint(trainer.RESERVED_NAMES)
    loss, metrics = objective.compute_loss(labels, outputs)
    # The trainer's share of a one-replica global batch of 2 examples is the full loss.
    share = trainer.loss_share(loss, tf.constant(2.0), tf.constant(2.0))
    mlm, nsp = _expected()
    np.testing.assert_allclose(share.numpy(), mlm + nsp, rtol=1e-6)
    sums = trainer.metric_sums(metrics, objective.metric_names, tf.constant(2.0)).numpy()
    m = len(objective.metric_names)
    values = dict(zip(objective.metric_names, sums[:m] / sums[m:]))
    assert values["masked_lm_accuracy"] == pytest.approx(2 / 3)
    assert values["next_sentence_accuracy"] == pytest.approx(0.5)
    assert values["masked_lm_loss"] == pytest.approx(mlm, rel=1e-6)
    assert values["next_sentence_loss"] == pytest.approx(nsp, rel=1e-6)


def test_bfloat16_logits_are_accepted():
    labels, outputs = _batch()
    outputs = {k: tf.cast(v, tf.bfloat16) for k, v in outputs.items()}
    mlm, nsp = _expected()
    np.testing.assert_allclose(po.pretraining_loss(labels, outputs).numpy(), mlm + nsp, rtol=2e-2)


def test_global_batch_normalisation_across_replicas():
    """With 2 replicas and the masked predictions spread unevenly, the per-replica losses sum
    to the single-device loss of the global batch (needs its own process for 2 CPU devices)."""
    script = textwrap.dedent("""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from bert_tf.tasks import pretraining as po
        rng = np.random.default_rng(0)
        logits = rng.normal(size=(4, 3, 5)).astype("float32")
        ids = rng.integers(0, 5, size=(4, 3)).astype("int32")
        w = np.array([[1, 1, 1], [1, 1, 1], [1, 0, 0], [0, 0, 0]], "float32")
        nsp_logits = rng.normal(size=(4, 2)).astype("float32")
        nsp = np.array([0, 1, 1, 0], "int32")
        labels = dict(masked_lm_ids=ids, masked_lm_weights=w, next_sentence_labels=nsp)
        outputs = dict(mlm_logits=logits, nsp_logits=nsp_logits)
        single = float(po.pretraining_loss(labels, outputs))
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        def fn(ctx):
            i = ctx.replica_id_in_sync_group
            rows = tf.range(2 * i, 2 * i + 2)
            return po.pretraining_loss({k: tf.gather(v, rows) for k, v in labels.items()},
                                       {k: tf.gather(v, rows) for k, v in outputs.items()})
        per_replica = strategy.run(tf.function(lambda: fn(tf.distribute.get_replica_context())))
        total = float(strategy.reduce("SUM", per_replica, axis=None))
        naive = float(np.mean([po.pretraining_loss(
            {k: v[s] for k, v in labels.items()}, {k: v[s] for k, v in outputs.items()})
            for s in (slice(0, 2), slice(2, 4))]))
        print(single, total, naive)
    """)
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    single, total, naive = map(float, out.stdout.split()[-3:])
    assert total == pytest.approx(single, rel=1e-5)
    assert abs(naive - single) > 1e-3  # the per-replica mean would be wrong


def test_pretraining_task_declares_model_objective_and_metrics(tiny_config):
    import bert_tf

    task = po.PretrainingTask()
    assert task.name == "pretraining" and task.main_metric in task.metric_names
    model = task.build_model(bert_tf.BertEncoder(tiny_config))
    assert isinstance(model, bert_tf.BertPretrainer)
    assert isinstance(
        po.PretrainingTask.model_from_info(model.encoder, {"type": "pretraining"}),
        bert_tf.BertPretrainer,
    )
    labels, outputs = _batch()
    loss, _ = task.objective.compute_loss(labels, outputs)
    mlm, nsp = _expected()
    from bert_tf.training import objective

    share = objective.loss_share(loss, tf.constant(2.0), tf.constant(2.0))
    np.testing.assert_allclose(share.numpy(), mlm + nsp, rtol=1e-6)
