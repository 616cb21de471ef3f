"""BERT pre-training (masked LM + next sentence prediction) into a bert-tf model directory.

With no flags, runs the embedded default job: the King James Bible (public domain, fetched from
Debian) -> held-out books for evaluation -> an uncased WordPiece vocab -> pre-training records
-> a tiny BERT trained for a few minutes on CPU -> ./runs/pretrain_default with
eval_results.json (masked_lm_accuracy, next_sentence_accuracy). Rerunning it resumes.

    python -m apps.pretrain                                   # the default job
    python -m apps.pretrain --model_dir=runs/kjv --num_train_steps=3000   # default job, changed

Your own records (made by `python -m apps.create_pretraining_data`):

    python -m apps.pretrain --config=base --vocab_file=vocab.txt \
        --input_files='data/train-*.tfrecord' --eval_files='data/eval-*.tfrecord' \
        --model_dir=runs/base --global_batch_size=256 --num_train_steps=100000

Continued pre-training of published weights / a second phase at seq 512:

    python -m apps.pretrain --init_checkpoint=runs/base --max_seq_length=512 \
        --max_predictions_per_seq=80 --input_files='data512/*.tfrecord' \
        --eval_files=... --model_dir=runs/base_512

A rerun with the same --model_dir resumes from its latest checkpoint (and ends where an
uninterrupted run would); rerun after it finished, it says so and changes nothing. The model dir
records its settings and a fingerprint of the record files: other training data or settings are
refused in one line (--overwrite_model_dir starts over). A damaged record file stops the run
naming the file and offset (--skip_corrupt_records goes on without the rest of that file).
<model_dir>/.lock keeps a second run off the same directory.
"""

import sys

from absl import app, flags

FLAGS = flags.FLAGS

flags.DEFINE_string("config", None, "Encoder config: a preset (tiny, mini, small, medium, "
                    "base, large; vocab_size then follows the vocab) or a JSON file (BertConfig "
                    "fields, a Google bert_config.json, or a bert-tf config.json). Default: the "
                    "model dir's, else --init_checkpoint's, else required (the default job "
                    "uses a tiny config).")
flags.DEFINE_integer("num_layers", None, "Override the config's num_layers.")
flags.DEFINE_integer("hidden_size", None, "Override the config's hidden_size.")
flags.DEFINE_integer("num_heads", None, "Override the config's num_heads.")
flags.DEFINE_integer("intermediate_size", None, "Override the config's intermediate_size.")
flags.DEFINE_float("hidden_dropout", None, "Override the config's hidden_dropout.")
flags.DEFINE_float("attention_dropout", None, "Override the config's attention_dropout.")
flags.DEFINE_integer("max_position_embeddings", None, "Override the config's "
                     "max_position_embeddings.")
flags.DEFINE_string("vocab_file", None, "WordPiece vocab (one token per line, with [PAD] "
                    "[UNK] [CLS] [SEP] [MASK]). Default: the model dir's or --init_checkpoint's "
                    "vocab.txt.")
flags.DEFINE_bool("lower_case", None, "Whether the text was lower-cased (uncased vocab); "
                  "recorded in config.json for fine-tuning and export. Default: inferred from "
                  "the vocab.")
flags.DEFINE_string("input_files", None, "Comma-separated globs of pre-training TFRecords "
                    "(from apps.create_pretraining_data or google-research/bert). Without it "
                    "(and not --mode=eval) the embedded default job runs.")
flags.DEFINE_string("eval_files", None, "Comma-separated globs of held-out pre-training "
                    "TFRecords for evaluation (--mode=eval default: those the model dir's run "
                    "recorded).")
flags.DEFINE_string("model_dir", None, "Output model directory (config.json, vocab.txt, "
                    "model.weights.h5, checkpoints/, logs/, eval_results.json). Default job: "
                    "runs/pretrain_default.")
