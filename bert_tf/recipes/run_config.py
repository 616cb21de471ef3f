"""Settings defined once: the base of every recipe's config, and the numeric runtime of a run.

A recipe's settings are ONE kw_only dataclass (`FinetuneConfig`, `PretrainConfig`) whose
fields carry their help text and choices (`setting(...)`, bert_tf/settings/; a fine-tuning
task's own settings are its `settings_class`, bert_tf/tasks/<name>/config.py). From it:
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
import logging

from bert_tf.settings import ConfigError, Settings, setting, with_default

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
# Keys of config.json "training" that are not settings (written beside them).
RECORD_EXTRAS = ("input_fingerprints",)
# The recipes' configs declare their fields with these (one import for a recipe's config).
__all__ = [
    "ConfigError",
    "PRECISIONS",
    "RECORD_EXTRAS",
    "RunConfig",
    "STRATEGIES",
    "setting",
    "with_default",
]


@dataclasses.dataclass(kw_only=True)
class RunConfig(Settings):
    """What every training recipe has: where it writes, how it runs and how it optimizes.

    Every field is checked when the config is built (bert_tf.settings.Settings; `config_error`
    is the error class of the recipe)."""

    model_dir: str = setting(
        help="Output model directory: config.json, vocab.txt, model.weights.h5, "
        "checkpoints/ (resume), logs/ (TensorBoard), eval_results.json (fine-tuning: "
        "also predictions.*). Pre-training default job: runs/pretrain_default.",
        decides=False,
    )
    strategy: str = setting(
        "default",
        "Distribution strategy: default (one device), mirrored (local GPUs), "
        "multi_worker (cluster from TF_CONFIG), tpu.",
        choices=STRATEGIES,
        decides=False,
    )
    precision: str = setting(
        "auto",
        "Keras dtype policy; auto = mixed_bfloat16 where the hardware has native "
        "bfloat16 (AVX512_BF16/AMX CPUs, Ampere+ GPUs), else float32.",
        choices=PRECISIONS,
    )
    seed: int = setting(
        42, "Random seed (initialization, dropout, data order, masks).", bounds="[0, 4294967295]"
    )
    learning_rate: float = setting(
        5e-5,
        "Peak learning rate (linear warmup, then linear decay to 0 at the last step).",
        bounds="(0, inf)",
    )
    weight_decay: float = setting(
        0.01,
        "Decoupled weight decay (not applied to LayerNorm and bias variables).",
        bounds="[0, inf)",
    )
    clip_norm: float = setting(1.0, "Global gradient-norm clipping (0 = off).", bounds="[0, inf)")
    checkpoint_every_steps: int | None = setting(
        None,
        "Steps between checkpoints for resume (also at the end; fine-tuning default: every epoch).",
        bounds="[1, inf)",
        decides=False,
    )
    log_every_steps: int = setting(
        50, "Steps between progress lines / TensorBoard points.", bounds="[1, inf)", decides=False
    )
    overwrite_model_dir: bool = setting(
        False,
        "Start over in a --model_dir that holds another run (other settings or input "
        "data): removes first only what earlier bert-tf runs wrote there (listed in its "
        ".bert_tf_manifest.json: config.json, weights, checkpoints, logs, eval results, "
        "predictions), never the default job's data/ or an export; a directory holding "
        "anything bert-tf did not write is refused, naming a few. Without it such a rerun is "
        "refused; an identical rerun resumes, or does nothing if the run is complete.",
        decides=False,
    )

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
            log.warning(
                'config.json "training": ignoring settings this bert-tf does not know: %s',
                ", ".join(unknown),
            )
        kept = {k: v for k, v in values.items() if k in known}
        return cls(**{**kept, **changes})
