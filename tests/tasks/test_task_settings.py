"""Each fine-tuning task owns its settings dataclass (bert_tf/tasks/<name>/config.py); the
registry is the only place that knows which settings a task has. FinetuneConfig holds the
common settings plus the chosen task's settings object, still takes and records them flat, and
apps.finetune's flags are the union over the registered tasks. A new task (here a toy one
defined in the test) brings its settings and flags with no edit elsewhere."""

import dataclasses
import json
import logging

import pytest
from absl import flags

from apps import config_flags
from bert_tf.recipes.finetune_config import FinetuneConfig, FinetuneConfigError
from bert_tf.settings import setting
from bert_tf.tasks import registry
from bert_tf.tasks.base import Task
from bert_tf.tasks.classify.config import ClassifySettings
from bert_tf.tasks.multiple_choice.config import MultipleChoiceSettings
from bert_tf.tasks.settings import TaskSettings
from bert_tf.tasks.squad.config import SquadSettings
from bert_tf.tasks.tag.config import TagSettings

REQUIRED = {
    "task": "classify",
    "init_checkpoint": "init",
    "train_file": "t.tsv",
    "model_dir": "out",
}
# config.json "training" of a classify run as the version before task settings wrote it:
# every task's settings side by side, flat.
OLD_CLASSIFY_RECORD = json.loads(
    '{"model_dir": "out", "strategy": "default", "precision": "auto", "seed": 42, '
    '"learning_rate": 5e-05, "weight_decay": 0.01, "clip_norm": 1.0, '
    '"checkpoint_every_steps": null, "log_every_steps": 50, "overwrite_model_dir": false, '
    '"task": "classify", "init_checkpoint": "init", "train_file": "t.tsv", "eval_file": null, '
    '"epochs": 3, "batch_size": 32, "eval_batch_size": null, "max_seq_length": 128, '
    '"warmup_proportion": 0.1, "optimizer": "adamw", "adam_epsilon": null, '
    '"layer_decay": null, "dropout": 0.1, "max_train_examples": null, '
    '"long_inputs": "windows", "allow_unseen_labels": false, "label_names": null, '
    '"text_a_column": "sentence", "text_b_column": null, "label_column": "label", '
    '"regression": false, "tfds_data_dir": null, "tag_scheme": "iob", "doc_stride": null, '
    '"max_query_length": 64, "max_answer_length": 30, "n_best_size": 20, '
    '"null_score_diff_threshold": 0.0, "version_2_with_negative": null, '
    '"squad_offset_errors": "warn", "input_fingerprints": {}}'
)
SQUAD_ONLY = (
    "tag_scheme",
    "max_query_length",
    "max_answer_length",
    "n_best_size",
    "null_score_diff_threshold",
    "version_2_with_negative",
    "squad_offset_errors",
)


def test_each_task_points_at_its_settings_class():
    assert FinetuneConfig.task_settings_classes() == {
        "classify": ClassifySettings,
        "multiple_choice": MultipleChoiceSettings,
        "squad": SquadSettings,
        "tag": TagSettings,
    }
    assert dataclasses.fields(MultipleChoiceSettings) == ()
    # a task's own default: squad's windows are 128 pieces apart, the others' half a window
    assert SquadSettings().context_stride == 128
    assert ClassifySettings().stride(130) == 64 and TagSettings(doc_stride=5).stride(130) == 5


def test_flat_keywords_are_the_task_settings():
    config = FinetuneConfig(**{**REQUIRED, "task": "squad"}, n_best_size=10, doc_stride=64)
    assert config.task_settings == SquadSettings(n_best_size=10, doc_stride=64)
    assert config == FinetuneConfig(
        **{**REQUIRED, "task": "squad"}, task_settings=SquadSettings(n_best_size=10, doc_stride=64)
    )
    assert (config.n_best_size, config.max_answer_length) == (10, 30)  # flat reads too
    assert FinetuneConfig(**REQUIRED).task_settings == ClassifySettings()  # the defaults
    # flat keywords replace fields of a given task_settings; dataclasses.replace works
    both = FinetuneConfig(
        **{**REQUIRED, "task": "squad"},
        task_settings=SquadSettings(n_best_size=10),
        max_answer_length=5,
    )
    assert both.task_settings == SquadSettings(n_best_size=10, max_answer_length=5)
    assert dataclasses.replace(both, n_best_size=3).task_settings.n_best_size == 3
    with pytest.raises(AttributeError):
        config.tag_scheme  # not a squad setting


@pytest.mark.parametrize(
    "values, message",
    [
        ({"n_best_size": 3}, "--n_best_size is a squad setting; --task=classify"),
        (
            {"task": "multiple_choice", "doc_stride": 3},
            "--doc_stride is a classify, squad, tag setting; --task=multiple_choice",
        ),
        ({"task": "tag", "regression": True}, "--regression is a classify setting; --task=tag"),
        (
            {"epoch": 3},
            "--epoch: not a fine-tuning setting (neither FinetuneConfig's nor a "
            "task's; --task=classify)",
        ),
        (
            {"task_settings": SquadSettings()},
            "task_settings: expected a ClassifySettings for --task=classify, got SquadSettings("
            "doc_stride=None, max_query_length=64, max_answer_length=30, n_b... (SquadSettings)",
        ),
        (
            {"task": "squad", "max_answer_length": 0},
            "--max_answer_length: expected an integer >= 1, got 0",
        ),
    ],
)
def test_a_setting_of_another_task_or_of_none_is_one_line(values, message):
    with pytest.raises(FinetuneConfigError) as e:
        FinetuneConfig(**{**REQUIRED, **values})
    assert str(e.value) == message
    assert isinstance(e.value, TypeError)  # as an unexpected keyword was before


