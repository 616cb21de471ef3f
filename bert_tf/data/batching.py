"""Cached variable-length features and dynamically padded batches.

Tokenization happens once: a task's features are stored unpadded (`RaggedFeatures`: flat
numpy arrays + row splits). Each batch is padded only to its own longest sequence.
  * train (`epochs_order`): every epoch a fresh random permutation (seed + epoch) cut into
    batches, as the reference recipe's shuffled DataLoader draws them. Grouping similar lengths
    (`group_by_length=True`, as Hugging Face's option of that name: shuffle, cut into chunks
    of `bucket_batches` batches, sort each chunk by length, cut it into batches, shuffle the
    batches) pads less but is not the reference's statistics: on a small set (one chunk) the
    same sentences share a batch every epoch and short and long sentences never meet; measured
    on Brown names (1,500 sentences, docs/benchmarks.md) it cost ~8 points of entity F1.
  * eval (shuffle=False): sort by length once (stable), so batches carry almost no padding;
    `order` maps each batch row back to its example.
The dataset is built from the precomputed index matrix, so it is deterministic and cheap to
`skip()` (the trainer's resume skips the steps already done).

Shapes: N examples, B batch size, T the batch's longest sequence.
"""

import dataclasses

import numpy as np
import tensorflow as tf

INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")
# Batches are padded to their longest sequence rounded up to a multiple of this: few distinct
# shapes, so the fused training kernels (bert_tf/layers/fused.py) compile only a few times.
PAD_TO_MULTIPLE_OF = 8
# Training batches (`make_dataset(..., compile_cost_tokens=...)`) go one step further: a new
# padded length costs a compile of the fused kernels, measured at about the compute of 1,000
# extra padded token positions (all-MiniLM-L6-v2, batch 32, AVX2 CPU: ~1.7 CPU s per new
# length vs ~0.053 CPU s per token of batch length), so lengths used by few batches are
# merged into the next longer one when the padding that adds costs less than the compile.
COMPILE_COST_TOKENS = 1024


@dataclasses.dataclass
class RaggedFeatures:
    """N unpadded examples. word_ids / type_ids: flat int32 [sum T_i]; row_splits [N + 1].
    labels: {name: array}, [N] per example or, for names in `ragged_labels`, flat
    [sum T_i] aligned with word_ids (padded with -1 in batches)."""

    word_ids: np.ndarray
    type_ids: np.ndarray
    row_splits: np.ndarray
    labels: dict = dataclasses.field(default_factory=dict)
    ragged_labels: tuple = ()

    @classmethod
    def from_lists(cls, word_ids, type_ids, labels=None, ragged_labels=()):
        lengths = np.asarray([len(x) for x in word_ids], np.int64)
        splits = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

        def flat(rows):
            return (
                np.concatenate([np.asarray(r, np.int32) for r in rows])
                if len(rows)
                else np.zeros([0], np.int32)
            )

        out = {}
        for name, values in (labels or {}).items():
            if name in ragged_labels:
                out[name] = flat(values)
            else:
                out[name] = np.asarray(values)
        return cls(flat(word_ids), flat(type_ids), splits, out, tuple(ragged_labels))

    def __len__(self):
        return len(self.row_splits) - 1

    @property
    def lengths(self):
        return np.diff(self.row_splits)

    def row(self, i):
        return self.word_ids[self.row_splits[i] : self.row_splits[i + 1]]

    def ragged_row(self, name, i):
        return self.labels[name][self.row_splits[i] : self.row_splits[i + 1]]


