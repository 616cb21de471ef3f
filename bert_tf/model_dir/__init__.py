"""The model directory: one format that every app reads and writes, and the only code that
opens a directory's config files (config.json, bert_config.json, tokenizer_config.json).

    DIR/config.json          {"format": "bert_tf", "format_version": 1,
                              "encoder": BertConfig dict,
                              "preprocessing": {"vocab_file": "vocab.txt", "lower_case": bool,
                                                "seq_length": int},
                              "task": {"type": "pretraining" or a task of bert_tf.tasks,
                                       ... task fields, e.g. "label_names": [...]},
                              "training": {... the run's settings, for the record}}
    DIR/vocab.txt            WordPiece vocab, one token per line
    DIR/model.weights.h5     weights of the whole task model (encoder + head), Keras format
    DIR/checkpoints/         tf.train checkpoints with optimizer state (resume)
    DIR/logs/                TensorBoard event files
    DIR/eval_results.json    the last evaluation
    DIR/.bert_tf_manifest.json   what bert-tf wrote here, name -> app (bert_tf/ownership.py):
                             nothing else is ever replaced or removed

`ModelDir(path)` also reads the two foreign kinds, Hugging Face and Google BERT directories
(`kind`, `encoder_config()`, `preprocessing()`, `lower_case`; their tensors are read by
bert_tf/checkpoints). Everything downstream (fine-tune, export, predict) rebuilds the model
from config.json, never from flags. Files are written atomically (bert_tf/atomic_io.py), so an
interrupted write never leaves a half-written config or weights file in place of a good one. A
write that fails (e.g. a full disk) raises `ModelDirWriteError`, one line naming the file,
saying the previous version is unchanged and naming the last good checkpoint in
DIR/checkpoints.

    directory.py   ModelDir
    layout.py      file names of the three kinds; detect_kind
    foreign.py     Hugging Face / Google configs and casing
    json_files.py  read_json with one-line errors
    errors.py      ModelDirError, ModelDirWriteError, CheckpointError
    task_model.py  the task model of config.json (built via the task registry), its weights
                   restored; a model written as a new model dir (imported on its own: it
                   needs the models)
"""

import os

from bert_tf.model_dir.directory import ModelDir, not_a_checkpoint
from bert_tf.model_dir.errors import (
    CheckpointError,
    ModelDirError,
    ModelDirFileNotFoundError,
    ModelDirWriteError,
)
from bert_tf.model_dir.foreign import encoder_values_from_json
from bert_tf.model_dir.json_files import read_json
from bert_tf.model_dir.layout import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    EVAL_RESULTS_FILE,
    FORMAT,
    FORMAT_VERSION,
    LOG_DIR,
    VOCAB_FILE,
    WEIGHTS_FILE,
    detect_kind,
    is_model_dir,
)

__all__ = [
    "ModelDir",
    "ModelDirError",
    "ModelDirFileNotFoundError",
    "ModelDirWriteError",
    "CheckpointError",
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "EVAL_RESULTS_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "LOG_DIR",
    "VOCAB_FILE",
    "WEIGHTS_FILE",
    "detect_kind",
    "is_model_dir",
    "not_a_checkpoint",
    "read_json",
    "encoder_values_from_json",
    "write_json",
]


def write_json(path, values):
    """Writes a JSON file of a model directory atomically, as `ModelDir.write_json` (a failure
    is a ModelDirWriteError naming the last good checkpoint)."""
    ModelDir(os.path.dirname(path) or ".").write_json(os.path.basename(path), values)
