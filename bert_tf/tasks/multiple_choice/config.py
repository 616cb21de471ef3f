"""The settings of the multiple_choice task (`--task=multiple_choice`): none of its own (it
reads the common --train_file, --max_seq_length, --dropout, ...)."""

import dataclasses

from bert_tf.tasks.settings import TaskSettings


@dataclasses.dataclass(kw_only=True)
class MultipleChoiceSettings(TaskSettings):
    """SWAG-style multiple choice: no task-specific settings."""
