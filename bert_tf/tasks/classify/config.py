"""The settings of the classify task (`--task=classify`)."""

import dataclasses

from bert_tf.settings import setting, with_default
from bert_tf.tasks.settings import FinetuneConfigError, LabelSettings, WindowSettings


@dataclasses.dataclass(kw_only=True)
class ClassifySettings(WindowSettings, LabelSettings):
    """Sentence(-pair) classification or regression: the columns to read, regression, TFDS."""

    label_names: list[str] | None = with_default(
        LabelSettings,
        "label_names",
        None,
        help="explicit label names and order; default: those of --train_file (sorted, "
        "numerically if numbers).",
    )
    text_a_column: str = setting(
        "sentence", "column (TSV/CSV header, JSONL key or TFDS feature) with the first text."
    )
    text_b_column: str | None = setting(
        None, "column with the second text of sentence pairs (e.g. sentence2); default none."
    )
    label_column: str = setting(
        "label", "column with the label (class name or id; a number for --regression)."
    )
    regression: bool = setting(
        False, "predict a real number (STS-B style, MSE loss, Pearson/Spearman) instead of a class."
    )
    tfds_data_dir: str | None = setting(
        None,
        "TFDS data dir holding prepared datasets for tfds: sources (nothing is downloaded).",
        decides=False,
    )

    def validate(self, config):
        super().validate(config)
        if self.label_names is not None and not self.regression and len(self.label_names) < 2:
            raise FinetuneConfigError(
                f"--label_names: need at least 2 classes, got {self.label_names}"
            )
