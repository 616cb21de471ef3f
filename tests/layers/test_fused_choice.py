"""The fused kernels are a choice made once, when the model is built (BertConfig.fused_kernels,
TransformerBlock/MultiHeadSelfAttention(fused_kernels=...)): it survives get_config/from_config,
.keras files and config.json, old configs load with the fast default, and inference (what
exports trace) is the same program and the same numbers either way."""

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import bert_tf
from bert_tf.layers import fused, kernels
from bert_tf.layers.transformer import TransformerBlock


def _feed(config, rng):
    return {
        "input_word_ids": tf.constant(rng.integers(0, config.vocab_size, (2, 9)), tf.int32),
        "input_mask": tf.constant([[1] * 9, [1] * 5 + [0] * 4], tf.int32),
        "input_type_ids": tf.zeros((2, 9), tf.int32),
    }


def test_config_field_round_trips_and_old_configs_get_the_default(tiny_config, tmp_path):
    assert tiny_config.fused_kernels is True  # the fast default
    off = dataclasses.replace(tiny_config, fused_kernels=False)
    path = str(tmp_path / "config.json")
    off.save(path)
    assert json.load(open(path))["fused_kernels"] is False
    assert bert_tf.BertConfig.load(path) == off
    old = off.to_dict()
    del old["fused_kernels"]  # written before the field
    assert bert_tf.BertConfig.from_dict(old).fused_kernels is True
    with pytest.raises(ValueError, match="fused_kernels: expected true or false, got 'no'"):
        dataclasses.replace(tiny_config, fused_kernels="no")


@pytest.mark.parametrize("fused_kernels", [True, False])
def test_block_choice_survives_get_config(fused_kernels):
    block = TransformerBlock(16, 2, 32, fused_kernels=fused_kernels, name="t")
    clone = TransformerBlock.from_config(block.get_config())
    assert clone.fused_kernels is fused_kernels
    assert clone.attention.fused_kernels is fused_kernels
    assert clone.kernels is kernels.select(fused_kernels)
    assert TransformerBlock.from_config(  # a config from before the option: the default
        {k: v for k, v in block.get_config().items() if k != "fused_kernels"}
    ).fused_kernels


def test_encoder_choice_survives_keras_file(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setattr(kernels, "MIN_FUSED_WIDTH", 0)
    for value in (True, False):
        encoder = bert_tf.BertEncoder(dataclasses.replace(tiny_config, fused_kernels=value))
        path = str(tmp_path / f"encoder_{value}.keras")
        encoder.save(path)
        loaded = keras.saving.load_model(path)
        assert loaded.config.fused_kernels is value
        assert [b.fused_kernels for b in loaded.blocks] == [value] * tiny_config.num_layers


def test_encoder_uses_fused_kernels_only_where_wide_enough(tiny_config):
    wide = dataclasses.replace(
        tiny_config,
        hidden_size=kernels.MIN_FUSED_WIDTH,
        num_heads=4,
        intermediate_size=64,
        num_layers=1,
    )
    assert bert_tf.BertEncoder(wide).blocks[0].fused_kernels
    assert (
        not bert_tf.BertEncoder(dataclasses.replace(wide, fused_kernels=False))
        .blocks[0]
        .fused_kernels
    )
    assert not bert_tf.BertEncoder(tiny_config).blocks[0].fused_kernels  # H=32: plain


def test_inference_is_the_plain_program_with_the_same_numbers(tiny_config, monkeypatch):
    """Inference (training=False, as the exports trace it) of a model built with the fused
    kernels calls none of them and gives the plain model's outputs bit for bit."""
    monkeypatch.setattr(kernels, "MIN_FUSED_WIDTH", 0)
    calls = []
    for name in ("masked_softmax_dropout", "dropout_add_layer_norm", "bias_gelu"):
        real = getattr(fused, name)
        monkeypatch.setattr(
            fused, name, lambda *a, _real=real, **k: calls.append(1) or _real(*a, **k)
        )
    plain = bert_tf.BertEncoder(dataclasses.replace(tiny_config, fused_kernels=False))
    fast = bert_tf.BertEncoder(tiny_config)
    fast.set_weights(plain.get_weights())
    feed = _feed(tiny_config, np.random.default_rng(3))
    graph_fn = tf.function(lambda x: fast(x, training=False))
    out_fast = graph_fn(feed)["sequence_output"].numpy()
    out_plain = tf.function(lambda x: plain(x, training=False))(feed)["sequence_output"].numpy()
    assert not calls
    np.testing.assert_array_equal(out_fast, out_plain)
    ops = {op.type for op in graph_fn.get_concrete_function(feed).graph.get_operations()}
    assert not any("Xla" in t for t in ops), sorted(ops)
    fast(feed, training=True)  # training does use them
    assert len(calls) == 4 * tiny_config.num_layers  # softmax, GELU, 2 add+LN per block
