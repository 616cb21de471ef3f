"""The bert-tf model directory: one format that every app reads and writes.

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

Everything downstream (fine-tune, export, predict) rebuilds the model from config.json, never
from flags. Files are written atomically (temp file + rename), so an interrupted write never
leaves a half-written config or weights file in place of a good one. A write that fails (e.g.
a full disk) raises `ModelDirWriteError`, one line naming the file, saying the previous version
is unchanged and naming the last good checkpoint in DIR/checkpoints.
"""

import json
import os
import shutil
import tempfile

from bert_tf.config import BertConfig
from bert_tf.errors import BertTfError
from bert_tf.training import checkpoint_state
from bert_tf.tasks import TASK_NAMES

FORMAT = "bert_tf"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.txt"
WEIGHTS_FILE = "model.weights.h5"
CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"
EVAL_RESULTS_FILE = "eval_results.json"
TASK_TYPES = ("pretraining",) + TASK_NAMES


class ModelDirWriteError(BertTfError, OSError):
    """A model directory file could not be written (e.g. the disk is full); the previous
    version of the file, if any, is unchanged."""


def _write_failed(path, error, checkpoint_dir=None):
    """ModelDirWriteError for a failed write of `path` (one line)."""
    reason = ("no space left on device" if checkpoint_state.is_disk_full(error)
              else (getattr(error, "strerror", None) or str(error)).splitlines()[0][:200])
    text = f"cannot write {path}: {reason}; its previous version, if any, is unchanged"
    if checkpoint_dir is not None:
        text += f"; {checkpoint_state.describe_last_good(checkpoint_dir)}"
    return ModelDirWriteError(text)


def is_model_dir(path):
    """True if `path` holds a bert-tf config.json."""
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(config_path):
        return False
    try:
        with open(config_path) as f:
            return json.load(f).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def atomic_write_text(path, text):
    """Writes `text` to `path` via a temp file in the same directory and an atomic rename."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; model files must be readable by servers
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and not isinstance(e, BertTfError):
            checkpoints = os.path.join(directory, CHECKPOINT_DIR)
            raise _write_failed(path, e, checkpoints if os.path.isdir(checkpoints)
                                else None) from None
        raise


def write_json(path, values):
    atomic_write_text(path, json.dumps(values, indent=2, sort_keys=True) + "\n")


def read_json(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: invalid JSON ({e})") from None


class ModelDir:
    """Reads and writes one model directory."""

    def __init__(self, path):
        self.path = path

    # ---- paths ----------------------------------------------------------------------
    def file(self, name):
        return os.path.join(self.path, name)

    @property
    def config_path(self):
        return self.file(CONFIG_FILE)

    @property
    def vocab_path(self):
        return self.file(VOCAB_FILE)

    @property
    def weights_path(self):
        return self.file(WEIGHTS_FILE)

    @property
    def checkpoint_dir(self):
        return self.file(CHECKPOINT_DIR)

    @property
    def log_dir(self):
        return self.file(LOG_DIR)

    @property
    def eval_results_path(self):
        return self.file(EVAL_RESULTS_FILE)

    def exists(self):
        return is_model_dir(self.path)

    # ---- config ---------------------------------------------------------------------
    def read_config(self):
        values = read_json(self.config_path)
        if values.get("format") != FORMAT:
            raise ValueError(f"{self.config_path}: not a bert-tf model directory config "
                             f"(expected \"format\": \"{FORMAT}\")")
        for key in ("encoder", "preprocessing", "task"):
            if key not in values:
                raise ValueError(f"{self.config_path}: missing field {key!r}")
        task_type = values["task"].get("type")
        if task_type not in TASK_TYPES:
            raise ValueError(f"{self.config_path}: task.type: expected one of {TASK_TYPES}, "
                             f"got {task_type!r}")
        return values

    def encoder_config(self):
        return BertConfig.from_dict(self.read_config()["encoder"])

    def write_config(self, encoder_config, preprocessing, task, training=None):
        """Writes config.json. `preprocessing`: vocab_file, lower_case, seq_length."""
        if isinstance(encoder_config, BertConfig):
            encoder_config = encoder_config.to_dict()
        if task.get("type") not in TASK_TYPES:
            raise ValueError(f"task.type: expected one of {TASK_TYPES}, got {task.get('type')!r}")
        values = {"format": FORMAT, "format_version": FORMAT_VERSION,
                  "encoder": encoder_config, "preprocessing": dict(preprocessing),
                  "task": dict(task), "training": dict(training or {})}
        write_json(self.config_path, values)
        return values

    def copy_vocab(self, vocab_file):
        """Copies a vocab file into the directory as vocab.txt (no-op if it is already there)."""
        os.makedirs(self.path, exist_ok=True)
        if os.path.abspath(vocab_file) != os.path.abspath(self.vocab_path):
            tmp = self.vocab_path + ".tmp"
            try:
                shutil.copyfile(vocab_file, tmp)
                os.replace(tmp, self.vocab_path)
            except OSError as e:
                if os.path.exists(tmp):
                    os.remove(tmp)
                if not os.path.exists(vocab_file):
                    raise
                raise _write_failed(self.vocab_path, e, self.checkpoint_dir) from None
        return self.vocab_path

    # ---- weights --------------------------------------------------------------------
    def save_weights(self, model):
        """Saves the task model's weights atomically to model.weights.h5."""
        os.makedirs(self.path, exist_ok=True)
        tmp = os.path.join(self.path, ".tmp." + WEIGHTS_FILE)
        try:
            model.save_weights(tmp)
            os.replace(tmp, self.weights_path)
        except (OSError, RuntimeError) as e:   # h5py reports a failed write as either
            if os.path.exists(tmp):
                os.remove(tmp)
            raise _write_failed(self.weights_path, e, self.checkpoint_dir) from None

    def write_eval_results(self, results):
        write_json(self.eval_results_path, results)
