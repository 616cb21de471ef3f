"""The Hub-style export used as TensorFlow's BERT tutorials use TF Hub models.

tf-keras + tensorflow_hub run in a fresh TF_USE_LEGACY_KERAS=1 process
(serving_testbed/hub_tutorial.py, no project code); Keras 3's TFSMLayer and the Python loader run
here. Tiny models in the default suite; real MiniLM weights on the SMS spam corpus in the slow one.
"""

import csv
import importlib.util
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, TINY_VOCAB
from tests.export.tiny_dirs import hub_exports

TUTORIAL = os.path.join(ROOT, "serving_testbed", "hub_tutorial.py")
POS = ["good movie", "great movie", "a good dog", "great fox", "the good world", "good"]
NEG = ["bad movie", "terrible movie", "a bad dog", "terrible fox", "the bad world", "bad"]
PAIRS = [["hello world", "the quick brown fox"], ["unaffable", "dog " * 40], ["", "paris"]]


@pytest.fixture(scope="module")
def hub_dirs(tmp_path_factory):
    return hub_exports(tmp_path_factory)


def run_tutorial(job, tmp_path, timeout=1200):
    """Runs the tutorial code on `job`; returns (outputs, stderr)."""
    missing = [m for m in ("tensorflow_hub", "tf_keras") if importlib.util.find_spec(m) is None]
    if missing:  # test-only packages: `pip install -r requirements-test.txt` (as .ci/run does)
        pytest.skip(f"{', '.join(missing)} not installed (requirements-test.txt)")
    job_file, out_file = tmp_path / "job.json", tmp_path / "out.json"
    job_file.write_text(json.dumps(job))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, TUTORIAL, str(job_file), str(out_file)],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr.strip().splitlines()[-3:]
    return json.loads(out_file.read_text()), proc.stderr


def glue_reference(model_dir, pairs, seq_length):
    import tensorflow as tf

    from bert_tf.text.packer import pack_inputs
    from bert_tf.text.tokenizer import BertTokenizer

    tok = BertTokenizer(vocab_file=os.path.join(model_dir, "vocab.txt"), lower_case=True)
    a, b = (tok.tokenize(tf.constant([p[i] for p in pairs])) for i in (0, 1))
    return {
        k: v.numpy()
        for k, v in pack_inputs([a, b], seq_length, tok.cls_id, tok.sep_id, tok.pad_id).items()
    }


@pytest.mark.slow  # keeps the default suite near 15 min; the slow suite runs it
def test_classify_text_with_bert_tutorial_finetunes_the_encoder(hub_dirs, tmp_path):
    """hub.KerasLayer(encoder, trainable=True) trains the encoder (tiny model): its weights
    move, the loss goes down, no "zero trainable weights" warning; and the GLUE tutorial's
    packer runs at a length that was never traced (64)."""
    model_dir, model, pre_dir, enc_dir = hub_dirs
    texts, labels = POS * 4 + NEG * 4, [1] * 24 + [0] * 24
    out, stderr = run_tutorial(
        {
            "pre_dir": pre_dir,
            "enc_dir": enc_dir,
            "trainable": True,
            "epochs": 6,
            "batch_size": 8,
            "learning_rate": 3e-3,
            "seed": 0,
            "train": {"text": texts, "label": labels},
            "test": {"text": POS + NEG, "label": [1] * 6 + [0] * 6},
            "glue_seq_length": 64,
            "glue_pairs": PAIRS,
        },
        tmp_path,
    )
    assert "zero trainable weights" not in stderr
    assert out["encoder_trainable_weights"] == len(model.encoder.trainable_variables)
    assert out["encoder_weight_change"] > 1e-3
    assert out["loss"][-1] < out["loss"][0] - 0.05, out["loss"]
    ref = glue_reference(model_dir, PAIRS, 64)
    for k, v in ref.items():
        np.testing.assert_array_equal(np.array(out["glue"][k]), v, err_msg=k)


def test_encoder_object_follows_the_tf_hub_conventions(hub_dirs):
    import tensorflow as tf

    model_dir, model, pre_dir, enc_dir = hub_dirs
    enc = tf.saved_model.load(enc_dir)
    inputs = {k: tf.constant(v) for k, v in glue_reference(model_dir, PAIRS, 24).items()}
    ref = model.encoder(inputs, training=False)
    for kwargs in ({}, {"training": False}):
        out = enc(inputs, **kwargs)
        np.testing.assert_allclose(out["pooled_output"], ref["pooled_output"], atol=1e-5)
    trained = enc(inputs, training=True)["sequence_output"].numpy()
    assert np.abs(trained - ref["sequence_output"]).max() > 1e-2  # dropout is on
    names = sorted(v.name for v in model.encoder.trainable_variables)
    assert len(enc.trainable_variables) == len(names)
    assert {v.shape for v in enc.trainable_variables} == {
        v.shape for v in model.encoder.trainable_variables
    }
    assert len(enc.variables) == len(model.encoder.variables)
    assert list(enc.regularization_losses) == []
    # the mlm sub-object: TF BERT export's inputs and outputs
    positions = tf.constant([[1, 2], [3, 0], [0, 0]], tf.int32)
    mlm = enc.mlm(dict(inputs, masked_lm_positions=positions))
    want = model(dict(inputs, masked_lm_positions=positions), training=False)["mlm_logits"]
    np.testing.assert_allclose(mlm["mlm_logits"], want, atol=1e-4)
    assert mlm["mlm_logits"].shape == (3, 2, len(TINY_VOCAB))


