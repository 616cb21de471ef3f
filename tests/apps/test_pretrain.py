"""apps.pretrain end to end on a tiny corpus: model dir contents, resume, --mode=eval, and
one-line errors (with nothing written) for bad inputs. The default job: test_default_job.py."""

import json
import math
import os
import random
import shutil
import subprocess
import sys
import types

import pytest

from tests.conftest import ROOT, TINY_VOCAB

SEQ, PREDS = 32, 5
WORDS = [w for w in TINY_VOCAB[5:] if w.isalpha() and not w.startswith("##")]


def _corpus(path, docs, seed):
    """A few hundred lines of the original format: one sentence per line, blank line between
    documents; sentences follow a few fixed patterns so there is something to learn."""
    rng = random.Random(seed)
    patterns = [
        ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "."],
        ["paris", "is", "the", "capital", "of", "france", "."],
        ["john", "lives", "in", "london", "."],
        ["a", "good", "movie", "is", "great", "!"],
    ]
    lines = []
    for _ in range(docs):
        for _ in range(rng.randint(5, 10)):
            s = list(rng.choice(patterns)) + [rng.choice(WORDS) for _ in range(rng.randint(0, 4))]
            lines.append(" ".join(s))
        lines.append("")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from bert_tf.data.pretraining import create as pd

    root = tmp_path_factory.mktemp("pretrain_data")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(TINY_VOCAB) + "\n")
    config = {
        "vocab_size": len(TINY_VOCAB),
        "num_layers": 2,
        "hidden_size": 32,
        "num_heads": 4,
        "intermediate_size": 64,
        "max_position_embeddings": 64,
    }
    (root / "config.json").write_text(json.dumps(config))
    out = {"vocab": str(vocab), "config": str(root / "config.json"), "root": root}
    for split, docs, seed in (("train", 40, 1), ("eval", 16, 2)):
        text = _corpus(root / f"{split}.txt", docs, seed)
        meta = pd.create_pretraining_data(
            text,
            str(root / split),
            str(vocab),
            config=pd.CreationConfig(
                max_seq_length=SEQ, max_predictions_per_seq=PREDS, dupe_factor=2, random_seed=seed
            ),
            lower_case=True,
            tokenizer_factory=pd.PretokenizedFactory(str(vocab), True),
        )
        assert meta["counts"]["instances"] > 20, (split, meta["counts"])
        out[split] = str(root / f"{split}-*.tfrecord")
    return out


