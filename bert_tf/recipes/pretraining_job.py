"""The BERT pre-training recipe: records in, a complete model directory out.

    config = PretrainConfig(model_dir="runs/x", input_files="data/train-*.tfrecord",
                            eval_files="data/eval-*.tfrecord", vocab_file="vocab.txt",
                            config="tiny", num_train_steps=1000)   # recipes/pretrain_config.py
    results = pretrain(config)        # = bert_tf.pretrain(config): eval results ({} for train)

Steps, in order:
  1. check everything that can be checked cheaply BEFORE anything is written
     (bert_tf/recipes/pretraining_plan.py: vocab, encoder config, record files, batch vs replicas,
     an existing model dir's recorded config and vocab, the --init_checkpoint's shapes);
  2. build the model and the Trainer, which restores <model_dir>/checkpoints (a rerun of the
     same command resumes); a rerun of another run is refused (recipes/pretraining_guard.py);
  3. write config.json (encoder, preprocessing {vocab_file, lower_case, seq_length},
     task {type: pretraining}, training {config.record() + input fingerprints}) and
     vocab.txt, only now: a checkpoint that does not fit or another run's model dir leaves
     the directory untouched (fine-tuning writes at the same point);
  4. train (TensorBoard in <model_dir>/logs), save the final weights (model.weights.h5),
     evaluate on the held-out records and write eval_results.json (masked_lm_accuracy,
     next_sentence_accuracy, losses, step).
--mode=eval only evaluates the model dir's weights (eval files and lengths as recorded).

Every problem with the inputs raises `PretrainingJobError` with a one-line message. What
the run may replace or remove is checked first (bert_tf/ownership.py, `OwnershipError`):
--overwrite_model_dir removes the previous run's files only after every check passed, and
only those <model_dir>/.bert_tf_manifest.json lists. The run
holds <model_dir>/.lock (bert_tf/run_lock.py); damaged record files are handled by
bert_tf/recipes/pretraining_guard.py. Precision "auto" is resolved here, and the global Keras dtype
policy and XLA switch are restored when the run ends (bert_tf/recipes/precision.py), as are the
caller's logging and random state (bert_tf/recipes/caller_state.py).
"""

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from bert_tf import model_dir as md
from bert_tf.recipes import pretraining_guard as guard
from bert_tf.checkpoints.loader import load_task_model
from bert_tf.checkpoints.sources import CheckpointError
from bert_tf.data.pretraining_dataset import expand_file_patterns
from bert_tf.models import BertEncoder, BertPretrainer
from bert_tf.recipes.caller_state import preserved_caller_state
from bert_tf.recipes.field_checks import require_instance
from bert_tf.recipes.precision import keras_runtime
from bert_tf.recipes.pretrain_config import PretrainConfig, PretrainingJobError
from bert_tf.recipes.pretraining_plan import (check_batch, check_records, dataset_fn, fail,
                                              first_line, plan_run, resolve_recorded)
from bert_tf.run_lock import RunLock
from bert_tf.tasks.pretraining import PretrainingObjective
from bert_tf.training import distribute, optimization
from bert_tf.training.checkpointing import CheckpointRestoreError
from bert_tf.training.trainer import Trainer

__all__ = ["pretrain", "PretrainConfig", "PretrainingJobError"]


def write_model_dir(s, p, training):
    """config.json + vocab.txt."""
    d = md.ModelDir(s.model_dir)
    os.makedirs(s.model_dir, exist_ok=True)
    d.copy_vocab(p.vocab_file)
    d.write_config(p.config,
                   {"vocab_file": md.VOCAB_FILE, "lower_case": bool(p.lower_case),
                    "seq_length": s.max_seq_length},
                   {"type": "pretraining",
                    "max_predictions_per_seq": s.max_predictions_per_seq},
                   training=training)


def _latest_step(checkpoint_dir):
    latest = tf.train.latest_checkpoint(checkpoint_dir) if os.path.isdir(checkpoint_dir) \
        else None
    m = re.search(r"ckpt-(\d+)$", latest or "")
    return int(m.group(1)) if m else 0


def _copy_weights(source, target, what):
    sw, tw = source.weights, target.weights
    if len(sw) != len(tw):
        fail(f"{what}: {len(sw)} weights, the model has {len(tw)}")
    for a, b in zip(sw, tw):
        if tuple(a.shape) != tuple(b.shape):
            fail(f"{what}: weight {a.path} has shape {tuple(a.shape)}, the model's {b.path} "
                  f"{tuple(b.shape)}")
    for a, b in zip(sw, tw):
        b.assign(a.value if hasattr(a, "value") else a)



