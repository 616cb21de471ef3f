"""Windows over inputs longer than max_seq_length, and the max-context rule (the original
run_squad.py rules, shared by squad, tag and classify).

A sequence of N word pieces is read in windows of at most `window` pieces whose starts are
`stride` apart (the last window ends at the sequence's end). A piece that several windows
hold belongs to the window where it has the most context: score = min(pieces to its left,
pieces to its right) + 0.01 * window length; the first best window wins ties.
"""

import numpy as np


def window_starts(num_tokens, window, stride):
    """Start offsets of the windows (the original rule: start += min(length, stride))."""
    starts, start = [], 0
    while True:
        starts.append(start)
        length = min(num_tokens - start, window)
        if start + length >= num_tokens:
            return starts
        start += min(length, stride)


def max_context_windows(num_tokens, starts, window):
    """[num_tokens] index of the window where each token has the most context."""
    best = np.zeros(num_tokens, np.int64)
    best_score = np.full(num_tokens, -1.0)
    for w, start in enumerate(starts):
        length = min(num_tokens - start, window)
        j = np.arange(length)
        score = np.minimum(j, length - 1 - j) + 0.01 * length
        better = score > best_score[start : start + length]
        best[start : start + length][better] = w
        best_score[start : start + length][better] = score[better]
    return best


def default_stride(window, doc_stride=None):
    """The stride between window starts: doc_stride if given, else half a window (tag and
    classify: every piece has at least a quarter window of context on each side but at the
    text's ends)."""
    return max(1, int(doc_stride) if doc_stride else window // 2)