flags.DEFINE_enum("mode", "train_and_eval", ["train_and_eval", "train", "eval"],
                  "train_and_eval: train then evaluate; train: no evaluation; eval: evaluate "
                  "the existing --model_dir on --eval_files only.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker", "tpu"],
                  "Distribution strategy: default (one device), mirrored (local GPUs), "
                  "multi_worker (cluster from TF_CONFIG), tpu.")
flags.DEFINE_string("tpu", None, "TPU address or name for --strategy=tpu ('' = local).")
flags.DEFINE_integer("num_gpus", None, "GPUs for --strategy=mirrored (default: all "
                     "visible; 0 = CPU).")
flags.DEFINE_integer("global_batch_size", 32, "Examples per optimizer step over all replicas "
                     "(and all --grad_accum_steps micro-batches).")
flags.DEFINE_integer("max_seq_length", None, "Sequence length of the records. Default: the "
                     "model dir's recorded value, else 128.")
flags.DEFINE_integer("max_predictions_per_seq", None, "Masked-LM predictions per sequence "
                     "(as in the records, or drawn with --dynamic_masking). Default: the model "
                     "dir's recorded value, else 20.")
flags.DEFINE_integer("num_train_steps", 1000, "Total optimizer steps (a resumed run trains "
                     "up to this step).")
flags.DEFINE_integer("num_warmup_steps", 100, "Linear learning-rate warmup steps.")
flags.DEFINE_float("learning_rate", 1e-4, "Peak learning rate (linear decay to 0 at "
                   "--num_train_steps).")
flags.DEFINE_enum("optimizer", "adamw", ["adamw", "lamb"], "Optimizer.")
flags.DEFINE_float("weight_decay", 0.01, "Decoupled weight decay (not on LayerNorm/biases).")
flags.DEFINE_float("clip_norm", 1.0, "Global gradient-norm clipping (0 = off).")
flags.DEFINE_integer("grad_accum_steps", 1, "Micro-batches accumulated per optimizer step.")
flags.DEFINE_enum("precision", "auto", ["auto", "float32", "mixed_bfloat16", "mixed_float16"],
                  "Numeric policy; auto = mixed_bfloat16 on CPUs with AVX512_BF16/AMX and "
                  "Ampere+ GPUs, else float32.")
flags.DEFINE_bool("xla", False, "XLA auto-clustering (slower on CPU; try it on GPU/TPU).")
flags.DEFINE_string("init_checkpoint", None, "Start from these weights (bert-tf model dir, "
                    "Hugging Face or Google BERT dir): continued pre-training or a second "
                    "phase at a longer --max_seq_length. Used only when --model_dir has no "
                    "checkpoint yet.")
flags.DEFINE_integer("checkpoint_every_steps", 1000, "Steps between checkpoints (also at "
                     "the end).")
flags.DEFINE_integer("keep_checkpoints", 3, "Newest checkpoints kept.")
flags.DEFINE_integer("log_every_steps", 100, "Steps between progress lines / TensorBoard "
                     "points.")
flags.DEFINE_integer("eval_every_steps", 0, "Steps between evaluations during training "
                     "(0 = only at the end).")
flags.DEFINE_integer("eval_steps", None, "Evaluation batches (default: all eval records).")
flags.DEFINE_bool("dynamic_masking", None, "Draw new masks every batch (RoBERTa-style) "
                  "instead of the records' stored masks; works on unmasked records. Default: "
                  "the model dir's recorded value, else false.")
flags.DEFINE_bool("whole_word_masking", None, "With --dynamic_masking: mask whole words (a "
                  "piece and its '##' continuations together), as the original's "
                  "--do_whole_word_mask. Default: the model dir's recorded value, else false.")
flags.DEFINE_integer("seed", 12345, "Random seed (initialization, data order, masks).")
flags.DEFINE_bool("pack", False, "Pack several sequences into each row in tf.data "
                  "(best-fit decreasing over buffers of 1024 sequences; attention stays "
                  "inside each sequence), so no compute goes to padding. Batches then count "
                  "rows. Records written with create_pretraining_data --pack are read packed "
                  "without this flag.")
