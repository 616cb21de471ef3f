"""load_encoder / load_pretrainer / load_task_model for every kind of BERT directory.

    bert-tf model dir   config.json ("format": "bert_tf") + model.weights.h5 (or checkpoints/)
    Hugging Face        config.json + model.safetensors (or pytorch_model.bin) + vocab.txt
    Google TF1          bert_config.json + bert_model.ckpt.{index,data-*} + vocab.txt

Loading from HF / Google is strict: every variable gets its tensor(s) with the right shape or
the load fails, before any variable is touched, with one line naming the first mismatch.
"""

import logging
import os
import time

from bert_tf.checkpoints import mapping
from bert_tf.checkpoints import names as tensor_names
from bert_tf.checkpoints.sources import CheckpointError, detect_kind, read_source


log = logging.getLogger(__name__)


def assign_from_source(model, source, groups=(tensor_names.ENCODER,)):
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
                    f"variable '{spec.variable.path}'")
            got = tuple(source.tensors[name].shape)
            if got != tuple(shape):
                raise CheckpointError(
                    f"{source.path}: tensor '{source.source_name(name)}' for variable "
                    f"'{spec.variable.path}': expected shape "
                    f"{list(source.source_shape(name, shape))}, got "
                    f"{list(source.source_shape(name, got))}")
            arrays.append(source.tensors[name])
        values.append(spec.join(arrays))
    import keras
    for spec, value in zip(specs, values):
        spec.variable.assign(keras.ops.cast(value, spec.variable.dtype))
    used = {name for s in specs for name in s.sources}
    return used


def _report_unused(source, used, expected_unused=()):
    unused = [source.source_name(n) for n in source.tensors
              if n not in used and n not in expected_unused]
    unused += source.extras
    if unused:
        log.warning("%s: %d tensor(s) not used: %s", source.path, len(unused),
                    ", ".join(unused[:10]) + (" ..." if len(unused) > 10 else ""))
    return unused


def _head_names(num_layers):
    return {n.google for n in tensor_names.mlm_names() + tensor_names.nsp_names()}


def load_encoder(path, dtype=None):
    """A `BertEncoder` with the weights of `path` (bert-tf model dir, HF or Google dir).

    `dtype`: a Keras dtype policy name for the encoder, e.g. "mixed_bfloat16"."""
    start = time.time()
    kind = _kind_or_fail(path)
    if kind == "bert_tf":
        encoder = load_task_model(path, dtype=dtype).encoder
    else:
        from bert_tf.models import BertEncoder
        source = read_source(path)
        encoder = BertEncoder(source.config, dtype=dtype)
        used = assign_from_source(encoder, source)
        # Pre-training heads are expected in full checkpoints: not worth a warning here.
        _report_unused(source, used, expected_unused=_head_names(source.config.num_layers))
    log.info("loaded encoder from %s (%s) in %.1f s", path, kind, time.time() - start)
    return encoder


def load_pretrainer(path, dtype=None):
    """A `BertPretrainer` with encoder weights and, where the source has them, the MLM and NSP
    head weights (heads the source lacks keep their fresh initialization, with a warning)."""
    kind = _kind_or_fail(path)
    from bert_tf.models import BertEncoder, BertPretrainer
    if kind == "bert_tf":
        model = load_task_model(path, dtype=dtype)
        if isinstance(model, BertPretrainer):
            return model
        log.warning("%s: task model is %s; its encoder gets fresh MLM/NSP heads", path,
                    type(model).__name__)
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
    _report_unused(source, used)
    return model


def load_task_model(path, dtype=None):
    """The full task model of a bert-tf model directory, built from its config.json, with
    weights from model.weights.h5 (or else the latest checkpoint in checkpoints/)."""
    kind = _kind_or_fail(path)
    if kind != "bert_tf":
        raise CheckpointError(f"{path}: load_task_model needs a bert-tf model directory "
                              f"(this is a {kind} checkpoint; use load_encoder/load_pretrainer)")
    from bert_tf.checkpoints.model_dir_io import build_task_model, restore_weights
    model = build_task_model(path, dtype=dtype)
    restore_weights(model, path)
    return model


def _kind_or_fail(path):
    path = os.fspath(path)
    if not os.path.exists(path) and not os.path.exists(path + ".index"):
        raise CheckpointError(f"{path}: no such file or directory")
    kind = detect_kind(path)
    if kind is None:
        read_source(path)  # raises the descriptive error
    return kind
