"""Official SQuAD EM/F1 against hand-computed values, incl. v2.0 no-answer handling."""

import pytest

from bert_tf.evaluation import squad as s


def test_normalization():
    assert s.normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert s.normalize_answer("an apple a day") == "apple day"
    assert s.normalize_answer("theater") == "theater"  # articles only as whole words


def test_f1_and_exact():
    # pred [cat, sat] vs gold [cat, sat, down]: P = 1, R = 2/3 -> F1 = 0.8
    assert s.f1_score("the cat sat", "a cat sat down") == pytest.approx(0.8)
    assert s.exact_match_score("The Cat.", "cat") == 1.0
    assert s.f1_score("", "") == 1.0 and s.f1_score("x", "") == 0.0


def test_v1_max_over_gold():
    r = s.evaluate(
        {"a": ["Denver Broncos", "Broncos"], "b": ["1990"]}, {"a": "the Broncos", "b": "in 1991"}
    )
    # a: EM 1 (vs "Broncos"); b: EM 0, F1 0 ("in", "1991" vs "1990")
    assert r["exact_match"] == pytest.approx(50.0)
    assert r["f1"] == pytest.approx(50.0)
    assert "HasAns_exact" not in r


GOLD_V2 = {"q1": ["Paris"], "q2": [], "q3": ["John Smith", "Smith"]}


def test_v2_split():
    r = s.evaluate(GOLD_V2, {"q1": "paris.", "q2": "", "q3": "Mr Smith"})
    # q3: F1 max(0.5 vs "John Smith", 2/3 vs "Smith"), EM 0
    assert r["exact_match"] == pytest.approx(200 / 3)
    assert r["f1"] == pytest.approx(100 * (1 + 1 + 2 / 3) / 3)
    assert r["HasAns_exact"] == pytest.approx(50.0)
    assert r["HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert (r["NoAns_exact"], r["NoAns_f1"], r["NoAns_total"]) == (100.0, 100.0, 1)
    r = s.evaluate(GOLD_V2, {"q1": "Paris", "q2": "London", "q3": "Smith"})
    assert r["NoAns_exact"] == 0.0 and r["HasAns_exact"] == 100.0


def test_v2_null_threshold_and_best_threshold():
    preds = {"q1": "Paris", "q2": "London", "q3": "Smith"}
    na = {"q1": -2.0, "q2": 3.0, "q3": 1.0}
    r = s.evaluate(GOLD_V2, preds, na_probs=na, na_prob_threshold=0.0)
    # q1 answered (right), q2 null (right), q3 null (wrong: it has an answer)
    assert r["exact_match"] == pytest.approx(200 / 3)
    # sweep in order q1 (+1), q3 (+1), q2 (-1): best 3/3 at threshold 1.0
    assert r["best_exact"] == pytest.approx(100.0)
    assert r["best_exact_thresh"] == 1.0
    assert r["best_f1_thresh"] == 1.0
    r = s.evaluate(GOLD_V2, preds, na_probs=na, na_prob_threshold=1.0)
    assert r["exact_match"] == pytest.approx(100.0)


def test_missing_prediction_scores_zero():
    r = s.evaluate({"a": ["x"], "b": ["y"]}, {"a": "x"})
    assert r["exact_match"] == 50.0 and r["missing"] == 1
