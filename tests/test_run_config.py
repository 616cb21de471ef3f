"""Settings defined once: the flags generated from the config dataclasses (every field, its
default and help; argv round trips), and the config recorded in config.json read back."""

import dataclasses
import json
import logging
import math
import os
import pathlib

import numpy as np
import pytest
from absl import flags

from apps import config_flags
from bert_tf.errors import BertTfError
from bert_tf.recipes import finetuning, pretraining
from bert_tf.recipes.finetune_config import FinetuneConfig, FinetuneConfigError
from bert_tf.recipes.pretrain_config import PretrainConfig, PretrainConfigError, PretrainingJobError
from bert_tf.recipes.run_config import PRECISIONS, RunConfig
from bert_tf.settings import choices_of, flag_name
from bert_tf.tasks.classify.config import ClassifySettings
from bert_tf.tasks.squad.config import SquadSettings

REQUIRED_FT = {
    "task": "classify",
    "init_checkpoint": "init",
    "train_file": "t.tsv",
    "model_dir": "out",
}


def _defined(config_class):
    fv = flags.FlagValues()
    names = config_flags.define_flags(config_class, flag_values=fv)
    return fv, names


def _parse(config_class, argv, **extra):
    fv, _ = _defined(config_class)
    fv(["prog"] + argv)
    return config_flags.config_from_flags(config_class, flag_values=fv, **extra)


def _flag_fields(config_class):
    """{flag name: [its fields]}: the config's own, and (FinetuneConfig) every task's."""
    out = {flag_name(f): [f] for f in dataclasses.fields(config_class)}
    for name, owners in config_flags.group_flags(config_class).items():
        out[name] = [field for _, _, field in owners]
    return out


@pytest.mark.parametrize("config_class", [FinetuneConfig, PretrainConfig])
def test_every_field_is_a_flag_with_its_default_help_and_choices(config_class):
    fv, names = _defined(config_class)
    fields = _flag_fields(config_class)
    expected = sorted(n for n, f in fields.items() if f[0].metadata["flag"])
    assert sorted(names) == expected
    assert [n for n, f in fields.items() if not f[0].metadata["flag"]] == (
        ["config_overrides"] if config_class is PretrainConfig else ["task_settings"]
    )
    for name in names:
        for field in fields[name]:
            default = None if field.default is dataclasses.MISSING else field.default
            assert fv[name].default == default, name
            # enum: "<a|b>: " first; a task's field: "<tasks>: " before its help
            assert field.metadata["help"] in fv[name].help, name
            assert len(field.metadata["help"]) > 10, name
            choices = choices_of(field.metadata)
            assert (getattr(fv[name].parser, "enum_values", None) or None) == (
                list(choices) if choices else None
            ), name
    if config_class is FinetuneConfig:  # the task's fields: help prefixed by their tasks
        assert fv["n_best_size"].help.startswith("squad: start/end candidates")
        assert fv["tag_scheme"].help.startswith("<iob|bioes>: tag: the tag scheme")
        assert (
            fv["doc_stride"].help.startswith("classify, tag: pieces between")
            and " squad: pieces between the starts of consecutive windows of a context"
            in fv["doc_stride"].help
        )
        assert fv["task"].parser.enum_values == ["classify", "multiple_choice", "squad", "tag"]
    # the common base, defined once: same help in both recipes; own defaults where they differ
    assert fv["precision"].default == "auto" and set(fv["precision"].parser.enum_values) == set(
        PRECISIONS
    )
    if config_class is PretrainConfig:
        assert (
            fv["seed"].default,
            fv["learning_rate"].default,
            fv["checkpoint_every_steps"].default,
            fv["log_every_steps"].default,
        ) == (12345, 1e-4, 1000, 100)
    else:
        assert (
            fv["seed"].default,
            fv["learning_rate"].default,
            fv["checkpoint_every_steps"].default,
            fv["log_every_steps"].default,
        ) == (42, 5e-5, None, 50)


def test_flags_without_values_give_the_dataclass_defaults():
    assert _parse(FinetuneConfig, [f"--{k}={v}" for k, v in REQUIRED_FT.items()]) == FinetuneConfig(
        **REQUIRED_FT
    )
    assert _parse(
        PretrainConfig, ["--model_dir=m"], config_overrides={"num_layers": 2}
    ) == PretrainConfig(model_dir="m", config_overrides={"num_layers": 2})


