"""Readers for published BERT checkpoints: Hugging Face directories and Google TF1 checkpoints.

Each reader returns a `TensorSource`: the encoder config, the tensors in the canonical layout
(TF1 names and shapes, see `names.py`), and for each tensor the name it had in the source, so
errors speak the source's language.
"""

import dataclasses
import json
import os
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

from bert_tf.config import BertConfig
from bert_tf.checkpoints import names as tensor_names
from bert_tf.errors import BertTfError

HF_CONFIG = "config.json"
HF_SAFETENSORS = "model.safetensors"
HF_PYTORCH = "pytorch_model.bin"
GOOGLE_CONFIG = "bert_config.json"
GOOGLE_CKPT = "bert_model.ckpt"
VOCAB = "vocab.txt"


class CheckpointError(BertTfError, ValueError):
    """A checkpoint cannot be read or does not fit the model (one-line message)."""


@dataclasses.dataclass
class TensorSource:
    path: str                                   # the directory (or checkpoint prefix)
    kind: str                                   # "hf" or "google"
    config: BertConfig
    tensors: Dict[str, np.ndarray]              # canonical name -> array (canonical layout)
    origin: Dict[str, Tuple[str, bool]]         # canonical name -> (source name, transposed)
    extras: List[str]                           # source names that map to nothing we know
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
                f"'{self._expected_source_name(missing)}'")
        return bool(present)

    def _expected_source_name(self, canonical):
        if self.kind != "hf":
            return canonical
        for n in tensor_names.all_names(self.config.num_layers):
            if n.google == canonical:
                return n.hf
        return canonical


# ---- kind detection ---------------------------------------------------------------------
def detect_kind(path):
    """"bert_tf", "hf" or "google" for a directory (or Google checkpoint prefix); else None."""
    from bert_tf import model_dir
    if os.path.isdir(path):
        if model_dir.is_model_dir(path):
            return "bert_tf"
        if os.path.isfile(os.path.join(path, GOOGLE_CONFIG)) or _google_prefix(path):
            return "google"
        if os.path.isfile(os.path.join(path, HF_CONFIG)) and (
                os.path.isfile(os.path.join(path, HF_SAFETENSORS))
                or os.path.isfile(os.path.join(path, HF_PYTORCH))):
            return "hf"
        return None
    if os.path.isfile(path + ".index"):
        return "google"
    return None


def _google_prefix(directory):
    """The checkpoint prefix in a Google BERT directory, or None."""
    preferred = os.path.join(directory, GOOGLE_CKPT)
    if os.path.isfile(preferred + ".index"):
        return preferred
    indexes = sorted(f for f in os.listdir(directory) if f.endswith(".index"))
    if len(indexes) == 1:
        return os.path.join(directory, indexes[0][:-len(".index")])
    return None


# ---- casing -----------------------------------------------------------------------------
def infer_lower_case(vocab_file, tokenizer_config=None):
    """Whether the vocab is uncased: tokenizer_config.json's do_lower_case if given, else
    True when (almost) no vocab entry has an upper-case letter ([CLS]-style tokens aside)."""
    if tokenizer_config and os.path.isfile(tokenizer_config):
        try:
            with open(tokenizer_config) as f:
                value = json.load(f).get("do_lower_case")
            if isinstance(value, bool):
                return value
        except (OSError, ValueError):
            pass
    if not vocab_file or not os.path.isfile(vocab_file):
        return None
    with open(vocab_file, encoding="utf-8") as f:
        tokens = [line.rstrip("\n") for line in f]
    upper = sum(1 for t in tokens
                if not (t.startswith("[") and t.endswith("]")) and any(c.isupper() for c in t))
    return upper <= max(10, len(tokens) // 1000)


# ---- Hugging Face -----------------------------------------------------------------------
_HF_PREFIXES = ("bert.", "model.")


def _read_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file ({what})") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: invalid JSON ({e})") from None


def _config_from(values, path):
    try:
        return BertConfig.from_hf_dict(values)
    except KeyError as e:
        raise CheckpointError(f"{path}: missing field {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: {e}") from None


