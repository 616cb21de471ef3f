"""--mode=eval: the pre-training recipe that only evaluates a model dir's weights."""

import os
import tempfile

import tensorflow as tf

from bert_tf.model_dir import CheckpointError, task_model
from bert_tf.recipes.pretraining.plan import fail, first_line
from bert_tf.recipes.pretraining.recipe import PretrainingRecipe, format_results
from bert_tf.training import checkpoint_state, optimization
from bert_tf.training.trainer import Trainer


def latest_step(checkpoint_dir):
    """The step of the checkpoint the state file names as the latest (0 without one)."""
    latest = tf.train.latest_checkpoint(checkpoint_dir) if os.path.isdir(checkpoint_dir) else None
    return max(0, checkpoint_state.step_of(latest)) if latest else 0


class PretrainingEvaluation(PretrainingRecipe):
    """--mode=eval: the model dir's final weights (or latest checkpoint) on the eval files.
    The same plan; nothing to guard but what it writes (eval_results.json, logs/)."""

    def guard(self):
        self.ownership_plan().apply()
        return None

    def build(self, stack):
        config = self.config
        pre = self.inputs.existing["preprocessing"]
        if pre.get("seq_length") not in (None, config.max_seq_length):
            self.say(
                f"evaluating at --max_seq_length={config.max_seq_length} (trained at "
                f"{pre.get('seq_length')})"
            )
        with self.strategy.scope():
            try:
                model = task_model.load(config.model_dir)
            except (CheckpointError, OSError, ValueError) as e:
                fail(first_line(e))
            optimizer = optimization.create_optimizer("adamw", 1e-4, 1)  # (never applied)
        self.step = latest_step(self.dir.checkpoint_dir)
        empty = stack.enter_context(tempfile.TemporaryDirectory())
        self.trainer = Trainer(
            model,
            self.task.objective,
            optimizer,
            strategy=self.strategy,
            checkpoint_dir=empty,
            log_dir=self.dir.log_dir,
            progress_fn=self.say,
        )
        self.trainer.step.assign(self.step)

    def write_model_dir(self):
        pass

    def train(self):
        pass

    def evaluate(self):
        self.say(
            f"evaluating {self.config.model_dir} (step {self.step}) on {self.config.eval_files}"
        )
        return self._evaluate_step(self.step)

    def record(self, results):
        self.dir.write_eval_results(results)
        self.say("eval: " + format_results(results) + f" -> {self.dir.eval_results_path}")
        return results
