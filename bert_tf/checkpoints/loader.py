"""load_encoder / load_pretrainer / load_task_model for every kind of BERT directory.

    bert-tf model dir   config.json ("format": "bert_tf") + model.weights.h5 (or checkpoints/)
    Hugging Face        config.json + model.safetensors (or pytorch_model.bin) + vocab.txt
    Google TF1          bert_config.json + bert_model.ckpt.{index,data-*} + vocab.txt

Loading from HF / Google is strict both ways: every variable gets its tensor(s) with the right
shape, and every tensor of the checkpoint is used (except non-weights: position_ids buffers,
optimizer slots, global_step; and, for load_encoder, the MLM/NSP heads of a complete
pre-training checkpoint), or the load fails with one line naming the first mismatch or the
unused tensors (e.g. a config with fewer layers than the weights).
"""

import logging
import os
import re
import time
from collections.abc import Collection, Iterable

import keras

from bert_tf.checkpoints import mapping
from bert_tf.checkpoints import names as tensor_names
from bert_tf.checkpoints.sources import CheckpointError, TensorSource, detect_kind, read_source
from bert_tf.model_dir import task_model
from bert_tf.models import BertEncoder, BertPretrainer
from bert_tf.models.head_model import EncoderHeadModel
from bert_tf.tensor_types import DTypePolicy

log = logging.getLogger(__name__)


def assign_from_source(
    model: keras.Model, source: TensorSource, groups: Collection[str] = (tensor_names.ENCODER,)
) -> set[str]:
    """Sets the variables of `model` (encoder or pretrainer) that belong to `groups` from
    `source`. All tensors are checked before anything is assigned."""
    specs = [s for s in mapping.model_specs(model) if s.group in groups]
    values = []
    for spec in specs:
        arrays = []
        for name, shape in zip(spec.sources, spec.source_shapes):
            if name not in source.tensors:
                raise CheckpointError(
                    f"{source.path}: no tensor '{source._expected_source_name(name)}' for "
                    f"variable '{spec.variable.path}'"
                )
            got = tuple(source.tensors[name].shape)
            if got != tuple(shape):
                raise CheckpointError(
                    f"{source.path}: tensor '{source.source_name(name)}' for variable "
                    f"'{spec.variable.path}': expected shape "
                    f"{list(source.source_shape(name, shape))}, got "
                    f"{list(source.source_shape(name, got))}"
                )
            arrays.append(source.tensors[name])
        values.append(spec.join(arrays))
    for spec, value in zip(specs, values):
        spec.variable.assign(keras.ops.cast(value, spec.variable.dtype))
    used = {name for s in specs for name in s.sources}
    return used


def _layers_hint(source: TensorSource, unused: Iterable[str]) -> str:
    """' (the checkpoint has 6 layers, the config num_hidden_layers=1)' when unused tensors
    belong to layers beyond the config's, else ''."""
    layers = [int(m.group(1)) for n in unused for m in [re.search(r"layer[._](\d+)[./]", n)] if m]
    if layers and max(layers) >= source.config.num_layers:
        return (
            f" (the checkpoint has {max(layers) + 1} layers, its config "
            f"num_hidden_layers={source.config.num_layers})"
        )
    return ""


def check_all_used(
    source: TensorSource, used: Collection[str], skip: Collection[str] = (), heads: bool = True
) -> None:
    """Strict loading: every tensor of `source` is used, except non-weights (position_ids
    buffers, optimizer slots: dropped by the readers) and `skip`. Else one-line error.
    `heads=False`: head tensors that fit nothing (an untied decoder) do not matter."""
    unused = [source.source_name(n) for n in source.tensors if n not in used and n not in skip]
    unused += source.extras + (source.head_extras if heads else [])
    if unused:
        listed = ", ".join(unused[:4]) + (" ..." if len(unused) > 4 else "")
        raise CheckpointError(
            f"{source.path}: {len(unused)} tensor(s) not used by the model"
            f"{_layers_hint(source, unused)}: {listed} (loading is strict: a checkpoint must "
            f"fit its config exactly)"
        )


def _head_names() -> set[str]:
    return {n.google for n in tensor_names.mlm_names() + tensor_names.nsp_names()}


def load_encoder(path: str | os.PathLike[str], dtype: DTypePolicy = None) -> BertEncoder:
    """A `BertEncoder` with the weights of `path` (bert-tf model dir, HF or Google dir).

    `dtype`: a Keras dtype policy name for the encoder, e.g. "mixed_bfloat16"."""
    start = time.time()
    kind = _kind_or_fail(path)
    if kind == "bert_tf":
        encoder = load_task_model(path, dtype=dtype).encoder
    else:
        source = read_source(path)
        encoder = BertEncoder(source.config, dtype=dtype)
        used = assign_from_source(encoder, source)
        # A complete pre-training checkpoint's MLM/NSP heads are known BERT weights that an
        # encoder has no place for (load_pretrainer uses them): skipped, not an error.
        check_all_used(source, used, skip=_head_names(), heads=False)
    log.info("loaded encoder from %s (%s) in %.1f s", path, kind, time.time() - start)
    return encoder


def load_pretrainer(path: str | os.PathLike[str], dtype: DTypePolicy = None) -> BertPretrainer:
    """A `BertPretrainer` with encoder weights and, where the source has them, the MLM and NSP
    head weights (heads the source lacks keep their fresh initialization, with a warning)."""
    kind = _kind_or_fail(path)
    if kind == "bert_tf":
        model = load_task_model(path, dtype=dtype)
        if isinstance(model, BertPretrainer):
            return model
        log.warning(
            "%s: task model is %s; its encoder gets fresh MLM/NSP heads", path, type(model).__name__
        )
        return BertPretrainer(model.encoder)
    source = read_source(path)
    model = BertPretrainer(BertEncoder(source.config, dtype=dtype))
    groups = [tensor_names.ENCODER]
    for group, what in ((tensor_names.MLM, "masked-LM"), (tensor_names.NSP, "next-sentence")):
        if source.has_group(group):
            groups.append(group)
        else:
            log.warning("%s: no %s head weights; that head is freshly initialized", path, what)
    used = assign_from_source(model, source, groups)
    check_all_used(source, used)
    return model


def load_task_model(path: str | os.PathLike[str], dtype: DTypePolicy = None) -> EncoderHeadModel:
    """The full task model of a bert-tf model directory, built from its config.json, with
    weights from model.weights.h5 (or else the latest checkpoint in checkpoints/)."""
    kind = _kind_or_fail(path)
    if kind != "bert_tf":
        raise CheckpointError(
            f"{path}: load_task_model needs a bert-tf model directory "
            f"(this is a {kind} checkpoint; use load_encoder/load_pretrainer)"
        )
    return task_model.load(path, dtype=dtype)


def _kind_or_fail(path: str | os.PathLike[str]) -> str:
    path = os.fspath(path)
    if not os.path.exists(path) and not os.path.exists(path + ".index"):
        raise CheckpointError(f"{path}: no such file or directory")
    kind = detect_kind(path)
    if kind is None:
        read_source(path)  # raises the descriptive error
    return kind
