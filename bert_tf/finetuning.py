"""The fine-tuning recipe behind `python -m apps.finetune`: data -> model -> train -> keep best.

    config = FinetuneConfig(task="classify", init_checkpoint=PATH, train_file=..., eval_file=...,
                            model_dir=DIR)
    results = run(config)

1. The tokenizer comes from `init_checkpoint` (its vocab.txt and casing); the task reads and
   featurizes its data ONCE (unpadded), see bert_tf/tasks/.
2. The model is the task head on `load_encoder(init_checkpoint)` (bert-tf, Hugging Face or
   Google directory). Training uses the generic `Trainer` (AdamW without decay on LayerNorm and
   biases, warmup + linear decay, global-norm clipping, optional layer-wise LR decay) on
   length-bucketed batches padded to their own longest sequence.
3. After every epoch the eval set is predicted and scored with the task's metric (classify:
   accuracy, regression: mean of Pearson and Spearman, tag: entity F1, squad: F1). When it
   improves, the weights go to DIR/model.weights.h5 (atomically) and the predictions to
   DIR/predictions.*; DIR/eval_results.json holds the best epoch's results plus the history.
   So DIR is always a complete model directory (config.json + vocab.txt + the best weights).
4. Killed and restarted with the same command, training resumes from the last checkpoint in
   DIR/checkpoints (saved every epoch and every `checkpoint_every_steps`) and the per-epoch
   evaluation history from DIR/finetune_state.json, and ends where an uninterrupted run would
   (the checkpoint holds the dropout RNG; the batch order is a function of seed and epoch).
5. DIR records the settings and fingerprints of train_file, eval_file and init_checkpoint
   (config.json "training", bert_tf/run_record.py). A rerun with other inputs or settings is
   refused in one line (`overwrite_model_dir` starts over); an identical rerun of a finished
   run returns the recorded results and writes nothing. DIR/.lock keeps a second run out.
"""

import contextlib
import dataclasses
import logging
import math
import os
import time

from bert_tf import fingerprint
from bert_tf import model_dir as md
from bert_tf import run_record
from bert_tf.checkpoints.sources import CheckpointError, read_encoder_config
from bert_tf.data.classification import parse_tfds_source
from bert_tf.data.conll import TAG_SCHEMES
from bert_tf.data.errors import DataError
from bert_tf.data.text_files import check_file
from bert_tf.errors import BertTfError
from bert_tf.run_lock import RunLock

STATE_FILE = "finetune_state.json"
# Settings that do not change the result of a run (a rerun may change them freely); the file
# paths are compared by content (fingerprints), not by name.
NOT_DECIDING = ("model_dir", "strategy", "checkpoint_every_steps", "log_every_steps",
                "eval_batch_size", "train_file", "eval_file", "init_checkpoint",
                "tfds_data_dir", "overwrite_model_dir")


class FinetuneConfigError(BertTfError, ValueError):
    """A fine-tuning setting that cannot work (one line naming the flag)."""


