"""`PretrainingRecipe`: the recipe skeleton (bert_tf/recipes/recipe.py) over the pre-training
task (bert_tf/tasks/pretraining/: BertPretrainer, masked-LM + next-sentence); the steps are
described in bert_tf/recipes/pretraining/__init__.py."""

import os
import time

import keras

from bert_tf import fingerprint, ownership
from bert_tf import model_dir as md
from bert_tf.data.pretraining.dataset import expand_file_patterns
from bert_tf.models import BertEncoder
from bert_tf.recipes import run_record
from bert_tf.recipes.pretrain_config import PretrainConfig, PretrainingJobError
from bert_tf.recipes.pretraining import records
from bert_tf.recipes.pretraining.plan import (
    check_batch,
    check_records,
    dataset_fn,
    fail,
    first_line,
    plan_run,
    resolve_recorded,
)
from bert_tf.recipes.recipe import Recipe
from bert_tf.settings import not_deciding
from bert_tf.tasks.pretraining import PretrainingTask
from bert_tf.training import checkpoint_state, distribute, optimization
from bert_tf.training.checkpointing import CheckpointRestoreError
from bert_tf.training.trainer import Trainer

__all__ = ["PretrainingRecipe"]

WRITES = run_record.RUN_FILES + (records.SKIPPED_FILE,)  # what a run writes into DIR
# Settings a rerun may change: those PretrainConfig declares `decides=False`, and "config",
# the name of encoder_config in model dirs of an older bert-tf.
NOT_DECIDING = not_deciding(PretrainConfig) + tuple(PretrainConfig.RENAMED)
RESULT_KEYS = (
    "masked_lm_accuracy",
    "next_sentence_accuracy",
    "masked_lm_loss",
    "next_sentence_loss",
)


def _expanded(patterns):
    try:
        return expand_file_patterns(patterns) if patterns else []
    except Exception:  # noqa: BLE001 (check_records names a pattern that matches nothing)
        return []


def _copy_weights(source, target, what):
    sw, tw = source.weights, target.weights
    if len(sw) != len(tw):
        fail(f"{what}: {len(sw)} weights, the model has {len(tw)}")
    for a, b in zip(sw, tw):
        if tuple(a.shape) != tuple(b.shape):
            fail(
                f"{what}: weight {a.path} has shape {tuple(a.shape)}, the model's {b.path} "
                f"{tuple(b.shape)}"
            )
    for a, b in zip(sw, tw):
        b.assign(a.value if hasattr(a, "value") else a)


def format_results(results):
    keys = RESULT_KEYS + ("step",)
    return " ".join(
        f"{k}={results[k]:.4f}" if isinstance(results[k], float) else f"{k}={results[k]}"
        for k in keys
    )


