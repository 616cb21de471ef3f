"""Readers for published BERT checkpoints: Hugging Face directories and Google TF1 checkpoints.

Each reader returns a `TensorSource`: the encoder config, the tensors in the canonical layout
(TF1 names and shapes, see `names.py`), and for each tensor the name it had in the source, so
errors speak the source's language.
"""

import dataclasses
import os
import re
from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
from safetensors import SafetensorError
from safetensors.numpy import load_file

from bert_tf.checkpoints import names as tensor_names
from bert_tf.checkpoints.torch_pickle import load_torch_state_dict
from bert_tf.config import BertConfig
from bert_tf.model_dir import ModelDir, foreign
from bert_tf.model_dir.directory import not_a_checkpoint
from bert_tf.model_dir.errors import CheckpointError
from bert_tf.model_dir.layout import (
    EXPECTED,
    GOOGLE_CKPT,
    GOOGLE_CONFIG,
    HF_CONFIG,
    HF_PYTORCH,
    HF_SAFETENSORS,
    HF_TOKENIZER_CONFIG,
    detect_kind,
    google_prefix,
)
from bert_tf.model_dir.layout import VOCAB_FILE as VOCAB

# Re-exported: the names this module has always offered (the code lives in bert_tf/model_dir).
infer_lower_case = foreign.infer_lower_case
__all__ = [
    "CheckpointError",
    "TensorSource",
    "detect_kind",
    "infer_lower_case",
    "not_a_checkpoint",
    "read_encoder_config",
    "read_google",
    "read_hf",
    "read_source",
    "EXPECTED",
    "GOOGLE_CKPT",
    "GOOGLE_CONFIG",
    "HF_CONFIG",
    "HF_PYTORCH",
    "HF_SAFETENSORS",
    "VOCAB",
]


@dataclasses.dataclass
class TensorSource:
    path: str  # the directory (or checkpoint prefix)
    kind: str  # "hf" or "google"
    config: BertConfig
    tensors: Dict[str, np.ndarray]  # canonical name -> array (canonical layout)
    origin: Dict[str, Tuple[str, bool]]  # canonical name -> (source name, transposed)
    extras: List[str]  # source names that map to nothing we know
    vocab_file: Optional[str] = None
    lower_case: Optional[bool] = None
    # head tensors that fit no variable (an untied MLM decoder): unused when heads are loaded
    head_extras: List[str] = dataclasses.field(default_factory=list)

    def source_name(self, canonical):
        return self.origin.get(canonical, (canonical, False))[0]

    def source_shape(self, canonical, shape):
        """`shape` (canonical layout) as it is written in the source."""
        transposed = self.origin.get(canonical, (None, False))[1]
        return tuple(reversed(shape)) if transposed else tuple(shape)

    def has_group(self, group):
        wanted = [n.google for n in tensor_names.group_names(group, self.config.num_layers)]
        present = [n for n in wanted if n in self.tensors]
        if present and len(present) != len(wanted):
            missing = next(n for n in wanted if n not in self.tensors)
            raise CheckpointError(
                f"{self.path}: has part of the {group} head but no tensor "
                f"'{self._expected_source_name(missing)}'"
            )
        return bool(present)

    def _expected_source_name(self, canonical):
        if self.kind != "hf":
            return canonical
        for n in tensor_names.all_names(self.config.num_layers):
            if n.google == canonical:
                return n.hf
        return canonical


# ---- Hugging Face -----------------------------------------------------------------------
_HF_PREFIXES = ("bert.", "model.")


def _read_hf_tensors(directory):
    st = os.path.join(directory, HF_SAFETENSORS)
    if os.path.isfile(st):
        try:
            return load_file(st), st
        except (SafetensorError, OSError, ValueError, TypeError) as e:
            raise CheckpointError(f"{st}: cannot read safetensors ({e})") from None
    bin_path = os.path.join(directory, HF_PYTORCH)
    if os.path.isfile(bin_path):
        return load_torch_state_dict(bin_path), bin_path
    raise CheckpointError(f"{directory}: no {HF_SAFETENSORS} or {HF_PYTORCH}")


