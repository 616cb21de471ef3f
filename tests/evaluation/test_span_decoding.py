"""Span decoding: n-best ranking, constraints, max-context windows, exact characters."""

import numpy as np
import pytest

from bert_tf.evaluation.span_decoding import decode_example

CONTEXT = "The capital of France is Paris."
# [CLS] what ? [SEP] The capital of France is Paris . [SEP]
WORDS = [(0, 3), (4, 11), (12, 14), (15, 21), (22, 24), (25, 30), (30, 31)]


def feature(start_logits, end_logits, words=WORDS, max_context=None):
    n = 4 + len(words) + 1
    char_start = np.full(n, -1)
    char_end = np.full(n, -1)
    for i, (a, b) in enumerate(words):
        char_start[4 + i], char_end[4 + i] = a, b
    is_max = np.ones(n, bool) if max_context is None else np.asarray(max_context)
    return {
        "start_logits": np.asarray(start_logits, float),
        "end_logits": np.asarray(end_logits, float),
        "char_start": char_start,
        "char_end": char_end,
        "is_max_context": is_max,
    }


def logits(peaks, n=12):
    x = np.zeros(n)
    for i, v in peaks.items():
        x[i] = v
    return x


def test_best_span_maps_to_exact_characters():
    f = feature(logits({9: 5.0, 7: 2.0}), logits({10: 4.0, 9: 3.0}))
    d = decode_example(CONTEXT, [f], n_best_size=5, max_answer_length=10)
    best = d.n_best[0]
    assert (best.text, best.start_char, best.end_char) == ("Paris.", 25, 31)
    assert best.score == pytest.approx(9.0)
    assert d.n_best[1].text == "Paris"  # 5 + 3
    assert d.null_score == 0.0 and d.score_diff == pytest.approx(-9.0)
    assert sum(s.probability for s in d.n_best) == pytest.approx(1.0)


def test_constraints_end_before_start_and_max_length_and_question_tokens():
    # start peak at "The" (4), end peak at "France" (7) and in the question (1)
    f = feature(logits({4: 5.0, 1: 9.0}), logits({7: 4.0, 1: 9.0, 3: 8.0}))
    d = decode_example(CONTEXT, [f], n_best_size=3, max_answer_length=3)
    # question positions never start/end a span; "The capital of France" is 4 tokens > 3
    assert all(s.text != "The capital of France" for s in d.n_best)
    d = decode_example(CONTEXT, [f], n_best_size=3, max_answer_length=4)
    assert d.n_best[0].text == "The capital of France"


def test_null_score_and_threshold():
    f = feature(logits({0: 3.0, 9: 1.0}), logits({0: 3.0, 9: 1.0}))
    d = decode_example(CONTEXT, [f], n_best_size=5, max_answer_length=10)
    assert d.null_score == 6.0 and d.best_text == "Paris"
    assert d.score_diff == pytest.approx(4.0)
    assert d.prediction(null_score_diff_threshold=0.0) == ""
    assert d.prediction(null_score_diff_threshold=5.0) == "Paris"
    assert d.prediction() == "Paris"  # v1.1: never null


def test_two_windows_use_max_context_and_min_null():
    # window 1 sees words 0-4, window 2 words 3-6; "France" (3) has max context in window 1
    w1 = WORDS[:5]
    w2 = WORDS[3:]
    f1 = feature(
        logits({7: 1.0, 0: 2.0}, 10),
        logits({7: 1.0, 0: 2.0}, 10),
        w1,
        [True] * 4 + [True, True, True, True, False, False],
    )
    f2 = feature(
        logits({4: 7.0, 6: 3.0, 0: 1.0}, 9),
        logits({4: 7.0, 6: 3.0}, 9),
        w2,
        [True] * 4 + [False, True, True, True, False],
    )
    d = decode_example(CONTEXT, [f1, f2], n_best_size=5, max_answer_length=10)
    # f2's position 4 is "France" without max context: cannot start; best: "Paris" (6) in f2
    assert d.n_best[0].text == "Paris"
    assert d.null_score == pytest.approx(1.0)  # min(2 + 2, 1 + 0)