def test_bert_pack_inputs_takes_any_seq_length(hub_dirs):
    import tensorflow as tf

    model_dir, _, pre_dir, _ = hub_dirs
    pre = tf.saved_model.load(pre_dir)
    a, b = (pre.tokenize(tf.constant([p[i] for p in PAIRS])) for i in (0, 1))
    for length in (5, 11, 37):
        got = pre.bert_pack_inputs([a, b], seq_length=length)
        for k, v in glue_reference(model_dir, PAIRS, length).items():
            np.testing.assert_array_equal(got[k].numpy(), v, err_msg=f"{k} @ {length}")
    assert pre.bert_pack_inputs([a])["input_word_ids"].shape == (3, 16)  # default length
    with pytest.raises(tf.errors.InvalidArgumentError, match="seq_length too short"):
        pre.bert_pack_inputs([a, b], seq_length=2)


def test_keras3_tfsmlayer_finetunes_the_encoder(hub_dirs):
    import keras
    import tensorflow as tf

    model_dir, model, pre_dir, enc_dir = hub_dirs
    keras.utils.set_random_seed(1)
    layer = keras.layers.TFSMLayer(
        enc_dir, call_endpoint="serve", call_training_endpoint="serve_training", trainable=True
    )
    assert len(layer.trainable_weights) == len(model.encoder.trainable_variables)
    texts = POS * 2 + NEG * 2
    labels = np.array([1.0] * 12 + [0.0] * 12, np.float32)
    pre = tf.saved_model.load(pre_dir)
    inputs = {k: v.numpy() for k, v in pre(tf.constant(texts)).items()}
    head = keras.layers.Dense(1)
    optimizer = keras.optimizers.Adam(3e-3)

    def loss_of(training):
        logits = head(layer(inputs, training=training)["pooled_output"])[:, 0]
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits))

    start_loss = float(loss_of(False))
    before = [w.numpy() for w in layer.trainable_weights]
    for _ in range(12):
        with tf.GradientTape() as tape:
            loss = loss_of(True)  # dropout on
        weights = layer.trainable_weights + head.trainable_weights
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
    moved = max(np.abs(w.numpy() - b).max() for w, b in zip(layer.trainable_weights, before))
    end_loss = float(loss_of(False))
    assert moved > 1e-3 and end_loss < start_loss - 0.05, (start_loss, end_loss)


def sms_spam_split(n_train, n_test, seed=0):
    """Balanced ham/spam train and test sets from the real SMS spam corpus."""
    from demo_data import assets

    with open(assets.sms_spam_csv(), encoding="utf-8", errors="replace") as f:
        rows = [(r["text"], int(r["spam"])) for r in csv.DictReader(f)]
    rng = random.Random(seed)
    by_label = {y: [t for t, label in rows if label == y] for y in (0, 1)}
    for texts in by_label.values():
        rng.shuffle(texts)
    half_tr, half_te = n_train // 2, n_test // 2

    def take(lo, hi):
        items = [(t, y) for y in (0, 1) for t in by_label[y][lo:hi]]
        rng.shuffle(items)
        return {"text": [t for t, _ in items], "label": [y for _, y in items]}

    return take(0, half_tr), take(half_tr, half_tr + half_te)


@pytest.mark.slow
@pytest.mark.real_weights
@pytest.mark.real_data
def test_tutorial_finetuning_beats_the_frozen_encoder_on_real_text(minilm_dir, tmp_path):
    """MiniLM exported as a Hub encoder; the "Classify text with BERT" model on balanced SMS
    spam: fine-tuning through hub.KerasLayer beats the frozen encoder + dense head."""
    from export.hub import export_hub

    pre_dir, enc_dir = export_hub(minilm_dir, str(tmp_path / "hub"), seq_length=64)
    train, test = sms_spam_split(400, 400)
    results = {}
    for trainable, lr in ((False, 1e-3), (True, 5e-5)):
        sub = tmp_path / f"trainable_{trainable}"
        sub.mkdir()
        results[trainable], stderr = run_tutorial(
            {
                "pre_dir": pre_dir,
                "enc_dir": enc_dir,
                "trainable": trainable,
                "epochs": 3,
                "batch_size": 16,
                "learning_rate": lr,
                "seed": 0,
                "train": train,
                "test": test,
            },
            sub,
            timeout=3000,
        )
        assert "zero trainable weights" not in stderr
    frozen, tuned = results[False], results[True]
    print(
        f"\nSMS spam (400 train / 400 test, balanced): frozen encoder accuracy "
        f"{frozen['accuracy']:.3f}, fine-tuned {tuned['accuracy']:.3f}"
    )
    assert frozen["encoder_weight_change"] == 0.0
    assert tuned["encoder_weight_change"] > 1e-4
    assert tuned["accuracy"] >= frozen["accuracy"] + 0.03 and tuned["accuracy"] >= 0.9
