"""Settings defined once: the base of every recipe's config, and the numeric runtime of a run.

A recipe's settings are ONE kw_only dataclass (`FinetuneConfig`, `PretrainConfig`) whose
fields carry their help text and choices (`setting(...)`). From it:
  * apps/config_flags.py generates the absl flags (name, type, default, help) and builds the
    config back from the parsed flags, so `python -m apps.finetune --x=1` and
    `bert_tf.finetune(FinetuneConfig(x=1))` are the same run;
  * config.json "training" records `config.record()` (dataclasses.asdict) plus the input
    fingerprints, and `Config.from_record(values)` reads it back (old model dirs: keys this
    version does not know are ignored with a warning).

bert_tf/recipes/precision.py holds the runtime side: precision "auto" resolved and the global Keras
dtype policy restored after a run.
"""

import dataclasses
import functools
import logging
import typing

from bert_tf.errors import BertTfError
from bert_tf.recipes.field_checks import checked_value, parse_bounds

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
# Keys of config.json "training" that are not settings (written beside them).
RECORD_EXTRAS = ("input_fingerprints",)


class ConfigError(BertTfError, ValueError, TypeError):
    """A recipe setting that cannot work, found when the config is built: one line naming the
    field (as its flag), expected vs got. Also a TypeError and a ValueError, the builtins a
    bad value raised before."""


def setting(default=dataclasses.MISSING, help="", choices=None, flag=True, bounds=None,
            flag_name=None):
    """A config field with its documentation: `help` is the flag's help text, `choices` make
    it an enum flag; `flag=False` keeps it out of the generated flags (a Python-only
    setting); `flag_name` names the flag when it is not the field's name; `bounds`
    ("[1, inf)", "(0, 1]") is the range a number must lie in. The type is the annotation.
    All three are checked when the config is built (RunConfig.__post_init__,
    bert_tf/recipes/field_checks.py). A list or dict default is copied per instance."""
    metadata = {"help": help, "choices": tuple(choices) if choices else None, "flag": flag,
                "bounds": parse_bounds(bounds), "bounds_text": bounds, "flag_name": flag_name}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default),
                                 metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(field):
    """The flag of a config field (its name unless `setting(flag_name=...)` says otherwise)."""
    return field.metadata.get("flag_name") or field.name


def with_default(config_class, name, default, help=None):
    """The field `name` of `config_class` with another default (a subclass's own default,
    the help text and choices kept in one place)."""
    base = next(f for f in dataclasses.fields(config_class) if f.name == name)
    meta = base.metadata
    return setting(default, help or meta["help"], meta["choices"], meta["flag"],
                   meta["bounds_text"], meta.get("flag_name"))


@functools.cache
def _declared(config_class):
    """[(field, its resolved annotation, required)] of a config class."""
    hints = typing.get_type_hints(config_class)
    return [(f, hints[f.name], f.default is dataclasses.MISSING
             and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(config_class)]


@dataclasses.dataclass(kw_only=True)
class RunConfig:
    """What every training recipe has: where it writes, how it runs and how it optimizes.

    Every field is checked when the config is built (type, choices, bounds; `config_error`
    is the error class of the recipe), and stored normalized (os.PathLike -> str, numpy
    integers -> int, a tuple -> list)."""

    config_error: typing.ClassVar[type] = ConfigError

    model_dir: str = setting(
        help="Output model directory: config.json, vocab.txt, model.weights.h5, "
             "checkpoints/ (resume), logs/ (TensorBoard), eval_results.json (fine-tuning: "
             "also predictions.*). Pre-training default job: runs/pretrain_default.")
    strategy: str = setting(
        "default", "Distribution strategy: default (one device), mirrored (local GPUs), "
        "multi_worker (cluster from TF_CONFIG), tpu.", choices=STRATEGIES)
    precision: str = setting(
        "auto", "Keras dtype policy; auto = mixed_bfloat16 where the hardware has native "
        "bfloat16 (AVX512_BF16/AMX CPUs, Ampere+ GPUs), else float32.", choices=PRECISIONS)
    seed: int = setting(42, "Random seed (initialization, dropout, data order, masks).",
                        bounds="[0, 4294967295]")
    learning_rate: float = setting(
        5e-5, "Peak learning rate (linear warmup, then linear decay to 0 at the last step).",
        bounds="(0, inf)")
    weight_decay: float = setting(
        0.01, "Decoupled weight decay (not applied to LayerNorm and bias variables).",
        bounds="[0, inf)")
    clip_norm: float = setting(1.0, "Global gradient-norm clipping (0 = off).",
                               bounds="[0, inf)")
    checkpoint_every_steps: int | None = setting(
        None, "Steps between checkpoints for resume (also at the end; fine-tuning default: "
        "every epoch).", bounds="[1, inf)")
    log_every_steps: int = setting(50, "Steps between progress lines / TensorBoard points.",
                                   bounds="[1, inf)")
    overwrite_model_dir: bool = setting(
        False, "Start over in a --model_dir that holds another run (other settings or input "
        "data): removes first only what earlier bert-tf runs wrote there (listed in its "
        ".bert_tf_manifest.json: config.json, weights, checkpoints, logs, eval results, "
        "predictions), never the default job's data/ or an export; a directory holding "
        "anything bert-tf did not write is refused, naming a few. Without it such a rerun is "
        "refused; an identical rerun resumes, or does nothing if the run is complete.")

    def __post_init__(self):
        for field, annotation, required in _declared(type(self)):
            setattr(self, field.name, checked_value(
                flag_name(field), getattr(self, field.name), annotation, field.metadata, required,
                self.config_error))

    def record(self):
        """The settings as config.json "training" records them."""
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, values, **changes):
        """The config recorded in config.json "training" (plus `changes`). Keys this version
        does not know (a model dir of another bert-tf version) are ignored with a warning;
        settings the record lacks take their defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known - set(RECORD_EXTRAS))
        if unknown:
            log.warning("config.json \"training\": ignoring settings this bert-tf does not "
                        "know: %s", ", ".join(unknown))
        kept = {k: v for k, v in values.items() if k in known}
        return cls(**{**kept, **changes})
