"""Fine-tune a BERT encoder on classification, tagging (NER) or extractive QA (SQuAD).

    python -m apps.finetune --task=classify --init_checkpoint=PATH \
        --train_file=train.tsv --eval_file=dev.tsv --model_dir=runs/sst2
    python -m apps.finetune --task=classify --train_file=tfds:glue/mrpc \
        --eval_file=tfds:glue/mrpc:validation --tfds_data_dir=~/tensorflow_datasets \
        --text_a_column=sentence1 --text_b_column=sentence2 --init_checkpoint=PATH ...
    python -m apps.finetune --task=tag --train_file=eng.train --eval_file=eng.testa ...
    python -m apps.finetune --task=squad --train_file=train-v2.0.json \
        --eval_file=dev-v2.0.json --max_seq_length=384 --doc_stride=128 ...

PATH is anything `bert_tf.load_encoder` accepts (a bert-tf model dir, a Hugging Face BERT dir,
a Google BERT dir). Evaluates after every epoch and keeps the best epoch (by accuracy, entity F1
or SQuAD F1) as DIR/model.weights.h5, with DIR/eval_results.json and DIR/predictions.*
(classify: predictions.jsonl; tag: predictions.txt in CoNLL format; squad: predictions.json in
the official format + predictions.jsonl with n-best). DIR is a complete model directory that
`python -m export.saved_model --model_dir=DIR` rebuilds from. Rerunning the same command after
an interruption resumes from DIR/checkpoints (and ends where an uninterrupted run would); rerun
after it finished, it says DIR is already complete and changes nothing. DIR records its settings
and a fingerprint of the input files: a run with other settings or data is refused in one line
(--overwrite_model_dir starts over). DIR/.lock keeps a second run off the same DIR.

Bad input policy: a label/tag in --eval_file that does not occur in --train_file fails naming
the file and line (--allow_unseen_labels: warn, count, and score those examples as wrong);
SQuAD answers whose answer_start does not match the context are moved to the nearest
occurrence of the text, or not trained on if absent, with a warning count
(--squad_offset_errors=fail: stop naming the question id). Inputs longer than
--max_seq_length (CoNLL sentences, single classify texts, SQuAD contexts) are read in
--doc_stride windows: tag words take the prediction of their max-context window, a classify
text the mean of its window logits (--long_inputs: how training treats them). Everything else
that cannot be right stops up front with one line naming the file, line and field: labels
mixing class ids and names, tags outside --tag_scheme, SQuAD v2.0 questions with
--noversion_2_with_negative, duplicate question ids, bytes that are not UTF-8, non-finite
regression labels, a directory as a data file, a plain file as --init_checkpoint, a
--max_seq_length above the encoder's max_position_embeddings, a non-finite --learning_rate.
A leading BOM and CRLF line ends are accepted in every format.
"""

import sys

from absl import app, flags

from bert_tf.tasks import TASK_NAMES

FLAGS = flags.FLAGS

flags.DEFINE_enum("task", None, list(TASK_NAMES),
                  "classify: sentence(-pair) classification or regression; tag: CoNLL token "
                  "tagging (NER); squad: extractive question answering (SQuAD v1.1/v2.0); "
                  "multiple_choice: pick one of C choices for a context (SWAG CSV or JSONL).")
flags.DEFINE_string("init_checkpoint", None, "Pre-trained encoder: a bert-tf model dir, a "
                    "Hugging Face BERT dir (config.json + model.safetensors + vocab.txt) or a "
                    "Google BERT dir (bert_config.json + bert_model.ckpt.* + vocab.txt). Its "
                    "vocab.txt and casing define the tokenization.")
flags.DEFINE_string("train_file", None, "Training data. classify: .tsv (GLUE style, header) "
                    "/ .csv (header) / .jsonl, or tfds:NAME[:SPLIT] (split default train); "
                    "tag: CoNLL column file (word first, tag last); squad: SQuAD JSON.")
flags.DEFINE_string("eval_file", None, "Evaluation data in the same format (a TFDS source "
                    "needs its split, e.g. tfds:glue/sst2:validation). Evaluated after every "
                    "epoch; without it the last epoch is kept.")
flags.DEFINE_string("model_dir", None, "Output model directory: config.json, vocab.txt, "
                    "model.weights.h5 (best epoch), checkpoints/ (resume), logs/ "
                    "(TensorBoard), eval_results.json, predictions.*.")
