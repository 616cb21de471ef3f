"""The fine-tuning recipe behind `python -m apps.finetune`: data -> model -> train -> keep best.
`FinetuningRecipe` is one use of the recipe skeleton (bert_tf/recipes/recipe.py: plan -> guard
-> build -> restore -> train -> evaluate -> record) over a fine-tuning task (bert_tf/tasks/).

    config = FinetuneConfig(task="classify", init_checkpoint=PATH, train_file=..., eval_file=...,
                            model_dir=DIR)           # bert_tf/recipes/finetune_config.py
    results = finetune(config)                       # = bert_tf.finetune(config)

1. The tokenizer comes from `init_checkpoint` (its vocab.txt and casing); the task reads and
   featurizes its data ONCE (unpadded), see bert_tf/tasks/.
2. The model is the task head on `load_encoder(init_checkpoint)` (bert-tf, Hugging Face or
   Google directory). Training uses the generic `Trainer` (AdamW without decay on LayerNorm and
   biases, warmup + linear decay, global-norm clipping, optional layer-wise LR decay) on
   uniformly random batches (reshuffled every epoch, as the reference recipe's; similar
   lengths grouped only with --group_by_length) padded to their own longest sequence; the
   encoder packs each into full rows to train (bert_tf/models/row_packing.py).
3. After every epoch the eval set is predicted and scored with the task's metric (classify:
   accuracy, regression: mean of Pearson and Spearman, tag: entity F1, squad: F1). When it
   improves, the weights go to DIR/model.weights.h5 (atomically) and the predictions to
   DIR/predictions.*; DIR/eval_results.json holds the best epoch's results plus the history.
   So DIR is always a complete model directory (config.json + vocab.txt + the best weights).
   config.json and vocab.txt are written once the model is built and its checkpoint (if any)
   restored, as pre-training does: a run that fails before that writes neither.
4. Killed and restarted with the same command, training resumes from the last checkpoint in
   DIR/checkpoints (saved every epoch and every `checkpoint_every_steps`) and the per-epoch
   evaluation history from DIR/finetune_state.json, and ends where an uninterrupted run would
   (the checkpoint holds the dropout RNG; the batch order is a function of seed and epoch).
5. DIR records the settings (`config.record()`) and fingerprints of train_file, eval_file and
   init_checkpoint in config.json "training" (bert_tf/recipes/run_record.py). A rerun with other
   inputs or settings is refused in one line (`overwrite_model_dir` starts over); an identical
   rerun of a finished run returns the recorded results and writes nothing. DIR/.lock keeps
   a second run out. DIR/.bert_tf_manifest.json records what the run writes
   (bert_tf/ownership.py): a file of DIR that bert-tf did not write is never replaced or
   removed, and --overwrite_model_dir removes only what the record lists (`ownership_plan`).
6. Precision "auto" is resolved here; the global Keras dtype policy is restored when the run
   ends (bert_tf/recipes/precision.py), and so are the caller's logging and random state
   (bert_tf/recipes/caller_state.py), so it can be called from a notebook.
"""

import logging
import math
import os
import time
from collections.abc import Callable
from typing import Any

import keras

from bert_tf import fingerprint, ownership
from bert_tf import model_dir as md
from bert_tf.checkpoints.loader import load_encoder
from bert_tf.data.batching import COMPILE_COST_TOKENS, epochs_order
from bert_tf.models import param_groups
from bert_tf.recipes import run_record
from bert_tf.recipes.field_checks import require_instance
from bert_tf.recipes.finetune_config import FinetuneConfig, FinetuneConfigError
from bert_tf.recipes.recipe import Recipe
from bert_tf.tasks import get_task
from bert_tf.text.preprocessor import find_vocab
from bert_tf.text.tokenizer import BertTokenizer
from bert_tf.training import distribute, optimization
from bert_tf.training.trainer import Trainer

