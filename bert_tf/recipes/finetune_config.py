"""The settings of a fine-tuning run (`bert_tf.finetune`, `python -m apps.finetune`): one field
per flag, with its help text; `validate` and `check_paths` turn a setting that cannot work into
one line naming the flag, before any data is read or anything is written."""

import dataclasses
import os

from bert_tf.checkpoints.sources import CheckpointError, read_encoder_config
from bert_tf.data.classification import parse_tfds_source
from bert_tf.data.conll import TAG_SCHEMES
from bert_tf.data.errors import DataError
from bert_tf.data.text_files import check_file
from bert_tf.recipes.run_config import ConfigError, RunConfig, setting
from bert_tf.tasks import TASK_NAMES
from bert_tf.training.optimization import OPTIMIZERS

# Settings that do not change the result of a run (a rerun may change them freely); the file
# paths are compared by content (fingerprints), not by name.
NOT_DECIDING = ("model_dir", "strategy", "checkpoint_every_steps", "log_every_steps",
                "eval_batch_size", "train_file", "eval_file", "init_checkpoint",
                "tfds_data_dir", "overwrite_model_dir", "label_names")


class FinetuneConfigError(ConfigError):
    """A fine-tuning setting that cannot work (one line naming the flag)."""


@dataclasses.dataclass(kw_only=True)
class FinetuneConfig(RunConfig):
    """Everything a fine-tuning run needs; `apps.finetune`'s flags are generated from it."""

    config_error = FinetuneConfigError

    task: str = setting(
        help="classify: sentence(-pair) classification or regression; tag: CoNLL token "
             "tagging (NER); squad: extractive question answering (SQuAD v1.1/v2.0); "
             "multiple_choice: pick one of C choices for a context (SWAG CSV or JSONL).",
        choices=TASK_NAMES)
    init_checkpoint: str = setting(
        help="Pre-trained encoder: a bert-tf model dir, a Hugging Face BERT dir (config.json + "
             "model.safetensors + vocab.txt) or a Google BERT dir (bert_config.json + "
             "bert_model.ckpt.* + vocab.txt). Its vocab.txt and casing define the tokenization.")
    train_file: str = setting(
        help="Training data. classify: .tsv (GLUE style, header) / .csv (header) / .jsonl, or "
             "tfds:NAME[:SPLIT] (split default train); tag: CoNLL column file (word first, tag "
             "last); squad: SQuAD JSON; multiple_choice: SWAG CSV or JSONL.")
    eval_file: str | None = setting(
        None, "Evaluation data in the same format (a TFDS source needs its split, e.g. "
        "tfds:glue/sst2:validation). Evaluated after every epoch; without it the last epoch "
        "is kept.")
    epochs: int = setting(3, "Training epochs.", bounds="[1, inf)")
    batch_size: int = setting(32, "Training examples (windows for squad, sentence windows for "
                                  "tag) per optimizer step.", bounds="[1, inf)")
    eval_batch_size: int | None = setting(None, "Evaluation batch size (default: 2 x "
                                                "--batch_size).", bounds="[1, inf)")
    max_seq_length: int = setting(128, "Maximum tokens per example incl. [CLS]/[SEP]; batches "
                                       "are padded only to their own longest example.",
                                   bounds="[1, inf)")
    warmup_proportion: float = setting(0.1, "Fraction of the training steps with linear "
                                            "learning-rate warmup.", bounds="[0, 1)")
    optimizer: str = setting(
        "adamw", "adamw: torch.optim.AdamW's maths, as the Hugging Face recipe (epsilon on the "
        "bias-corrected second moment); bert_adamw: the original BERT optimizer (no bias "
        "correction); keras_adamw: Keras' Adam epsilon (on the uncorrected second moment); "
        "lamb.", choices=OPTIMIZERS)
    adam_epsilon: float | None = setting(
        None, "Adam epsilon. Default: 1e-8 for adamw (torch / transformers' default), 1e-6 "
        "for the others (the original BERT).", bounds="(0, 1)")
    layer_decay: float | None = setting(
        None, "Layer-wise learning-rate decay factor in (0, 1] (e.g. 0.9): layer l of L gets "
        "lr * decay^(L + 1 - l). Default: off.", bounds="(0, 1]")
    dropout: float = setting(0.1, "Dropout rate of the task head.", bounds="[0, 1)")
    max_train_examples: int | None = setting(
        None, "Use at most this many training examples (classify: a seeded random subsample; "
        "tag/squad: the first ones).", bounds="[1, inf)")
    long_inputs: str = setting(
        "windows", "tag and single-text classify, training on inputs longer than "
        "--max_seq_length: windows (every --doc_stride window is a training example; tag: each "
        "window labels the words it holds) or truncate (only the first window, the original "
        "BERT). Evaluation and the exported model always read every window (tag: each word "
        "from its max-context window; classify: mean of the window logits).",
        choices=("windows", "truncate"))
    allow_unseen_labels: bool = setting(
        False, "Allow eval labels/tags absent from the training data (warn, count, score as "
        "wrong) instead of failing.")
    label_names: list[str] | None = setting(
        None, "Explicit label (classify) or tag (tag) names and order; default: those of "
        "--train_file (classify: sorted, numerically if numbers; tag: O first).")
    # classify
    text_a_column: str = setting("sentence", "classify: column (TSV/CSV header, JSONL key or "
                                             "TFDS feature) with the first text.")
    text_b_column: str | None = setting(None, "classify: column with the second text of "
                                              "sentence pairs (e.g. sentence2); default none.")
    label_column: str = setting("label", "classify: column with the label (class name or id; "
                                         "a number for --regression).")
    regression: bool = setting(False, "classify: predict a real number (STS-B style, MSE "
                                      "loss, Pearson/Spearman) instead of a class.")
    tfds_data_dir: str | None = setting(None, "classify: TFDS data dir holding prepared "
                                              "datasets for tfds: sources (nothing is "
                                              "downloaded).")
    # tag
    tag_scheme: str = setting(
        "iob", "tag: the tag scheme of the CoNLL files. iob: IOB1 or IOB2 (O, B-TYPE, I-TYPE), "
        "kept as written; bioes: BIOES/IOBES (also S-TYPE, E-TYPE), converted to IOB2 (same "
        "chunks) for training, metrics and predictions. A tag outside the scheme (bare PER, "
        "lower-case o/b-per, S-/E- under iob) fails naming file and line.",
        choices=TAG_SCHEMES)
    # squad (and the windows of tag / classify)
    doc_stride: int | None = setting(
        None, "Pieces between the starts of consecutive windows of an input longer than "
        "--max_seq_length (squad: the context; tag: a sentence; classify: a single text). "
        "Default: squad 128, tag and classify half a window.", bounds="[1, inf)")
    max_query_length: int = setting(64, "squad: questions are truncated to this many tokens.",
                                    bounds="[1, inf)")
    max_answer_length: int = setting(30, "squad: longest answer span in tokens.",
                                     bounds="[1, inf)")
    n_best_size: int = setting(20, "squad: start/end candidates per window and n-best answers "
                                   "kept.", bounds="[1, inf)")
    null_score_diff_threshold: float = setting(
        0.0, "squad v2.0: answer \"\" when null score - best span score > this; "
        "eval_results.json reports the best threshold found on the eval set (best_f1_thresh).")
    version_2_with_negative: bool | None = setting(
        None, "squad: SQuAD v2.0 (unanswerable questions); default: detected from "
        "--train_file.")
    squad_offset_errors: str = setting(
        "warn", "squad: answers whose answer_start does not match the context: warn (move to "
        "the nearest occurrence / skip, counted) or fail naming the question id.",
        choices=("warn", "fail"))

    def validate(self):
        """Raises FinetuneConfigError for a setting that cannot work (no I/O). Types,
        choices and bounds were checked when the config was built (RunConfig.__post_init__);
        this adds what needs more than one field: the required paths are non-empty."""
        for name in ("init_checkpoint", "train_file", "model_dir"):
            if not getattr(self, name):
                raise FinetuneConfigError(f"--{name} is required")

    def check_paths(self):
        """Up-front checks of the paths and of max_seq_length against the encoder (its config
        only; no weights are read): one line each, before any data is read."""
        if os.path.exists(self.model_dir) and not os.path.isdir(self.model_dir):
            raise FinetuneConfigError(f"--model_dir={self.model_dir}: exists and is not a "
                                      f"directory")
        for name in ("train_file", "eval_file"):
            path = getattr(self, name)
            if path and not (self.task == "classify" and parse_tfds_source(path)):
                try:
                    check_file(path)
                except DataError as e:
                    raise FinetuneConfigError(f"--{name}={e}") from None
        try:
            encoder = read_encoder_config(self.init_checkpoint)
        except CheckpointError as e:
            raise FinetuneConfigError(f"--init_checkpoint={e}") from None
        if self.max_seq_length > encoder.max_position_embeddings:
            raise FinetuneConfigError(
                f"--max_seq_length={self.max_seq_length} exceeds the encoder's "
                f"max_position_embeddings={encoder.max_position_embeddings} "
                f"({self.init_checkpoint})")