@dataclasses.dataclass
class FinetuneConfig:
    task: str
    init_checkpoint: str
    train_file: str
    model_dir: str
    eval_file: str = None
    epochs: int = 3
    batch_size: int = 32
    eval_batch_size: int = None
    learning_rate: float = 5e-5
    max_seq_length: int = 128
    seed: int = 42
    warmup_proportion: float = 0.1
    weight_decay: float = 0.01
    layer_decay: float = None
    dropout: float = 0.1
    clip_norm: float = 1.0
    strategy: str = "default"
    precision: str = "float32"
    checkpoint_every_steps: int = None
    log_every_steps: int = 50
    max_train_examples: int = None
    allow_unseen_labels: bool = False
    label_names: list = None
    # classify
    text_a_column: str = "sentence"
    text_b_column: str = None
    label_column: str = "label"
    regression: bool = False
    tfds_data_dir: str = None
    # tag
    tag_scheme: str = "iob"
    long_inputs: str = "windows"     # classify/tag training: "windows" or "truncate"
    # squad (and the windows of classify / tag)
    doc_stride: int = None           # squad: 128; classify / tag: half a window
    max_query_length: int = 64
    max_answer_length: int = 30
    n_best_size: int = 20
    null_score_diff_threshold: float = 0.0
    version_2_with_negative: bool = None
    squad_offset_errors: str = "warn"
    overwrite_model_dir: bool = False

    def validate(self):
        from bert_tf.tasks import TASK_NAMES
        if self.task not in TASK_NAMES:
            raise FinetuneConfigError(f"--task: expected one of {', '.join(TASK_NAMES)}, got "
                                      f"{self.task!r}")
        for name in ("init_checkpoint", "train_file", "model_dir"):
            if not getattr(self, name):
                raise FinetuneConfigError(f"--{name} is required")
        for name in ("epochs", "batch_size", "max_seq_length"):
            if getattr(self, name) <= 0:
                raise FinetuneConfigError(f"--{name}: expected a positive number, got "
                                          f"{getattr(self, name)}")
        # Written so that NaN fails too (every comparison with NaN is False).
        if not (0 < self.learning_rate < math.inf):
            raise FinetuneConfigError(f"--learning_rate: expected a finite number > 0, got "
                                      f"{self.learning_rate}")
        for name, low, high in (("weight_decay", 0, math.inf), ("clip_norm", 0, math.inf),
                                ("dropout", 0, 1)):
            if not (low <= getattr(self, name) < high):
                raise FinetuneConfigError(f"--{name}: expected a finite number in [{low}, "
                                          f"{high}), got {getattr(self, name)}")
        if not 0 <= self.warmup_proportion < 1:
            raise FinetuneConfigError(f"--warmup_proportion: expected [0, 1), got "
                                      f"{self.warmup_proportion}")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise FinetuneConfigError(f"--layer_decay: expected (0, 1], got "
                                      f"{self.layer_decay}")
        if self.doc_stride is not None and self.doc_stride <= 0:
            raise FinetuneConfigError(f"--doc_stride: expected > 0, got {self.doc_stride}")
        if self.long_inputs not in ("windows", "truncate"):
            raise FinetuneConfigError(f"--long_inputs: expected windows or truncate, got "
                                      f"{self.long_inputs!r}")
        if self.tag_scheme not in TAG_SCHEMES:
            raise FinetuneConfigError(f"--tag_scheme: expected one of {', '.join(TAG_SCHEMES)}"
                                      f", got {self.tag_scheme!r}")

    def check_paths(self):
        """Up-front checks of the paths and of max_seq_length against the encoder (its config
        only; no weights are read): one line each, before any data is read."""
        if os.path.exists(self.model_dir) and not os.path.isdir(self.model_dir):
            raise FinetuneConfigError(f"--model_dir={self.model_dir}: exists and is not a "
                                      f"directory")
        for name in ("train_file", "eval_file"):
            path = getattr(self, name)
            if path and not (self.task == "classify" and parse_tfds_source(path)):
                try:
                    check_file(path)
                except DataError as e:
                    raise FinetuneConfigError(f"--{name}={e}") from None
        try:
            encoder = read_encoder_config(self.init_checkpoint)
        except CheckpointError as e:
            raise FinetuneConfigError(f"--init_checkpoint={e}") from None
        if self.max_seq_length > encoder.max_position_embeddings:
            raise FinetuneConfigError(
                f"--max_seq_length={self.max_seq_length} exceeds the encoder's "
                f"max_position_embeddings={encoder.max_position_embeddings} "
                f"({self.init_checkpoint})")


def _finite(values):
    """JSON-safe copy: non-finite floats become None."""
    if isinstance(values, dict):
        return {k: _finite(v) for k, v in values.items()}
    if isinstance(values, list):
        return [_finite(v) for v in values]
    if isinstance(values, float) and not math.isfinite(values):
        return None
    return values


def _check_existing(directory, task_info):
    d = md.ModelDir(directory)
    if not os.path.isfile(d.config_path):
        return
    old = d.read_config()["task"]
    for key in ("type", "label_names"):
        if old.get(key) != task_info.get(key):
            raise ValueError(f"{d.config_path}: holds a different model (task.{key} = "
                             f"{old.get(key)!r}, this run: {task_info.get(key)!r}); use a new "
                             f"--model_dir")