log = logging.getLogger(__name__)  # never the root logger: the caller owns it

__all__ = ["finetune", "FinetuneConfig", "FinetuneConfigError", "FinetuningRecipe"]

STATE_FILE = "finetune_state.json"


def _finite(values):
    """JSON-safe copy: non-finite floats become None."""
    if isinstance(values, dict):
        return {k: _finite(v) for k, v in values.items()}
    if isinstance(values, list):
        return [_finite(v) for v in values]
    if isinstance(values, float) and not math.isfinite(values):
        return None
    return values


def warmup_steps(total_steps, proportion):
    """Warmup steps for `proportion` of the run, rounded up, as transformers'
    `TrainingArguments.get_warmup_steps` (a ratio < 1)."""
    return math.ceil(total_steps * proportion)


def training_batches(config, lengths):
    """The training batches of every epoch as index arrays into the features of `lengths`:
    each epoch a fresh seeded permutation cut into batches (the reference recipe's shuffled
    loader), or batches of similar lengths with `config.group_by_length`."""
    return epochs_order(
        lengths,
        config.batch_size,
        config.epochs,
        config.seed,
        group_by_length=config.group_by_length,
    )


def train_packing(config, strategy):
    """The width of the rows the encoder packs each random training batch into
    (bert_tf/models/row_packing.py: the same loss and gradients, no work on padding):
    max_seq_length; 0 (off) for batches already grouped by length and on TPUs (static
    shapes only)."""
    if config.group_by_length or distribute.needs_static_shapes(strategy):
        return 0
    return config.max_seq_length


