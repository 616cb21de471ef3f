"""Writers that move weights out of bert-tf: Hugging Face and Google TF1 directories.

    save_hf(model, dir, vocab_file)      config.json + model.safetensors + vocab.txt
                                         (+ tokenizer_config.json, special_tokens_map.json)
    save_google(model, dir, vocab_file)  bert_config.json + bert_model.ckpt.{index,data-*}
                                         + vocab.txt, written by a tf.compat.v1 Saver so the
                                         variable names are exactly google-research/bert's.

`model` is a BertEncoder (encoder tensors only) or a BertPretrainer (plus the MLM and NSP
heads). Heads that were never trained (see heads.py) are not written, and `architectures`
names what is written: BertModel, BertForMaskedLM or BertForPreTraining. Both write into a
fresh temp directory that is renamed into place at the end, so an interrupted write never
leaves a half-written checkpoint behind.
"""

import logging
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf
from safetensors.numpy import save_file

from bert_tf.checkpoints import heads as pretraining_heads
from bert_tf.checkpoints import mapping
from bert_tf.checkpoints import names as tensor_names
from bert_tf.file_modes import apply_default_modes
from bert_tf.model_dir import foreign, layout

log = logging.getLogger(__name__)


def canonical_tensors(model):
    """model -> {TF1 name: float32 array in the TF1 layout}, in mapping order."""
    specs = mapping.model_specs(model)
    mapping.check_complete(model, specs)
    out = {}
    for spec in specs:
        value = np.asarray(spec.variable.numpy(), dtype=np.float32)
        for name, array in zip(spec.sources, spec.split(value)):
            out[name] = np.ascontiguousarray(array, dtype=np.float32)
    return out


def _encoder(model):
    return model.encoder if hasattr(model, "mlm_head") else model


def written_tensors(model, target="hf"):
    """(canonical tensors to write, heads written, heads dropped as never trained); logs one
    warning line when heads are dropped."""
    tensors = canonical_tensors(model)
    keep, dropped = pretraining_heads.heads_to_write(tensors)
    if dropped:
        names = " and ".join(g.upper() for g in dropped)
        what = (
            f"architectures: {pretraining_heads.HF_ARCHITECTURES[keep]}"
            if target == "hf"
            else "no cls/ variables for them"
        )
        log.warning(
            "%s head%s never trained (freshly initialised weights): not written (%s)",
            names,
            "s were" if len(dropped) > 1 else " was",
            what,
        )
    return pretraining_heads.drop_heads(tensors, dropped), keep, dropped


def hf_config_dict(config, heads=()):
    """config.json; `heads`: the head groups written (architectures says which)."""
    c = config
    act = {"gelu_approximate": "gelu_new"}.get(c.hidden_act, c.hidden_act)
    return {
        "architectures": [pretraining_heads.HF_ARCHITECTURES[tuple(heads)]],
        "model_type": "bert",
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "num_hidden_layers": c.num_layers,
        "num_attention_heads": c.num_heads,
        "intermediate_size": c.intermediate_size,
        "hidden_act": act,
        "hidden_dropout_prob": c.hidden_dropout,
        "attention_probs_dropout_prob": c.attention_dropout,
        "max_position_embeddings": c.max_position_embeddings,
        "type_vocab_size": c.type_vocab_size,
        "layer_norm_eps": c.layer_norm_eps,
        "initializer_range": c.initializer_range,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
    }


def google_config_dict(config):
    """bert_config.json. google-research/bert hard-codes eps 1e-12; layer_norm_eps is kept
    for readers (ours, HF) that honour it."""
    c = config
    return {
        "attention_probs_dropout_prob": c.attention_dropout,
        "hidden_act": c.hidden_act,
        "hidden_dropout_prob": c.hidden_dropout,
        "hidden_size": c.hidden_size,
        "initializer_range": c.initializer_range,
        "intermediate_size": c.intermediate_size,
        "max_position_embeddings": c.max_position_embeddings,
        "num_attention_heads": c.num_heads,
        "num_hidden_layers": c.num_layers,
        "type_vocab_size": c.type_vocab_size,
        "vocab_size": c.vocab_size,
        "layer_norm_eps": c.layer_norm_eps,
    }


class _FreshDir:
    """Writes into `<dir>.tmp-XXXX` and renames it to `dir` on success."""

    def __init__(self, directory):
        self.directory = os.path.abspath(directory)

    def __enter__(self):
        if os.path.isdir(self.directory) and os.listdir(self.directory):
            raise FileExistsError(f"{self.directory}: exists and is not empty")
        parent = os.path.dirname(self.directory)
        os.makedirs(parent, exist_ok=True)
        self.tmp = tempfile.mkdtemp(dir=parent, prefix="." + os.path.basename(self.directory))
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        apply_default_modes(self.tmp)  # mkdtemp made it 0700: readable by others now
        if os.path.isdir(self.directory):
            os.rmdir(self.directory)  # empty (checked on entry)
        os.replace(self.tmp, self.directory)
        return False


def save_hf(model, directory, vocab_file=None, lower_case=None):
    """Writes a Hugging Face BERT directory (BertModel names for an encoder; "bert."-prefixed
    names plus the trained cls.* heads for a pretrainer, as BertForPreTraining /
    BertForMaskedLM). Returns the directory."""
    encoder = _encoder(model)
    tensors, heads, _ = written_tensors(model)
    pretraining = bool(heads)
    table = tensor_names.all_names(encoder.config.num_layers)
    hf = {}
    for entry in table:
        if entry.google not in tensors:
            continue
        array = tensors[entry.google]
        if entry.transpose:
            array = np.ascontiguousarray(array.T)
        is_head = entry.google.startswith("cls/")
        name = entry.hf if (is_head or not pretraining) else "bert." + entry.hf
        hf[name] = array
    with _FreshDir(directory) as tmp:
        save_file(hf, os.path.join(tmp, layout.HF_SAFETENSORS), metadata={"format": "pt"})
        foreign.write_hf_config(tmp, hf_config_dict(encoder.config, heads))
        if vocab_file:
            shutil.copyfile(vocab_file, os.path.join(tmp, layout.VOCAB_FILE))
            if lower_case is not None:
                foreign.write_hf_tokenizer_files(
                    tmp, vocab_file, lower_case, encoder.config.max_position_embeddings
                )
    return directory


def save_google(model, directory, vocab_file=None):
    """Writes an original-BERT directory with a TF1 checkpoint named like google-research/bert
    (cls/* head variables only for trained heads)."""
    encoder = _encoder(model)
    tensors = written_tensors(model, "google")[0]
    with _FreshDir(directory) as tmp:
        graph = tf.Graph()
        with graph.as_default():
            feeds, variables = {}, {}
            for name, array in tensors.items():
                placeholder = tf.compat.v1.placeholder(tf.float32, array.shape)
                variable = tf.compat.v1.Variable(placeholder, name=name)
                feeds[placeholder] = array
                variables[name] = variable
            saver = tf.compat.v1.train.Saver(var_list=variables, save_relative_paths=True)
            with tf.compat.v1.Session(graph=graph) as sess:
                sess.run(tf.compat.v1.global_variables_initializer(), feed_dict=feeds)
                saver.save(sess, os.path.join(tmp, layout.GOOGLE_CKPT), write_meta_graph=False)
        foreign.write_google_config(tmp, google_config_dict(encoder.config))
        if vocab_file:
            shutil.copyfile(vocab_file, os.path.join(tmp, layout.VOCAB_FILE))
    return directory
