"""bert_tf.data.pretraining.packing: best-fit decreasing places every sequence once within the
limits, the packed row layout holds the sequences' exact values, and tf.data packing of a
dynamically masked stream."""

import collections

import numpy as np
import pytest
import tensorflow as tf

from bert_tf.data.pretraining import packed_dataset, packing
from bert_tf.data.pretraining.packing import PackingConfig, PackingError


def test_best_fit_decreasing_known_answer_and_limits():
    config = PackingConfig(max_seq_length=10, max_sequences_per_row=3, max_predictions_per_row=4)
    lengths = [6, 4, 3, 3, 2, 2, 10, 1]
    rows = packing.best_fit_decreasing(lengths, [1] * len(lengths), config)
    # longest first: 10 alone; 6 + 4; 3 + 3 + 2 (third seq caps the row); 2 + 1
    assert rows == [[6], [0, 1], [2, 3, 4], [5, 7]]
    # the best (tightest) fit, not the first: 5 goes to the row with 5 free, not the one with 7
    rows = packing.best_fit_decreasing([3, 5, 5], [0, 0, 0], PackingConfig(8, 3, 4))
    assert rows == [[1, 0], [2]]
    # the prediction budget of a row is a limit too
    rows = packing.best_fit_decreasing([2, 2, 2], [3, 3, 1], PackingConfig(10, 3, 4))
    assert rows == [[0, 2], [1]]


def test_best_fit_decreasing_random_buffers_respect_every_limit():
    rng = np.random.default_rng(0)
    config = PackingConfig(128, 3, 23)
    lengths = rng.integers(5, 129, 500)
    preds = np.minimum(20, np.maximum(1, np.round(lengths * 0.15))).astype(int)
    rows = packing.best_fit_decreasing(lengths, preds, config)
    placed = sorted(i for row in rows for i in row)
    assert placed == list(range(500))
    for row in rows:
        assert len(row) <= 3 and lengths[row].sum() <= 128 and preds[row].sum() <= 23
    # near the lower bound of rows for these limits
    assert len(rows) <= 1.15 * max(lengths.sum() / 128, 500 / 3)


def test_bad_sequences_and_settings_are_one_line_errors():
    with pytest.raises(PackingError, match="130 tokens does not fit max_seq_length=128"):
        packing.best_fit_decreasing([130], [1], PackingConfig(128))
    with pytest.raises(PackingError, match="max_predictions_per_row=2"):
        packing.best_fit_decreasing([10], [3], PackingConfig(128, 3, 2))
    with pytest.raises(PackingError, match="max_sequences_per_row must be >= 1"):
        PackingConfig(128, 0).validate()


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"max_sequences_per_row": 0},
            "--max_sequences_per_row: expected an integer in [1, 25] "
            "(a row of --max_seq_length=128 tokens holds at most that many sequences of >= 5 "
            "tokens, [CLS] a [SEP] b [SEP]), got 0",
        ),
        ({"max_sequences_per_row": -1}, "--max_sequences_per_row: expected an integer in [1, 25]"),
        ({"max_sequences_per_row": 26}, "--max_sequences_per_row: expected an integer in [1, 25]"),
        (
            {"max_predictions_per_row": 0},
            "--max_predictions_per_row: expected an integer in "
            "[20, 60] (at least one sequence's --max_predictions_per_seq=20, at most what 3 "
            "sequences or 128 tokens can carry); leave it unset for the default 23, got 0",
        ),
        (
            {"max_predictions_per_row": -1},
            "--max_predictions_per_row: expected an integer in [20, 60]",
        ),
        (
            {"max_predictions_per_row": 1},
            "--max_predictions_per_row: expected an integer in [20, 60]",
        ),
        (
            {"max_predictions_per_row": 61},
            "--max_predictions_per_row: expected an integer in [20, 60]",
        ),
        (
            {"buffer_size": 0},
            "--pack_buffer_size: expected an integer >= 1 (sequences packed together), got 0",
        ),
        ({"max_sequences_per_row": 2.0}, "--max_sequences_per_row: expected an integer"),
    ],
)
def test_packing_settings_refused_before_any_data_naming_the_flag(changes, message):
    """Checked from the settings alone (no records): 0 is not "the default", and the bounds
    are what a row of T tokens can hold."""
    settings = {
        "max_sequences_per_row": 3,
        "max_predictions_per_row": None,
        "buffer_size": 8,
        **changes,
    }
    with pytest.raises(PackingError) as e:
        packing.check_settings(128, 20, **settings)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_packing_settings_bounds_hold_at_a_short_length():
    # seq 32, 100000 per row / per row sequences: the records grew 91 KB -> 105 MB before
    with pytest.raises(
        PackingError,
        match=r"max_sequences_per_row: expected an integer in "
        r"\[1, 6\]",
    ):
        packing.check_settings(32, 5, 100_000)
    with pytest.raises(
        PackingError,
        match=r"max_predictions_per_row: expected an integer in "
        r"\[5, 15\]",
    ):
        packing.check_settings(32, 5, 3, 100_000)
    assert packing.check_settings(32, 5, 6, 30) == PackingConfig(32, 6, 30)  # 6 * 5 <= 32
    assert packing.check_settings(128, 20) == PackingConfig(128, 3, 23)  # the default
    assert packing.check_settings(128, 20, 3, 60, 1) == PackingConfig(128, 3, 60)


