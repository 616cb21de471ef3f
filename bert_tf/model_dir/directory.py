"""`ModelDir`: reads and writes one model directory, and reads the two foreign kinds."""

import os
import shutil

from bert_tf.atomic_io import AtomicWriteError, atomic_write_json, failure_reason
from bert_tf.config import BertConfig
from bert_tf.model_dir import foreign, layout
from bert_tf.model_dir.errors import (
    CheckpointError,
    ModelDirError,
    ModelDirFileNotFoundError,
    ModelDirWriteError,
)
from bert_tf.model_dir.json_files import read_json
from bert_tf.tasks import task_names
from bert_tf.training import checkpoint_state


class ModelDir:
    """One directory: a bert-tf model directory (read and written), or a Hugging Face or
    Google BERT directory (read: `kind`, `encoder_config()`, `vocab_file()`, `lower_case`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def __repr__(self):
        return f"ModelDir({self.path!r})"

    # ---- paths ----------------------------------------------------------------------
    def file(self, name):
        return os.path.join(self.path, name)

    @property
    def kind(self):
        """ "bert_tf", "hf", "google", or None (see layout.py)."""
        return layout.detect_kind(self.path)

    @property
    def config_path(self):
        return self.file(layout.CONFIG_FILE)

    @property
    def vocab_path(self):
        """Where the vocab.txt of this directory is (or goes)."""
        return os.path.join(layout.directory_of(self.path), layout.VOCAB_FILE)

    @property
    def weights_path(self):
        return self.file(layout.WEIGHTS_FILE)

    @property
    def checkpoint_dir(self):
        return self.file(layout.CHECKPOINT_DIR)

    @property
    def log_dir(self):
        return self.file(layout.LOG_DIR)

    @property
    def eval_results_path(self):
        return self.file(layout.EVAL_RESULTS_FILE)

    def exists(self):
        """True if this is a bert-tf model directory."""
        return layout.is_model_dir(self.path)

    # ---- config ---------------------------------------------------------------------
    def read_config(self):
        """The bert-tf config.json, checked: format, encoder/preprocessing/task, task.type."""
        values = read_json(self.config_path)
        if not isinstance(values, dict) or values.get("format") != layout.FORMAT:
            raise ModelDirError(
                f"{self.config_path}: not a bert-tf model directory config "
                f'(expected "format": "{layout.FORMAT}")'
            )
        for key in ("encoder", "preprocessing", "task"):
            if key not in values:
                raise ModelDirError(f"{self.config_path}: missing field {key!r}")
        task_type = values["task"].get("type")
        if task_type not in task_names(include_pretraining=True):
            raise ModelDirError(
                f"{self.config_path}: task.type: expected one of "
                f"{task_names(include_pretraining=True)}, got {task_type!r}"
            )
        return values

    def read_config_if_any(self):
        """config.json's values as they are (unchecked), or None without a config.json."""
        if not os.path.isfile(self.config_path):
            return None
        values = read_json(self.config_path)
        if not isinstance(values, dict):
            raise ModelDirError(f"{self.config_path}: expected a JSON object")
        return values

    def training_record(self):
        """config.json "training" (the settings of the run that made it), or None when
        there is no config.json."""
        values = self.read_config_if_any()
        return None if values is None else (values.get("training") or {})

    def task(self):
        return self.read_config()["task"]

    def encoder_config(self):
        """The encoder `BertConfig` of any kind of directory, without reading tensors."""
        kind = self.kind
        if kind == "bert_tf":
            try:
                return BertConfig.from_dict(self.read_config()["encoder"])
            except (KeyError, TypeError, ValueError) as e:
                raise CheckpointError(f"{self.config_path}: bad encoder config ({e})") from None
        if kind == "hf":
            return foreign.hf_encoder_config(self.path)
        if kind == "google":
            return foreign.google_encoder_config(self.path)
        raise not_a_checkpoint(self.path)

    def write_config(self, encoder_config, preprocessing, task, training=None):
        """Writes config.json. `preprocessing`: vocab_file, lower_case, seq_length."""
        if isinstance(encoder_config, BertConfig):
            encoder_config = encoder_config.to_dict()
        if task.get("type") not in task_names(include_pretraining=True):
            known = task_names(include_pretraining=True)
            raise ModelDirError(f"task.type: expected one of {known}, got {task.get('type')!r}")
        values = {
            "format": layout.FORMAT,
            "format_version": layout.FORMAT_VERSION,
            "encoder": encoder_config,
            "preprocessing": dict(preprocessing),
            "task": dict(task),
            "training": dict(training or {}),
        }
        self.write_json(layout.CONFIG_FILE, values)
        return values

    # ---- vocab and casing -----------------------------------------------------------
    def preprocessing(self):
        """(vocab_file, lower_case or None, seq_length or None) of any kind of directory:
        a bert-tf dir's recorded preprocessing; a Hugging Face / Google dir's vocab.txt and
        declared casing (tokenizer_config.json, a Google directory's name)."""
        if self.exists():
            pre = self.read_config().get("preprocessing", {})
            vocab_file = self.file(pre.get("vocab_file") or layout.VOCAB_FILE)
            if not os.path.isfile(vocab_file):
                raise ModelDirFileNotFoundError(
                    f"{self.config_path}: preprocessing.vocab_file {vocab_file} does not exist"
                )
            return vocab_file, pre.get("lower_case"), pre.get("seq_length")
        if not os.path.isdir(self.path):
            raise ModelDirFileNotFoundError(f"{self.path}: no such directory")
        if not os.path.isfile(self.vocab_path):
            raise ModelDirFileNotFoundError(
                f"{self.path}: no vocab.txt (expected a bert-tf model dir, a Hugging Face BERT "
                "dir or a Google BERT dir)"
            )
        return self.vocab_path, foreign.declared_lower_case(self.path), None

    def vocab_file(self):
        """The vocab file to read (recorded in a bert-tf dir's config; else vocab.txt)."""
        return self.preprocessing()[0]

    @property
    def lower_case(self):
        """Casing: recorded (bert-tf), declared (tokenizer_config.json, Google dir name),
        else inferred from the vocab; None without a vocab."""
        if self.exists():
            return self.read_config().get("preprocessing", {}).get("lower_case")
        directory = layout.directory_of(self.path)
        declared = foreign.declared_lower_case(directory) if os.path.isdir(directory) else None
        return declared if declared is not None else foreign.vocab_looks_uncased(self.vocab_path)

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
                raise self._write_failed(self.vocab_path, e) from None
        return self.vocab_path

    # ---- weights --------------------------------------------------------------------
    def save_weights(self, model):
        """Saves the task model's weights atomically to model.weights.h5."""
        os.makedirs(self.path, exist_ok=True)
        tmp = os.path.join(self.path, ".tmp." + layout.WEIGHTS_FILE)
        try:
            model.save_weights(tmp)
            os.replace(tmp, self.weights_path)
        except (OSError, RuntimeError) as e:  # h5py reports a failed write as either
            if os.path.exists(tmp):
                os.remove(tmp)
            raise self._write_failed(self.weights_path, e) from None

    # ---- results and other JSON files -----------------------------------------------
    def read_json(self, name):
        """A JSON file of the directory (e.g. "finetune_state.json")."""
        return read_json(self.file(name))

    def write_json(self, name, values):
        """Writes a JSON file of the directory atomically; a failure is one line naming the
        file and the last good checkpoint (ModelDirWriteError)."""
        try:
            atomic_write_json(self.file(name), values)
        except AtomicWriteError as e:
            raise self._write_failed(self.file(name), e.reason) from None

    def has_eval_results(self):
        return os.path.isfile(self.eval_results_path)

    def read_eval_results(self):
        return read_json(self.eval_results_path)

    def write_eval_results(self, results):
        self.write_json(layout.EVAL_RESULTS_FILE, results)

    def _write_failed(self, path, error):
        """ModelDirWriteError for a failed write of `path` (one line; `error`: the exception
        or the reason), naming the last good checkpoint when the directory has checkpoints."""
        reason = error if isinstance(error, str) else failure_reason(error)
        text = f"cannot write {path}: {reason}; its previous version, if any, is unchanged"
        if os.path.isdir(self.checkpoint_dir):
            text += f"; {checkpoint_state.describe_last_good(self.checkpoint_dir)}"
        return ModelDirWriteError(text)


def not_a_checkpoint(path):
    """The one-line error for a path that is no checkpoint of any kind."""
    if not os.path.exists(path):
        return CheckpointError(f"{path}: no such file or directory (expected {layout.EXPECTED})")
    if not os.path.isdir(path):
        return CheckpointError(
            f"{path}: is a file, not a checkpoint directory (expected {layout.EXPECTED})"
        )
    return CheckpointError(f"{path}: not a BERT checkpoint directory (expected {layout.EXPECTED})")
