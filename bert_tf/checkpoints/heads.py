"""Which pre-training heads of a model hold trained weights.

A BertPretrainer built on an encoder-only checkpoint (e.g. `apps.convert --to=bert_tf` of a
Hugging Face BertModel) carries MLM and NSP heads that were never trained. Writing those as a
`BertForPreTraining` checkpoint would claim weights that do not exist. A freshly initialised
head is recognisable: its biases are exactly zero and its LayerNorm exactly (gamma 1, beta 0),
values no training step leaves behind. Works on canonical (TF1-named) tensors.
"""

import numpy as np

from bert_tf.checkpoints import names as tensor_names

MLM, NSP = tensor_names.MLM, tensor_names.NSP

# tensor -> its value right after initialization (the kernels are random, so not listed)
_FRESH = {
    MLM: {
        "cls/predictions/transform/dense/bias": 0.0,
        "cls/predictions/transform/LayerNorm/gamma": 1.0,
        "cls/predictions/transform/LayerNorm/beta": 0.0,
        "cls/predictions/output_bias": 0.0,
    },
    NSP: {"cls/seq_relationship/output_bias": 0.0},
}

# architectures entry of a Hugging Face config.json for the heads present
HF_ARCHITECTURES = {(): "BertModel", (MLM,): "BertForMaskedLM", (MLM, NSP): "BertForPreTraining"}


def trained_heads(tensors):
    """{TF1 name: array} -> the tuple of head groups (MLM, NSP order) whose tensors are all
    present and not at their initial values."""
    found = []
    for group, fresh in _FRESH.items():
        if not all(name in tensors for name in fresh):
            continue
        if all(np.all(np.asarray(tensors[name]) == value) for name, value in fresh.items()):
            continue
        found.append(group)
    return tuple(found)


def heads_to_write(tensors):
    """(heads written, heads dropped as untrained). An NSP head alone has no Hugging Face
    architecture, so it is dropped with the MLM head."""
    trained = trained_heads(tensors)
    present = tuple(g for g in (MLM, NSP) if any(n in tensors for n in _FRESH[g]))
    keep = trained if trained in HF_ARCHITECTURES else ()
    return keep, tuple(g for g in present if g not in keep)


def drop_heads(tensors, groups):
    """The tensors without those of the given head groups."""
    prefixes = {MLM: "cls/predictions/", NSP: "cls/seq_relationship/"}
    drop = tuple(prefixes[g] for g in groups)
    return {k: v for k, v in tensors.items() if not k.startswith(drop)} if drop else tensors
