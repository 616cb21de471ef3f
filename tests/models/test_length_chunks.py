"""The encoder's chunked training pass (bert_tf/models/length_chunks.py) computes the same
outputs at real tokens, the same loss and the same gradients as the one-piece pass, on the
plain and on the fused training kernels, for batches of any size (also smaller than the
number of chunks), inside a tf.function with dynamic shapes as the Trainer runs it."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

import bert_tf
from bert_tf.layers import kernels
from bert_tf.models import encoder as encoder_module
from bert_tf.models import length_chunks

LENGTHS = [3, 17, 9, 30, 5, 12, 24, 7, 2, 19]  # real tokens per row; padded to 32


def _batch(lengths, width=32, vocab=40, seed=0):
    rng = np.random.default_rng(seed)
    b = len(lengths)
    mask = (np.arange(width)[None, :] < np.asarray(lengths)[:, None]).astype(np.int32)
    words = rng.integers(5, vocab, size=(b, width)).astype(np.int32) * mask
    types = (np.arange(width)[None, :] >= np.asarray(lengths)[:, None] // 2).astype(np.int32)
    labels = np.where(mask > 0, rng.integers(0, 3, size=(b, width)), -1).astype(np.int32)
    inputs = {"input_word_ids": words, "input_mask": mask, "input_type_ids": types * mask}
    return {k: tf.constant(v) for k, v in inputs.items()}, tf.constant(labels), mask


def _model(tiny_config, fused_kernels):
    config = dataclasses.replace(
        tiny_config, hidden_dropout=0.0, attention_dropout=0.0, fused_kernels=fused_kernels
    )
    keras.utils.set_random_seed(3)
    return bert_tf.BertTagger(bert_tf.BertEncoder(config), 3, dropout=0.0)


def _run(model, inputs, labels, chunks):
    model.encoder.train_chunks = chunks

    @tf.function(
        input_signature=[
            {k: tf.TensorSpec([None, None], tf.int32) for k in inputs},
            tf.TensorSpec([None, None], tf.int32),
        ]
    )
    def step(inputs, labels):
        with tf.GradientTape() as tape:
            outputs = model.encoder(inputs, training=True)
            logits = model(inputs, training=True)["logits"]
            weight = tf.cast(labels >= 0, tf.float32)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.maximum(labels, 0), logits)
            loss = tf.reduce_sum(ce * weight) / tf.reduce_sum(weight)
        variables = model.trainable_variables
        grads = tape.gradient(loss, variables)
        grads = [
            tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
            for v, g in zip(variables, grads)
        ]
        return outputs, loss, grads

    outputs, loss, grads = step(inputs, labels)
    return (
        {
            "sequence_output": outputs["sequence_output"].numpy(),
            "pooled_output": outputs["pooled_output"].numpy(),
            "layer_0": outputs["encoder_outputs"][0].numpy(),
        },
        float(loss),
        [g.numpy() for g in grads],
    )


@pytest.mark.parametrize(
    "fused_kernels, lengths",
    [(False, LENGTHS), (True, LENGTHS), (False, LENGTHS[:3])],  # [:3]: fewer rows than chunks
)
def test_chunked_training_pass_equals_the_one_piece_pass(
    tiny_config, monkeypatch, fused_kernels, lengths
):
    monkeypatch.setattr(kernels, "MIN_FUSED_WIDTH", 0)  # build the tiny model fused if asked
    model = _model(tiny_config, fused_kernels)
    assert all(block.fused_kernels == fused_kernels for block in model.encoder.blocks)
    inputs, labels, mask = _batch(lengths)
    whole, loss, grads = _run(model, inputs, labels, chunks=1)
    calls = []
    monkeypatch.setattr(
        encoder_module,
        "encode_in_chunks",
        lambda *args: calls.append(args[-1]) or length_chunks.encode_in_chunks(*args),
    )
    chunked, loss_k, grads_k = _run(model, inputs, labels, chunks=4)
    assert calls == [4, 4]  # the encoder alone and inside the tagger
    real = mask.astype(bool)
    for name in ("sequence_output", "layer_0"):
        assert chunked[name].shape == whole[name].shape
        np.testing.assert_allclose(chunked[name][real], whole[name][real], atol=2e-5)
        # The shortest row's chunk ran at a width below 32: zeros after that width.
        shortest = int(np.argmin(lengths))
        assert len(lengths) < 4 or not chunked[name][shortest, 16:].any()
    np.testing.assert_allclose(chunked["pooled_output"], whole["pooled_output"], atol=2e-5)
    assert abs(loss_k - loss) < 1e-5 and loss > 0.5
    for g, gk in zip(grads, grads_k):
        np.testing.assert_allclose(gk, g, atol=2e-5, rtol=1e-4)
    assert max(np.abs(g).max() for g in grads) > 1e-3  # a real gradient


def test_chunks_are_off_outside_training_and_not_serialized(tiny_config):
    model = _model(tiny_config, False)
    model.encoder.train_chunks = 4
    inputs, _, _ = _batch(LENGTHS)
    out = model.encoder(inputs, training=False)["sequence_output"].numpy()
    assert out[~_batch(LENGTHS)[2].astype(bool)].any()  # the one-piece pass: padding not 0
    assert "train_chunks" not in str(model.encoder.get_config())
    assert bert_tf.BertEncoder.from_config(model.encoder.get_config()).train_chunks == 1