flags.DEFINE_integer("epochs", 3, "Training epochs.")
flags.DEFINE_integer("batch_size", 32, "Training examples (windows for squad, sentence "
                     "windows for tag) per optimizer step.")
flags.DEFINE_integer("eval_batch_size", None, "Evaluation batch size (default: 2 x "
                     "--batch_size).")
flags.DEFINE_float("learning_rate", 5e-5, "Peak learning rate (AdamW, linear warmup then "
                   "linear decay to 0).")
flags.DEFINE_integer("max_seq_length", 128, "Maximum tokens per example incl. [CLS]/[SEP]; "
                     "batches are padded only to their own longest example.")
flags.DEFINE_integer("seed", 42, "Random seed (initialization, dropout, shuffling).")
flags.DEFINE_float("warmup_proportion", 0.1, "Fraction of the training steps with linear "
                   "learning-rate warmup.")
flags.DEFINE_float("weight_decay", 0.01, "Decoupled weight decay (not applied to LayerNorm "
                   "and bias variables).")
flags.DEFINE_float("layer_decay", None, "Layer-wise learning-rate decay factor in (0, 1] "
                   "(e.g. 0.9): layer l of L gets lr * decay^(L + 1 - l). Default: off.")
flags.DEFINE_float("dropout", 0.1, "Dropout rate of the task head.")
flags.DEFINE_float("clip_norm", 1.0, "Global gradient-norm clipping (0 = off).")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker", "tpu"],
                  "Distribution strategy: default (one device), mirrored (local GPUs), "
                  "multi_worker (cluster from TF_CONFIG), tpu.")
flags.DEFINE_enum("precision", "auto", ["auto", "float32", "mixed_bfloat16",
                                           "mixed_float16"],
                  "Keras dtype policy; auto = mixed_bfloat16 where the hardware has native "
                  "bfloat16 (e.g. AVX512_BF16 CPUs), else float32.")
flags.DEFINE_integer("checkpoint_every_steps", None, "Checkpoint interval for resume "
                     "(default: every epoch).")
flags.DEFINE_integer("log_every_steps", 50, "Progress/TensorBoard interval in steps.")
flags.DEFINE_integer("max_train_examples", None, "Use at most this many training examples "
                     "(classify: a seeded random subsample; tag/squad: the first ones).")
flags.DEFINE_enum("long_inputs", "windows", ["windows", "truncate"], "tag and single-text "
                  "classify, training on inputs longer than --max_seq_length: windows (every "
                  "--doc_stride window is a training example; tag: each window labels the "
                  "words it holds) or truncate (only the first window, the original BERT). "
                  "Evaluation and the exported model always read every window (tag: each word "
                  "from its max-context window; classify: mean of the window logits).")
flags.DEFINE_bool("allow_unseen_labels", False, "Allow eval labels/tags absent from the "
                  "training data (warn, count, score as wrong) instead of failing.")
flags.DEFINE_list("label_names", None, "Explicit label (classify) or tag (tag) names and "
                  "order; default: those of --train_file (classify: sorted, numerically if "
                  "numbers; tag: O first).")
flags.DEFINE_bool("overwrite_model_dir", False, "Start over in a --model_dir that holds "
                  "another run (different settings or input data): removes its config.json, "
                  "weights, checkpoints, logs, eval results and predictions first. Without it "
                  "such a rerun is refused, and an identical rerun of a finished run does "
                  "nothing.")
# classify
flags.DEFINE_string("text_a_column", "sentence", "classify: column (TSV/CSV header, JSONL "
                    "key or TFDS feature) with the first text.")
flags.DEFINE_string("text_b_column", None, "classify: column with the second text of "
                    "sentence pairs (e.g. sentence2); default none.")
flags.DEFINE_string("label_column", "label", "classify: column with the label (class name "
                    "or id; a number for --regression).")
flags.DEFINE_bool("regression", False, "classify: predict a real number (STS-B style, MSE "
                  "loss, Pearson/Spearman) instead of a class.")
flags.DEFINE_string("tfds_data_dir", None, "classify: TFDS data dir holding prepared "
                    "datasets for tfds: sources (nothing is downloaded).")