class PretrainingRecipe(Recipe):
    """One pre-training run (bert_tf/recipes/recipe.py has the steps' order)."""

    writer = "pretrain"
    log_prefix = "[pretrain] "
    not_deciding = NOT_DECIDING
    task = PretrainingTask()

    def __init__(self, config, progress=print):
        super().__init__(config, progress)
        self.started = time.time()
        self.xla = config.xla
        self.inputs = None  # the checked inputs (plan.PretrainingPlan)
        self._fingerprints = None

    # ---- plan ------------------------------------------------------------------------------
    def plan(self, stack):
        self.strategy = self._create_strategy()
        if self.config.model_dir:
            self.take_lock(stack)
        if not self.config.model_dir:
            fail("--model_dir is required")
        self.ownership_plan()  # refuses before anything is read
        config = self.config = resolve_recorded(self.config)
        self.inputs = plan_run(config)
        if config.mode != "eval":
            check_batch(config, self.strategy)
            check_records(config, self.inputs, config.input_files, "input_files")
        if config.mode != "train":
            if not config.eval_files:
                fail(
                    f"--mode={config.mode} needs --eval_files (held-out pre-training "
                    "records); or use --mode=train"
                )
            check_records(config, self.inputs, config.eval_files, "eval_files")
        keras.utils.set_random_seed(config.seed)
        if config.mode != "eval":
            try:
                self._create_optimizer()  # checks the optimizer settings before writing
            except ValueError as e:
                fail(first_line(e))

    def _create_strategy(self):
        config = self.config
        try:
            return distribute.create_strategy(
                config.strategy, tpu_address=config.tpu, num_gpus=config.num_gpus
            )
        except (ValueError, RuntimeError) as e:
            fail(f"--strategy={config.strategy}: {first_line(e)}")

    def _create_optimizer(self):
        config = self.config
        return optimization.create_optimizer(
            config.optimizer,
            learning_rate=config.learning_rate,
            num_train_steps=config.num_train_steps,
            num_warmup_steps=config.num_warmup_steps,
            weight_decay=config.weight_decay,
            clip_norm=config.clip_norm or None,
        )

    def _resuming_with(self, path, its_own):
        """The model dir's own vocab.txt / config.json named to resume: the run keeps it
        (never with --overwrite_model_dir, which removes it)."""
        return (
            not self.config.overwrite_model_dir
            and os.path.exists(its_own)
            and os.path.samefile(path, its_own)
        )

    def ownership_plan(self):
        """The checked RunPlan of the model dir (bert_tf/ownership.py): refuses, changing
        nothing, a model dir that is, contains or lies inside --init_checkpoint, an input
        (records, vocab, a --config file) among the paths the run writes or removes, a
        symlinked logs/ or checkpoints/, a file bert-tf did not write that the run would
        replace, and --overwrite_model_dir on a directory holding anything bert-tf did not
        write."""
        config = self.config
        inputs = [("--input_files", f) for f in _expanded(config.input_files)]
        inputs += [("--eval_files", f) for f in _expanded(config.eval_files)]
        for flag, path, its_own in (
            ("--vocab_file", config.vocab_file, self.dir.vocab_path),
            ("--config", config.encoder_config, self.dir.config_path),
        ):
            if (
                isinstance(path, str)
                and os.path.isfile(path)
                and not self._resuming_with(path, its_own)
            ):
                inputs.append((flag, path))
        eval_only = config.mode == "eval"
        try:
            return ownership.plan_model_dir(
                config.model_dir,
                self.writer,
                (md.EVAL_RESULTS_FILE, md.LOG_DIR) if eval_only else WRITES,
                overwrite=config.overwrite_model_dir and not eval_only,
                inputs=inputs,
                sources=[] if eval_only else [("--init_checkpoint", config.init_checkpoint)],
            )
        except ownership.OwnershipError as e:
            raise PretrainingJobError(str(e)) from None

    # ---- guard -----------------------------------------------------------------------------
    def _input_fingerprints(self):
        if self._fingerprints is None:
            config = self.config
            self._fingerprints = {
                "input_files": fingerprint.files_fingerprint(
                    expand_file_patterns(config.input_files)
                )
            }
            if config.eval_files:
                self._fingerprints["eval_files"] = fingerprint.files_fingerprint(
                    expand_file_patterns(config.eval_files)
                )
        return self._fingerprints

    def training_record(self):
        return {**self.config.record(), run_record.INPUTS_KEY: self._input_fingerprints()}

    def compared_inputs(self):
        """The training data decides the run; other eval files are evaluated anew."""
        return {"input_files": self._input_fingerprints()["input_files"]}

    def finished_results(self, recorded):
        """{} (mode=train) or the recorded eval results when the run reached
        --num_train_steps and evaluated the same eval files, else None (train on)."""
        d, config = self.dir, self.config
        newest = (
            checkpoint_state.candidates(d.checkpoint_dir) if os.path.isdir(d.checkpoint_dir) else []
        )
        step = max(0, checkpoint_state.step_of(newest[0])) if newest else 0
        if step < config.num_train_steps or not os.path.isfile(d.weights_path):
            return None
        if config.mode == "train":
            self.say(
                f"{config.model_dir} is already complete (step {step}, same settings "
                "and data); nothing to do"
            )
            return {}
        if not os.path.isfile(d.eval_results_path):
            return None
        results = d.read_json(md.EVAL_RESULTS_FILE)
        same_eval = (recorded.get(run_record.INPUTS_KEY) or {}).get("eval_files", {}).get(
            "sha256"
        ) == self._input_fingerprints().get("eval_files", {}).get("sha256")
        if results.get("step") != step or not same_eval:
            return None
        self.say(
            f"{config.model_dir} is already complete (step {step}, same settings and "
            f"data; masked_lm_accuracy={results.get('masked_lm_accuracy')}); nothing "
            "to do (--overwrite_model_dir to train again)"
        )
        return results

    # ---- build, restore --------------------------------------------------------------------
    def build(self, stack):
        """The model, optimizer and Trainer (restoring the latest checkpoint, else starting
        from --init_checkpoint's weights)."""
        config, plan = self.config, self.inputs

        def init_fn(model):
            if plan.init_model is not None:
                _copy_weights(plan.init_model, model, f"--init_checkpoint {config.init_checkpoint}")
                self.say(f"initialized from {config.init_checkpoint}")

        with self.strategy.scope():
            model = self.task.build_model(BertEncoder(plan.encoder_config))
            optimizer = self._create_optimizer()
        try:
            self.trainer = Trainer(
                model,
                self.task.objective,
                optimizer,
                strategy=self.strategy,
                checkpoint_dir=self.dir.checkpoint_dir,
                log_dir=self.dir.log_dir,
                checkpoint_every_steps=config.checkpoint_every_steps,
                keep_checkpoints=config.keep_checkpoints,
                log_every_steps=config.log_every_steps,
                steps_per_loop=config.log_every_steps,
                grad_accum_steps=config.grad_accum_steps,
                progress_fn=self.say,
                init_fn=init_fn,
            )
        except CheckpointRestoreError as e:
            fail(first_line(e))
        plan.init_model = None

    def write_model_dir(self):
        """config.json + vocab.txt (only the chief writes the model dir)."""
        config, plan = self.config, self.inputs
        if self.is_chief:
            self.record_ownership()
            os.makedirs(config.model_dir, exist_ok=True)
            self.dir.copy_vocab(plan.vocab_file)
            self.dir.write_config(
                plan.encoder_config,
                {
                    "vocab_file": md.VOCAB_FILE,
                    "lower_case": bool(plan.lower_case),
                    "seq_length": config.max_seq_length,
                },
                {"type": self.task.name, "max_predictions_per_seq": config.max_predictions_per_seq},
                training=self.training_record(),
            )
        encoder = plan.encoder_config
        self.say(
            f"model dir {config.model_dir}: encoder L{encoder.num_layers}/"
            f"H{encoder.hidden_size}/A{encoder.num_heads}, vocab {len(plan.vocab)}, "
            f"seq {config.max_seq_length}, batch {config.global_batch_size}, precision "
            f"{self.precision}, {self.strategy.num_replicas_in_sync} replica(s)"
        )

    # ---- train, evaluate, record -----------------------------------------------------------
    def eval_dataset(self):
        return dataset_fn(self.config, self.inputs, self.config.eval_files, is_training=False)

    def train(self):
        """Trains to --num_train_steps and saves the weights."""
        config, trainer = self.config, self.trainer
        start_step = trainer.current_step
        eval_fn = self.eval_dataset() if config.eval_files and config.eval_every_steps else None
        train_start = time.time()
        self.last = records.train_guarding_records(
            trainer,
            lambda limits: dataset_fn(config, self.inputs, config.input_files, True, limits),
            config,
            self.say,
            write=self.is_chief,
            eval_dataset=eval_fn,
            eval_every_steps=config.eval_every_steps or None,
            eval_steps=config.eval_steps,
        )
        seconds = time.time() - train_start
        steps_done = trainer.current_step - start_step
        if self.is_chief:
            self.dir.save_weights(trainer.model)
        self.throughput = (
            steps_done * config.global_batch_size / seconds if steps_done and seconds > 0 else None
        )
        self.say(
            f"trained steps {start_step}->{trainer.current_step} in {seconds:.0f} s"
            + (f" ({self.throughput:.1f} examples/s incl. tracing)" if self.throughput else "")
            + f"; weights -> {self.dir.weights_path}"
        )

    def evaluate(self):
        """The eval results ({} for --mode=train)."""
        config = self.config
        if config.mode == "train":
            return {}
        self.say(f"evaluating on {config.eval_files}")
        results = self._evaluate_step(self.trainer.current_step)
        results["train_examples_per_second"] = self.throughput
        if self.last:
            results["train_last_loss"] = self.last.get("loss")
            results["train_examples_per_second_last_window"] = self.last.get("examples_per_second")
        return results

    def _evaluate_step(self, step):
        config = self.config
        results = records.evaluate_guarding_records(
            self.trainer, self.eval_dataset(), config, config.eval_steps
        )
        eval_files = (
            config.eval_files if isinstance(config.eval_files, str) else ",".join(config.eval_files)
        )
        return {
            **{k: results[k] for k in RESULT_KEYS},
            "loss": results["loss"],
            "step": int(step),
            "eval_files": eval_files,
        }

    def record(self, results):
        if results:
            results["wall_seconds"] = round(time.time() - self.started, 1)
            if self.is_chief:
                self.dir.write_eval_results(results)
            self.say("eval: " + format_results(results) + " -> " + self.dir.eval_results_path)
        return results
