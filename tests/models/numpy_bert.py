"""An independent float64 numpy implementation of the BERT forward pass (google-research/bert
maths: embeddings + LayerNorm, post-LN blocks, exact erf GELU, masked softmax, tanh pooler,
MLM head with the decoder tied to the word embeddings).

It reads the Keras variables by their documented layouts only (qkv_kernel [H, 3, N, D],
qkv_bias [3, N, D], output_kernel [N, D, H], dense kernels [in, out]), nothing else from
bert_tf, so a layout or maths bug in the model shows up as a mismatch.
"""

import math

import numpy as np

_erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def _np(v):
    return np.asarray(v, dtype=np.float64)


def encoder_params(encoder):
    """Reads a BertEncoder's variables into plain float64 arrays."""
    emb = encoder.embeddings
    p = {
        "word": _np(emb.word_embeddings.embeddings),
        "pos": _np(emb.position_embeddings.embeddings),
        "type": _np(emb.type_embeddings.embeddings),
        "emb_ln": (_np(emb.layer_norm.gamma), _np(emb.layer_norm.beta)),
        "eps": encoder.config.layer_norm_eps,
        "num_heads": encoder.config.num_heads,
        "act": encoder.config.hidden_act,
        "layers": [],
    }
    for block in encoder.blocks:
        a = block.attention
        p["layers"].append(
            {
                "qkv_kernel": _np(a.qkv_kernel),
                "qkv_bias": _np(a.qkv_bias),
                "out_kernel": _np(a.output_kernel),
                "out_bias": _np(a.output_bias),
                "ln1": (
                    _np(block.attention_layer_norm.gamma),
                    _np(block.attention_layer_norm.beta),
                ),
                "w1": _np(block.intermediate.kernel),
                "b1": _np(block.intermediate.bias),
                "w2": _np(block.output_dense.kernel),
                "b2": _np(block.output_dense.bias),
                "ln2": (_np(block.output_layer_norm.gamma), _np(block.output_layer_norm.beta)),
            }
        )
    p["pool_w"], p["pool_b"] = _np(encoder.pooler.kernel), _np(encoder.pooler.bias)
    return p


def _act(name, x):
    if name == "gelu":
        return gelu(x)
    if name == "relu":
        return np.maximum(x, 0)
    if name == "tanh":
        return np.tanh(x)
    if name == "gelu_approximate":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    raise ValueError(name)


def encoder_forward(p, word_ids, mask, type_ids):
    """Returns (sequence_output [B, T, H], pooled_output [B, H], per-layer outputs)."""
    word_ids, mask, type_ids = (np.asarray(a) for a in (word_ids, mask, type_ids))
    b, t = word_ids.shape
    eps = p["eps"]
    x = p["word"][word_ids] + p["pos"][np.arange(t)][None] + p["type"][type_ids]
    x = layer_norm(x, *p["emb_ln"], eps)
    h = x.shape[-1]
    n = p["num_heads"]
    d = h // n
    bias = (1.0 - mask.astype(np.float64))[:, None, None, :] * -10000.0  # [B, 1, 1, T]
    outs = []
    for L in p["layers"]:
        heads = []
        for i in range(3):  # q, k, v
            w = L["qkv_kernel"][:, i].reshape(h, h)
            y = x @ w + L["qkv_bias"][i].reshape(h)  # [B, T, H]
            heads.append(y.reshape(b, t, n, d).transpose(0, 2, 1, 3))  # [B, N, T, D]
        q, k, v = heads
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias  # [B, N, T, T]
        ctx = softmax(scores) @ v  # [B, N, T, D]
        ctx = ctx.transpose(0, 2, 1, 3).reshape(b, t, h)
        attn = ctx @ L["out_kernel"].reshape(h, h) + L["out_bias"]
        x = layer_norm(x + attn, *L["ln1"], eps)
        f = _act(p["act"], x @ L["w1"] + L["b1"]) @ L["w2"] + L["b2"]
        x = layer_norm(x + f, *L["ln2"], eps)
        outs.append(x)
    pooled = np.tanh(x[:, 0] @ p["pool_w"] + p["pool_b"])
    return x, pooled, outs


def mlm_logits(sequence_output, positions, head, word_embeddings, act="gelu", eps=1e-12):
    """Gather at positions -> dense + act -> LayerNorm -> tied decoder (E^T) + bias."""
    x = np.take_along_axis(sequence_output, np.asarray(positions)[..., None], axis=1)
    x = _act(act, x @ _np(head.transform.kernel) + _np(head.transform.bias))
    x = layer_norm(x, _np(head.layer_norm.gamma), _np(head.layer_norm.beta), eps)
    return x @ _np(word_embeddings).T + _np(head.output_bias)