# tag
flags.DEFINE_enum("tag_scheme", "iob", ["iob", "bioes"], "tag: the tag scheme of the CoNLL "
                  "files. iob: IOB1 or IOB2 (O, B-TYPE, I-TYPE), kept as written; bioes: "
                  "BIOES/IOBES (also S-TYPE, E-TYPE), converted to IOB2 (same chunks) for "
                  "training, metrics and predictions. A tag outside the scheme (bare PER, "
                  "lower-case o/b-per, S-/E- under iob) fails naming file and line.")
# squad (and the windows of tag / classify)
flags.DEFINE_integer("doc_stride", None, "Pieces between the starts of consecutive "
                     "windows of an input longer than --max_seq_length (squad: the context; "
                     "tag: a sentence; classify: a single text). Default: squad 128, tag and "
                     "classify half a window.")
flags.DEFINE_integer("max_query_length", 64, "squad: questions are truncated to this many "
                     "tokens.")
flags.DEFINE_integer("max_answer_length", 30, "squad: longest answer span in tokens.")
flags.DEFINE_integer("n_best_size", 20, "squad: start/end candidates per window and n-best "
                     "answers kept.")
flags.DEFINE_float("null_score_diff_threshold", 0.0, "squad v2.0: answer \"\" when "
                   "null score - best span score > this; eval_results.json reports the best "
                   "threshold found on the eval set (best_f1_thresh).")
flags.DEFINE_bool("version_2_with_negative", None, "squad: SQuAD v2.0 (unanswerable "
                  "questions); default: detected from --train_file.")
flags.DEFINE_enum("squad_offset_errors", "warn", ["warn", "fail"], "squad: answers whose "
                  "answer_start does not match the context: warn (move to the nearest "
                  "occurrence / skip, counted) or fail naming the question id.")


def config_from_flags():
    from bert_tf.finetuning import FinetuneConfig
    precision = FLAGS.precision
    if precision == "auto":
        from bert_tf.training import distribute
        precision = distribute.default_precision()
    return FinetuneConfig(
        task=FLAGS.task, init_checkpoint=FLAGS.init_checkpoint, train_file=FLAGS.train_file,
        eval_file=FLAGS.eval_file, model_dir=FLAGS.model_dir, epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size, eval_batch_size=FLAGS.eval_batch_size,
        learning_rate=FLAGS.learning_rate, max_seq_length=FLAGS.max_seq_length,
        seed=FLAGS.seed, warmup_proportion=FLAGS.warmup_proportion,
        weight_decay=FLAGS.weight_decay, layer_decay=FLAGS.layer_decay, dropout=FLAGS.dropout,
        clip_norm=FLAGS.clip_norm, strategy=FLAGS.strategy, precision=precision,
        checkpoint_every_steps=FLAGS.checkpoint_every_steps,
        log_every_steps=FLAGS.log_every_steps, max_train_examples=FLAGS.max_train_examples,
        allow_unseen_labels=FLAGS.allow_unseen_labels, long_inputs=FLAGS.long_inputs,
        label_names=FLAGS.label_names,
        tag_scheme=FLAGS.tag_scheme, text_a_column=FLAGS.text_a_column,
        text_b_column=FLAGS.text_b_column,
        label_column=FLAGS.label_column, regression=FLAGS.regression,
        tfds_data_dir=FLAGS.tfds_data_dir, doc_stride=FLAGS.doc_stride,
        max_query_length=FLAGS.max_query_length, max_answer_length=FLAGS.max_answer_length,
        n_best_size=FLAGS.n_best_size, null_score_diff_threshold=FLAGS.null_score_diff_threshold,
        version_2_with_negative=FLAGS.version_2_with_negative,
        squad_offset_errors=FLAGS.squad_offset_errors,
        overwrite_model_dir=FLAGS.overwrite_model_dir)


def main(argv):
    if len(argv) > 1:
        sys.exit(f"finetune: unexpected arguments {argv[1:]}")
    from bert_tf import finetuning
    from bert_tf.errors import BertTfError
    try:
        results = finetuning.run(config_from_flags())
    except BertTfError as e:
        sys.exit(f"finetune: {e}")
    except (ValueError, FileNotFoundError) as e:   # builtins still raised by a few helpers
        sys.exit(f"finetune: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    main_metric = results["main_metric"]
    print(f"finetune: best epoch {results['best_epoch']}: {main_metric}="
          f"{results.get(main_metric)} -> {FLAGS.model_dir}/eval_results.json")


if __name__ == "__main__":
    flags.mark_flags_as_required(["task", "init_checkpoint", "train_file", "model_dir"])
    app.run(main)
