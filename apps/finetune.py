r"""Fine-tune a BERT encoder on classification, tagging (NER) or extractive QA (SQuAD).

    python -m apps.finetune --task=classify --init_checkpoint=PATH \
        --train_file=train.tsv --eval_file=dev.tsv --model_dir=runs/sst2
    python -m apps.finetune --task=classify --train_file=tfds:glue/mrpc \
        --eval_file=tfds:glue/mrpc:validation --tfds_data_dir=~/tensorflow_datasets \
        --text_a_column=sentence1 --text_b_column=sentence2 --init_checkpoint=PATH ...
    python -m apps.finetune --task=tag --train_file=eng.train --eval_file=eng.testa ...
    python -m apps.finetune --task=squad --train_file=train-v2.0.json \
        --eval_file=dev-v2.0.json --max_seq_length=384 --doc_stride=128 ...

Each task's own settings are the flags whose help starts with its name ("squad: ..."); setting
one of another task is refused in one line ("--n_best_size is a squad setting; --task=classify").
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
DIR/.bert_tf_manifest.json records what bert-tf wrote there: a file it did not write is never
replaced or removed (the run is refused in one line naming it), and DIR must not be, hold or
lie inside --init_checkpoint.

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

from apps import (
    compile_cache,  # noqa: F401  (first: the XLA cache is set before TF loads)
    config_flags,
    process_exit,
)
from bert_tf.errors import BertTfError
from bert_tf.recipes import finetuning
from bert_tf.recipes.finetune_config import FinetuneConfig

FLAGS = flags.FLAGS
REQUIRED = ("task", "init_checkpoint", "train_file", "model_dir")

config_flags.define_flags(FinetuneConfig)


def main(argv):
    if len(argv) > 1:
        sys.exit(f"finetune: unexpected arguments {argv[1:]}")
    try:
        results = finetuning.finetune(config_flags.config_from_flags(FinetuneConfig))
    except BertTfError as e:
        sys.exit(f"finetune: {e}")
    main_metric = results["main_metric"]
    print(
        f"finetune: best epoch {results['best_epoch']}: {main_metric}="
        f"{results.get(main_metric)} -> {FLAGS.model_dir}/eval_results.json"
    )


if __name__ == "__main__":
    flags.mark_flags_as_required(list(REQUIRED))
    app.run(process_exit.skip_final_collection(main))
