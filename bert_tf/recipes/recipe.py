"""One recipe for both trainings: the same steps over a task, in this order.

    results = FinetuningRecipe(config, progress).run()    # bert_tf.finetune (finetuning.py)
    results = PretrainingRecipe(config, progress).run()   # bert_tf.pretrain (pretraining.py)

`Recipe.run()`:
  1. plan      check every setting and input and read what the run needs (data, vocab,
               encoder config); take DIR/.lock. Writes nothing: a refusal changes nothing.
  2. guard     the model dir: what the run may write or remove is checked when planned
               (`ownership_plan`, bert_tf/ownership.py); --overwrite_model_dir removes the
               previous run's files now; else the rerun check (`check_rerun`, written once
               here): an identical finished run returns its recorded results and writes
               nothing, a run with other settings or inputs is refused in one line.
  3. build     the task's model, the optimizer and the Trainer, which
  4. restore   restores DIR/checkpoints (else initializes the model: --init_checkpoint);
               only then are config.json and vocab.txt written (`write_model_dir`), so a
               checkpoint that does not fit leaves DIR as it was.
  5. train     (evaluating on the way where the recipe does: fine-tuning every epoch, to
               keep the best weights; pre-training every --eval_every_steps)
  6. evaluate  the results of the run
  7. record    DIR/eval_results.json
The whole run keeps the caller's logging and random state (caller_state.py) and dtype policy
(precision.py). A recipe subclass implements the steps; `run`, `guard` and `check_rerun` are
the same for every recipe.
"""

import contextlib
from typing import Any

from bert_tf import model_dir as md
from bert_tf.recipes import run_record
from bert_tf.recipes.caller_state import preserved_caller_state
from bert_tf.recipes.precision import keras_runtime, resolved_settings
from bert_tf.run_lock import RunLock
from bert_tf.training import distribute


class Recipe:
    """The steps of one training run (module doc). Subclasses set the class attributes and
    implement the steps; `self.config` is the run's config (a RunConfig)."""

    writer: str = ""  # who wrote DIR's files, as bert_tf/ownership.py records it
    log_prefix = ""  # before every progress line ("[pretrain] ")
    # settings a rerun may change (paths, intervals, hardware, ...)
    not_deciding: tuple[str, ...] = ()

    def __init__(self, config, progress=print):
        self.config = config
        self._progress = progress
        self.dir = md.ModelDir(config.model_dir or ".")
        self.strategy = None  # set by plan
        self.precision = None  # the resolved dtype policy
        self.trainer = None  # set by build

    def say(self, line):
        self._progress(self.log_prefix + line)

    @property
    def is_chief(self):
        """Whether this worker writes the model dir (always, but in a multi-worker job)."""
        return self.strategy is None or distribute.is_chief(self.strategy)

    def run(self):
        """Runs the steps (module doc); returns the evaluation results."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(preserved_caller_state())  # the caller's logging and RNGs
            self.precision = stack.enter_context(keras_runtime(self.config.precision, xla=self.xla))
            self.plan(stack)
            done = self.guard()
            if done is not None:
                return done
            self.build(stack)
            self.write_model_dir()
            self.train()
            return self.record(self.evaluate())

    # ---- the steps a recipe implements ----------------------------------------------------
    xla: bool | None = None  # the XLA switch of the run (None: leave it as it is)

    def plan(self, stack):
        """Checks and reads everything; takes the lock (`take_lock`); writes nothing."""
        raise NotImplementedError

    def ownership_plan(self):
        """The checked bert_tf.ownership.RunPlan of the model dir."""
        raise NotImplementedError

    def training_record(self):
        """config.json "training": the settings plus run_record.INPUTS_KEY fingerprints."""
        raise NotImplementedError

    def compared_inputs(self):
        """The input fingerprints a rerun must share (default: all that are recorded)."""
        return self.training_record()[run_record.INPUTS_KEY]

    def finished_results(self, recorded):
        """The recorded results when the identical run in DIR is complete, else None."""
        raise NotImplementedError

    def build(self, stack):
        """The model, optimizer and Trainer (which restores DIR/checkpoints)."""
        raise NotImplementedError

    def write_model_dir(self):
        """config.json and vocab.txt (after `record_ownership`)."""
        raise NotImplementedError

    def train(self):
        raise NotImplementedError

    def evaluate(self):
        """The run's results ({} when it does not evaluate)."""
        raise NotImplementedError

    def record(self, results):
        """Writes DIR/eval_results.json; returns the results."""
        raise NotImplementedError

    # ---- the same for every recipe --------------------------------------------------------
    def take_lock(self, stack):
        """DIR/.lock for the rest of the run (the chief's: one run per model dir)."""
        if self.is_chief:
            stack.enter_context(RunLock(self.config.model_dir, log=self.say))

    def guard(self):
        """--overwrite_model_dir: removes the previous run's files (only what bert-tf wrote);
        else the rerun check. Returns the results of a finished identical run, else None."""
        if self.config.overwrite_model_dir:
            if self.is_chief:
                self.ownership_plan().apply(self.say)
            return None
        return self.check_rerun()

    def check_rerun(self):
        """Raises RunMismatchError when DIR holds another run; returns `finished_results`
        of the same run, None for a new or unfinished one."""
        record = self.training_record()
        settings = {k: v for k, v in record.items() if k != run_record.INPUTS_KEY}
        recorded = run_record.check_same_run(
            self.config.model_dir,
            settings,
            self.compared_inputs(),
            ignore=self.not_deciding,
            normalize=lambda values: resolved_settings(
                {**self.unrecorded_values(values), **values}
            ),
        )
        if recorded is None:
            return None
        if run_record.INPUTS_KEY not in recorded:
            self.say(
                f"{self.dir.config_path} records no input fingerprints (an older "
                "bert-tf): the settings match; the input files cannot be checked"
            )
        return self.finished_results(recorded)

    def unrecorded_values(self, record: dict[str, Any]) -> dict[str, Any]:
        """Settings added after `record` (a "training" dict) was written, with the value its
        run had: the rerun check compares a record that lacks one as if it held that value."""
        return {}

    def record_ownership(self):
        """Records the names this run writes, before it writes them (--overwrite_model_dir
        recorded them in `guard`)."""
        if not self.config.overwrite_model_dir:
            self.ownership_plan().apply()