def test_default_max_predictions_per_row():
    assert packing.default_max_predictions_per_row(128, 20, 3) == 23
    assert packing.default_max_predictions_per_row(512, 80, 3) == 80  # ceil(76.8)+3 = 80
    assert packing.default_max_predictions_per_row(128, 5, 3) == 15  # <= S * P
    assert packing.default_max_predictions_per_row(128, 20, 1) == 20  # >= P


def _examples(lengths, t=12, p=3):
    n = len(lengths)
    ex = {k: np.zeros((n, t), np.int32) for k in ("input_ids", "input_mask", "segment_ids")}
    ex["masked_lm_positions"] = np.zeros((n, p), np.int32)
    ex["masked_lm_ids"] = np.zeros((n, p), np.int32)
    ex["masked_lm_weights"] = np.zeros((n, p), np.float32)
    ex["next_sentence_labels"] = np.arange(n, dtype=np.int32).reshape(n, 1) % 2
    for i, length in enumerate(lengths):
        ex["input_ids"][i, :length] = 100 * (i + 1) + np.arange(length)
        ex["input_mask"][i, :length] = 1
        ex["segment_ids"][i, length // 2 : length] = 1
        m = min(p, length - 1)
        ex["masked_lm_positions"][i, :m] = np.arange(1, m + 1)
        ex["masked_lm_ids"][i, :m] = 7 + i
        ex["masked_lm_weights"][i, :m] = 1.0
    return ex


def test_pack_examples_layout():
    ex = _examples([7, 5, 3])
    out = packing.pack_examples(ex, PackingConfig(12, 3, 6))
    assert out["input_ids"].shape == (2, 12)
    # row 0: seq 0 (7 tokens) + seq 1 (5 tokens); row 1: seq 2 (3 tokens) + padding
    np.testing.assert_array_equal(
        out["input_ids"][0], list(range(100, 107)) + list(range(200, 205))
    )
    np.testing.assert_array_equal(out["sequence_ids"][0], [1] * 7 + [2] * 5)
    np.testing.assert_array_equal(out["position_ids"][0], list(range(7)) + list(range(5)))
    np.testing.assert_array_equal(out["segment_ids"][0], [0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(out["input_mask"][1], [1] * 3 + [0] * 9)
    np.testing.assert_array_equal(out["sequence_ids"][1], [1] * 3 + [0] * 9)
    np.testing.assert_array_equal(out["masked_lm_positions"][0], [1, 2, 3, 8, 9, 10])
    np.testing.assert_array_equal(out["masked_lm_ids"][0], [7, 7, 7, 8, 8, 8])
    np.testing.assert_array_equal(out["masked_lm_weights"][1], [1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(out["next_sentence_positions"], [[0, 7, 0], [0, 0, 0]])
    np.testing.assert_array_equal(out["next_sentence_labels"], [[0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(out["next_sentence_weights"], [[1, 1, 0], [1, 0, 0]])
    assert packing.padding_share(ex["input_mask"]) == pytest.approx(1 - 15 / 36)
    assert packing.padding_share(out["input_mask"]) == pytest.approx(1 - 15 / 24)


def test_pack_batch_in_tf_data_keeps_every_token_and_label():
    lengths = np.random.default_rng(3).integers(3, 13, 40)
    ex = _examples(lengths)
    config = PackingConfig(12, 3, 9)
    ds = tf.data.Dataset.from_tensor_slices(ex).batch(16)
    ds = ds.map(lambda x: packed_dataset.pack_batch(x, config)).unbatch().batch(4)
    ds = ds.map(packed_dataset.to_packed_inputs)
    tokens, nsp, rows = collections.Counter(), collections.Counter(), 0
    for features, labels in ds:
        assert features["input_sequence_ids"].shape[1:] == (12,)
        assert labels["next_sentence_labels"].shape[1:] == (3,)
        ids = features["input_word_ids"].numpy()
        tokens.update(ids[features["input_mask"].numpy() == 1].tolist())
        w = labels["next_sentence_weights"].numpy() > 0
        nsp.update(labels["next_sentence_labels"].numpy()[w].tolist())
        rows += ids.shape[0]
    assert tokens == collections.Counter(ex["input_ids"][ex["input_mask"] == 1].tolist())
    assert nsp == collections.Counter(ex["next_sentence_labels"][:, 0].tolist())
    assert np.ceil(lengths.sum() / 12) <= rows <= 0.75 * 40