def _training_record(config):
    """config.json "training": the settings and the fingerprints of the input files."""
    record = {k: v for k, v in dataclasses.asdict(config).items()
              if k not in ("label_names", "overwrite_model_dir")}
    record[run_record.INPUTS_KEY] = {
        name: fingerprint.fingerprint(getattr(config, name))
        for name in ("train_file", "eval_file", "init_checkpoint")}
    return record


def _check_rerun(config, record, progress_fn):
    """None to (re)start training, or the recorded eval results of a finished identical run.
    Raises RunMismatchError when DIR holds another run (unless --overwrite_model_dir)."""
    d = md.ModelDir(config.model_dir)
    if config.overwrite_model_dir:
        removed = run_record.clear_run(config.model_dir, extra=(STATE_FILE, "predictions."))
        if removed:
            progress_fn(f"--overwrite_model_dir: removed the previous run's "
                        f"{', '.join(removed)} from {config.model_dir}")
        return None
    settings = {k: v for k, v in record.items() if k != run_record.INPUTS_KEY}
    recorded = run_record.check_same_run(config.model_dir, settings,
                                         record[run_record.INPUTS_KEY], ignore=NOT_DECIDING)
    if recorded is not None and run_record.INPUTS_KEY not in recorded:
        progress_fn(f"{d.config_path} records no input fingerprints (an older bert-tf): the "
                    "settings match; the input files cannot be checked")
    if recorded is not None and os.path.isfile(d.eval_results_path) \
            and os.path.isfile(d.weights_path):
        results = md.read_json(d.eval_results_path)
        metric = results.get("main_metric")
        progress_fn(f"{config.model_dir} is already complete (same settings and inputs; best "
                    f"epoch {results.get('best_epoch')}: {metric}={results.get(metric)}); "
                    "nothing to do (--overwrite_model_dir to train again)")
        return results
    return None


def run(config, progress_fn=print):
    """Fine-tunes; returns the best epoch's eval results (see the module doc). Holds
    DIR/.lock while it runs (one run per model dir; in a multi-worker job, the chief)."""
    config.validate()
    config.check_paths()
    with contextlib.ExitStack() as stack:
        return _run(config, progress_fn, stack)


