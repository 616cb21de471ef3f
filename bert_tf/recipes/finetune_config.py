"""The settings of a fine-tuning run (`bert_tf.finetune`, `python -m apps.finetune`): the
settings every task shares, one field per flag with its help text, plus the chosen task's own
settings object (`task_settings`, the task's `settings_class`, bert_tf/tasks/<name>/config.py).
`validate` and `check_paths` turn a setting that cannot work into one line naming the flag,
before any data is read or anything is written.

    FinetuneConfig(task="squad", init_checkpoint=..., train_file=..., model_dir=...,
                   n_best_size=10)           # = task_settings=SquadSettings(n_best_size=10)

Settings that do not change the result of a run are declared `decides=False` (a rerun may
change them; file paths are compared by content, by their fingerprints)."""

import copy
import dataclasses
import logging
import os
import sys
from typing import Any

from bert_tf.checkpoints.sources import CheckpointError, read_encoder_config
from bert_tf.data.errors import DataError
from bert_tf.data.text_files import check_file
from bert_tf.recipes.run_config import RECORD_EXTRAS, RunConfig, setting
from bert_tf.settings import field_default, not_deciding
from bert_tf.settings.checks import describe_value
from bert_tf.tasks.registry import get_task, task_names
from bert_tf.tasks.settings import FinetuneConfigError, TaskSettings
from bert_tf.training.optimization import OPTIMIZERS

log = logging.getLogger(__name__)  # never the root logger: the caller owns it

__all__ = ["FinetuneConfig", "FinetuneConfigError"]


def _task_help():
    """--task's help: each registered fine-tuning task with its package's summary line."""
    lines = [
        f"{name}: {sys.modules[get_task(name).__module__].__doc__.splitlines()[0]}"
        for name in task_names()
    ]
    return (
        'The fine-tuning task (the flags whose help starts with "<task>:" are its own '
        "settings). " + " ".join(lines)
    )


