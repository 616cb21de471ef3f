"""Masked-LM masking: static (Python, creation time) and dynamic (TF, per batch)."""

import random

import numpy as np
import tensorflow as tf

from bert_tf.text import masking

PAD, UNK, CLS, SEP, MASK = range(5)
SPECIAL = frozenset({PAD, UNK, CLS, SEP, MASK})
V = 1000


def _batch(rows=256, length=64, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.zeros((rows, length), np.int32)
    mask = np.zeros((rows, length), np.int32)
    for r in range(rows):
        n = int(rng.integers(8, length + 1))
        ids[r, :n] = rng.integers(5, V, n)
        ids[r, 0], ids[r, n - 1] = CLS, SEP
        ids[r, n // 2] = SEP
        mask[r, :n] = 1
    return ids, mask


def test_num_to_predict_matches_original_rounding():
    assert masking.num_to_predict(128, 0.15, 20) == 19  # round(19.2)
    assert masking.num_to_predict(3, 0.15, 20) == 1  # at least one
    assert masking.num_to_predict(512, 0.15, 76) == 76
    assert masking.num_to_predict(512, 0.15, 20) == 20  # capped


def test_static_masking_counts_and_never_specials():
    rng = random.Random(0)
    shown_all, labels_all = [], []
    for _ in range(400):
        n = rng.randint(10, 60)
        ids = [CLS] + [rng.randrange(5, V) for _ in range(n)] + [SEP]
        out, pos, labels = masking.create_masked_lm_predictions(
            ids,
            rng,
            masked_lm_prob=0.15,
            max_predictions_per_seq=20,
            vocab_size=V,
            mask_id=MASK,
            special_ids=SPECIAL,
        )
        assert len(pos) == min(20, max(1, round(len(ids) * 0.15)))
        assert pos == sorted(set(pos)) and 0 not in pos and len(ids) - 1 not in pos
        assert labels == [ids[p] for p in pos]
        assert [o for i, o in enumerate(out) if i not in pos] == [
            t for i, t in enumerate(ids) if i not in pos
        ]
        shown_all += [out[p] for p in pos]
        labels_all += labels
    shown, labels = np.array(shown_all), np.array(labels_all)
    assert abs(np.mean(shown == MASK) - 0.8) < 0.03
    assert abs(np.mean(shown == labels) - 0.1) < 0.02
    assert not np.isin(shown[shown != MASK], list(SPECIAL)).any()


def test_static_whole_word_groups():
    # ids 100+ are "##" pieces: words are [10,100,101] [11] [12,102] ...
    ids = [CLS, 10, 100, 101, 11, 12, 102, SEP, 13, 103, 104, 105, SEP]
    for seed in range(30):
        _, pos, _ = masking.create_masked_lm_predictions(
            ids,
            random.Random(seed),
            masked_lm_prob=0.3,
            max_predictions_per_seq=6,
            vocab_size=V,
            mask_id=MASK,
            special_ids=SPECIAL,
            is_continuation=lambda t: t >= 100,
            whole_word_masking=True,
        )
        words = [{1, 2, 3}, {4}, {5, 6}, {8, 9, 10, 11}]
        for w in words:
            assert w <= set(pos) or not (w & set(pos)), (seed, pos)
        assert len(pos) <= 4  # round(13 * 0.3) = 4, whole words only


def test_dynamic_mask_statistics_and_layout():
    ids, mask = _batch()
    out = masking.dynamic_mask(
        ids,
        mask,
        (7, 0),
        vocab_size=V,
        mask_id=MASK,
        special_ids=tuple(SPECIAL),
        masked_lm_prob=0.15,
        max_predictions_per_seq=10,
    )
    shown_ids = out["input_word_ids"].numpy()
    pos = out["masked_lm_positions"].numpy()
    labels = out["masked_lm_ids"].numpy()
    w = out["masked_lm_weights"].numpy() > 0
    n = mask.sum(1)
    np.testing.assert_array_equal(w.sum(1), np.minimum(10, np.maximum(1, np.round(n * 0.15))))
    assert (labels[~w] == 0).all() and (pos[~w] == 0).all()
    shown, picked = [], []
    for r in range(len(ids)):
        p = pos[r][w[r]]
        assert (np.diff(p) > 0).all() and (p < n[r]).all()
        assert not np.isin(ids[r, p], list(SPECIAL)).any()  # never a special token
        np.testing.assert_array_equal(labels[r][w[r]], ids[r, p])
        untouched = np.ones(ids.shape[1], bool)
        untouched[p] = False
        np.testing.assert_array_equal(shown_ids[r, untouched], ids[r, untouched])
        shown += shown_ids[r, p].tolist()
        picked += ids[r, p].tolist()
    shown, picked = np.array(shown), np.array(picked)
    assert abs(w.sum() / n.sum() - 0.15) < 0.01
    assert abs(np.mean(shown == MASK) - 0.8) < 0.03
    assert abs(np.mean(shown == picked) - 0.1) < 0.025
    assert abs(np.mean((shown != MASK) & (shown != picked)) - 0.1) < 0.025
    assert not np.isin(shown[shown != MASK], list(SPECIAL)).any()


def test_dynamic_mask_deterministic_per_seed_and_unmask_inverts():
    ids, mask = _batch(rows=8)
    kw = dict(vocab_size=V, mask_id=MASK, special_ids=tuple(SPECIAL), max_predictions_per_seq=12)
    a = masking.dynamic_mask(ids, mask, (1, 5), **kw)
    b = masking.dynamic_mask(ids, mask, (1, 5), **kw)
    c = masking.dynamic_mask(ids, mask, (1, 6), **kw)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["masked_lm_positions"], c["masked_lm_positions"])
    restored = masking.unmask(
        a["input_word_ids"], a["masked_lm_positions"], a["masked_lm_ids"], a["masked_lm_weights"]
    )
    np.testing.assert_array_equal(restored, ids)
    # P larger than T pads with zero-weight slots.
    short = masking.dynamic_mask(
        ids[:, :6],
        mask[:, :6],
        (0, 0),
        vocab_size=V,
        mask_id=MASK,
        special_ids=tuple(SPECIAL),
        max_predictions_per_seq=9,
    )
    assert short["masked_lm_positions"].shape == (8, 9)
    assert (short["masked_lm_weights"].numpy()[:, 6:] == 0).all()


def test_dynamic_mask_in_tf_function():
    ids, mask = _batch(rows=4)
    f = tf.function(
        lambda i, m, s: masking.dynamic_mask(
            i,
            m,
            s,
            vocab_size=V,
            mask_id=MASK,
            special_ids=(CLS, SEP, PAD),
            max_predictions_per_seq=8,
        )
    )
    out = f(tf.constant(ids), tf.constant(mask), tf.constant([3, 4], tf.int64))
    eager = masking.dynamic_mask(
        ids,
        mask,
        (3, 4),
        vocab_size=V,
        mask_id=MASK,
        special_ids=(CLS, SEP, PAD),
        max_predictions_per_seq=8,
    )
    np.testing.assert_array_equal(out["input_word_ids"], eager["input_word_ids"])


def test_greedy_take_matches_the_original_loop():
    """The original: stop at the target, skip a word that would overshoot it."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 5, size=(64, 12)).astype(np.int32)
    valid = rng.random((64, 12)) < 0.8
    target = rng.integers(1, 9, size=64).astype(np.int32)
    got = masking.greedy_take(tf.constant(lengths), tf.constant(valid), tf.constant(target)).numpy()
    for r in range(64):
        count, expected = 0, []
        for k in range(12):
            take = bool(valid[r, k]) and count < target[r] and count + lengths[r, k] <= target[r]
            count += lengths[r, k] if take else 0
            expected.append(take)
        assert got[r].tolist() == expected, r


def test_dynamic_whole_word_masking():
    """Ids >= 500 are "##" pieces: every masked word is masked whole, specials never, the
    count never exceeds the target, and over many rows the rate stays near 15%."""
    rng = np.random.default_rng(1)
    rows, length = 128, 48
    ids = np.zeros((rows, length), np.int32)
    mask = np.zeros((rows, length), np.int32)
    words_of = []
    for r in range(rows):
        pieces, words = [CLS], []
        while len(pieces) < length - 4:
            n = int(rng.integers(1, 4))
            words.append(list(range(len(pieces), len(pieces) + n)))
            pieces += [int(rng.integers(5, 500))] + [int(x) for x in rng.integers(500, V, n - 1)]
        pieces = pieces[: length - 1] + [SEP]
        words = [w for w in words if w[-1] < length - 1]
        ids[r, : len(pieces)] = pieces
        mask[r, : len(pieces)] = 1
        words_of.append(words)
    continuation = [i >= 500 for i in range(V)]
    out = masking.dynamic_mask(
        ids,
        mask,
        (5, 1),
        vocab_size=V,
        mask_id=MASK,
        special_ids=tuple(SPECIAL),
        masked_lm_prob=0.15,
        max_predictions_per_seq=10,
        continuation=continuation,
    )
    pos = out["masked_lm_positions"].numpy()
    w = out["masked_lm_weights"].numpy() > 0
    target = np.minimum(10, np.maximum(1, np.round(mask.sum(1) * 0.15)))
    assert (w.sum(1) <= target).all()
    assert w.sum() > 0.9 * target.sum()  # short words fill the gaps
    partial_words = 0
    for r in range(rows):
        masked = set(pos[r][w[r]].tolist())
        assert not (masked & {0, int(mask[r].sum()) - 1})  # [CLS], [SEP]
        for word in words_of[r]:
            partial_words += bool(masked & set(word)) and not set(word) <= masked
        assert masked <= {i for word in words_of[r] for i in word}
    assert partial_words == 0
    np.testing.assert_array_equal(
        masking.unmask(
            out["input_word_ids"],
            out["masked_lm_positions"],
            out["masked_lm_ids"],
            out["masked_lm_weights"],
        ),
        ids,
    )
