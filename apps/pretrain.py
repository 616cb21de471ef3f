r"""BERT pre-training (masked LM + next sentence prediction) into a bert-tf model directory.

With no flags, runs the embedded default job: the King James Bible (public domain, shipped in
the repository) -> held-out books for evaluation -> an uncased WordPiece vocab -> pre-training
records -> a tiny BERT trained for a few minutes on CPU -> ./runs/pretrain_default with
eval_results.json (masked_lm_accuracy, next_sentence_accuracy). Rerunning it resumes.

    python -m apps.pretrain                                   # the default job
    python -m apps.pretrain --model_dir=runs/kjv --num_train_steps=400    # its final phase longer

The default job trains in two phases (demo_data/pretraining_default.py): most steps at seq 64
into <model_dir>/phase1_seq64, then the final phase at seq 128 into <model_dir>, starting from
those weights. Flags change the final phase; --config and the encoder flags (--num_layers,
...) change both.

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
<model_dir>/.lock keeps a second run off the same directory. <model_dir>/.bert_tf_manifest.json
records what bert-tf wrote there: a file it did not write is never replaced or removed
(--overwrite_model_dir included; the run is refused in one line naming it).
"""

import sys

from absl import app, flags

from apps import (
    compile_cache,  # noqa: F401  (first: the XLA cache is set before TF loads)
    config_flags,
    process_exit,
)
from bert_tf.errors import BertTfError
from bert_tf.recipes.pretrain_config import PretrainConfig, PretrainingJobError
from bert_tf.recipes.pretraining import pretrain
from demo_data import pretraining_default

FLAGS = flags.FLAGS

config_flags.define_flags(PretrainConfig)
# Not settings of their own: these fill PretrainConfig.config_overrides.
flags.DEFINE_integer("num_layers", None, "Override the config's num_layers.")
flags.DEFINE_integer("hidden_size", None, "Override the config's hidden_size.")
flags.DEFINE_integer("num_heads", None, "Override the config's num_heads.")
flags.DEFINE_integer("intermediate_size", None, "Override the config's intermediate_size.")
flags.DEFINE_float("hidden_dropout", None, "Override the config's hidden_dropout.")
flags.DEFINE_float("attention_dropout", None, "Override the config's attention_dropout.")
flags.DEFINE_integer(
    "max_position_embeddings", None, "Override the config's max_position_embeddings."
)
_CONFIG_OVERRIDES = (
    "num_layers",
    "hidden_size",
    "num_heads",
    "intermediate_size",
    "hidden_dropout",
    "attention_dropout",
    "max_position_embeddings",
)


def _progress(line):
    print(line, flush=True)


def settings_from_flags():
    """[PretrainConfig] to run in order, from the flags: with no --input_files, the default
    job's phases, the flags the user set applying to the final phase (the encoder's --config
    and override flags to every phase); else one run."""
    overrides = {
        name: FLAGS[name].value for name in _CONFIG_OVERRIDES if FLAGS[name].value is not None
    }
    if FLAGS.input_files is None and FLAGS.mode != "eval":
        explicit = config_flags.flag_values_of(PretrainConfig, only_present=True)
        phases = pretraining_default.default_phases(
            explicit.pop("model_dir", None), progress=_progress
        )
        return pretraining_default.with_user_settings(phases, explicit, overrides)
    if not FLAGS.model_dir:
        raise PretrainingJobError("--model_dir is required")
    return [config_flags.config_from_flags(PretrainConfig, config_overrides=overrides)]


def main(argv):
    if len(argv) > 1:
        sys.exit(f"pretrain: unexpected arguments {argv[1:]}")
    try:
        for settings in settings_from_flags():
            pretrain(settings, progress=_progress)
    except BertTfError as e:
        sys.exit(f"pretrain: {e}")


if __name__ == "__main__":
    app.run(process_exit.skip_final_collection(main))