def _run(config, progress_fn, stack):
    import keras
    import tensorflow as tf
    from bert_tf.checkpoints.loader import load_encoder
    from bert_tf.tasks import task_class
    from bert_tf.text.preprocessor import find_vocab
    from bert_tf.text.tokenizer import BertTokenizer
    from bert_tf.training import distribute, optimization
    from bert_tf.training.trainer import Trainer
    from bert_tf.data.batching import epochs_order

    keras.utils.set_random_seed(config.seed)
    vocab_file, lower_case, _ = find_vocab(config.init_checkpoint)
    tokenizer = BertTokenizer(vocab_file=vocab_file, lower_case=lower_case)
    task = task_class(config.task)(config, tokenizer)
    start = time.time()
    task.load()
    prep_seconds = time.time() - start
    info = task.task_info()
    strategy = distribute.create_strategy(config.strategy)
    if distribute.is_chief(strategy):
        stack.enter_context(RunLock(config.model_dir, log=progress_fn))
    training_record = _training_record(config)
    done = _check_rerun(config, training_record, progress_fn)
    if done is not None:
        return done
    _check_existing(config.model_dir, info)
    progress_fn(f"data: {task.data_stats} (tokenized once in {prep_seconds:.1f} s)")

    distribute.set_precision(config.precision)
    steps_per_epoch = math.ceil(len(task.train_features) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup = int(total_steps * config.warmup_proportion)

    with strategy.scope():
        encoder = load_encoder(config.init_checkpoint)
        model = task.build_model(encoder)
        optimizer = optimization.create_optimizer(
            "adamw", config.learning_rate, total_steps, warmup, config.weight_decay,
            clip_norm=config.clip_norm, layer_decay=config.layer_decay,
            num_layers=encoder.config.num_layers)

    d = md.ModelDir(config.model_dir)
    os.makedirs(config.model_dir, exist_ok=True)
    d.copy_vocab(vocab_file)
    d.write_config(encoder.config, {"vocab_file": md.VOCAB_FILE,
                                    "lower_case": bool(tokenizer.lower_case),
                                    "seq_length": config.max_seq_length}, info,
                   training_record)

    trainer = Trainer(model, task.objective, optimizer, strategy=strategy,
                      checkpoint_dir=d.checkpoint_dir, log_dir=d.log_dir,
                      checkpoint_every_steps=config.checkpoint_every_steps or steps_per_epoch,
                      log_every_steps=min(config.log_every_steps, steps_per_epoch),
                      progress_fn=progress_fn)
    batches = epochs_order(task.train_features.lengths, config.batch_size, config.epochs,
                           config.seed)
    train_dataset = task.make_dataset(task.train_features, batches)

    state_path = d.file(STATE_FILE)
    state = md.read_json(state_path) if os.path.isfile(state_path) else {"history": []}
    done = {h["epoch"] for h in state["history"]}
    eval_batch = config.eval_batch_size or config.batch_size * 2
    for epoch in range(1, config.epochs + 1):
        target = epoch * steps_per_epoch
        if trainer.current_step < target:
            t0, step0 = time.time(), trainer.current_step
            last = trainer.train(train_dataset, target)
            seconds = time.time() - t0
            examples = (trainer.current_step - step0) * len(task.train_features) \
                / steps_per_epoch
            state.setdefault("train_seconds", 0.0)
            state["train_seconds"] += seconds
            state.setdefault("train_examples", 0)
            state["train_examples"] += int(examples)
            state["last_train_loss"] = last.get("loss")
            state["last_window_examples_per_second"] = last.get("examples_per_second")
        if epoch in done:
            continue
        entry = {"epoch": epoch, "step": trainer.current_step}
        if task.eval_features is not None:
            t0 = time.time()
            outputs = task.predict(model, eval_batch)
            results = task.evaluate(outputs)
            entry["eval_seconds"] = time.time() - t0
            entry["results"] = results
            metric = results[task.main_metric]
            progress_fn(f"epoch {epoch}/{config.epochs}: {task.main_metric}={metric:.4f} "
                        + " ".join(f"{k}={v:.4f}" for k, v in results.items()
                                   if isinstance(v, float) and k != task.main_metric))
            best = state.get("best")
            improved = best is None or metric > best["metric"]
        else:
            outputs, improved = None, True
            metric = None
        if improved:
            d.save_weights(model)
            if outputs is not None:
                task.write_predictions(config.model_dir, outputs)
            state["best"] = {"epoch": epoch, "metric": metric}
        state["history"].append(entry)
        done.add(epoch)
        md.write_json(state_path, _finite(state))
    if not os.path.isfile(d.weights_path):   # all epochs were done before a restart
        d.save_weights(model)

    best_epoch = state["best"]["epoch"]
    best_entry = next(h for h in state["history"] if h["epoch"] == best_epoch)
    results = dict(best_entry.get("results", {}))
    results.update({
        "main_metric": task.main_metric, "best_epoch": best_epoch,
        "epochs": config.epochs, "global_step": trainer.current_step,
        "train_examples": len(task.train_features),
        "train_loss": state.get("last_train_loss"),
        "train_examples_per_second": (state.get("train_examples", 0)
                                      / state["train_seconds"]) if state.get(
                                          "train_seconds") else None,
        "train_examples_per_second_last_window": state.get("last_window_examples_per_second"),
        "history": [{"epoch": h["epoch"], **{k: v for k, v in h.get("results", {}).items()
                                             if isinstance(v, (int, float))}}
                    for h in state["history"]],
    })
    results = _finite(results)
    d.write_eval_results(results)
    logging.info("fine-tuning done: %s", {k: results.get(k) for k in
                                          (task.main_metric, "best_epoch")})
    return results
