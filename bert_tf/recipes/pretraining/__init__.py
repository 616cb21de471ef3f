"""The BERT pre-training recipe: records in, a complete model directory out.

    config = PretrainConfig(model_dir="runs/x", input_files="data/train-*.tfrecord",
                            eval_files="data/eval-*.tfrecord", vocab_file="vocab.txt",
                            encoder_config="tiny", num_train_steps=1000)  # pretrain_config.py
    results = pretrain(config)        # = bert_tf.pretrain(config): eval results ({} for train)

    __init__.py    pretrain(config)
    recipe.py      PretrainingRecipe      evaluation.py  PretrainingEvaluation (--mode=eval)
    plan.py        the run's inputs, checked before anything is written
    records.py     damaged record files

`PretrainingRecipe` is one use of the recipe skeleton (bert_tf/recipes/recipe.py) over the
pre-training task (bert_tf/tasks/pretraining/: BertPretrainer, masked-LM + next-sentence):
  plan      check everything that can be checked cheaply BEFORE anything is written
            (plan.py: vocab, encoder config, record files, batch
            vs replicas, an existing model dir's recorded config and vocab, the
            --init_checkpoint's shapes, the optimizer settings);
  guard     reruns: config.json "training" records the settings and the fingerprints of
            --input_files and --eval_files. A rerun with the same settings and training data
            resumes (or, when the run finished and the eval files are the same, says it is
            complete and changes nothing); other training data or settings that decide the
            result are refused in one line (--overwrite_model_dir starts over).
            --num_train_steps may grow (continue a finished run) and the eval files may
            change (evaluated anew);
  build     the model and the Trainer, which restores <model_dir>/checkpoints (else starts
            from --init_checkpoint's weights); then config.json (encoder, preprocessing
            {vocab_file, lower_case, seq_length}, task {type: pretraining}, training) and
            vocab.txt: a checkpoint that does not fit leaves the directory untouched;
  train     TensorBoard in <model_dir>/logs; damaged record files are handled by
            records.py; the final weights -> model.weights.h5;
  evaluate  on the held-out records; record: eval_results.json (masked_lm_accuracy,
            next_sentence_accuracy, losses, step).
--mode=eval (`PretrainingEvaluation`) only evaluates the model dir's weights (eval files and
lengths as recorded).

Every problem with the inputs raises `PretrainingJobError` with a one-line message. What
the run may replace or remove is checked first (bert_tf/ownership.py): --overwrite_model_dir
removes the previous run's files only after every check passed, and only those
<model_dir>/.bert_tf_manifest.json lists. The run holds <model_dir>/.lock.
"""

from collections.abc import Callable
from typing import Any

from bert_tf.recipes.field_checks import require_instance
from bert_tf.recipes.pretrain_config import PretrainConfig, PretrainingJobError
from bert_tf.recipes.pretraining.evaluation import PretrainingEvaluation
from bert_tf.recipes.pretraining.recipe import WRITES, PretrainingRecipe

__all__ = [
    "pretrain",
    "PretrainConfig",
    "PretrainingJobError",
    "PretrainingRecipe",
    "PretrainingEvaluation",
    "WRITES",
]


def pretrain(config: PretrainConfig, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Runs one pre-training job (see the module doc). Returns the eval results dict
    ({} for mode=train). Raises PretrainingJobError on bad input, before writing anything."""
    require_instance(config, PretrainConfig, "bert_tf.pretrain")  # its fields were checked
    recipe = PretrainingEvaluation if config.mode == "eval" else PretrainingRecipe
    return recipe(config, progress).run()