def finetune(config: FinetuneConfig, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Fine-tunes; returns the best epoch's eval results (see the module doc). Holds
    DIR/.lock while it runs (one run per model dir; in a multi-worker job, the chief)."""
    require_instance(config, FinetuneConfig, "bert_tf.finetune")
    config.validate()
    config.check_paths()
    recipe = FinetuningRecipe(config, progress)
    recipe.ownership_plan()  # refuses before anything is read or written
    return recipe.run()


class FinetuningRecipe(Recipe):
    """One fine-tuning run (bert_tf/recipes/recipe.py has the steps' order)."""

    writer = "finetune"

    def __init__(self, config, progress=print):
        super().__init__(config, progress)
        self.state_path = self.dir.file(STATE_FILE)

    @property
    def not_deciding(self):
        """The common settings and the task's declared `decides=False`."""
        return self.config.not_deciding()

    def ownership_plan(self):
        """The checked RunPlan of DIR (bert_tf/ownership.py): refuses, changing nothing, a
        DIR that is, contains or lies inside --init_checkpoint, an input file among the paths
        the run writes or removes, a symlinked logs/ or checkpoints/, a file of DIR bert-tf
        did not write that the run would replace, and --overwrite_model_dir on a DIR holding
        anything bert-tf did not write."""
        config = self.config
        writes = run_record.RUN_FILES + (STATE_FILE,) + get_task(config.task).prediction_files
        return ownership.plan_model_dir(
            config.model_dir,
            self.writer,
            writes,
            overwrite=config.overwrite_model_dir,
            inputs=config.input_files(),
            sources=[("--init_checkpoint", config.init_checkpoint)],
        )

    def plan(self, stack):
        """Reads and featurizes the data (once), then takes the lock."""
        config = self.config
        keras.utils.set_random_seed(config.seed)
        self.vocab_file, lower_case, _ = find_vocab(config.init_checkpoint)
        self.tokenizer = BertTokenizer(vocab_file=self.vocab_file, lower_case=lower_case)
        self.task = get_task(config.task)(config, self.tokenizer)
        start = time.time()
        self.task.load()
        self.prep_seconds = time.time() - start
        self.strategy = distribute.create_strategy(config.strategy)
        self.take_lock(stack)
        self._record = self._training_record()

    def _training_record(self):
        """config.json "training": the settings and the fingerprints of the input files."""
        record = self.config.record()
        record[run_record.INPUTS_KEY] = {
            name: fingerprint.fingerprint(getattr(self.config, name))
            for name in ("train_file", "eval_file", "init_checkpoint")
        }
        return record

    def training_record(self):
        return self._record

    def unrecorded_values(self, record):
        """Fine-tuning runs recorded before --group_by_length existed grouped their batches
        by length (a pre-training record is another model: `_check_same_model` says so)."""
        return {"group_by_length": True} if "task" in record else {}

    def guard(self):
        """The skeleton's guard, then: DIR must not hold another task's model."""
        done = super().guard()
        if done is None:
            self._check_same_model()
            self.say(f"data: {self.task.data_stats} (tokenized once in {self.prep_seconds:.1f} s)")
        return done

    def _check_same_model(self):
        if not os.path.isfile(self.dir.config_path):
            return
        old, new = self.dir.read_config()["task"], self.task.task_info()
        for key in ("type", "label_names"):
            if old.get(key) != new.get(key):
                raise run_record.RunMismatchError(
                    f"{self.dir.config_path}: holds a different model (task.{key} = "
                    f"{old.get(key)!r}, this run: {new.get(key)!r}); use a new --model_dir"
                )

    def finished_results(self, recorded):
        d = self.dir
        if not (os.path.isfile(d.eval_results_path) and os.path.isfile(d.weights_path)):
            return None
        results = d.read_json(md.EVAL_RESULTS_FILE)
        metric = results.get("main_metric")
        self.say(
            f"{self.config.model_dir} is already complete (same settings and inputs; "
            f"best epoch {results.get('best_epoch')}: {metric}={results.get(metric)}); "
            "nothing to do (--overwrite_model_dir to train again)"
        )
        return results

    def build(self, stack):
        """Model, optimizer and trainer (which restores DIR/checkpoints)."""
        config, task = self.config, self.task
        self.steps_per_epoch = math.ceil(len(task.train_features) / config.batch_size)
        total_steps = self.steps_per_epoch * config.epochs
        warmup = warmup_steps(total_steps, config.warmup_proportion)
        with self.strategy.scope():
            self.encoder = load_encoder(config.init_checkpoint)
            self.encoder.train_packing = train_packing(config, self.strategy)
            self.model = task.build_model(self.encoder)
            optimizer = optimization.create_optimizer(
                config.optimizer,
                config.learning_rate,
                total_steps,
                warmup,
                config.weight_decay,
                epsilon=config.adam_epsilon,
                clip_norm=config.clip_norm,
                layer_decay=config.layer_decay,
                layers_below_top=param_groups.layers_below_top,
            )
        self.trainer = Trainer(
            self.model,
            task.objective,
            optimizer,
            strategy=self.strategy,
            checkpoint_dir=self.dir.checkpoint_dir,
            log_dir=self.dir.log_dir,
            checkpoint_every_steps=config.checkpoint_every_steps or self.steps_per_epoch,
            log_every_steps=min(config.log_every_steps, self.steps_per_epoch),
            progress_fn=self.say,
        )

    def write_model_dir(self):
        self.record_ownership()
        self.dir.copy_vocab(self.vocab_file)
        self.dir.write_config(
            self.encoder.config,
            {
                "vocab_file": md.VOCAB_FILE,
                "lower_case": bool(self.tokenizer.lower_case),
                "seq_length": self.config.max_seq_length,
            },
            self.task.task_info(),
            self._record,
        )

    def train(self):
        """Every epoch not done yet: train to its last step, evaluate, keep the best."""
        config, task = self.config, self.task
        batches = training_batches(config, task.train_features.lengths)
        # Padded lengths used by few batches merge into longer ones where the padding costs
        # less than a compile of the fused training kernels (bert_tf/data/batching.py). This
        # counts for batches trained as padded (--group_by_length, TPUs); packed batches
        # (train_packing) run in rows of max_seq_length whatever their padded length.
        dataset = task.make_dataset(
            task.train_features, batches, compile_cost_tokens=COMPILE_COST_TOKENS
        )
        state = (
            self.dir.read_json(STATE_FILE) if os.path.isfile(self.state_path) else {"history": []}
        )
        done = {h["epoch"] for h in state["history"]}
        for epoch in range(1, config.epochs + 1):
            self._train_epoch(dataset, epoch, state)
            if epoch not in done:
                self._evaluate_epoch(epoch, state)
                done.add(epoch)
                self.dir.write_json(STATE_FILE, _finite(state))
        if not os.path.isfile(self.dir.weights_path):  # all epochs were done before a restart
            self.dir.save_weights(self.model)
        self.state = state

    def _train_epoch(self, dataset, epoch, state):
        trainer = self.trainer
        target = epoch * self.steps_per_epoch
        if trainer.current_step >= target:
            return
        t0, step0 = time.time(), trainer.current_step
        last = trainer.train(dataset, target)
        examples = (
            (trainer.current_step - step0) * len(self.task.train_features) / self.steps_per_epoch
        )
        state["train_seconds"] = state.get("train_seconds", 0.0) + time.time() - t0
        state["train_examples"] = state.get("train_examples", 0) + int(examples)
        state["last_train_loss"] = last.get("loss")
        state["last_window_examples_per_second"] = last.get("examples_per_second")

    def _evaluate_epoch(self, epoch, state):
        """Scores the eval set; saves weights and predictions when the epoch is the best."""
        config, task = self.config, self.task
        entry = {"epoch": epoch, "step": self.trainer.current_step}
        outputs, metric = None, None
        if task.eval_features is not None:
            t0 = time.time()
            outputs = task.predict(self.model, config.eval_batch_size or config.batch_size * 2)
            results = task.evaluate(outputs)
            entry["eval_seconds"] = time.time() - t0
            entry["results"] = results
            metric = results[task.main_metric]
            self.say(
                f"epoch {epoch}/{config.epochs}: {task.main_metric}={metric:.4f} "
                + " ".join(
                    f"{k}={v:.4f}"
                    for k, v in results.items()
                    if isinstance(v, float) and k != task.main_metric
                )
            )
        best = state.get("best")
        if outputs is None or best is None or metric > best["metric"]:
            self.dir.save_weights(self.model)
            if outputs is not None:
                task.write_predictions(config.model_dir, outputs)
            state["best"] = {"epoch": epoch, "metric": metric}
        state["history"].append(entry)

    def evaluate(self):
        """The best epoch's results plus the run's totals (every epoch was evaluated while
        training, to keep the best weights)."""
        task, state = self.task, self.state
        best_epoch = state["best"]["epoch"]
        best_entry = next(h for h in state["history"] if h["epoch"] == best_epoch)
        seconds = state.get("train_seconds")
        results = dict(best_entry.get("results", {}))
        results.update(
            {
                "main_metric": task.main_metric,
                "best_epoch": best_epoch,
                "epochs": self.config.epochs,
                "global_step": self.trainer.current_step,
                "train_examples": len(task.train_features),
                "train_loss": state.get("last_train_loss"),
                "train_examples_per_second": (
                    state.get("train_examples", 0) / seconds if seconds else None
                ),
                "train_examples_per_second_last_window": state.get(
                    "last_window_examples_per_second"
                ),
                "history": [
                    {
                        "epoch": h["epoch"],
                        **{
                            k: v
                            for k, v in h.get("results", {}).items()
                            if isinstance(v, (int, float))
                        },
                    }
                    for h in state["history"]
                ],
            }
        )
        return _finite(results)

    def record(self, results):
        self.dir.write_eval_results(results)
        log.info(
            "fine-tuning done: %s",
            {k: results.get(k) for k in (self.task.main_metric, "best_epoch")},
        )
        return results
