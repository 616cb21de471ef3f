"""The task model of a bert-tf model directory: built from config.json, its weights restored,
and a model written as a new model directory (apps.convert's bert_tf output).

    model = build_task_model(path)     # config.json "task" type -> the registered task's
    restore_weights(model, path)       # model.weights.h5, else the latest checkpoint
    model = load(path)                 # both
    write_model_dir(output, model, vocab_file, lower_case, task={"type": ...})

The model is the one the registered task (bert_tf/tasks/registry.py) describes:
`get_task(type).model_from_info(encoder, task)` (pre-training: BertPretrainer). Weights:
model.weights.h5, else the latest tf.train checkpoint in checkpoints/ (written as
tf.train.Checkpoint(model=model, optimizer=..., step=...)). Loading any other kind of
directory (Hugging Face, Google) is bert_tf/checkpoints/'s.
"""

import logging
import os

import h5py
import tensorflow as tf

from bert_tf import model_dir as md
from bert_tf.config import BertConfig
from bert_tf.model_dir import CheckpointError
from bert_tf.models import BertEncoder
from bert_tf.tasks.registry import get_task

log = logging.getLogger(__name__)


def _read_config(path):
    try:
        return md.ModelDir(path).read_config()
    except (OSError, ValueError) as e:
        raise CheckpointError(str(e).splitlines()[0]) from None


def build_task_model(path, dtype=None):
    """The (untrained) task model described by `path`/config.json."""
    values = _read_config(path)
    config_path = os.path.join(path, md.CONFIG_FILE)
    try:
        encoder_config = BertConfig.from_dict(values["encoder"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{config_path}: encoder: {e}") from None
    task = values["task"]
    encoder = BertEncoder(encoder_config, dtype=dtype)
    try:
        return get_task(task["type"]).model_from_info(encoder, task)
    except ValueError as e:  # UnknownTaskError included
        raise CheckpointError(f"{config_path}: task: {e}") from None


def load(path, dtype=None):
    """The task model of the bert-tf model directory `path` with its weights."""
    model = build_task_model(path, dtype=dtype)
    restore_weights(model, path)
    return model


def restore_weights(model, path):
    """Loads model.weights.h5, or else the latest checkpoint in checkpoints/. Fails with one
    line if there is neither or they do not fit the model."""
    d = md.ModelDir(path)
    if os.path.isfile(d.weights_path):
        try:
            model.load_weights(d.weights_path)
        except Exception as e:  # Keras raises ValueError/KeyError/h5py errors with long texts
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise CheckpointError(
                f"{d.weights_path}: does not fit the model in {d.config_path}: {first}"
            ) from None
        _check_all_used(model, d)
        return d.weights_path
    latest = (
        tf.train.latest_checkpoint(d.checkpoint_dir) if os.path.isdir(d.checkpoint_dir) else None
    )
    if latest is None:
        raise CheckpointError(
            f"{path}: no {md.WEIGHTS_FILE} and no checkpoint in {md.CHECKPOINT_DIR}/"
        )
    try:
        status = tf.train.Checkpoint(model=model).restore(latest).expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(
            f"{latest}: does not fit the model in {d.config_path}: {first}"
        ) from None
    return latest


def _check_all_used(model, d):
    """Strict loading of model.weights.h5: Keras fills the model's variables and ignores
    tensors left over (e.g. a config.json with fewer layers than the weights): refuse that."""
    with h5py.File(d.weights_path, "r") as f:
        stored = []
        f.visititems(
            lambda name, obj: stored.append(name) if isinstance(obj, h5py.Dataset) else None
        )
    expected = len({id(v) for v in model.weights})
    if len(stored) != expected:
        raise CheckpointError(
            f"{d.weights_path}: holds {len(stored)} weight tensors but the model of "
            f"{d.config_path} has {expected} (e.g. a config with fewer layers than the "
            f"weights); loading is strict"
        )


def write_model_dir(
    output, model, vocab_file, lower_case, task=None, seq_length=128, training=None
):
    """Writes a bert-tf model directory holding `model` (a task model, usually a pretrainer)."""
    d = md.ModelDir(output)
    os.makedirs(output, exist_ok=True)
    if vocab_file:
        d.copy_vocab(vocab_file)
    d.save_weights(model)
    encoder = model.encoder if hasattr(model, "encoder") else model
    d.write_config(
        encoder.config,
        {
            "vocab_file": md.VOCAB_FILE,
            "lower_case": bool(lower_case),
            "seq_length": int(seq_length),
        },
        task or {"type": "pretraining"},
        training,
    )
    return output
