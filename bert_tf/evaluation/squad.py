"""The official SQuAD v1.1 and v2.0 evaluation (exact match and F1), re-implemented.

Normalisation (both versions): lower-case, drop ASCII punctuation (`string.punctuation`), drop
the articles a/an/the as whole words, collapse whitespace. A question's score is the maximum
over its gold answers. v2.0: a question whose gold answers are all empty after normalisation
is unanswerable and its only gold answer is "" (predicting "" scores 1, anything else 0);
results split into HasAns_* and NoAns_*; `best_thresholds` finds the null-score threshold that
maximises EM / F1 (the official `find_best_thresh`).
"""

import collections
import re
import string

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text):
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(text):
    return normalize_answer(text).split() if text else []


def exact_match_score(prediction, gold):
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction, gold):
    """Token-overlap F1 after normalisation (v2.0 rule: if either side is empty, 1 iff both)."""
    pred_tokens, gold_tokens = _tokens(prediction), _tokens(gold)
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def gold_answers(answers):
    """The gold texts to score against; [""] for an unanswerable question."""
    texts = [a for a in answers if normalize_answer(a)]
    return texts or [""]


def raw_scores(gold, predictions):
    """Per-question EM and F1. `gold`: {qid: [answer texts]} (empty list = unanswerable),
    `predictions`: {qid: text}. Questions without a prediction score 0 (as the official
    script, which also prints a warning; here they are counted in `missing`)."""
    exact, f1 = {}, {}
    for qid, answers in gold.items():
        answers = gold_answers(answers)
        prediction = predictions.get(qid)
        if prediction is None:
            exact[qid] = f1[qid] = 0.0
            continue
        exact[qid] = max(exact_match_score(prediction, a) for a in answers)
        f1[qid] = max(f1_score(prediction, a) for a in answers)
    return exact, f1


def _apply_threshold(scores, na_probs, has_answer, threshold):
    return {
        qid: (float(not has_answer[qid]) if na_probs[qid] > threshold else s)
        for qid, s in scores.items()
    }


def _summary(exact, f1, qids=None):
    qids = list(exact) if qids is None else qids
    n = len(qids)
    return {
        "exact_match": 100.0 * sum(exact[q] for q in qids) / n if n else 0.0,
        "f1": 100.0 * sum(f1[q] for q in qids) / n if n else 0.0,
        "total": n,
    }


def best_threshold(predictions, scores, na_probs, has_answer):
    """Official find_best_thresh: (best score in %, threshold) over thresholds = na_probs."""
    score = best = sum(1 for q in scores if not has_answer[q])
    threshold = 0.0
    for qid in sorted(na_probs, key=lambda q: na_probs[q]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            diff = scores[qid]
        else:
            diff = -1 if predictions.get(qid) else 0
        score += diff
        if score > best:
            best, threshold = score, na_probs[qid]
    return 100.0 * best / len(scores) if scores else 0.0, threshold


def evaluate(gold, predictions, na_probs=None, na_prob_threshold=1.0):
    """Official SQuAD scores in % (v1.1 when no question is unanswerable).

    gold: {qid: [answer texts]}; predictions: {qid: text} ("" = no answer).
    na_probs: optional {qid: no-answer score}; with it, a question counts as answered "" when
    its score exceeds `na_prob_threshold`, and the best thresholds are reported
    (`best_exact`, `best_exact_thresh`, `best_f1`, `best_f1_thresh`), computed from the
    predictions' non-null texts.
    Returns {"exact_match", "f1", "total", and for v2 data "HasAns_*"/"NoAns_*"}.
    """
    has_answer = {
        qid: bool([a for a in answers if normalize_answer(a)]) for qid, answers in gold.items()
    }
    exact, f1 = raw_scores(gold, predictions)
    if na_probs is not None:
        na = {qid: na_probs.get(qid, 0.0) for qid in gold}
        exact_t = _apply_threshold(exact, na, has_answer, na_prob_threshold)
        f1_t = _apply_threshold(f1, na, has_answer, na_prob_threshold)
    else:
        na, exact_t, f1_t = None, exact, f1
    results = _summary(exact_t, f1_t)
    results["missing"] = sum(1 for q in gold if q not in predictions)
    has_qids = [q for q in gold if has_answer[q]]
    no_qids = [q for q in gold if not has_answer[q]]
    if no_qids:
        for prefix, qids in (("HasAns", has_qids), ("NoAns", no_qids)):
            part = _summary(exact_t, f1_t, qids)
            results[f"{prefix}_exact"] = part["exact_match"]
            results[f"{prefix}_f1"] = part["f1"]
            results[f"{prefix}_total"] = part["total"]
        if na is not None:
            results["best_exact"], results["best_exact_thresh"] = best_threshold(
                predictions, exact, na, has_answer
            )
            results["best_f1"], results["best_f1_thresh"] = best_threshold(
                predictions, f1, na, has_answer
            )
    return results