def test_bool_enum_list_and_optional_fields_round_trip_from_argv():
    config = _parse(
        FinetuneConfig,
        [f"--{k}={v}" for k, v in REQUIRED_FT.items()]
        + [
            "--regression",
            "--label_names=neg,pos",
            "--doc_stride=8",
            "--layer_decay=0.9",
            "--precision=float32",
            "--eval_batch_size=5",
            "--text_b_column=sentence2",
        ],
    )
    assert config == FinetuneConfig(
        **REQUIRED_FT,
        regression=True,
        label_names=["neg", "pos"],
        doc_stride=8,
        layer_decay=0.9,
        precision="float32",
        eval_batch_size=5,
        text_b_column="sentence2",
    )
    assert isinstance(config.doc_stride, int) and isinstance(config.layer_decay, float)
    assert config.task_settings == ClassifySettings(
        regression=True, label_names=["neg", "pos"], doc_stride=8, text_b_column="sentence2"
    )
    tag = _parse(
        FinetuneConfig,
        [f"--{k}={v}" for k, v in REQUIRED_FT.items()] + ["--task=tag", "--tag_scheme=bioes"],
    )
    assert tag == FinetuneConfig(**{**REQUIRED_FT, "task": "tag"}, tag_scheme="bioes")
    squad = _parse(
        FinetuneConfig,
        [f"--{k}={v}" for k, v in REQUIRED_FT.items()]
        + ["--task=squad", "--noversion_2_with_negative", "--doc_stride=8"],
    )
    assert squad.task_settings == SquadSettings(version_2_with_negative=False, doc_stride=8)
    pre = _parse(
        PretrainConfig,
        [
            "--model_dir=m",
            "--input_files=a-*,b-*",
            "--mode=eval",
            "--dynamic_masking",
            "--max_predictions_per_row=7",
            "--nolower_case",
            "--xla",
        ],
    )
    assert (
        pre.input_files,
        pre.mode,
        pre.dynamic_masking,
        pre.max_predictions_per_row,
        pre.lower_case,
        pre.xla,
    ) == ("a-*,b-*", "eval", True, 7, False, True)
    assert pre.whole_word_masking is None  # optional bool left unset stays None
    with pytest.raises(flags.IllegalFlagValueError):
        _parse(FinetuneConfig, ["--tag_scheme=bilou"])
    with pytest.raises(flags.IllegalFlagValueError):
        _parse(PretrainConfig, ["--eval_steps=x"])


def test_recorded_config_round_trips(caplog):
    config = FinetuneConfig(
        **REQUIRED_FT, label_names=["a", "b"], layer_decay=0.8, precision="float32"
    )
    record = json.loads(json.dumps(dict(config.record(), input_fingerprints={"x": 1})))
    assert FinetuneConfig.from_record(record) == config
    pre = PretrainConfig(
        model_dir="m",
        encoder_config="tiny",
        config_overrides={"num_heads": 4},
        input_files=["a", "b"],
        dynamic_masking=True,
    )
    assert PretrainConfig.from_record(json.loads(json.dumps(pre.record()))) == pre
    # a model dir recorded before `encoder_config` was named so ("config") reads the same,
    # with no warning about an unknown setting
    older = {("config" if k == "encoder_config" else k): v for k, v in pre.record().items()}
    with caplog.at_level(logging.WARNING):
        assert PretrainConfig.from_record(older) == pre
    assert "config" not in caplog.text
    # an older / newer model dir: unknown keys are ignored with a warning, missing ones
    # take their defaults; `changes` replace recorded values
    old = {k: v for k, v in record.items() if k != "layer_decay"}
    old["removed_setting"] = 3
    with caplog.at_level(logging.WARNING):
        again = FinetuneConfig.from_record(old, model_dir="elsewhere")
    assert "removed_setting" in caplog.text and "input_fingerprints" not in caplog.text
    assert again == dataclasses.replace(config, layer_decay=None, model_dir="elsewhere")


