"""Brute-force references for long inputs read in windows: the windows, each piece's
max-context window, and the Keras model's per-piece / per-text outputs over all windows; a
stub tagger whose labels depend on the context a word has in its window."""

import numpy as np
import tensorflow as tf

from tests.export.tiny_dirs import TAG_LABELS


def window_starts(n, window, stride):
    """0, stride, 2 * stride, ... until a window reaches the end (stride capped at window)."""
    starts = [0]
    while starts[-1] + window < n:
        starts.append(starts[-1] + min(stride, window))
    return starts


def owner(i, starts, n, window):
    """The window holding piece i with the most context (min(left, right) + 0.01 * length),
    the first one on ties: tried one by one."""
    best, best_k = None, None
    for k, s in enumerate(starts):
        length = min(n - s, window)
        if s <= i < s + length:
            score = min(i - s, s + length - 1 - i) + 0.01 * length
            if best is None or score > best + 1e-9:
                best, best_k = score, k
    return best_k


def run_windows(model, ids_list, seq, stride, cls_id, sep_id):
    """All windows of every text as one padded batch: (logits, [(row, start, length)])."""
    window = seq - 2
    rows, meta = [], []
    for r, ids in enumerate(ids_list):
        for s in window_starts(len(ids), window, stride):
            piece = list(ids[s : s + window])
            rows.append([cls_id] + piece + [sep_id])
            meta.append((r, s, len(piece)))
    width = max(len(x) for x in rows)
    word = np.array([x + [0] * (width - len(x)) for x in rows], np.int32)
    inputs = {
        "input_word_ids": word,
        "input_mask": (np.arange(width)[None] < np.array([len(x) for x in rows])[:, None]).astype(
            np.int32
        ),
        "input_type_ids": np.zeros_like(word),
    }
    return np.asarray(model(inputs, training=False)["logits"]), meta


def piece_logits(model, ids_list, seq, stride, cls_id, sep_id):
    """Per text, [P, C] logits of every piece taken from its max-context window."""
    logits, meta = run_windows(model, ids_list, seq, stride, cls_id, sep_id)
    out = []
    for r, ids in enumerate(ids_list):
        mine = [(w, s) for w, (row, s, _) in enumerate(meta) if row == r]
        starts = [s for _, s in mine]
        rows = []
        for i in range(len(ids)):
            w, s = mine[owner(i, starts, len(ids), seq - 2)]
            rows.append(logits[w, 1 + i - s])
        out.append(np.array(rows, np.float32).reshape(len(ids), logits.shape[-1]))
    return out


def text_logits(model, ids_list, seq, stride, cls_id, sep_id):
    """[B, C]: per text, the mean of its windows' logits."""
    logits, meta = run_windows(model, ids_list, seq, stride, cls_id, sep_id)
    rows = np.array([m[0] for m in meta])
    return np.stack([logits[rows == r].mean(0) for r in range(len(ids_list))])


class StubTagger(tf.Module):
    """A tagger that labels "john" B-PER and "paris" I-PER wherever they are, and "france"
    B-LOC only where it has at least 3 pieces of context on both sides in its window (every
    piece's max-context window gives it >= 3 with windows of 14, 7 apart)."""

    def __init__(self, vocab):
        super().__init__()
        self.john, self.paris, self.france = (vocab.index(w) for w in ("john", "paris", "france"))

    def __call__(self, inputs, training=False):
        ids = inputs["input_word_ids"]  # [R, T]
        n = tf.reduce_sum(inputs["input_mask"], axis=1, keepdims=True)  # [R, 1]
        pos = tf.range(tf.shape(ids)[1])[None, :]
        centred = (pos - 1 >= 3) & (n - 2 - pos >= 3)
        label = tf.where(ids == self.john, 1, tf.where(ids == self.paris, 2, 0))
        label = tf.where((ids == self.france) & centred, 3, label)
        return {"logits": tf.one_hot(label, len(TAG_LABELS)) * 10.0}


def stub_text():
    """4,000 words: "John paris paris paris" at word 2,000 (crossing the 2,002 window border
    of windows of 14, 7 apart) and "france" at words 300, 1,500 and 3,001; two spaces between
    the first 1,000 words (character offsets are not uniform)."""
    words = ["the"] * 4000
    words[2000:2004] = ["John", "paris", "paris", "paris"]
    for i in (300, 1500, 3001):
        words[i] = "france"
    return "  ".join(words[:1000]) + " " + " ".join(words[1000:])
