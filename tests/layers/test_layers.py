"""Every bert_tf layer: get_config/from_config round-trip with identical outputs, plus the
hand-checkable maths (GELU, attention masking, gathering, span padding)."""

import math

import keras
import numpy as np
import pytest

from bert_tf import layers as L

B, T, H, N, I, V = 2, 6, 16, 4, 32, 40


def _rng(seed=0):
    return np.random.default_rng(seed)


def _x(seed=0):
    return _rng(seed).normal(size=(B, T, H)).astype("float32")


def _mask():
    mask = np.ones((B, T), "int32")
    mask[1, 3:] = 0
    return mask


def _randomize(layer, seed=3):
    rng = _rng(seed)
    layer.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in layer.get_weights()])


def _clone(layer):
    """Rebuilds `layer` from its serialized config and copies its weights."""
    config = keras.saving.serialize_keras_object(layer)
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is type(layer)
    assert clone.get_config() == layer.get_config()
    return clone


def _ids():
    rng = _rng(1)
    return (
        rng.integers(0, V, (B, T)).astype("int32"),
        (np.arange(T)[None] >= 2).astype("int32").repeat(B, 0),
    )


CASES = {
    "embeddings": (
        lambda: L.BertEmbeddings(
            V, H, max_position_embeddings=T, type_vocab_size=2, dropout=0.1, layer_norm_eps=1e-6
        ),
        lambda: _ids(),
    ),
    "attention": (
        lambda: L.MultiHeadSelfAttention(H, N, dropout=0.2),
        lambda: (_x(), L.attention_bias(_mask(), "float32")),
    ),
    "transformer": (
        lambda: L.TransformerBlock(
            H, N, I, hidden_act="gelu", hidden_dropout=0.1, attention_dropout=0.1
        ),
        lambda: (_x(), L.attention_bias(_mask(), "float32")),
    ),
    "mlm_untied": (
        lambda: L.MaskedLMHead(V, H, hidden_act="relu"),
        lambda: (_x(), np.array([[0, 5], [2, 2]], "int32")),
    ),
    "nsp": (lambda: L.NextSentenceHead(dropout=0.1), lambda: (_x()[:, 0],)),
    "classification": (lambda: L.ClassificationHead(3, dropout=0.1), lambda: (_x()[:, 0],)),
    "token_classification": (lambda: L.TokenClassificationHead(5, dropout=0.1), lambda: (_x(),)),
    "span": (lambda: L.SpanHead(), lambda: (_x(), _mask())),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_round_trip_gives_identical_outputs(name):
    make, args = CASES[name]
    layer = make()
    inputs = args()
    layer(*inputs)  # build
    _randomize(layer)
    expected = keras.tree.map_structure(np.asarray, layer(*inputs))
    clone = _clone(layer)
    clone(*inputs)  # build
    clone.set_weights(layer.get_weights())
    got = keras.tree.map_structure(np.asarray, clone(*inputs))
    for a, b in zip(keras.tree.flatten(got), keras.tree.flatten(expected)):
        np.testing.assert_array_equal(a, b)


def test_gelu_is_exact_erf():
    x = np.linspace(-5, 5, 41).astype("float32")
    want = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(float)]
    np.testing.assert_allclose(np.asarray(L.gelu(x)), want, atol=1e-6)
    approx = [
        0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))
        for v in x.astype(float)
    ]
    np.testing.assert_allclose(np.asarray(L.gelu_approximate(x)), approx, atol=1e-6)
    # The two differ measurably (so the tests above can tell them apart).
    assert np.abs(np.asarray(L.gelu(x)) - np.asarray(L.gelu_approximate(x))).max() > 1e-4
    with pytest.raises(ValueError, match="Unknown activation"):
        L.get_activation("swish")


def test_attention_bias_values():
    bias = np.asarray(L.attention_bias(np.array([[1, 1, 0]]), "float32"))
    assert bias.shape == (1, 1, 1, 3)
    np.testing.assert_array_equal(bias.ravel(), [0.0, 0.0, -10000.0])


def test_attention_ignores_padding_keys():
    layer = L.MultiHeadSelfAttention(H, N, dropout=0.0)
    mask = _mask()
    x = _x()
    bias = L.attention_bias(mask, "float32")
    _ = layer(x, bias)
    _randomize(layer)
    out = np.asarray(layer(x, bias))
    y = x.copy()
    y[1, 3:] = 100.0  # garbage in the padded positions of example 1
    out2 = np.asarray(layer(y, bias))
    np.testing.assert_allclose(out2[1, :3], out[1, :3], atol=1e-5)
    np.testing.assert_array_equal(out2[0], out[0])
    # Without the mask the garbage does leak in.
    out3 = np.asarray(layer(y, L.attention_bias(np.ones_like(mask), "float32")))
    assert np.abs(out3[1, :3] - out[1, :3]).max() > 1e-2


def test_attention_rejects_bad_heads():
    with pytest.raises(ValueError, match="not divisible"):
        L.MultiHeadSelfAttention(10, 3)


def test_gather_positions():
    seq = np.arange(B * T * 2, dtype="float32").reshape(B, T, 2)
    got = np.asarray(L.gather_positions(seq, np.array([[0, 5], [3, 1]])))
    np.testing.assert_array_equal(got, [[seq[0, 0], seq[0, 5]], [seq[1, 3], seq[1, 1]]])


def test_span_head_masks_padding():
    head = L.SpanHead()
    start, end = head(_x(), _mask())
    start, end = np.asarray(start), np.asarray(end)
    assert start.shape == end.shape == (B, T) and start.dtype == np.float32
    assert (start[1, 3:] < -9000).all() and (end[1, 3:] < -9000).all()
    assert (np.abs(start[0]) < 100).all()


def test_heads_give_float32_logits_under_mixed_precision():
    head = L.ClassificationHead(3, dtype="mixed_bfloat16")
    out = head(_x()[:, 0])
    assert str(out.dtype) == "<dtype: 'float32'>" or "float32" in str(out.dtype)
