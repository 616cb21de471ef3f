"""Which canonical (TF1-named) tensors make up each variable of our models, and back.

Our attention keeps query/key/value fused: `qkv_kernel` [H, 3, N, D] is the three [H, H]
kernels reshaped to [H, N, D] and stacked on axis 1; `qkv_bias` [3, N, D] likewise;
`output_kernel` [N, D, H] is the [H, H] output kernel reshaped. The NSP dense kernel [H, 2] is
`cls/seq_relationship/output_weights` [2, H] transposed. Everything else is 1:1.

Shape legend: H hidden, N heads, D head size (H / N), I intermediate, V vocab.
"""

import dataclasses
from typing import Callable, List, Tuple

import numpy as np

from bert_tf.checkpoints import names as tensor_names


@dataclasses.dataclass
class VariableSpec:
    """One model variable and the canonical tensors it is made of."""

    variable: object  # a keras.Variable
    sources: List[str]  # canonical (Google TF1) names
    source_shapes: List[Tuple[int, ...]]
    join: Callable  # list of canonical arrays -> variable value
    split: Callable  # variable value -> list of canonical arrays
    group: str  # names.ENCODER / MLM / NSP


def _one(variable, name, group):
    shape = tuple(variable.shape)
    return VariableSpec(variable, [name], [shape], lambda a: a[0], lambda v: [v], group)


def _dense(layer, prefix, group):
    return [
        _one(layer.kernel, prefix + "/kernel", group),
        _one(layer.bias, prefix + "/bias", group),
    ]


def _layer_norm(layer, prefix, group):
    return [_one(layer.gamma, prefix + "/gamma", group), _one(layer.beta, prefix + "/beta", group)]


def _attention(attention, prefix, group):
    h, n, d = attention.hidden_size, attention.num_heads, attention.head_size
    parts = [f"{prefix}/attention/self/{p}" for p in ("query", "key", "value")]
    return [
        VariableSpec(
            attention.qkv_kernel,
            [p + "/kernel" for p in parts],
            [(h, n * d)] * 3,
            # 3 x [H, H] -> [H, 3, N, D]
            lambda a: np.stack([x.reshape(h, n, d) for x in a], axis=1),
            lambda v: [v[:, i].reshape(h, n * d) for i in range(3)],
            group,
        ),
        VariableSpec(
            attention.qkv_bias,
            [p + "/bias" for p in parts],
            [(n * d,)] * 3,
            # 3 x [H] -> [3, N, D]
            lambda a: np.stack([x.reshape(n, d) for x in a], axis=0),
            lambda v: [v[i].reshape(n * d) for i in range(3)],
            group,
        ),
        VariableSpec(
            attention.output_kernel,
            [f"{prefix}/attention/output/dense/kernel"],
            [(n * d, h)],
            lambda a: a[0].reshape(n, d, h),  # [H, H] -> [N, D, H]
            lambda v: [v.reshape(n * d, h)],
            group,
        ),
        _one(attention.output_bias, f"{prefix}/attention/output/dense/bias", group),
    ]


def encoder_specs(encoder):
    g = tensor_names.ENCODER
    emb = encoder.embeddings
    specs = [
        _one(emb.word_embeddings.embeddings, "bert/embeddings/word_embeddings", g),
        _one(emb.type_embeddings.embeddings, "bert/embeddings/token_type_embeddings", g),
        _one(emb.position_embeddings.embeddings, "bert/embeddings/position_embeddings", g),
        *_layer_norm(emb.layer_norm, "bert/embeddings/LayerNorm", g),
    ]
    for i, block in enumerate(encoder.blocks):
        prefix = f"bert/encoder/layer_{i}"
        specs += _attention(block.attention, prefix, g)
        specs += _layer_norm(block.attention_layer_norm, f"{prefix}/attention/output/LayerNorm", g)
        specs += _dense(block.intermediate, f"{prefix}/intermediate/dense", g)
        specs += _dense(block.output_dense, f"{prefix}/output/dense", g)
        specs += _layer_norm(block.output_layer_norm, f"{prefix}/output/LayerNorm", g)
    specs += _dense(encoder.pooler, "bert/pooler/dense", g)
    return specs


def mlm_specs(mlm_head):
    g = tensor_names.MLM
    if getattr(mlm_head, "embedding_layer", None) is None:
        raise ValueError(
            "the MLM head has an untied decoder; only the tied BERT layout maps "
            "onto published checkpoints"
        )
    return [
        *_dense(mlm_head.transform, "cls/predictions/transform/dense", g),
        *_layer_norm(mlm_head.layer_norm, "cls/predictions/transform/LayerNorm", g),
        _one(mlm_head.output_bias, "cls/predictions/output_bias", g),
    ]


def nsp_specs(nsp_head):
    g = tensor_names.NSP
    kernel = nsp_head.dense.kernel  # [H, 2]
    h, k = kernel.shape
    return [
        VariableSpec(
            kernel,
            ["cls/seq_relationship/output_weights"],
            [(k, h)],
            lambda a: a[0].T,
            lambda v: [v.T],
            g,
        ),  # [2, H] <-> [H, 2]
        _one(nsp_head.dense.bias, "cls/seq_relationship/output_bias", g),
    ]


def model_specs(model):
    """Specs for a BertEncoder or a BertPretrainer (encoder + MLM + NSP heads)."""
    if hasattr(model, "mlm_head"):
        return encoder_specs(model.encoder) + mlm_specs(model.mlm_head) + nsp_specs(model.nsp_head)
    if hasattr(model, "blocks"):
        return encoder_specs(model)
    raise TypeError(
        f"no checkpoint mapping for {type(model).__name__}; expected a BertEncoder "
        "or a BertPretrainer"
    )


def check_complete(model, specs):
    """Every variable of `model` is covered by exactly one spec (guards the mapping itself)."""
    covered = [id(s.variable) for s in specs]
    if len(set(covered)) != len(covered):
        raise AssertionError("checkpoint mapping assigns a variable twice")
    missing = [v.path for v in model.weights if id(v) not in set(covered)]
    if missing:
        raise AssertionError(f"checkpoint mapping misses model variable(s) {missing}")