def test_common_settings_are_one_base():
    common = {f.name for f in dataclasses.fields(RunConfig)}
    assert {
        "model_dir",
        "strategy",
        "precision",
        "seed",
        "clip_norm",
        "log_every_steps",
        "checkpoint_every_steps",
        "overwrite_model_dir",
    } <= common
    for cls in (FinetuneConfig, PretrainConfig):
        assert issubclass(cls, RunConfig)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name in common:
            assert (
                fields[name].metadata["help"]
                == next(f for f in dataclasses.fields(RunConfig) if f.name == name).metadata["help"]
            )


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"precision": "bfloat16"},
            "--precision: expected one of auto, float32, mixed_bfloat16, "
            "mixed_float16, got 'bfloat16'",
        ),
        ({"long_inputs": "cut"}, "--long_inputs: expected one of windows, truncate, got 'cut'"),
        (
            {"task": "nope"},
            "--task: expected one of classify, multiple_choice, squad, tag, got 'nope'",
        ),
        ({"train_file": None}, "--train_file is required"),
    ],
)
def test_finetune_config_validate_is_one_line(changes, message):
    with pytest.raises(FinetuneConfigError) as e:
        FinetuneConfig(**{**REQUIRED_FT, **changes}).validate()
    assert str(e.value) == message


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"epochs": "3"}, "--epochs: expected an integer >= 1, got '3' (str)"),
        ({"learning_rate": "1e-3"}, "--learning_rate: expected a number > 0, got '1e-3' (str)"),
        ({"batch_size": 2.5}, "--batch_size: expected an integer >= 1, got 2.5 (float)"),
        ({"epochs": math.nan}, "--epochs: expected an integer >= 1, got nan (float)"),
        ({"epochs": True}, "--epochs: expected an integer >= 1, got True (bool)"),
        ({"epochs": 0}, "--epochs: expected an integer >= 1, got 0"),
        ({"learning_rate": math.nan}, "--learning_rate: expected a finite number > 0, got nan"),
        ({"dropout": 1.0}, "--dropout: expected a finite number in [0, 1), got 1.0"),
        (
            {"label_names": "neg,pos"},
            "--label_names: expected a list of strings or None, got 'neg,pos' (str)",
        ),
        (
            {"label_names": ["neg", 1]},
            "--label_names: expected a list of strings or None, got ['neg', 1] (list)",
        ),
        (
            {"model_dir": b"out"},
            "--model_dir: expected a string (or os.PathLike), got b'out' (bytes)",
        ),
        ({"regression": "yes"}, "--regression: expected a bool, got 'yes' (str)"),
        ({"task": None}, "--task is required"),
    ],
)
def test_finetune_config_checks_every_field_when_built(changes, message):
    """Each field against its declaration (annotation, choices, bounds) in __post_init__:
    one line naming the field, expected vs got, a BertTfError (and the builtins raised
    before)."""
    with pytest.raises(FinetuneConfigError) as e:
        FinetuneConfig(**{**REQUIRED_FT, **changes})
    assert str(e.value) == message
    assert isinstance(e.value, (BertTfError)) and isinstance(e.value, (TypeError, ValueError))


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"global_batch_size": 4.0},
            "--global_batch_size: expected an integer >= 1, got 4.0 (float)",
        ),
        (
            {"max_sequences_per_row": -1},
            "--max_sequences_per_row: expected an integer >= 1, got -1",
        ),
        (
            {"max_predictions_per_row": 0},
            "--max_predictions_per_row: expected an integer >= 1 or None, got 0",
        ),
        (
            {"input_files": ["a", 3]},
            "--input_files: expected a string (or os.PathLike) or a list "
            "of strings or None, got ['a', 3] (list)",
        ),
        (
            {"encoder_config": 3},
            "--config: expected a string (or os.PathLike) or a dict or a "
            "BertConfig or None, got 3 (int)",
        ),
        ({"seed": -1}, "--seed: expected an integer in [0, 4294967295], got -1"),
    ],
)
def test_pretrain_config_checks_every_field_when_built(changes, message):
    with pytest.raises(PretrainConfigError) as e:
        PretrainConfig(model_dir="m", **changes)
    assert str(e.value) == message
    assert isinstance(e.value, PretrainingJobError)  # what pretrain's callers catch


def test_config_values_are_normalized_path_tuple_numpy():
    config = FinetuneConfig(
        **{
            **REQUIRED_FT,
            "model_dir": pathlib.Path("runs") / "x",
            "train_file": pathlib.PurePosixPath("t.tsv"),
            "label_names": ("neg", "pos"),
            "epochs": np.int64(2),
            "learning_rate": 1,
            "eval_batch_size": None,
        }
    )
    assert (config.model_dir, config.train_file, config.label_names) == (
        os.path.join("runs", "x"),
        "t.tsv",
        ["neg", "pos"],
    )
    assert type(config.epochs) is int and type(config.learning_rate) is float
    json.dumps(config.record())  # what config.json records
    pre = PretrainConfig(model_dir=pathlib.Path("m"), input_files=(pathlib.Path("a"), "b"))
    assert (pre.model_dir, pre.input_files) == ("m", ["a", "b"])
    # the flags still build the same configs (their values already have the right types)
    assert _parse(
        FinetuneConfig, [f"--{k}={v}" for k, v in REQUIRED_FT.items()] + ["--label_names=neg,pos"]
    ).label_names == ["neg", "pos"]


@pytest.mark.parametrize(
    "call, config_class",
    [(finetuning.finetune, FinetuneConfig), (pretraining.pretrain, PretrainConfig)],
)
def test_a_dict_instead_of_a_config_is_a_config_error(call, config_class):
    with pytest.raises(config_class.config_error) as e:
        call(dict(REQUIRED_FT))
    assert str(e.value) == (
        f"bert_tf.{call.__name__}(config): expected a {config_class.__name__}, got "
        "{'task': 'classify', 'init_checkpoint': 'init', 'train_file': 't.tsv', 'model... "
        f"(dict); build one with bert_tf.{config_class.__name__}(**values)"
    )
    assert isinstance(e.value, BertTfError)