flags.DEFINE_integer("max_sequences_per_row", 3, "With --pack: at most this many sequences "
                     "per row (one NSP prediction each).")
flags.DEFINE_integer("max_predictions_per_row", None, "With --pack: masked-LM slots per row. "
                     "Default: max(P, min(S * P, ceil(0.15 * max_seq_length) + S)) for "
                     "P = max_predictions_per_seq, S = max_sequences_per_row.")
flags.DEFINE_bool("skip_corrupt_records", False, "When a record file holds a corrupt or "
                  "truncated record, keep its good records before it, skip the rest of that "
                  "file (one log line each, listed in <model_dir>/skipped_records.json) and "
                  "go on. Default: stop with one line naming the file, record and byte "
                  "offset (the steps done are checkpointed first).")
flags.DEFINE_bool("overwrite_model_dir", False, "Start over in a --model_dir that holds "
                  "another run (other training data or settings): removes its config.json, "
                  "weights, checkpoints, logs and eval results first. Without it such a "
                  "rerun is refused; a rerun with the same settings and data resumes, or "
                  "does nothing if the run is complete.")

_CONFIG_OVERRIDES = ("num_layers", "hidden_size", "num_heads", "intermediate_size",
                     "hidden_dropout", "attention_dropout", "max_position_embeddings")
_SETTINGS = ("vocab_file", "lower_case", "input_files", "eval_files", "model_dir", "mode",
             "strategy", "tpu", "num_gpus", "global_batch_size", "max_seq_length",
             "max_predictions_per_seq", "num_train_steps", "num_warmup_steps",
             "learning_rate", "optimizer", "weight_decay", "clip_norm", "grad_accum_steps",
             "precision", "xla", "init_checkpoint", "checkpoint_every_steps",
             "keep_checkpoints", "log_every_steps", "eval_every_steps", "eval_steps",
             "dynamic_masking", "whole_word_masking", "seed", "config", "pack",
             "max_sequences_per_row", "max_predictions_per_row", "skip_corrupt_records",
             "overwrite_model_dir")


def _progress(line):
    print(line, flush=True)


def settings_from_flags():
    """PretrainingSettings from the flags; with no --input_files, the default job with the
    flags the user set on top."""
    from bert_tf import pretraining_job as job
    overrides = {name: FLAGS[name].value for name in _CONFIG_OVERRIDES
                 if FLAGS[name].value is not None}
    given = {name: FLAGS[name].value for name in _SETTINGS}
    if FLAGS.input_files is None and FLAGS.mode != "eval":
        from demo_data import pretraining_default
        explicit = {name: value for name, value in given.items() if FLAGS[name].present}
        settings = pretraining_default.default_settings(
            explicit.pop("model_dir", None), progress=_progress)
        settings = job.dataclasses.replace(settings, **explicit)
        if overrides:
            settings.config_overrides = {**settings.config_overrides, **overrides}
        return settings
    if not FLAGS.model_dir:
        raise job.PretrainingJobError("--model_dir is required")
    return job.PretrainingSettings(config_overrides=overrides, **given)


def main(argv):
    if len(argv) > 1:
        sys.exit(f"pretrain: unexpected arguments {argv[1:]}")
    from bert_tf import pretraining_job as job
    from demo_data.assets import AssetError
    from bert_tf.data.packing import PackingError
    from bert_tf.data.pretraining_data import PretrainingDataError
    from bert_tf.errors import BertTfError
    from bert_tf.text.vocab import VocabError
    from bert_tf.training.trainer import NonFiniteLossError
    try:
        settings = settings_from_flags()
        job.run_pretraining(settings, progress=_progress)
    except (BertTfError, job.PretrainingJobError, PretrainingDataError, NonFiniteLossError,
            AssetError, VocabError, PackingError) as e:
        sys.exit(f"pretrain: {e}")


if __name__ == "__main__":
    app.run(main)