def _read_hf_tensors(directory):
    st = os.path.join(directory, HF_SAFETENSORS)
    if os.path.isfile(st):
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
        try:
            return load_file(st), st
        except (SafetensorError, OSError, ValueError, TypeError) as e:
            raise CheckpointError(f"{st}: cannot read safetensors ({e})") from None
    bin_path = os.path.join(directory, HF_PYTORCH)
    if os.path.isfile(bin_path):
        from bert_tf.checkpoints.torch_pickle import load_torch_state_dict
        return load_torch_state_dict(bin_path), bin_path
    raise CheckpointError(f"{directory}: no {HF_SAFETENSORS} or {HF_PYTORCH}")


def _hf_normalize(name):
    """Strips a model prefix ("bert.") and maps old LayerNorm.gamma/beta spellings."""
    for prefix in _HF_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    name = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", name)
    return re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name)


def read_hf(directory):
    config_path = os.path.join(directory, HF_CONFIG)
    values = _read_json(config_path, "Hugging Face config")
    model_type = values.get("model_type", "bert")
    if model_type != "bert":
        raise CheckpointError(f"{config_path}: model_type {model_type!r}, expected 'bert'")
    if values.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointError(f"{config_path}: position_embedding_type "
                              f"{values['position_embedding_type']!r}, expected 'absolute'")
    config = _config_from(values, config_path)
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
        if words is None or words.shape != decoder_weight[1].shape or not np.array_equal(
                words, decoder_weight[1]):
            # bert-tf ties the MLM decoder to the word embeddings: an untied one has no place
            head_extras.append(f"{decoder_weight[0]} (not tied to the word embeddings)")
    vocab = os.path.join(directory, VOCAB)
    vocab = vocab if os.path.isfile(vocab) else None
    return TensorSource(file, "hf", config, tensors, origin, extras, vocab,
                        infer_lower_case(vocab, os.path.join(directory, "tokenizer_config.json")),
                        head_extras)


# ---- Google TF1 -------------------------------------------------------------------------
def read_google(path):
    """`path`: a Google BERT directory (bert_config.json + bert_model.ckpt.*) or a checkpoint
    prefix whose directory holds bert_config.json."""
    import tensorflow as tf
    if os.path.isdir(path):
        directory, prefix = path, _google_prefix(path)
        if prefix is None:
            raise CheckpointError(f"{path}: no {GOOGLE_CKPT}.index (or single *.index) checkpoint")
    else:
        directory, prefix = os.path.dirname(path) or ".", path
    config_path = os.path.join(directory, GOOGLE_CONFIG)
    config = _config_from(_read_json(config_path, "Google BERT config"), config_path)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError(f"{prefix}: cannot read TF checkpoint "
                              f"({str(e).strip().splitlines()[0]})") from None
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
    return TensorSource(prefix, "google", config, tensors, origin, extras, vocab,
                        infer_lower_case(vocab))


EXPECTED = (f"a bert-tf model dir with config.json, a Hugging Face dir with {HF_CONFIG} + "
            f"{HF_SAFETENSORS}, or a Google dir with {GOOGLE_CONFIG} + {GOOGLE_CKPT}.index")


def not_a_checkpoint(path):
    """The one-line error for a path that is no checkpoint of any kind."""
    if not os.path.exists(path):
        return CheckpointError(f"{path}: no such file or directory (expected {EXPECTED})")
    if not os.path.isdir(path):
        return CheckpointError(f"{path}: is a file, not a checkpoint directory (expected "
                               f"{EXPECTED})")
    return CheckpointError(f"{path}: not a BERT checkpoint directory (expected {EXPECTED})")


def read_source(path):
    kind = detect_kind(path)
    if kind == "hf":
        return read_hf(path)
    if kind == "google":
        return read_google(path)
    raise not_a_checkpoint(path)


def read_encoder_config(path):
    """The encoder `BertConfig` of any checkpoint kind, without reading its tensors."""
    kind = detect_kind(path)
    if kind == "bert_tf":
        from bert_tf import model_dir
        d = model_dir.ModelDir(path)
        try:
            return BertConfig.from_dict(d.read_config()["encoder"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{d.config_path}: bad encoder config ({e})") from None
    if kind == "hf":
        config_path = os.path.join(path, HF_CONFIG)
        return _config_from(_read_json(config_path, "Hugging Face config"), config_path)
    if kind == "google":
        directory = path if os.path.isdir(path) else (os.path.dirname(path) or ".")
        config_path = os.path.join(directory, GOOGLE_CONFIG)
        return _config_from(_read_json(config_path, "Google BERT config"), config_path)
    raise not_a_checkpoint(path)
