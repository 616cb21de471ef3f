"""The settings of a pre-training run (`bert_tf.pretrain`, `python -m apps.pretrain`): one field
per flag, with its help text (the encoder-config override flags of the app fill
`config_overrides`; the field `encoder_config` is the flag --config). Settings a rerun may
change are declared `decides=False`: paths (the data is compared by content), intervals, the
strategy and hardware, and the length of the run."""

import dataclasses

from bert_tf.config import BertConfig
from bert_tf.errors import BertTfError
from bert_tf.recipes.run_config import ConfigError, RunConfig, setting, with_default
from bert_tf.training.optimization import OPTIMIZERS

MODES = ("train_and_eval", "train", "eval")


class PretrainingJobError(BertTfError, ValueError):
    """Bad input for a pre-training job; the message is one line."""


class PretrainConfigError(PretrainingJobError, ConfigError):
    """A PretrainConfig field that does not fit its declaration (type, choices, bounds)."""


@dataclasses.dataclass(kw_only=True)
class PretrainConfig(RunConfig):
    """Everything a pre-training run needs; `apps.pretrain`'s flags are generated from it."""

    config_error = PretrainConfigError

    encoder_config: str | dict | BertConfig | None = setting(
        None,
        "Encoder config: a preset (tiny, mini, small, medium, base, large; vocab_size "
        "then follows the vocab) or a JSON file (BertConfig fields, a Google bert_config.json, "
        "or a bert-tf config.json); from Python also a dict or a BertConfig. Default: the "
        "model dir's, else --init_checkpoint's, else required (the default job uses a tiny "
        "config).",
        flag_name="config",
        decides=False,
    )
    config_overrides: dict = setting(
        {},
        "BertConfig fields replacing those of --config (the app's --num_layers, "
        "--hidden_size, ... flags).",
        flag=False,
        decides=False,
    )
    vocab_file: str | None = setting(
        None,
        "WordPiece vocab (one token per line, with [PAD] [UNK] [CLS] [SEP] [MASK]). "
        "Default: the model dir's or --init_checkpoint's vocab.txt.",
        decides=False,
    )
    lower_case: bool | None = setting(
        None,
        "Whether the text was lower-cased (uncased vocab); recorded in config.json for "
        "fine-tuning and export. Default: inferred from the vocab.",
    )
    input_files: str | list[str] | None = setting(
        None,
        "Comma-separated globs of pre-training TFRecords (from "
        "apps.create_pretraining_data or google-research/bert); from Python also a list of "
        "globs. Without it (and not --mode=eval) the app runs the embedded default job.",
        decides=False,
    )
    eval_files: str | list[str] | None = setting(
        None,
        "Comma-separated globs of held-out pre-training TFRecords for evaluation "
        "(--mode=eval default: those the model dir's run recorded).",
        decides=False,
    )
    mode: str = setting(
        "train_and_eval",
        "train_and_eval: train then evaluate; train: no evaluation; eval: "
        "evaluate the existing --model_dir on --eval_files only.",
        choices=MODES,
        decides=False,
    )
    tpu: str | None = setting(
        None, "TPU address or name for --strategy=tpu ('' = local).", decides=False
    )
    num_gpus: int | None = setting(
        None,
        "GPUs for --strategy=mirrored (default: all visible; 0 = CPU).",
        bounds="[0, inf)",
        decides=False,
    )
    global_batch_size: int = setting(
        32,
        "Examples per optimizer step over all replicas (and all --grad_accum_steps micro-batches).",
        bounds="[1, inf)",
    )
    max_seq_length: int | None = setting(
        None,
        "Sequence length of the records. Default: the model dir's recorded value, else 128.",
        bounds="[1, inf)",
    )
    max_predictions_per_seq: int | None = setting(
        None,
        "Masked-LM predictions per sequence (as in the records, or drawn with "
        "--dynamic_masking). Default: the model dir's recorded value, else 20.",
        bounds="[0, inf)",
    )
    num_train_steps: int = setting(
        1000,
        "Total optimizer steps (a resumed run trains up to this step).",
        bounds="[1, inf)",
        decides=False,
    )
    num_warmup_steps: int = setting(100, "Linear learning-rate warmup steps.", bounds="[0, inf)")
    learning_rate: float = with_default(RunConfig, "learning_rate", 1e-4)
    optimizer: str = setting(
        "adamw",
        "Optimizer: adamw (AdamW, torch's maths), bert_adamw "
        "(the original BERT optimizer: no bias correction, "
        "epsilon 1e-6), keras_adamw (Keras' Adam epsilon) or "
        "lamb (LAMB, layer-wise adaptive steps for large "
        "batches).",
        choices=OPTIMIZERS,
    )
    grad_accum_steps: int = setting(
        1, "Micro-batches accumulated per optimizer step.", bounds="[1, inf)"
    )
    xla: bool = setting(
        False, "XLA auto-clustering (slower on CPU; try it on GPU/TPU).", decides=False
    )
    init_checkpoint: str | None = setting(
        None,
        "Start from these weights (bert-tf model dir, Hugging Face or Google BERT dir): "
        "continued pre-training or a second phase at a longer --max_seq_length. Used only "
        "when --model_dir has no checkpoint yet.",
        decides=False,
    )
    checkpoint_every_steps: int = with_default(RunConfig, "checkpoint_every_steps", 1000)
    keep_checkpoints: int = setting(3, "Newest checkpoints kept.", bounds="[1, inf)", decides=False)
    log_every_steps: int = with_default(RunConfig, "log_every_steps", 100)
    eval_every_steps: int = setting(
        0,
        "Steps between evaluations during training (0 = only at the end).",
        bounds="[0, inf)",
        decides=False,
    )
    eval_steps: int | None = setting(
        None, "Evaluation batches (default: all eval records).", bounds="[1, inf)", decides=False
    )
    dynamic_masking: bool | None = setting(
        None,
        "Draw new masks every batch (RoBERTa-style) instead of the records' stored "
        "masks; works on unmasked records. Default: the model dir's recorded value, else "
        "false.",
    )
    whole_word_masking: bool | None = setting(
        None,
        "With --dynamic_masking: mask whole words (a piece and its '##' continuations "
        "together), as the original's --do_whole_word_mask. Default: the model dir's "
        "recorded value, else false.",
    )
    seed: int = with_default(RunConfig, "seed", 12345)
    pack: bool = setting(
        False,
        "Pack several sequences into each row in tf.data (best-fit decreasing over "
        "buffers of 1024 sequences; attention stays inside each sequence), so no compute goes "
        "to padding. Batches then count rows. Records written with create_pretraining_data "
        "--pack are read packed without this flag.",
    )
    max_sequences_per_row: int = setting(
        3,
        "With --pack: at most this many sequences per row "
        "(one NSP prediction each; at most "
        "max_seq_length // 5).",
        bounds="[1, inf)",
    )
    max_predictions_per_row: int | None = setting(
        None,
        "With --pack: masked-LM slots per row. Default: max(P, min(S * P, ceil(0.15 * "
        "max_seq_length) + S)) for P = max_predictions_per_seq, S = max_sequences_per_row; "
        "allowed: P .. max(P, min(S * P, max_seq_length)).",
        bounds="[1, inf)",
    )
    skip_corrupt_records: bool = setting(
        False,
        "When a record file holds a corrupt or truncated record, keep its good records "
        "before it, skip the rest of that file (one log line each, listed in "
        "<model_dir>/skipped_records.json) and go on. Default: stop with one line naming the "
        "file, record and byte offset (the steps done are checkpointed first).",
        decides=False,
    )

    # Settings recorded in config.json "training" under an older name: {old: new}.
    RENAMED = {"config": "encoder_config"}

    @classmethod
    def from_record(cls, values, **changes):
        """As RunConfig.from_record; a record written before a setting was renamed (e.g.
        "config", now `encoder_config`) reads the same."""
        values = {
            cls.RENAMED.get(k, k): v
            for k, v in values.items()
            if not (k in cls.RENAMED and cls.RENAMED[k] in values)
        }
        return super().from_record(values, **changes)
