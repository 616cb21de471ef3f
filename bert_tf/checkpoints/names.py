"""The tensor names of a BERT checkpoint in the two published layouts.

Canonical layout: the original google-research/bert TF1 names and shapes (dense kernels
[in, out], `cls/seq_relationship/output_weights` [2, H]). Every reader converts its source to
this layout and every writer converts from it, so the model<->checkpoint mapping
(`mapping.py`) is written once.

Hugging Face (PyTorch) names differ in spelling and store `nn.Linear` weights as [out, in],
i.e. transposed; `TensorName.transpose` says which ones.

Shape legend: V vocab, P max positions, S token types, H hidden, I intermediate, L layers.
"""

import collections

TensorName = collections.namedtuple("TensorName", ["google", "hf", "transpose"])

# Head groups: a checkpoint has all tensors of a group or none of them.
ENCODER = "encoder"
MLM = "mlm"
NSP = "nsp"


def _dense(google, hf):
    return [
        TensorName(google + "/kernel", hf + ".weight", True),
        TensorName(google + "/bias", hf + ".bias", False),
    ]


def _layer_norm(google, hf):
    return [
        TensorName(google + "/gamma", hf + ".weight", False),
        TensorName(google + "/beta", hf + ".bias", False),
    ]


def encoder_names(num_layers):
    """The encoder's tensors, in a fixed order (HF names without the "bert." prefix)."""
    names = [
        TensorName("bert/embeddings/word_embeddings", "embeddings.word_embeddings.weight", False),
        TensorName(
            "bert/embeddings/token_type_embeddings",
            "embeddings.token_type_embeddings.weight",
            False,
        ),
        TensorName(
            "bert/embeddings/position_embeddings", "embeddings.position_embeddings.weight", False
        ),
        *_layer_norm("bert/embeddings/LayerNorm", "embeddings.LayerNorm"),
    ]
    for i in range(num_layers):
        g, h = f"bert/encoder/layer_{i}", f"encoder.layer.{i}"
        for part in ("query", "key", "value"):
            names += _dense(f"{g}/attention/self/{part}", f"{h}.attention.self.{part}")
        names += _dense(f"{g}/attention/output/dense", f"{h}.attention.output.dense")
        names += _layer_norm(f"{g}/attention/output/LayerNorm", f"{h}.attention.output.LayerNorm")
        names += _dense(f"{g}/intermediate/dense", f"{h}.intermediate.dense")
        names += _dense(f"{g}/output/dense", f"{h}.output.dense")
        names += _layer_norm(f"{g}/output/LayerNorm", f"{h}.output.LayerNorm")
    names += _dense("bert/pooler/dense", "pooler.dense")
    return names


def mlm_names():
    """The masked-LM head (its decoder matrix is the word embeddings, so it has none)."""
    return [
        *_dense("cls/predictions/transform/dense", "cls.predictions.transform.dense"),
        *_layer_norm("cls/predictions/transform/LayerNorm", "cls.predictions.transform.LayerNorm"),
        TensorName("cls/predictions/output_bias", "cls.predictions.bias", False),
    ]


def nsp_names():
    """The next-sentence head. Both layouts store its weight as [2, H]: no transpose."""
    return [
        TensorName("cls/seq_relationship/output_weights", "cls.seq_relationship.weight", False),
        TensorName("cls/seq_relationship/output_bias", "cls.seq_relationship.bias", False),
    ]


def group_names(group, num_layers):
    return {ENCODER: lambda: encoder_names(num_layers), MLM: mlm_names, NSP: nsp_names}[group]()


def all_names(num_layers):
    return encoder_names(num_layers) + mlm_names() + nsp_names()


# Hugging Face aliases that hold the same tensor under another name.
HF_ALIASES = {
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}


# Source tensors that carry no weights of a BERT model (buffers, optimizer state, counters).
def is_ignorable(name):
    last = name.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
    return (
        name.endswith("position_ids")
        or name.endswith("/adam_m")
        or name.endswith("/adam_v")
        or last in ("global_step", "_CHECKPOINTABLE_OBJECT_GRAPH")
        or name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH")
    )
