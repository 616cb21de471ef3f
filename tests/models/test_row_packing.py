"""The encoder's packed training pass (bert_tf/models/row_packing.py) computes the same outputs
at real tokens, the same loss and the same gradients as the padded pass, on the plain and on
the fused training kernels, inside a tf.function with dynamic shapes as the Trainer runs it;
the packing plan is a valid first-fit decreasing packing."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

import bert_tf
from bert_tf.layers import kernels
from bert_tf.models import encoder as encoder_module
from bert_tf.models import row_packing

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


def _run(model, inputs, labels, packing):
    model.encoder.train_packing = packing

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
            # the pooled output enters the loss too (classification heads read it)
            loss = tf.reduce_sum(ce * weight) / tf.reduce_sum(weight)
            loss += 0.1 * tf.reduce_mean(tf.square(outputs["pooled_output"]))
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


@pytest.mark.parametrize("fused_kernels, row_width", [(False, 48), (True, 16)])
def test_packed_training_pass_equals_the_padded_pass(
    tiny_config, monkeypatch, fused_kernels, row_width
):
    monkeypatch.setattr(kernels, "MIN_FUSED_WIDTH", 0)  # build the tiny model fused if asked
    model = _model(tiny_config, fused_kernels)
    assert all(block.fused_kernels == fused_kernels for block in model.encoder.blocks)
    inputs, labels, mask = _batch(LENGTHS)
    padded, loss, grads = _run(model, inputs, labels, packing=0)
    widths = []
    monkeypatch.setattr(
        encoder_module,
        "encode_packed",
        lambda encode, x, w: widths.append(w) or row_packing.encode_packed(encode, x, w),
    )
    packed, loss_p, grads_p = _run(model, inputs, labels, packing=row_width)
    assert widths == [row_width] * 2  # the encoder alone and inside the tagger, both packed
    real = mask.astype(bool)
    for name in ("sequence_output", "layer_0"):
        assert packed[name].shape == padded[name].shape
        np.testing.assert_allclose(packed[name][real], padded[name][real], atol=2e-5)
        assert not packed[name][~real].any()  # padding positions are 0
    np.testing.assert_allclose(packed["pooled_output"], padded["pooled_output"], atol=2e-5)
    assert abs(loss_p - loss) < 1e-5 and loss > 0.5
    for g, gp in zip(grads, grads_p):
        np.testing.assert_allclose(gp, g, atol=2e-5, rtol=1e-4)
    assert max(np.abs(g).max() for g in grads) > 1e-3  # a real gradient


@pytest.mark.parametrize("row_width, shape", [(16, [5, 32]), (32, [5, 32]), (48, [3, 48])])
def test_packed_rows_hold_each_sequence_at_its_positions(row_width, shape):
    """What `encode` sees and what comes back: LENGTHS (128 tokens, padded to 32) packed into
    rows of max(row_width, 32) by first-fit decreasing (by hand: 5 rows of 32, 3 of 48);
    each sequence's ids at positions 0..n-1, and its outputs back at its own row."""
    inputs, _, mask = _batch(LENGTHS)
    seen = {}

    def encode(packed):
        seen.update({k: v.numpy() for k, v in packed.items()})
        features = [packed["input_word_ids"], packed["input_position_ids"]]
        return {"encoder_outputs": [tf.cast(tf.stack(features, -1), tf.float32)]}  # [R, W, 2]

    (out,) = row_packing.encode_packed(encode, inputs, row_width)
    assert list(seen["input_word_ids"].shape) == shape
    assert (seen["input_sequence_ids"] > 0).sum() == sum(LENGTHS)
    real = mask.astype(bool)
    np.testing.assert_array_equal(out[..., 0].numpy()[real], inputs["input_word_ids"].numpy()[real])
    positions = np.broadcast_to(np.arange(32), mask.shape)
    np.testing.assert_array_equal(out[..., 1].numpy()[real], positions[real])
    assert not out.numpy()[~real].any()


@pytest.mark.parametrize(
    "lengths, width",
    [(LENGTHS, 32), ([32, 32, 32], 32), ([1], 8), ([5, 3, 8, 8, 2, 6, 1, 7], 8), ([0, 4, 0], 8)],
)
def test_pack_plan_is_a_first_fit_decreasing_packing(lengths, width):
    row, offset, used = (
        x.numpy() for x in row_packing.pack_plan(tf.constant(lengths, tf.int32), width)
    )
    cells = set()
    for r, o, n in zip(row, offset, lengths):
        assert 0 <= r < used and o >= 0 and o + n <= width
        cells |= {(r, o + j) for j in range(n)}
    assert len(cells) == sum(lengths)  # no two sequences share a position
    bound = -(-sum(lengths) // width)  # no packing needs fewer rows
    assert bound <= used <= 11 / 9 * bound + 1  # first-fit decreasing's guarantee
    if lengths == LENGTHS:  # 128 tokens in rows of 32, first-fit decreasing by hand
        assert used == 5 and row[np.argmax(lengths)] == 0


def test_packing_is_off_outside_training_and_not_serialized(tiny_config):
    model = _model(tiny_config, False)
    model.encoder.train_packing = 32
    inputs, _, mask = _batch(LENGTHS)
    out = model.encoder(inputs, training=False)["sequence_output"].numpy()
    assert out[~mask.astype(bool)].any()  # the padded pass: padding positions not 0
    assert "train_packing" not in str(model.encoder.get_config())
    assert bert_tf.BertEncoder.from_config(model.encoder.get_config()).train_packing == 0
