"""Packing: [CLS] a [SEP] b [SEP], original longest-first truncation, padding."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_tf.text import packer
from tests.text import reference_tokenization as ref


def _simulate(lengths, budget):
    """Pop from the longest, ties from the later segment (the original for two segments)."""
    lengths = list(lengths)
    while sum(lengths) > budget:
        longest = max(lengths)
        i = max(j for j, n in enumerate(lengths) if n == longest)
        lengths[i] -= 1
    return lengths


def test_trim_lengths_matches_original_truncate_seq_pair():
    cases = list(itertools.product(range(0, 13), range(0, 13)))
    for budget in (0, 1, 5, 8, 30):
        got = packer.trim_lengths(tf.constant(cases), budget).numpy().tolist()
        for (la, lb), (ka, kb) in zip(cases, got):
            a, b = list(range(la)), list(range(lb))
            ref.truncate_seq_pair(a, b, budget)
            assert (ka, kb) == (len(a), len(b)), (la, lb, budget)


def test_trim_lengths_three_segments():
    cases = list(itertools.product(range(0, 7), repeat=3))
    got = packer.trim_lengths(tf.constant(cases), 7).numpy().tolist()
    assert got == [_simulate(c, 7) for c in cases]


def test_pack_pair_hand_computed():
    a = tf.ragged.constant([[11, 12, 13, 14, 15], [21], [31, 32]])
    b = tf.ragged.constant([[41, 42], [51, 52, 53, 54, 55, 56], []])
    out = packer.pack_inputs([a, b], seq_length=8, cls_id=101, sep_id=102)
    # Budget 5: (5, 2) -> (3, 2); (1, 6) -> (1, 4); (2, 0) fits.
    assert out["input_word_ids"].numpy().tolist() == [
        [101, 11, 12, 13, 102, 41, 42, 102],
        [101, 21, 102, 51, 52, 53, 54, 102],
        [101, 31, 32, 102, 102, 0, 0, 0],
    ]
    assert out["input_type_ids"].numpy().tolist() == [
        [0, 0, 0, 0, 0, 1, 1, 1],
        [0, 0, 0, 1, 1, 1, 1, 1],
        [0, 0, 0, 0, 1, 0, 0, 0],
    ]
    assert out["input_mask"].numpy().tolist() == [[1] * 8, [1] * 8, [1, 1, 1, 1, 1, 0, 0, 0]]
    assert all(v.dtype == tf.int32 for v in out.values())


def test_pack_single_truncates_and_pads():
    a = tf.ragged.constant([[5, 6, 7, 8, 9, 10], [5]])
    out = packer.pack_inputs([a], seq_length=6, cls_id=2, sep_id=3)
    assert out["input_word_ids"].numpy().tolist() == [[2, 5, 6, 7, 8, 3], [2, 5, 3, 0, 0, 0]]
    assert out["input_type_ids"].numpy().sum() == 0
    longest = packer.pack_inputs(
        tf.ragged.constant([[5], [5, 6]]), seq_length=6, cls_id=2, sep_id=3, pad_to_longest=True
    )
    assert longest["input_word_ids"].numpy().tolist() == [[2, 5, 3, 0], [2, 5, 6, 3]]
    assert longest["input_mask"].numpy().tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    rounded = packer.pack_inputs(
        tf.ragged.constant([[5], [5, 6]]),
        seq_length=6,
        cls_id=2,
        sep_id=3,
        pad_to_longest=True,
        pad_to_multiple_of=5,
    )
    assert rounded["input_word_ids"].numpy().tolist() == [[2, 5, 3, 0, 0], [2, 5, 6, 3, 0]]
    capped = packer.pack_inputs(
        tf.ragged.constant([[5, 6, 7, 8]]),
        seq_length=6,
        cls_id=2,
        sep_id=3,
        pad_to_longest=True,
        pad_to_multiple_of=4,
    )
    assert capped["input_type_ids"].shape == (1, 6)  # 6 -> 8, capped at 6


def test_pack_words_input_and_errors():
    words = tf.ragged.constant([[[5, 6], [7]], [[8]]])
    out = packer.pack_inputs([words], seq_length=5, cls_id=2, sep_id=3)
    assert out["input_word_ids"].numpy().tolist() == [[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]]
    with pytest.raises(ValueError, match="too short"):
        packer.pack_inputs([words, words], seq_length=2, cls_id=2, sep_id=3)


def test_packer_layer_in_tf_function_and_config():
    layer = packer.BertPacker(seq_length=7, cls_id=2, sep_id=3, pad_id=0, pad_to_multiple_of=4)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert clone.get_config() == layer.get_config()

    @tf.function(
        input_signature=[
            tf.RaggedTensorSpec([None, None], tf.int32),
            tf.RaggedTensorSpec([None, None], tf.int32),
        ]
    )
    def run(a, b):
        return clone([a, b])

    out = run(tf.ragged.constant([[9] * 10], tf.int32), tf.ragged.constant([[8] * 3], tf.int32))
    np.testing.assert_array_equal(out["input_word_ids"], [[2, 9, 9, 3, 8, 8, 3]])
    static = run.get_concrete_function().structured_outputs["input_word_ids"].shape
    assert static.as_list() == [None, 7]  # seq_length is static in the graph


def test_waterfall_keeps_the_first_segment_whole():
    cases = list(itertools.product(range(0, 9), range(0, 9)))
    got = packer.waterfall_lengths(tf.constant(cases), 6).numpy().tolist()
    assert got == [[min(a, 6), min(b, max(6 - a, 0))] for a, b in cases]
    out = packer.pack_inputs(
        [tf.ragged.constant([[5, 6, 7]]), tf.ragged.constant([[8, 9]])],
        seq_length=6,
        cls_id=2,
        sep_id=3,
        trimmer="waterfall",
    )
    assert out["input_word_ids"].numpy().tolist() == [[2, 5, 6, 7, 3, 3]]  # b: no room


def test_pack_row_is_pack_inputs_for_one_example():
    """The dense batch-1 form (TFLite) packs exactly as the ragged batch form, both trimmers,
    one and two segments, inside a tf.function with the length as a tensor too."""
    rng = np.random.default_rng(0)
    row = tf.function(lambda a, b, n, trimmer: packer.pack_row([a, b], n, 2, 3, trimmer))
    for trimmer in ("longest_first", "waterfall"):
        for la, lb in itertools.product((0, 3, 9), repeat=2):
            a, b = (rng.integers(5, 50, n).astype(np.int32) for n in (la, lb))
            want = packer.pack_inputs(
                [tf.ragged.constant([a], tf.int32), tf.ragged.constant([b], tf.int32)],
                9,
                2,
                3,
                pad_to_longest=True,
                trimmer=trimmer,
            )
            ids, types = row(tf.constant(a), tf.constant(b), tf.constant(9), trimmer)
            np.testing.assert_array_equal(ids, want["input_word_ids"][0])
            np.testing.assert_array_equal(types, want["input_type_ids"][0])
        ids, types = packer.pack_row([tf.constant([7, 8, 9])], 4, 2, 3, trimmer)
        assert ids.numpy().tolist() == [2, 7, 8, 3] and types.numpy().tolist() == [0] * 4


def test_seq_length_tensor_and_empty_batch():
    """A tensor seq_length (TF Hub's bert_pack_inputs) pads to it and is checked in the
    graph; pad_to_longest never packs narrower than [CLS] + the [SEP]s, even for no rows."""
    a = tf.ragged.constant([[5, 6, 7]], tf.int32)
    out = packer.pack_inputs([a, a], tf.constant(6), 2, 3)
    assert out["input_word_ids"].numpy().tolist() == [[2, 5, 6, 3, 5, 3]]
    with pytest.raises(tf.errors.InvalidArgumentError, match="seq_length too short"):
        packer.pack_inputs([a, a], tf.constant(2), 2, 3)
    empty = tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32), tf.zeros([0], tf.int64))
    for n in (1, 2):
        out = packer.pack_inputs([empty] * n, 8, 2, 3, pad_to_longest=True)
        assert out["input_word_ids"].shape == (0, n + 1)
