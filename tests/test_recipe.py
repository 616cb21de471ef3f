"""The recipe skeleton (bert_tf/recipes/recipe.py): the steps run in one order for every
recipe, an identical finished run stops after the guard, and the rerun check is written once."""

import json
import os
import types

import keras
import pytest

from bert_tf import ownership
from bert_tf.recipes import run_record
from bert_tf.recipes.finetuning import FinetuningRecipe
from bert_tf.recipes.pretraining import PretrainingEvaluation, PretrainingRecipe
from bert_tf.recipes.recipe import Recipe


class StepsRecipe(Recipe):
    """A recipe whose steps only note that they ran."""

    writer = "finetune"

    def __init__(self, config, finished=None):
        super().__init__(config, progress=lambda line: self.steps.append("say: " + line))
        self.steps, self.finished = [], finished

    def plan(self, stack):
        self.steps.append("plan")
        self.steps.append(f"policy {keras.config.dtype_policy().name}")
        self.take_lock(stack)

    def ownership_plan(self):
        return ownership.plan_model_dir(
            self.config.model_dir,
            self.writer,
            ("config.json",),
            overwrite=self.config.overwrite_model_dir,
        )

    def training_record(self):
        return {"learning_rate": self.config.learning_rate, run_record.INPUTS_KEY: {}}

    def finished_results(self, recorded):
        self.steps.append("finished_results")
        return self.finished

    def build(self, stack):
        self.steps.append("build")

    def write_model_dir(self):
        self.steps.append("write_model_dir")
        self.record_ownership()
        with open(self.dir.config_path, "w") as f:
            json.dump({"training": self.training_record()}, f)

    def train(self):
        self.steps.append("train")

    def evaluate(self):
        self.steps.append("evaluate")
        return {"accuracy": 1.0}

    def record(self, results):
        self.steps.append("record")
        return results


def _config(model_dir, **changes):
    return types.SimpleNamespace(
        **{
            "model_dir": str(model_dir),
            "precision": "mixed_bfloat16",
            "overwrite_model_dir": False,
            "learning_rate": 0.1,
            **changes,
        }
    )


def test_steps_run_in_order_and_a_finished_run_stops_after_the_guard(tmp_path, monkeypatch):
    # config.json here holds only "training" (the record check_same_run compares)
    monkeypatch.setattr(
        run_record,
        "recorded_training",
        lambda model_dir: _recorded(os.path.join(model_dir, "config.json")),
    )
    policy = keras.config.dtype_policy().name
    first = StepsRecipe(_config(tmp_path / "run"))
    assert first.run() == {"accuracy": 1.0}
    assert first.steps == [
        "plan",
        "policy mixed_bfloat16",
        "build",
        "write_model_dir",
        "train",
        "evaluate",
        "record",
    ]
    assert keras.config.dtype_policy().name == policy  # the caller's, put back
    again = StepsRecipe(_config(tmp_path / "run"), finished={"accuracy": 0.5})
    assert again.run() == {"accuracy": 0.5}
    assert again.steps == ["plan", "policy mixed_bfloat16", "finished_results"]
    unfinished = StepsRecipe(_config(tmp_path / "run"))
    unfinished.run()
    assert unfinished.steps[:4] == ["plan", "policy mixed_bfloat16", "finished_results", "build"]
    with pytest.raises(run_record.RunMismatchError, match=r"learning_rate=0.1 recorded, 0.2 now"):
        StepsRecipe(_config(tmp_path / "run", learning_rate=0.2)).run()
    # --overwrite_model_dir: the previous run's files go, no rerun check
    over = StepsRecipe(_config(tmp_path / "run", learning_rate=0.2, overwrite_model_dir=True))
    over.run()
    assert "finished_results" not in over.steps
    assert any(
        s.startswith("say: --overwrite_model_dir: removed the previous run's config.json")
        for s in over.steps
    )


def _recorded(config_path):
    if not os.path.isfile(config_path):
        return None
    with open(config_path) as f:
        return json.load(f)["training"]


def test_both_trainings_are_uses_of_the_one_skeleton():
    for cls in (FinetuningRecipe, PretrainingRecipe, PretrainingEvaluation):
        assert issubclass(cls, Recipe)
        assert cls.run is Recipe.run and cls.check_rerun is Recipe.check_rerun
    for cls in (FinetuningRecipe, PretrainingRecipe):  # evaluation writes no training run
        assert cls.record_ownership is Recipe.record_ownership


class GroupedRecipe(StepsRecipe):
    """A recipe whose setting `grouped` was added after runs were recorded, which ran as
    grouped=True (as fine-tuning's group_by_length)."""

    def unrecorded_values(self, record):
        return {"grouped": True}

    def training_record(self):
        return {**super().training_record(), "grouped": self.config.grouped}


def test_a_record_older_than_a_setting_compares_as_the_value_those_runs_had(tmp_path, monkeypatch):
    monkeypatch.setattr(
        run_record,
        "recorded_training",
        lambda model_dir: _recorded(os.path.join(model_dir, "config.json")),
    )
    StepsRecipe(_config(tmp_path / "run")).run()  # a record without "grouped"
    with pytest.raises(run_record.RunMismatchError, match=r"grouped=True recorded, False now"):
        GroupedRecipe(_config(tmp_path / "run", grouped=False)).run()
    same = GroupedRecipe(_config(tmp_path / "run", grouped=True), finished={"accuracy": 0.5})
    assert same.run() == {"accuracy": 0.5}
    finetuning = FinetuningRecipe.__new__(FinetuningRecipe)
    assert finetuning.unrecorded_values({"task": "tag"}) == {"group_by_length": True}
    assert finetuning.unrecorded_values({"num_train_steps": 10}) == {}  # pre-training's
