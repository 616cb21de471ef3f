"""N-best span decoding of SQuAD start/end logits back to characters of the original context.

One example (question + context) may be split into several features (windows of the context,
`doc_stride` apart). For each feature we know, per token position t:
    char_start[t], char_end[t]   the context characters the word piece covers ([start, end),
                                 -1 for question / special / padding positions)
    is_max_context[t]            True in the one window where the token has the most context
Decoding (as google-research/bert `write_predictions`): for each feature take the top
`n_best_size` start and end positions, keep pairs that lie in the context, start where the token
has max context, end >= start and span <= `max_answer_length` tokens; rank all pairs of all
features by start_logit + end_logit. The null (no answer) score is the smallest
start_logits[0] + end_logits[0] ([CLS]) over the example's features. The answer text is
context[char_start[start]:char_end[end]], exact characters of the original context.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Span:
    text: str
    start_char: int
    end_char: int
    start_logit: float
    end_logit: float
    probability: float = 0.0

    @property
    def score(self):
        return self.start_logit + self.end_logit


@dataclasses.dataclass
class Decoded:
    """n_best: best-first non-null spans; null_score: [CLS] score; score_diff = null - best."""

    n_best: list
    null_score: float
    score_diff: float

    @property
    def best_text(self):
        return self.n_best[0].text if self.n_best else ""

    def prediction(self, null_score_diff_threshold=None):
        """Answer text; "" when version 2 (`null_score_diff_threshold` given) and
        score_diff > threshold, or when no valid span exists."""
        if null_score_diff_threshold is not None and self.score_diff > null_score_diff_threshold:
            return ""
        return self.best_text


def _top_indices(logits, n):
    order = np.argsort(-np.asarray(logits), kind="stable")
    return order[:n]


def _softmax(values):
    if not values:
        return []
    x = np.asarray(values, np.float64)
    e = np.exp(x - x.max())
    return list(e / e.sum())


def decode_example(context, features, n_best_size=20, max_answer_length=30):
    """Decodes one example.

    context: the original context string.
    features: list of dicts with numpy arrays `start_logits`, `end_logits` [T] (may be shorter
      than the padded length; only the first len(char_start) positions are used),
      `char_start`, `char_end` [T] int, `is_max_context` [T] bool.
    """
    candidates = []
    null_score = None
    for feature in features:
        start_logits = np.asarray(feature["start_logits"], np.float64)
        end_logits = np.asarray(feature["end_logits"], np.float64)
        char_start = np.asarray(feature["char_start"])
        char_end = np.asarray(feature["char_end"])
        is_max = np.asarray(feature["is_max_context"])
        length = len(char_start)
        start_logits, end_logits = start_logits[:length], end_logits[:length]
        score = start_logits[0] + end_logits[0]
        null_score = score if null_score is None else min(null_score, score)
        for s in _top_indices(start_logits, n_best_size):
            if char_start[s] < 0 or not is_max[s]:
                continue
            for e in _top_indices(end_logits, n_best_size):
                if char_start[e] < 0 or e < s or e - s + 1 > max_answer_length:
                    continue
                candidates.append(
                    (
                        start_logits[s] + end_logits[e],
                        int(char_start[s]),
                        int(char_end[e]),
                        float(start_logits[s]),
                        float(end_logits[e]),
                    )
                )
    candidates.sort(key=lambda c: -c[0])
    n_best, seen = [], set()
    for _, start, end, start_logit, end_logit in candidates:
        if context[start:end] in seen:  # the same text (e.g. found in two windows): keep best
            continue
        seen.add(context[start:end])
        n_best.append(Span(context[start:end], start, end, start_logit, end_logit))
        if len(n_best) >= n_best_size:
            break
    for span, p in zip(n_best, _softmax([s.score for s in n_best])):
        span.probability = float(p)
    null_score = float(null_score) if null_score is not None else 0.0
    best = n_best[0].score if n_best else -np.inf
    score_diff = float(null_score - best) if n_best else float("inf")
    return Decoded(n_best=n_best, null_score=null_score, score_diff=score_diff)