@pytest.mark.parametrize(
    "task, values, message",
    [
        (
            "classify",
            {"label_names": ["a", "b", "a"]},
            "--label_names: duplicate names in ['a', 'b', 'a']",
        ),
        ("tag", {"label_names": ["O", "O"]}, "--label_names: duplicate names in ['O', 'O']"),
        ("classify", {"label_names": ["a"]}, "--label_names: need at least 2 classes, got ['a']"),
        (
            "tag",
            {"max_seq_length": 2},
            "--max_seq_length=2: --task=tag needs at least 3 ([CLS], one piece, [SEP])",
        ),
    ],
)
def test_validation_across_fields(task, values, message):
    with pytest.raises(FinetuneConfigError) as e:
        FinetuneConfig(**{**REQUIRED, "task": task, **values}).validate()
    assert str(e.value) == message
    # one regression target is fine; squad and multiple_choice take a short max_seq_length
    FinetuneConfig(**REQUIRED, regression=True, label_names=["a"]).validate()
    FinetuneConfig(**{**REQUIRED, "task": "squad", "max_seq_length": 2}).validate()


def test_an_old_flat_record_loads_and_the_record_stays_flat(caplog):
    with caplog.at_level(logging.WARNING):
        config = FinetuneConfig.from_record(OLD_CLASSIFY_RECORD)
    assert caplog.text == ""  # other tasks' settings are dropped without a word
    assert config == FinetuneConfig(**REQUIRED)
    record = config.record()
    old = {
        k: v
        for k, v in OLD_CLASSIFY_RECORD.items()
        if k not in SQUAD_ONLY and k != "input_fingerprints"
    }
    # the same keys and values, one flat dict (plus the settings added since, at their
    # defaults; a rerun check compares a missing one as Recipe.unrecorded_values says)
    assert record == {**old, "group_by_length": False}
    squad = FinetuneConfig.from_record({**OLD_CLASSIFY_RECORD, "task": "squad", "n_best_size": 7})
    assert squad.task_settings == SquadSettings(n_best_size=7)
    # settings a rerun may change: the same as before the split
    assert sorted(config.not_deciding()) == sorted(
        (
            "model_dir",
            "strategy",
            "checkpoint_every_steps",
            "log_every_steps",
            "eval_batch_size",
            "train_file",
            "eval_file",
            "init_checkpoint",
            "tfds_data_dir",
            "overwrite_model_dir",
            "label_names",
        )
    )


@dataclasses.dataclass(kw_only=True)
class ToySettings(TaskSettings):
    """A new task's own settings."""

    toy_temperature: float = setting(1.5, "softmax temperature of the toy head.", bounds="(0, inf)")
    toy_mode: str = setting("fast", "how the toy runs.", choices=("fast", "slow"))


class ToyTask(Task):
    """A toy task: registers itself and its settings, nothing else is edited."""

    main_metric = "accuracy"
    settings_class = ToySettings


@pytest.fixture
def toy_registered(monkeypatch):
    registry.task_names()  # the real tasks loaded first
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))  # restored afterwards
    registry.register_task("toy")(ToyTask)
    yield ToyTask


def test_a_new_task_brings_its_settings_and_flags(toy_registered):
    config = FinetuneConfig(**{**REQUIRED, "task": "toy"}, toy_temperature=2)
    assert config.task_settings == ToySettings(toy_temperature=2.0)
    assert config.record()["toy_temperature"] == 2.0 and "n_best_size" not in config.record()
    with pytest.raises(
        FinetuneConfigError,
        match=r"^--toy_temperature: expected a finite "
        r"number > 0, got -1.0$",
    ):
        FinetuneConfig(**{**REQUIRED, "task": "toy"}, toy_temperature=-1.0)
    with pytest.raises(
        FinetuneConfigError,
        match=r"^--toy_mode is a toy setting; "
        r"--task=classify$",
    ):
        FinetuneConfig(**REQUIRED, toy_mode="slow")
    fv = flags.FlagValues()
    names = config_flags.define_flags(FinetuneConfig, flag_values=fv)
    assert {"toy_temperature", "toy_mode", "n_best_size"} <= set(names)
    assert fv["toy_temperature"].help == "toy: softmax temperature of the toy head."
    assert fv["toy_mode"].parser.enum_values == ["fast", "slow"]
    assert "toy" in fv["task"].parser.enum_values
    fv(
        ["prog"]
        + [f"--{k}={v}" for k, v in REQUIRED.items() if k != "task"]
        + ["--task=toy", "--toy_mode=slow"]
    )
    built = config_flags.config_from_flags(FinetuneConfig, flag_values=fv)
    assert built.task_settings == ToySettings(toy_mode="slow")
    assert registry.get_task("toy").settings_class is ToySettings


def test_toy_task_is_gone_afterwards():
    assert "toy" not in registry.task_names(include_pretraining=True)