def run_app(*args, check=True):
    """Runs `python -m apps.pretrain` with these flags (a subprocess: absl flags are
    process-global, and other apps define flags of the same names)."""
    result = subprocess.run(
        [sys.executable, "-m", "apps.pretrain", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _settings(data, model_dir, steps=6, **extra):
    values = {
        "encoder_config": data["config"],
        "vocab_file": data["vocab"],
        "input_files": data["train"],
        "eval_files": data["eval"],
        "model_dir": model_dir,
        "global_batch_size": 8,
        "max_seq_length": SEQ,
        "max_predictions_per_seq": PREDS,
        "num_train_steps": steps,
        "num_warmup_steps": 2,
        "learning_rate": 1e-3,
        "checkpoint_every_steps": 3,
        "log_every_steps": 3,
    }
    values.update(extra)
    return values


def _args(data, model_dir, steps=6, **extra):
    flag = {"encoder_config": "config"}  # PretrainConfig field -> its flag
    return [
        f"--{flag.get(k, k)}={v}"
        for k, v in _settings(data, model_dir, steps, **extra).items()
        if v is not None
    ]


def run_job(data, model_dir, steps=6, **extra):
    """The library recipe the app calls, in-process (fast)."""
    import bert_tf

    values = _settings(data, model_dir, steps, **extra)
    overrides = {k: values.pop(k) for k in ("hidden_size", "intermediate_size") if k in values}
    return bert_tf.pretrain(
        bert_tf.PretrainConfig(config_overrides=overrides, **values), progress=print
    )


def _error(data, model_dir, **extra):
    """A bad input: PretrainingJobError with a one-line message."""
    from bert_tf.recipes.pretrain_config import PretrainingJobError

    with pytest.raises(PretrainingJobError) as e:
        run_job(data, model_dir, **extra)
    message = str(e.value)
    assert message and "\n" not in message, message
    return message


def _snapshot(path):
    """{relative path: bytes} of every file under `path`."""
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """One tiny run through the app (24 steps), shared by the tests that read its model dir."""
    model_dir = str(tmp_path_factory.mktemp("run") / "model")
    run_app(
        *_args(
            data,
            model_dir,
            steps=24,
            learning_rate=3e-3,
            checkpoint_every_steps=12,
            log_every_steps=12,
        )
    )
    return model_dir


def test_end_to_end_writes_a_complete_model_dir(trained, data):
    from bert_tf import load_encoder
    from bert_tf.model_dir import ModelDir

    d = ModelDir(trained)
    config = d.read_config()
    assert config["encoder"]["hidden_size"] == 32
    assert config["encoder"]["vocab_size"] == len(TINY_VOCAB)
    assert config["preprocessing"] == {
        "vocab_file": "vocab.txt",
        "lower_case": True,
        "seq_length": SEQ,
    }
    assert config["task"]["type"] == "pretraining"
    assert config["training"]["num_train_steps"] == 24
    assert config["training"]["global_batch_size"] == 8
    with open(d.vocab_path) as f:
        assert f.read().split("\n")[: len(TINY_VOCAB)] == TINY_VOCAB
    assert os.path.isfile(d.weights_path)
    assert any(n.startswith("ckpt-24") for n in os.listdir(d.checkpoint_dir))
    events = [f for _, _, fs in os.walk(d.log_dir) for f in fs if "tfevents" in f]
    assert len(events) >= 2  # train and eval
    results = json.load(open(d.eval_results_path))
    assert results["step"] == 24
    for key in ("masked_lm_accuracy", "next_sentence_accuracy"):
        assert 0.0 <= results[key] <= 1.0
    # It learnt something: the MLM loss is well below a uniform guess, ln(V) = 4.47.
    assert 0 < results["masked_lm_loss"] < math.log(len(TINY_VOCAB)) - 0.3, results
    assert results["next_sentence_loss"] > 0
    encoder = load_encoder(trained)
    assert encoder.config.hidden_size == 32


def test_resume_continues_from_the_checkpoint_and_mode_eval(data, trained, tmp_path, capsys):
    model_dir = str(tmp_path / "model")
    shutil.copytree(trained, model_dir)
    run_job(
        data, model_dir, steps=30, learning_rate=3e-3, checkpoint_every_steps=12, log_every_steps=3
    )
    out = capsys.readouterr().out
    assert "restored" in out and "(step 24)" in out  # resumed, not restarted
    assert "step 27/30" in out and "step 3/30" not in out
    first = json.load(open(os.path.join(model_dir, "eval_results.json")))
    assert first["step"] == 30
    # --mode=eval on the model dir alone (eval files, lengths and masking as recorded) gives
    # the same numbers from the saved weights.
    os.remove(os.path.join(model_dir, "eval_results.json"))
    import bert_tf

    again = bert_tf.pretrain(bert_tf.PretrainConfig(model_dir=model_dir, mode="eval"))
    assert json.load(open(os.path.join(model_dir, "eval_results.json"))) == again
    assert again["step"] == 30
    for key in ("masked_lm_accuracy", "next_sentence_accuracy", "masked_lm_loss"):
        assert again[key] == pytest.approx(first[key], abs=1e-6)


@pytest.mark.slow
def test_training_learns_the_tiny_corpus(data, tmp_path):
    """Enough steps to beat chance clearly on held-out records of the patterned corpus."""
    model_dir = str(tmp_path / "model")
    run_job(
        data,
        model_dir,
        steps=200,
        learning_rate=3e-3,
        log_every_steps=50,
        checkpoint_every_steps=200,
        dynamic_masking=True,
    )
    results = json.load(open(os.path.join(model_dir, "eval_results.json")))
    # chance: 1/87 ~ 1.1% for MLM, 50% for NSP (the documents differ in their patterns).
    assert results["masked_lm_accuracy"] > 0.06, results
    assert results["next_sentence_accuracy"] > 0.9, results


# ----------------------------------------------------------------------------- bad inputs


def test_missing_and_empty_input_files(data, tmp_path):
    model_dir = str(tmp_path / "model")
    msg = _error(data, model_dir, input_files=str(tmp_path / "nope-*.tfrecord"))
    assert "nope-*.tfrecord" in msg
    empty = tmp_path / "empty.tfrecord"
    empty.write_bytes(b"")
    msg = _error(data, model_dir, input_files=str(empty))
    assert "empty" in msg
    assert not os.path.exists(model_dir)


def test_vocab_without_special_tokens(data, tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(t for t in TINY_VOCAB if t != "[MASK]") + "\n")
    model_dir = str(tmp_path / "model")
    msg = _error(data, model_dir, vocab_file=str(vocab))
    assert "[MASK]" in msg and str(vocab) in msg
    assert not os.path.exists(model_dir)


def test_corrupt_and_mismatched_records(data, tmp_path):
    model_dir = str(tmp_path / "model")
    corrupt = tmp_path / "corrupt.tfrecord"
    corrupt.write_bytes(os.urandom(200))
    msg = _error(data, model_dir, input_files=str(corrupt))
    assert "corrupt.tfrecord" in msg
    msg = _error(data, model_dir, max_seq_length=48)
    assert "48" in msg and str(SEQ) in msg
    msg = _error(data, model_dir, max_predictions_per_seq=7)
    assert "7" in msg
    assert not os.path.exists(model_dir)


def test_bad_optimizer_settings_write_nothing(data, tmp_path):
    model_dir = str(tmp_path / "model")
    msg = _error(data, model_dir, steps=1, num_warmup_steps=2)
    assert "num_warmup_steps (2) > num_train_steps (1)" in msg
    assert not os.path.exists(model_dir)


def test_whole_word_masking_needs_dynamic_masking_and_runs_with_it(data, tmp_path):
    model_dir = str(tmp_path / "model")
    msg = _error(data, model_dir, whole_word_masking=True)
    assert "--whole_word_masking applies to --dynamic_masking" in msg
    assert not os.path.exists(model_dir)
    run_job(data, model_dir, steps=2, dynamic_masking=True, whole_word_masking=True)
    training = json.load(open(os.path.join(model_dir, "config.json")))["training"]
    assert training["whole_word_masking"] is True and training["dynamic_masking"] is True


def test_pack_trains_and_evaluates_on_packed_rows(data, tmp_path):
    """--pack with dynamic masking: rows of up to 3 sequences; eval metrics count sequences
    (NSP accuracy over real sequences), so they stay comparable with unpacked runs."""
    model_dir = str(tmp_path / "model")
    run_job(
        data,
        model_dir,
        steps=3,
        dynamic_masking=True,
        pack=True,
        max_sequences_per_row=3,
        eval_steps=2,
    )
    results = json.load(open(os.path.join(model_dir, "eval_results.json")))
    assert 0.0 <= results["next_sentence_accuracy"] <= 1.0
    assert results["masked_lm_loss"] > 0
    training = json.load(open(os.path.join(model_dir, "config.json")))["training"]
    assert training["pack"] is True and training["max_sequences_per_row"] == 3
    msg = _error(data, str(tmp_path / "bad"), pack=True, max_sequences_per_row=0)
    assert "--max_sequences_per_row: expected an integer >= 1, got 0" in msg


def test_batch_not_divisible(data, tmp_path):
    from bert_tf.recipes.pretrain_config import PretrainConfig, PretrainingJobError
    from bert_tf.recipes.pretraining.plan import check_batch

    model_dir = str(tmp_path / "model")
    msg = _error(data, model_dir, global_batch_size=6, grad_accum_steps=4)
    assert "grad_accum_steps" in msg
    assert not os.path.exists(model_dir)
    two = types.SimpleNamespace(num_replicas_in_sync=2)
    settings = PretrainConfig(model_dir=model_dir, global_batch_size=9, strategy="mirrored")
    with pytest.raises(PretrainingJobError, match="not divisible by the 2 replicas"):
        check_batch(settings, two)
    check_batch(PretrainConfig(model_dir=model_dir, global_batch_size=8), two)


def test_init_checkpoint_of_another_shape(data, trained, tmp_path):
    model_dir = str(tmp_path / "model")
    bigger = tmp_path / "bigger.json"
    cfg = json.load(open(data["config"]))
    bigger.write_text(json.dumps(dict(cfg, hidden_size=64, intermediate_size=128)))
    msg = _error(data, model_dir, encoder_config=str(bigger), init_checkpoint=trained)
    assert "--init_checkpoint" in msg and "hidden_size=64 vs 32" in msg
    msg = _error(data, model_dir, init_checkpoint=str(tmp_path / "absent"))
    assert "absent" in msg
    assert not os.path.exists(model_dir)


def test_init_checkpoint_continues_from_published_weights(data, trained, tmp_path, capsys):
    """A second phase: the config and vocab come from the checkpoint; the weights start
    from it (so the first loss is far below a fresh model's)."""
    model_dir = str(tmp_path / "phase2")
    run_job(
        data,
        model_dir,
        steps=1,
        encoder_config=None,
        vocab_file=None,
        init_checkpoint=trained,
        log_every_steps=1,
        num_warmup_steps=0,
        mode="train",
    )
    out = capsys.readouterr().out
    assert f"initialized from {trained}" in out
    import numpy as np

    from bert_tf import load_encoder

    a = load_encoder(trained).embeddings.word_embeddings.embeddings.numpy()
    b = load_encoder(model_dir).embeddings.word_embeddings.embeddings.numpy()
    assert np.abs(a - b).max() < 1e-2  # one small step away, not a fresh init
    assert np.abs(a - b).max() > 0


def test_model_dir_with_conflicting_config(data, trained, tmp_path):
    model_dir = str(tmp_path / "model")
    shutil.copytree(trained, model_dir)
    before = _snapshot(model_dir)
    msg = _error(data, model_dir, steps=8, hidden_size=64, intermediate_size=128)
    assert "config.json" in msg and "hidden_size=64 vs 32" in msg
    msg = _error(data, model_dir, steps=8, max_seq_length=64)
    assert "seq_length" in msg
    other_vocab = tmp_path / "vocab.txt"
    other_vocab.write_text("\n".join(TINY_VOCAB[:-1]) + "\n")
    msg = _error(data, model_dir, steps=8, vocab_file=str(other_vocab))
    assert "vocab" in msg
    assert _snapshot(model_dir) == before


def test_foreign_checkpoint_without_config_writes_nothing(data, trained, tmp_path):
    from bert_tf import ownership

    model_dir = tmp_path / "model"
    shutil.copytree(os.path.join(trained, "checkpoints"), model_dir / "checkpoints")
    before = _snapshot(model_dir)
    # copied in by hand: not bert-tf's, so never written into (old checkpoints get deleted)
    msg = _error(data, str(model_dir), steps=30, hidden_size=64, intermediate_size=128)
    assert msg.endswith(
        "holds checkpoints/, which bert-tf did not write and this run would "
        "replace; use an empty or new --model_dir"
    )
    assert _snapshot(model_dir) == before
    ownership.record(model_dir, {"checkpoints": "pretrain"})  # as a killed run leaves it
    before = _snapshot(model_dir)
    msg = _error(data, str(model_dir), steps=30, hidden_size=64, intermediate_size=128)
    assert "cannot restore any of the 2 checkpoint(s)" in msg
    assert _snapshot(model_dir) == before


def test_mode_eval_needs_a_model_dir(data, tmp_path):
    msg = _error(data, str(tmp_path / "none"), mode="eval")
    assert "not a bert-tf model directory" in msg


def test_app_reports_bad_input_in_one_line(data, tmp_path):
    model_dir = str(tmp_path / "model")
    result = run_app(
        *_args(data, model_dir, input_files=str(tmp_path / "nope-*.tfrecord")), check=False
    )
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("pretrain: ") and "nope-*.tfrecord" in message
    assert "Traceback" not in result.stderr
    assert not os.path.exists(model_dir)


def test_every_flag_is_documented():
    out = subprocess.run(
        [sys.executable, "-m", "apps.pretrain", "--helpfull"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    for flag in (
        "config",
        "vocab_file",
        "lower_case",
        "input_files",
        "eval_files",
        "model_dir",
        "strategy",
        "tpu",
        "num_gpus",
        "global_batch_size",
        "max_seq_length",
        "max_predictions_per_seq",
        "num_train_steps",
        "num_warmup_steps",
        "learning_rate",
        "optimizer",
        "weight_decay",
        "clip_norm",
        "grad_accum_steps",
        "precision",
        "xla",
        "init_checkpoint",
        "checkpoint_every_steps",
        "keep_checkpoints",
        "log_every_steps",
        "dynamic_masking",
        "whole_word_masking",
        "mode",
        "seed",
        "pack",
        "max_sequences_per_row",
        "max_predictions_per_row",
        "skip_corrupt_records",
        "overwrite_model_dir",
    ):
        assert f"--{flag}" in out or f"--[no]{flag}" in out, flag
