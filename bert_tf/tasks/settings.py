"""The settings a fine-tuning task declares, and the ones several tasks share.

Each task package declares its settings dataclass in `bert_tf/tasks/<name>/config.py` and points
at it from its task class (`settings_class`); the registry is then the only place that knows
which settings a task has. `FinetuneConfig` (bert_tf/recipes/finetune_config.py) holds the run's
common settings plus the chosen task's settings object (`config.task_settings`), and
`apps.finetune` generates one flag per field of every registered task's settings.

    @dataclasses.dataclass(kw_only=True)
    class TagSettings(WindowSettings, LabelSettings):
        tag_scheme: str = setting("iob", "the tag scheme of the CoNLL files ...",
                                  choices=TAG_SCHEMES)

The help texts here start in lower case: the flag's help is "<task>: <help>".
"""

import dataclasses

from bert_tf.data.windows import default_stride
from bert_tf.settings import ConfigError, Settings, setting


class FinetuneConfigError(ConfigError):
    """A fine-tuning setting (of FinetuneConfig or of a task's settings) that cannot work
    (one line naming the flag)."""


@dataclasses.dataclass(kw_only=True)
class TaskSettings(Settings):
    """Base of a task's settings: fields checked when built (FinetuneConfigError), and
    `validate(config)` for what needs the run's common settings too."""

    config_error = FinetuneConfigError

    def validate(self, config):
        """Raises FinetuneConfigError for settings that cannot work together with the run's
        `config` (a FinetuneConfig); no I/O. Default: nothing to check."""


@dataclasses.dataclass(kw_only=True)
class WindowSettings(TaskSettings):
    """Inputs longer than --max_seq_length read in windows `doc_stride` pieces apart (tag:
    a sentence; classify: a single text)."""

    long_inputs: str = setting(
        "windows",
        "training on inputs longer than --max_seq_length: windows (every "
        "--doc_stride window is a training example; tag: each window labels the words it "
        "holds) or truncate (only the first window, the original BERT). Evaluation and the "
        "exported model always read every window (tag: each word from its max-context window; "
        "classify: mean of the window logits).",
        choices=("windows", "truncate"),
    )
    doc_stride: int | None = setting(
        None,
        "pieces between the starts of consecutive windows of an input longer than "
        "--max_seq_length (tag: a sentence; classify: a single text). Default: half a window.",
        bounds="[1, inf)",
    )

    def stride(self, max_seq_length):
        """The stride between window starts for windows of `max_seq_length` tokens."""
        return default_stride(max_seq_length - 2, self.doc_stride)

    def validate(self, config):
        super().validate(config)
        if config.max_seq_length < 3:
            raise FinetuneConfigError(
                f"--max_seq_length={config.max_seq_length}: --task={config.task} needs at "
                "least 3 ([CLS], one piece, [SEP])"
            )


@dataclasses.dataclass(kw_only=True)
class LabelSettings(TaskSettings):
    """Tasks that predict one of a set of named labels (classes, tags)."""

    allow_unseen_labels: bool = setting(
        False,
        "allow eval labels absent from the training data (warn, count, score as "
        "wrong) instead of failing.",
    )
    label_names: list[str] | None = setting(
        None, "explicit label names and their order; default: those of --train_file.", decides=False
    )

    def validate(self, config):
        super().validate(config)
        names = self.label_names or []
        if len(set(names)) != len(names):
            raise FinetuneConfigError(f"--label_names: duplicate names in {names}")