def batch_order(lengths, batch_size, shuffle=False, seed=0, bucket=True, bucket_batches=50):
    """A list of index arrays, one per batch (see the module doc)."""
    lengths = np.asarray(lengths)
    n = len(lengths)
    if batch_size <= 0:
        raise ValueError(f"batch size must be positive, got {batch_size}")
    if not shuffle:
        order = np.argsort(lengths, kind="stable") if bucket else np.arange(n)
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if not bucket:
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    batches = []
    chunk = batch_size * bucket_batches
    for start in range(0, n, chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    # Keep the one short batch (the very last) where it is: every other batch is full.
    full = [b for b in batches if len(b) == batch_size]
    short = [b for b in batches if len(b) != batch_size]
    perm = rng.permutation(len(full))
    return [full[i] for i in perm] + short


def epochs_order(lengths, batch_size, epochs, seed, group_by_length=False):
    """Training batches for `epochs` epochs, each reshuffled with seed + epoch: uniformly
    random batches, or with `group_by_length` batches of similar lengths (see the module
    doc)."""
    out = []
    for epoch in range(epochs):
        out += batch_order(
            lengths, batch_size, shuffle=True, seed=seed + epoch, bucket=group_by_length
        )
    return out


def bucket_lengths(longest, sizes, compile_cost_tokens):
    """Per batch a padded length >= its `longest`, taken from a subset S of the distinct
    values of `longest` (the largest always in S) that minimizes
    sum_b sizes[b] * (S(b) - longest[b]) + compile_cost_tokens * |S|, where S(b) is the
    smallest length in S >= longest[b]: padding tokens traded against compiles (exact, by
    dynamic programming over the m distinct lengths, O(m^2))."""
    longest = np.asarray(longest, np.int64)
    values, inverse = np.unique(longest, return_inverse=True)  # [m], [n]
    weight = np.bincount(inverse, weights=np.asarray(sizes, np.float64), minlength=len(values))
    m = len(values)
    best = np.zeros(m + 1)  # best[j]: cost of values[:j] with values[j-1] in S
    start = np.zeros(m, np.int64)  # first value index of the bucket ending at j
    for j in range(m):
        # values[i..j] all padded to values[j]
        pad = np.cumsum((weight[: j + 1] * (values[j] - values[: j + 1]))[::-1])[::-1]
        costs = best[: j + 1] + pad + compile_cost_tokens
        start[j] = int(np.argmin(costs))
        best[j + 1] = costs[start[j]]
    target = np.empty(m, np.int64)
    j = m - 1
    while j >= 0:
        target[start[j] : j + 1] = values[j]
        j = start[j] - 1
    return target[inverse]


def make_dataset(
    features,
    batches,
    with_labels=True,
    pad_to_multiple_of=PAD_TO_MULTIPLE_OF,
    compile_cost_tokens=0,
):
    """tf.data.Dataset of (inputs, labels) [or inputs], one element per index array in
    `batches`, padded to the batch's longest rounded up to a multiple of `pad_to_multiple_of`
    (never beyond the longest example) and, with `compile_cost_tokens` > 0, further up to the
    length chosen by `bucket_lengths` over all `batches`: inputs are int32 [b, T]
    input_word_ids, input_mask, input_type_ids; labels [b] (or [b, T] padded with -1 for
    ragged labels); a single label is a tensor, several are a dict."""
    m = max(int(pad_to_multiple_of), 1)
    lengths = features.lengths
    longest = int(lengths.max()) if len(features) else 0
    width = max(len(b) for b in batches)
    index = np.full([len(batches), width], -1, np.int64)
    for i, b in enumerate(batches):
        index[i, : len(b)] = b
    padded = np.asarray(
        [min(-(-int(lengths[b].max()) // m) * m, longest) if len(b) else 0 for b in batches],
        np.int32,
    )  # [num batches]
    if compile_cost_tokens > 0 and len(batches):
        padded = bucket_lengths(padded, [len(b) for b in batches], compile_cost_tokens).astype(
            np.int32
        )
    splits = tf.constant(features.row_splits, tf.int64)
    ids = tf.RaggedTensor.from_row_splits(tf.constant(features.word_ids, tf.int32), splits)
    types = tf.RaggedTensor.from_row_splits(tf.constant(features.type_ids, tf.int32), splits)
    label_tensors = {}
    for name, values in features.labels.items():
        if name in features.ragged_labels:
            label_tensors[name] = tf.RaggedTensor.from_row_splits(
                tf.constant(values, tf.int32), splits
            )
        else:
            label_tensors[name] = tf.constant(values)

    def fetch(idx, t):
        idx = tf.boolean_mask(idx, idx >= 0)  # [b]
        word_ids = tf.gather(ids, idx)  # [b, (T)]
        shape = tf.stack([tf.size(idx), t])  # T: precomputed above
        inputs = {
            "input_word_ids": word_ids.to_tensor(0, shape=shape),  # [b, T]
            "input_mask": tf.ones_like(word_ids).to_tensor(0, shape=shape),
            "input_type_ids": tf.gather(types, idx).to_tensor(0, shape=shape),
        }
        if not with_labels or not label_tensors:
            return inputs
        labels = {}
        for name, values in label_tensors.items():
            got = tf.gather(values, idx)
            labels[name] = (
                got.to_tensor(-1, shape=shape) if isinstance(got, tf.RaggedTensor) else got
            )
        if len(labels) == 1:
            labels = next(iter(labels.values()))
        return inputs, labels

    dataset = tf.data.Dataset.from_tensor_slices((index, padded))
    return dataset.map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(
        tf.data.AUTOTUNE
    )