def _hf_normalize(name):
    """Strips a model prefix ("bert.") and maps old LayerNorm.gamma/beta spellings."""
    for prefix in _HF_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    name = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", name)
    return re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name)


def read_hf(directory):
    config = foreign.hf_encoder_config(directory)
    raw, file = _read_hf_tensors(directory)
    by_hf = {n.hf: n for n in tensor_names.all_names(config.num_layers)}
    tensors, origin, extras = {}, {}, []
    decoder_weight = None
    for source_name, array in raw.items():
        name = _hf_normalize(source_name)
        name = tensor_names.HF_ALIASES.get(name, name)
        if name == "cls.predictions.decoder.weight":
            decoder_weight = (source_name, array)
            continue
        entry = by_hf.get(name)
        if entry is None:
            if not tensor_names.is_ignorable(source_name):
                extras.append(source_name)
            continue
        if entry.google in tensors:
            continue  # an alias of a tensor already read (e.g. decoder.bias == predictions.bias)
        array = np.asarray(array)
        if array.dtype != np.float32:
            array = array.astype(np.float32)
        if entry.transpose and array.ndim == 2:
            array = array.T
        tensors[entry.google] = array
        origin[entry.google] = (source_name, entry.transpose)
    head_extras = []
    if decoder_weight is not None:
        words = tensors.get("bert/embeddings/word_embeddings")
        if (
            words is None
            or words.shape != decoder_weight[1].shape
            or not np.array_equal(words, decoder_weight[1])
        ):
            # bert-tf ties the MLM decoder to the word embeddings: an untied one has no place
            head_extras.append(f"{decoder_weight[0]} (not tied to the word embeddings)")
    vocab = os.path.join(directory, VOCAB)
    vocab = vocab if os.path.isfile(vocab) else None
    return TensorSource(
        file,
        "hf",
        config,
        tensors,
        origin,
        extras,
        vocab,
        infer_lower_case(vocab, os.path.join(directory, HF_TOKENIZER_CONFIG)),
        head_extras,
    )


# ---- Google TF1 -------------------------------------------------------------------------
def read_google(path):
    """`path`: a Google BERT directory (bert_config.json + bert_model.ckpt.*) or a checkpoint
    prefix whose directory holds bert_config.json."""
    if os.path.isdir(path):
        directory, prefix = path, google_prefix(path)
        if prefix is None:
            raise CheckpointError(f"{path}: no {GOOGLE_CKPT}.index (or single *.index) checkpoint")
    else:
        directory, prefix = os.path.dirname(path) or ".", path
    config = foreign.google_encoder_config(directory)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError(
            f"{prefix}: cannot read TF checkpoint ({str(e).strip().splitlines()[0]})"
        ) from None
    known = {n.google for n in tensor_names.all_names(config.num_layers)}
    tensors, origin, extras = {}, {}, []
    for name in sorted(reader.get_variable_to_shape_map()):
        if name in known:
            tensors[name] = np.asarray(reader.get_tensor(name), dtype=np.float32)
            origin[name] = (name, False)
        elif not tensor_names.is_ignorable(name):
            extras.append(name)
    vocab = os.path.join(directory, VOCAB)
    vocab = vocab if os.path.isfile(vocab) else None
    return TensorSource(
        prefix, "google", config, tensors, origin, extras, vocab, infer_lower_case(vocab)
    )


def read_source(path):
    kind = detect_kind(path)
    if kind == "hf":
        return read_hf(path)
    if kind == "google":
        return read_google(path)
    raise not_a_checkpoint(path)


def read_encoder_config(path):
    """The encoder `BertConfig` of any checkpoint kind, without reading its tensors."""
    return ModelDir(path).encoder_config()