@dataclasses.dataclass(kw_only=True, init=False)
class FinetuneConfig(RunConfig):
    """Everything a fine-tuning run needs; `apps.finetune`'s flags are generated from it and
    from every registered task's settings class."""

    config_error = FinetuneConfigError

    task: str = setting(help=_task_help(), choices=task_names)
    init_checkpoint: str = setting(
        help="Pre-trained encoder: a bert-tf model dir, a Hugging Face BERT dir (config.json + "
        "model.safetensors + vocab.txt) or a Google BERT dir (bert_config.json + "
        "bert_model.ckpt.* + vocab.txt). Its vocab.txt and casing define the tokenization.",
        decides=False,
    )
    train_file: str = setting(
        help="Training data. classify: .tsv (GLUE style, header) / .csv (header) / .jsonl, or "
        "tfds:NAME[:SPLIT] (split default train); tag: CoNLL column file (word first, tag "
        "last); squad: SQuAD JSON; multiple_choice: SWAG CSV or JSONL.",
        decides=False,
    )
    eval_file: str | None = setting(
        None,
        "Evaluation data in the same format (a TFDS source needs its split, e.g. "
        "tfds:glue/sst2:validation). Evaluated after every epoch; without it the last epoch "
        "is kept.",
        decides=False,
    )
    epochs: int = setting(3, "Training epochs.", bounds="[1, inf)")
    batch_size: int = setting(
        32,
        "Training examples (windows for squad, sentence windows for tag) per optimizer step.",
        bounds="[1, inf)",
    )
    eval_batch_size: int | None = setting(
        None, "Evaluation batch size (default: 2 x --batch_size).", bounds="[1, inf)", decides=False
    )
    max_seq_length: int = setting(
        128,
        "Maximum tokens per example incl. [CLS]/[SEP]; batches "
        "are padded only to their own longest example.",
        bounds="[1, inf)",
    )
    warmup_proportion: float = setting(
        0.1, "Fraction of the training steps with linear learning-rate warmup.", bounds="[0, 1)"
    )
    optimizer: str = setting(
        "adamw",
        "adamw: torch.optim.AdamW's maths, as the Hugging Face recipe (epsilon on the "
        "bias-corrected second moment); bert_adamw: the original BERT optimizer (no bias "
        "correction); keras_adamw: Keras' Adam epsilon (on the uncorrected second moment); "
        "lamb.",
        choices=OPTIMIZERS,
    )
    adam_epsilon: float | None = setting(
        None,
        "Adam epsilon. Default: 1e-8 for adamw (torch / transformers' default), 1e-6 "
        "for the others (the original BERT).",
        bounds="(0, 1)",
    )
    layer_decay: float | None = setting(
        None,
        "Layer-wise learning-rate decay factor in (0, 1] (e.g. 0.9): layer l of L gets "
        "lr * decay^(L + 1 - l). Default: off.",
        bounds="(0, 1]",
    )
    group_by_length: bool = setting(
        False,
        "Training batches of similar lengths (less padding, faster) instead of uniformly random "
        "ones (the reference recipe's). Changes what is learnt: on a small set the same "
        "examples share a batch every epoch (measured on real NER-style data: entity F1 "
        "several points lower).",
    )
    dropout: float = setting(0.1, "Dropout rate of the task head.", bounds="[0, 1)")
    max_train_examples: int | None = setting(
        None,
        "Use at most this many training examples (classify: a seeded random subsample; "
        "tag/squad: the first ones).",
        bounds="[1, inf)",
    )
    task_settings: TaskSettings | None = setting(
        None,
        "The chosen task's own settings (an instance of get_task(task).settings_class); "
        'default: the task\'s defaults. Also given flat: FinetuneConfig(task="squad", '
        "n_best_size=10) sets task_settings.n_best_size.",
        flag=False,
    )

    def __init__(self, **values: Any) -> None:
        """FinetuneConfig(task=..., <common settings>, task_settings=None, <task settings>):
        keywords that are not common settings are the task's (they replace the fields of
        `task_settings`, or of the task's defaults); a keyword of another task or of none
        is one FinetuneConfigError line."""
        settings = values.pop("task_settings", None)
        for field in dataclasses.fields(self):
            if field.name != "task_settings":
                setattr(self, field.name, values.pop(field.name, field_default(field)))
        self.task_settings = settings
        self.__post_init__()  # every common field checked (RunConfig)
        self.task_settings = self._task_settings(settings, values)

    def __getattr__(self, name):
        """The flat spelling for reads too: config.n_best_size is
        config.task_settings.n_best_size (read-only; only the task's own fields)."""
        settings = self.__dict__.get("task_settings")
        if (
            name.startswith("__")
            or settings is None
            or name not in {f.name for f in dataclasses.fields(settings)}
        ):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(settings, name)

    @classmethod
    def task_settings_classes(cls):
        """{fine-tuning task name: its settings class}, from the task registry."""
        return {name: get_task(name).settings_class for name in task_names()}

    # apps/config_flags.py: the flags of every task's settings, beside the common ones
    flag_groups = task_settings_classes

    def _task_settings(self, settings, flat):
        settings_class = get_task(self.task).settings_class
        if settings is not None and type(settings) is not settings_class:
            raise FinetuneConfigError(
                f"task_settings: expected a {settings_class.__name__} for --task={self.task}, "
                f"got {describe_value(settings)}"
            )
        own = {f.name for f in dataclasses.fields(settings_class)}
        for name in flat:
            if name not in own:
                raise FinetuneConfigError(self._foreign(name))
        if settings is None:
            return settings_class(**flat)
        return dataclasses.replace(settings, **flat) if flat else settings

    def _foreign(self, name):
        """The line for a keyword that is not a setting of this run's task."""
        owners = [
            task
            for task, settings_class in self.task_settings_classes().items()
            if name in {f.name for f in dataclasses.fields(settings_class)}
        ]
        if owners:
            return f"--{name} is a {', '.join(owners)} setting; --task={self.task}"
        return (
            f"--{name}: not a fine-tuning setting (neither FinetuneConfig's nor a task's; "
            f"--task={self.task})"
        )

    def record(self):
        """config.json "training": the common settings and the task's, in one flat dict (as
        every bert-tf version wrote it)."""
        values = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "task_settings"
        }
        return copy.deepcopy({**values, **dataclasses.asdict(self.task_settings)})

    @classmethod
    def from_record(cls, values, **changes):
        """The config a flat config.json "training" records (plus `changes`). Records of
        older versions hold every task's settings: those of other tasks are dropped; keys no
        task knows are ignored with a warning; missing ones take their defaults."""
        task = changes.get("task", values.get("task"))
        own = {f.name for f in dataclasses.fields(cls)} - {"task_settings"}
        if task in task_names():
            own |= {f.name for f in dataclasses.fields(get_task(task).settings_class)}
        others = {
            f.name for c in cls.task_settings_classes().values() for f in dataclasses.fields(c)
        }
        unknown = sorted(set(values) - own - others - set(RECORD_EXTRAS))
        if unknown:
            log.warning(
                'config.json "training": ignoring settings this bert-tf does not know: %s',
                ", ".join(unknown),
            )
        return cls(**{**{k: v for k, v in values.items() if k in own}, **changes})

    def not_deciding(self):
        """Settings a rerun may change (declared `decides=False`), common and the task's."""
        return not_deciding(type(self)) + not_deciding(type(self.task_settings))

    def input_files(self):
        """[(flag, path)] of the data inputs that are local files (not e.g. tfds:NAME)."""
        task = get_task(self.task)
        return [
            (f"--{name}", getattr(self, name))
            for name in ("train_file", "eval_file")
            if getattr(self, name) and task.is_file_source(getattr(self, name))
        ]

    def validate(self):
        """Raises FinetuneConfigError for a setting that cannot work (no I/O). Types,
        choices and bounds were checked when the config was built (RunConfig.__post_init__);
        this adds what needs more than one field: the required paths are non-empty."""
        for name in ("init_checkpoint", "train_file", "model_dir"):
            if not getattr(self, name):
                raise FinetuneConfigError(f"--{name} is required")
        self.task_settings.validate(self)

    def check_paths(self):
        """Up-front checks of the paths and of max_seq_length against the encoder (its config
        only; no weights are read): one line each, before any data is read."""
        if os.path.exists(self.model_dir) and not os.path.isdir(self.model_dir):
            raise FinetuneConfigError(
                f"--model_dir={self.model_dir}: exists and is not a directory"
            )
        for flag, path in self.input_files():
            try:
                check_file(path)
            except DataError as e:
                raise FinetuneConfigError(f"{flag}={e}") from None
        try:
            encoder = read_encoder_config(self.init_checkpoint)
        except CheckpointError as e:
            raise FinetuneConfigError(f"--init_checkpoint={e}") from None
        if self.max_seq_length > encoder.max_position_embeddings:
            raise FinetuneConfigError(
                f"--max_seq_length={self.max_seq_length} exceeds the encoder's "
                f"max_position_embeddings={encoder.max_position_embeddings} "
                f"({self.init_checkpoint})"
            )