def _create_strategy(s):
    try:
        return distribute.create_strategy(s.strategy, tpu_address=s.tpu, num_gpus=s.num_gpus)
    except (ValueError, RuntimeError) as e:
        fail(f"--strategy={s.strategy}: {first_line(e)}")


def pretrain(s: PretrainConfig, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Runs one pre-training job (see the module doc). Returns the eval results dict
    ({} for mode=train). Raises PretrainingJobError on bad input, before writing anything."""
    require_instance(s, PretrainConfig, "bert_tf.pretrain")   # its fields were checked when built
    start = time.time()
    with preserved_caller_state(), keras_runtime(s.precision, xla=s.xla) as precision:
        strategy = _create_strategy(s)
        lock: contextlib.AbstractContextManager = contextlib.nullcontext()
        if s.model_dir and distribute.is_chief(strategy):
            lock = RunLock(s.model_dir, log=lambda line: progress("[pretrain] " + line))
        with lock:
            return _run_locked(s, progress, strategy, precision, start)


def _run_locked(s, progress, strategy, precision, start):
    """Steps 1-4 of the module doc, holding the model dir's lock."""
    if not s.model_dir:
        fail("--model_dir is required")
    guard.ownership_plan(s, expand_file_patterns)   # refuses before anything is read
    s = resolve_recorded(s)
    p = plan_run(s)
    if s.mode != "eval":
        check_batch(s, strategy)
        check_records(s, p, s.input_files, "input_files")
    if s.mode != "train":
        if not s.eval_files:
            fail(f"--mode={s.mode} needs --eval_files (held-out pre-training records); "
                 "or use --mode=train")
        check_records(s, p, s.eval_files, "eval_files")
    keras.utils.set_random_seed(s.seed)
    if s.mode == "eval":
        guard.ownership_plan(s, expand_file_patterns).apply()
        return _evaluate_only(s, p, strategy, progress)
    try:
        optimization.create_optimizer(   # checks the optimizer settings before writing
            s.optimizer, learning_rate=s.learning_rate, num_train_steps=s.num_train_steps,
            num_warmup_steps=s.num_warmup_steps)
    except ValueError as e:
        fail(first_line(e))
    # Everything is checked: only now --overwrite_model_dir removes the previous run's
    # files (only those bert-tf wrote) and records the names the run writes.
    if s.overwrite_model_dir and distribute.is_chief(strategy):
        guard.ownership_plan(s, expand_file_patterns).apply(
            lambda line: progress("[pretrain] " + line))
    trainer = _build_trainer(s, p, strategy, progress)
    start_step = trainer.current_step
    fingerprints = guard.input_fingerprints(s, expand_file_patterns)
    done = guard.check_rerun(s, fingerprints, start_step, progress)
    if done is not None:
        return done
    chief = distribute.is_chief(strategy)   # multi-worker: only the chief writes the model dir
    # Written only now: a checkpoint that does not fit (CheckpointRestoreError in
    # _build_trainer) or another run's model dir (RunMismatchError) leaves the directory
    # untouched.
    if chief:
        if not s.overwrite_model_dir:
            guard.ownership_plan(s, expand_file_patterns).apply()
        write_model_dir(s, p, guard.training_record(s, fingerprints))
    progress(f"[pretrain] model dir {s.model_dir}: encoder L{p.config.num_layers}/"
             f"H{p.config.hidden_size}/A{p.config.num_heads}, vocab {len(p.vocab)}, "
             f"seq {s.max_seq_length}, batch {s.global_batch_size}, precision {precision}, "
             f"{strategy.num_replicas_in_sync} replica(s)")
    results = _train_and_evaluate(s, p, trainer, progress, chief)
    if results:
        results["wall_seconds"] = round(time.time() - start, 1)
        if chief:
            md.ModelDir(s.model_dir).write_eval_results(results)
        progress("[pretrain] eval: " + _fmt(results) + " -> "
                 + md.ModelDir(s.model_dir).eval_results_path)
    return results


def _build_trainer(s, p, strategy, progress):
    """The model, optimizer and Trainer (restoring the latest checkpoint, else starting from
    --init_checkpoint's weights)."""
    d = md.ModelDir(s.model_dir)

    def build_model():
        return BertPretrainer(BertEncoder(p.config))

    def build_optimizer():
        return optimization.create_optimizer(
            s.optimizer, learning_rate=s.learning_rate, num_train_steps=s.num_train_steps,
            num_warmup_steps=s.num_warmup_steps, weight_decay=s.weight_decay,
            clip_norm=s.clip_norm or None)

    def init_fn(model):
        if p.init_model is not None:
            _copy_weights(p.init_model, model, f"--init_checkpoint {s.init_checkpoint}")
            progress(f"[pretrain] initialized from {s.init_checkpoint}")

    with strategy.scope():
        model, optimizer = build_model(), build_optimizer()
    try:
        trainer = Trainer(
            model, PretrainingObjective(), optimizer, strategy=strategy,
            checkpoint_dir=d.checkpoint_dir, log_dir=d.log_dir,
            checkpoint_every_steps=s.checkpoint_every_steps,
            keep_checkpoints=s.keep_checkpoints, log_every_steps=s.log_every_steps,
            steps_per_loop=s.log_every_steps, grad_accum_steps=s.grad_accum_steps,
            progress_fn=lambda line: progress("[pretrain] " + line), init_fn=init_fn)
    except CheckpointRestoreError as e:
        fail(first_line(e))
    p.init_model = None
    return trainer


def _train_and_evaluate(s, p, trainer, progress, chief):
    """Trains to --num_train_steps, saves the weights; returns the eval results ({} for
    --mode=train)."""
    d = md.ModelDir(s.model_dir)
    start_step = trainer.current_step
    eval_fn = dataset_fn(s, p, s.eval_files, is_training=False) if s.eval_files else None
    train_start = time.time()
    last = guard.train_guarding_records(
        trainer, lambda limits: dataset_fn(s, p, s.input_files, True, limits),
        expand_file_patterns, s, progress, write=chief,
        eval_dataset=eval_fn if s.eval_every_steps else None,
        eval_every_steps=s.eval_every_steps or None, eval_steps=s.eval_steps)
    train_seconds = time.time() - train_start
    steps_done = trainer.current_step - start_step
    if chief:
        d.save_weights(trainer.model)
    throughput = (steps_done * s.global_batch_size / train_seconds
                  if steps_done and train_seconds > 0 else None)
    progress(f"[pretrain] trained steps {start_step}->{trainer.current_step} in "
             f"{train_seconds:.0f} s"
             + (f" ({throughput:.1f} examples/s incl. tracing)" if throughput else "")
             + f"; weights -> {d.weights_path}")
    if s.mode == "train":
        return {}
    progress(f"[pretrain] evaluating on {s.eval_files}")
    results = guard.evaluate_guarding_records(trainer, eval_fn, s, expand_file_patterns,
                                              s.eval_steps)
    results = _finish_results(results, trainer.current_step, s)
    results["train_examples_per_second"] = throughput
    if last:
        results["train_last_loss"] = last.get("loss")
        results["train_examples_per_second_last_window"] = last.get("examples_per_second")
    return results


def _finish_results(results, step, s):
    out = {"masked_lm_accuracy": results["masked_lm_accuracy"],
           "next_sentence_accuracy": results["next_sentence_accuracy"],
           "masked_lm_loss": results["masked_lm_loss"],
           "next_sentence_loss": results["next_sentence_loss"],
           "loss": results["loss"], "step": int(step),
           "eval_files": s.eval_files if isinstance(s.eval_files, str)
           else ",".join(s.eval_files)}
    return out


def _fmt(results):
    keys = ("masked_lm_accuracy", "next_sentence_accuracy", "masked_lm_loss",
            "next_sentence_loss", "step")
    return " ".join(f"{k}={results[k]:.4f}" if isinstance(results[k], float)
                    else f"{k}={results[k]}" for k in keys)


def _evaluate_only(s, p, strategy, progress):
    """--mode=eval: the model dir's final weights (or latest checkpoint) on the eval files."""
    d = md.ModelDir(s.model_dir)
    pre = p.existing["preprocessing"]
    if pre.get("seq_length") not in (None, s.max_seq_length):
        progress(f"[pretrain] evaluating at --max_seq_length={s.max_seq_length} (trained at "
                 f"{pre.get('seq_length')})")
    with strategy.scope():
        try:
            model = load_task_model(s.model_dir)
        except (CheckpointError, OSError, ValueError) as e:
            fail(first_line(e))
        optimizer = optimization.create_optimizer("adamw", 1e-4, 1)   # (never applied)
    step = _latest_step(d.checkpoint_dir)
    with tempfile.TemporaryDirectory() as empty:
        trainer = Trainer(model, PretrainingObjective(), optimizer, strategy=strategy,
                          checkpoint_dir=empty, log_dir=d.log_dir,
                          progress_fn=lambda line: progress("[pretrain] " + line))
        trainer.step.assign(step)
        progress(f"[pretrain] evaluating {s.model_dir} (step {step}) on {s.eval_files}")
        results = guard.evaluate_guarding_records(
            trainer, dataset_fn(s, p, s.eval_files, is_training=False), s,
            expand_file_patterns, s.eval_steps)
    results = _finish_results(results, step, s)
    d.write_eval_results(results)
    progress("[pretrain] eval: " + _fmt(results) + f" -> {d.eval_results_path}")
    return results
