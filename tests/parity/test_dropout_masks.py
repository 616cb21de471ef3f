"""Dropout masks in training are what they must be (issue 19, item 1): drop rate = the
configured rate, a fresh mask every step, independent masks for every dropout site (layers,
attention probabilities vs residual branches) and every position, in the fused training
kernels (bert_tf/layers/fused.py) and in the embeddings' Keras dropout.

The fused kernels' masks are recovered from the random bits `fused._noise` draws (the very
bits the XLA kernels turn into the mask, `fused._keep_mask`); the embeddings' mask from its
output with and without training.
"""

import numpy as np
import pytest
import tensorflow as tf

import bert_tf
from bert_tf.layers import fused, kernels

RATE = 0.1


@pytest.fixture
def encoder(monkeypatch):
    monkeypatch.setattr(kernels, "MIN_FUSED_WIDTH", 0)  # the fused kernels, small model
    config = bert_tf.BertConfig.preset(
        "tiny",
        vocab_size=100,
        num_layers=2,
        hidden_size=64,
        num_heads=4,
        intermediate_size=128,
        hidden_dropout=RATE,
        attention_dropout=RATE,
        max_position_embeddings=64,
    )
    model = bert_tf.BertEncoder(config)
    assert all(b.fused_kernels for b in model.blocks)
    return model


@pytest.fixture
def inputs():
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 100, (4, 48)).astype("int32")
    return {
        "input_word_ids": ids,
        "input_mask": np.ones_like(ids),
        "input_type_ids": np.zeros_like(ids),
    }


def _fused_masks(encoder, inputs, monkeypatch):
    """One training forward pass -> [drop mask (bool, the site's shape)] per fused site."""
    recorded = []
    real = fused._noise

    def noise(seed, like, rate):
        bits = real(seed, like, rate)
        recorded.append((bits, like))
        return bits

    monkeypatch.setattr(fused, "_noise", noise)
    encoder(inputs, training=True)
    monkeypatch.setattr(fused, "_noise", real)
    return [fused._keep_mask(bits, RATE, like).numpy() == 0 for bits, like in recorded]


def _check_rate(drop):
    sigma = np.sqrt(RATE * (1 - RATE) / drop.size)
    assert abs(drop.mean() - RATE) < 4 * sigma, drop.mean()


def _check_independent(a, b):
    """P(both dropped) = rate^2 for independent masks (identical masks give rate)."""
    both = (a & b).mean()
    sigma = np.sqrt(RATE**2 * (1 - RATE**2) / a.size)
    assert abs(both - RATE**2) < 5 * sigma, both


def test_fused_masks_rate_fresh_and_independent(encoder, inputs, monkeypatch):
    step1 = _fused_masks(encoder, inputs, monkeypatch)
    step2 = _fused_masks(encoder, inputs, monkeypatch)
    # per layer: attention probs, attention branch (add+LN), feed-forward branch (add+LN)
    assert len(step1) == len(step2) == 3 * len(encoder.blocks)
    for drop in step1 + step2:
        _check_rate(drop)
    for a, b in zip(step1, step2):  # fresh every step
        _check_independent(a, b)
    same_shape = [m for m in step1 if m.ndim == 3]  # residual branches [B, T, H]
    for i in range(len(same_shape)):  # every site its own mask
        for j in range(i + 1, len(same_shape)):
            _check_independent(same_shape[i], same_shape[j])
    probs = step1[0]  # [B, N, T, T]
    _check_independent(probs[:, :, :-1], probs[:, :, 1:])  # neighbouring query positions
    _check_independent(probs[:2], probs[2:])  # rows of the batch
    _check_independent(probs[:, :2], probs[:, 2:])  # heads
    branch = step1[1]  # [B, T, H]
    _check_independent(branch[:, :-1], branch[:, 1:])  # neighbouring positions
    _check_independent(branch[..., :-1], branch[..., 1:])  # neighbouring features
    per_position = branch.mean(axis=(0, 2))  # no position dropped more
    assert per_position.max() < RATE + 5 * np.sqrt(RATE * (1 - RATE) / (4 * 64))


@pytest.mark.slow
def test_fresh_masks_inside_a_compiled_training_step(encoder, inputs):
    """Under tf.function (as the Trainer runs), every call draws new masks: the dropout
    seed generators advance and two calls differ; without dropout they would agree."""
    step = tf.function(lambda x: encoder(x, training=True)["sequence_output"])
    generators = [b.output_dropout.seed_generator for b in encoder.blocks]
    before = [g.state.numpy().copy() for g in generators]
    first, second = step(inputs).numpy(), step(inputs).numpy()
    after = [g.state.numpy() for g in generators]
    assert all((a != b).any() for a, b in zip(after, before))
    assert np.abs(first - second).max() > 1e-2
    seeds = [a[0] for a in after]
    assert len(set(seeds)) == len(seeds), seeds  # a different stream per layer


def test_embedding_dropout_mask(encoder, inputs):
    """The embeddings' Keras dropout: rate, fresh per call, scaled by 1 / (1 - rate)."""
    emb = encoder.embeddings
    ids, types = inputs["input_word_ids"], inputs["input_type_ids"]
    clean = emb(ids, types, training=False).numpy()
    a = emb(ids, types, training=True).numpy()
    b = emb(ids, types, training=True).numpy()
    drop_a, drop_b = a == 0, b == 0
    _check_rate(drop_a)
    _check_independent(drop_a, drop_b)
    np.testing.assert_allclose(a[~drop_a], clean[~drop_a] / (1 - RATE), rtol=1e-5)
