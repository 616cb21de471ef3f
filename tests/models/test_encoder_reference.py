"""BertEncoder and the MLM head against the independent numpy reference (numpy_bert.py), the
MLM decoder tie, dropout behaviour and mixed precision."""

import keras
import numpy as np
import pytest

from bert_tf import BertEncoder, BertPretrainer
from tests.models import numpy_bert


def randomize(model, seed=0, scale=0.3):
    """Random values in every variable, including biases and LayerNorm gamma/beta."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(0.0, scale, v.shape).astype("float32"))
    return model


def make_inputs(config, seed=1):
    rng = np.random.default_rng(seed)
    b, t = 3, 9
    mask = np.ones((b, t), "int32")
    mask[1, 5:] = 0
    mask[2, 2:] = 0
    types = np.zeros((b, t), "int32")
    types[0, 4:] = 1
    types[1, 3:5] = 1
    return {
        "input_word_ids": rng.integers(0, config.vocab_size, (b, t)).astype("int32"),
        "input_mask": mask,
        "input_type_ids": types,
    }


@pytest.mark.parametrize("act", ["gelu", "relu"])
def test_encoder_matches_numpy_reference(tiny_config, act):
    tiny_config.hidden_act = act
    encoder = randomize(BertEncoder(tiny_config))
    x = make_inputs(tiny_config)
    out = encoder(x)
    seq, pooled, layers = numpy_bert.encoder_forward(
        numpy_bert.encoder_params(encoder),
        x["input_word_ids"],
        x["input_mask"],
        x["input_type_ids"],
    )
    # All positions, padding included.
    np.testing.assert_allclose(np.asarray(out["sequence_output"]), seq, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out["pooled_output"]), pooled, rtol=0, atol=1e-5)
    assert len(out["encoder_outputs"]) == tiny_config.num_layers
    for got, want in zip(out["encoder_outputs"], layers):
        np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(
        np.asarray(out["encoder_outputs"][-1]), np.asarray(out["sequence_output"])
    )


def test_padding_does_not_change_real_tokens(tiny_config):
    encoder = randomize(BertEncoder(tiny_config))
    x = make_inputs(tiny_config)
    y = {k: v.copy() for k, v in x.items()}
    y["input_word_ids"][1, 5:] = 7  # different tokens under the padding
    a = np.asarray(encoder(x)["sequence_output"])
    b = np.asarray(encoder(y)["sequence_output"])
    np.testing.assert_allclose(a[1, :5], b[1, :5], atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(encoder(x)["pooled_output"]), np.asarray(encoder(y)["pooled_output"]), atol=1e-5
    )
    # Trimming the padding away gives the same real-token outputs.
    trimmed = {k: v[1:2, :5] for k, v in x.items()}
    np.testing.assert_allclose(
        np.asarray(encoder(trimmed)["sequence_output"])[0], a[1, :5], atol=1e-5
    )


def test_mlm_logits_match_numpy_with_tied_decoder(tiny_config):
    model = randomize(BertPretrainer(BertEncoder(tiny_config)))
    x = make_inputs(tiny_config)
    x["masked_lm_positions"] = np.array([[1, 4, 0], [2, 2, 3], [0, 1, 1]], "int32")
    out = model(x)
    encoder = model.encoder
    seq, pooled, _ = numpy_bert.encoder_forward(
        numpy_bert.encoder_params(encoder),
        x["input_word_ids"],
        x["input_mask"],
        x["input_type_ids"],
    )
    want = numpy_bert.mlm_logits(
        seq,
        x["masked_lm_positions"],
        model.mlm_head,
        encoder.word_embeddings.embeddings,
        tiny_config.hidden_act,
        tiny_config.layer_norm_eps,
    )
    assert out["mlm_logits"].shape == (3, 3, tiny_config.vocab_size)
    np.testing.assert_allclose(np.asarray(out["mlm_logits"]), want, rtol=0, atol=2e-5)
    nsp = pooled @ np.asarray(model.nsp_head.dense.kernel) + np.asarray(model.nsp_head.dense.bias)
    np.testing.assert_allclose(np.asarray(out["nsp_logits"]), nsp, rtol=0, atol=1e-5)


def test_mlm_decoder_is_tied_to_word_embeddings(tiny_config):
    model = randomize(BertPretrainer(BertEncoder(tiny_config)))
    c = tiny_config
    # No separate [H, V] decoder: the only [V, H]/[H, V] matrix is the word embedding table.
    big = [v.path for v in model.weights if set(v.shape) == {c.vocab_size, c.hidden_size}]
    assert big == [model.encoder.word_embeddings.embeddings.path]
    assert not hasattr(model.mlm_head, "decoder_kernel")
    assert model.mlm_head.embedding_layer is model.encoder.word_embeddings
    x = make_inputs(c)
    x["masked_lm_positions"] = np.array([[1, 2], [0, 3], [0, 1]], "int32")
    before = np.asarray(model(x)["mlm_logits"])
    table = model.encoder.word_embeddings.embeddings
    changed = table.numpy()
    changed[11] += 1.0  # one vocab row, a token not in the inputs
    assert 11 not in x["input_word_ids"]
    table.assign(changed)
    after = np.asarray(model(x)["mlm_logits"])
    diff = np.abs(after - before).max(axis=(0, 1))
    assert diff[11] > 1e-3  # that token's logit moved ...
    np.testing.assert_allclose(np.delete(after, 11, -1), np.delete(before, 11, -1), atol=1e-6)


def test_dropout_only_in_training(tiny_config):
    tiny_config.hidden_dropout = 0.3
    tiny_config.attention_dropout = 0.3
    encoder = randomize(BertEncoder(tiny_config), scale=0.1)
    x = make_inputs(tiny_config)
    a = np.asarray(encoder(x)["sequence_output"])
    b = np.asarray(encoder(x, training=False)["sequence_output"])
    np.testing.assert_array_equal(a, b)
    c = np.asarray(encoder(x, training=True)["sequence_output"])
    d = np.asarray(encoder(x, training=True)["sequence_output"])
    assert np.abs(c - a).max() > 1e-3 and np.abs(c - d).max() > 1e-3


def test_mixed_bfloat16_close_to_float32(tiny_config):
    fp32 = randomize(BertEncoder(tiny_config), scale=0.1)
    bf16 = BertEncoder(tiny_config, dtype="mixed_bfloat16")
    bf16.set_weights(fp32.get_weights())
    x = make_inputs(tiny_config)
    want = fp32(x)
    got = bf16(x)
    assert "bfloat16" in str(got["sequence_output"].dtype)
    assert all("float32" in str(v.dtype) for v in bf16.weights)
    seq = np.asarray(keras.ops.cast(got["sequence_output"], "float32"))
    diff = np.abs(seq - np.asarray(want["sequence_output"])).max()
    assert 0 < diff < 0.15, diff
    pooled = np.asarray(keras.ops.cast(got["pooled_output"], "float32"))
    assert np.abs(pooled - np.asarray(want["pooled_output"])).max() < 0.1
    pre = BertPretrainer(bf16)
    x["masked_lm_positions"] = np.zeros((3, 2), "int32")
    out = pre(x)
    assert "float32" in str(out["mlm_logits"].dtype) and "float32" in str(out["nsp_logits"].dtype)
