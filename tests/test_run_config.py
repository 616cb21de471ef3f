"""Settings defined once: the flags generated from the config dataclasses (every field, its
default and help; argv round trips), and the config recorded in config.json read back."""

import dataclasses
import json
import logging

import pytest
from absl import flags

from apps import config_flags
from bert_tf.recipes.finetune_config import FinetuneConfig, FinetuneConfigError
from bert_tf.recipes.pretrain_config import PretrainConfig
from bert_tf.recipes.run_config import PRECISIONS, RunConfig

REQUIRED_FT = {"task": "classify", "init_checkpoint": "init", "train_file": "t.tsv",
               "model_dir": "out"}


def _defined(config_class):
    fv = flags.FlagValues()
    names = config_flags.define_flags(config_class, flag_values=fv)
    return fv, names


def _parse(config_class, argv, **extra):
    fv, _ = _defined(config_class)
    fv(["prog"] + argv)
    return config_flags.config_from_flags(config_class, flag_values=fv, **extra)


@pytest.mark.parametrize("config_class", [FinetuneConfig, PretrainConfig])
def test_every_field_is_a_flag_with_its_default_help_and_choices(config_class):
    fv, names = _defined(config_class)
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    expected = sorted(n for n, f in fields.items() if f.metadata["flag"])
    assert sorted(names) == expected
    assert [n for n, f in fields.items() if not f.metadata["flag"]] == (
        ["config_overrides"] if config_class is PretrainConfig else [])
    for name in names:
        field = fields[name]
        default = None if field.default is dataclasses.MISSING else field.default
        assert fv[name].default == default, name
        assert fv[name].help.endswith(field.metadata["help"]), name   # enum: "<a|b>: " first
        assert len(field.metadata["help"]) > 10, name
        choices = field.metadata["choices"]
        assert (getattr(fv[name].parser, "enum_values", None) or None) == (
            list(choices) if choices else None), name
    # the common base, defined once: same help in both recipes; own defaults where they differ
    assert fv["precision"].default == "auto" and set(fv["precision"].parser.enum_values) == \
        set(PRECISIONS)
    if config_class is PretrainConfig:
        assert (fv["seed"].default, fv["learning_rate"].default,
                fv["checkpoint_every_steps"].default, fv["log_every_steps"].default) == \
            (12345, 1e-4, 1000, 100)
    else:
        assert (fv["seed"].default, fv["learning_rate"].default,
                fv["checkpoint_every_steps"].default, fv["log_every_steps"].default) == \
            (42, 5e-5, None, 50)


def test_flags_without_values_give_the_dataclass_defaults():
    assert _parse(FinetuneConfig, [f"--{k}={v}" for k, v in REQUIRED_FT.items()]) == \
        FinetuneConfig(**REQUIRED_FT)
    assert _parse(PretrainConfig, ["--model_dir=m"], config_overrides={"num_layers": 2}) == \
        PretrainConfig(model_dir="m", config_overrides={"num_layers": 2})


def test_bool_enum_list_and_optional_fields_round_trip_from_argv():
    config = _parse(FinetuneConfig, [f"--{k}={v}" for k, v in REQUIRED_FT.items()] + [
        "--regression", "--tag_scheme=bioes", "--label_names=neg,pos", "--doc_stride=8",
        "--noversion_2_with_negative", "--layer_decay=0.9", "--precision=float32",
        "--eval_batch_size=5", "--text_b_column=sentence2"])
    assert config == FinetuneConfig(
        **REQUIRED_FT, regression=True, tag_scheme="bioes", label_names=["neg", "pos"],
        doc_stride=8, version_2_with_negative=False, layer_decay=0.9, precision="float32",
        eval_batch_size=5, text_b_column="sentence2")
    assert isinstance(config.doc_stride, int) and isinstance(config.layer_decay, float)
    pre = _parse(PretrainConfig, ["--model_dir=m", "--input_files=a-*,b-*", "--mode=eval",
                                  "--dynamic_masking", "--max_predictions_per_row=7",
                                  "--nolower_case", "--xla"])
    assert (pre.input_files, pre.mode, pre.dynamic_masking, pre.max_predictions_per_row,
            pre.lower_case, pre.xla) == ("a-*,b-*", "eval", True, 7, False, True)
    assert pre.whole_word_masking is None          # optional bool left unset stays None
    with pytest.raises(flags.IllegalFlagValueError):
        _parse(FinetuneConfig, ["--tag_scheme=bilou"])
    with pytest.raises(flags.IllegalFlagValueError):
        _parse(PretrainConfig, ["--eval_steps=x"])


def test_recorded_config_round_trips(caplog):
    config = FinetuneConfig(**REQUIRED_FT, label_names=["a", "b"], layer_decay=0.8,
                            precision="float32")
    record = json.loads(json.dumps(dict(config.record(), input_fingerprints={"x": 1})))
    assert FinetuneConfig.from_record(record) == config
    pre = PretrainConfig(model_dir="m", config="tiny", config_overrides={"num_heads": 4},
                         input_files=["a", "b"], dynamic_masking=True)
    assert PretrainConfig.from_record(json.loads(json.dumps(pre.record()))) == pre
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
    assert {"model_dir", "strategy", "precision", "seed", "clip_norm", "log_every_steps",
            "checkpoint_every_steps", "overwrite_model_dir"} <= common
    for cls in (FinetuneConfig, PretrainConfig):
        assert issubclass(cls, RunConfig)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name in common:
            assert fields[name].metadata["help"] == next(
                f for f in dataclasses.fields(RunConfig) if f.name == name).metadata["help"]


@pytest.mark.parametrize("changes, message", [
    ({"precision": "bfloat16"}, "--precision: expected one of auto, float32, mixed_bfloat16, "
                                "mixed_float16, got 'bfloat16'"),
    ({"long_inputs": "cut"}, "--long_inputs: expected one of windows, truncate, got 'cut'"),
    ({"task": "nope"}, "--task: expected one of classify, tag, squad, multiple_choice, got "
                       "'nope'"),
    ({"train_file": None}, "--train_file is required"),
])
def test_finetune_config_validate_is_one_line(changes, message):
    with pytest.raises(FinetuneConfigError) as e:
        FinetuneConfig(**{**REQUIRED_FT, **changes}).validate()
    assert str(e.value) == message
