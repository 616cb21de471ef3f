"""Packing several pre-training sequences into one row, so no compute goes to padding.

ALGORITHM: best-fit decreasing over a buffer of sequences (the per-item rule of Graphcore's
"shortest-pack-first histogram packing"). The buffer's sequences are taken longest first
(ties in buffer order); each goes into the open row whose remaining space is the SMALLEST
that still holds it, among rows with fewer than `max_sequences_per_row` sequences and room
for its masked-LM predictions (`max_predictions_per_row`); if no row fits, it opens a new
row. Ties go to the row opened first. Every sequence fits an empty row, so every sequence of
the buffer is placed exactly once; the result depends only on the buffer (deterministic).

A packed row (record feature names; T = max_seq_length, S = max_sequences_per_row,
P = max_predictions_per_row):
  input_ids, input_mask, segment_ids [T]   the sequences one after another, then padding
  sequence_ids [T]            k = 1..S for the tokens of the row's k-th sequence, 0 = padding;
                              attention stays inside a sequence (block-diagonal mask)
  position_ids [T]            positions restarting at 0 for each sequence
  masked_lm_positions, masked_lm_ids, masked_lm_weights [P]   every sequence's predictions,
                              positions in the row (weights 0 pad the list)
  next_sentence_positions [S] each sequence's [CLS] position in the row (0 for unused slots)
  next_sentence_labels [S]    each sequence's NSP label (0 for unused slots)
  next_sentence_weights [S]   1.0 for a real sequence, 0.0 for an unused slot

Shape legend: N = sequences in the buffer, R = packed rows, T, S, P as above.
"""

import dataclasses
import math

import numpy as np

from bert_tf.errors import BertTfError

ALGORITHM = "best-fit-decreasing"
# Features of a packed row, in addition to the unpacked record's names.
PACKED_INT_FEATURES = ("sequence_ids", "position_ids", "next_sentence_positions")
PACKED_FLOAT_FEATURES = ("next_sentence_weights",)


class PackingError(BertTfError, ValueError):
    """Bad packing settings or a sequence that cannot be packed; one line."""


@dataclasses.dataclass(frozen=True)
class PackingConfig:
    max_seq_length: int
    max_sequences_per_row: int = 3
    max_predictions_per_row: int = 23

    def validate(self):
        if self.max_sequences_per_row < 1:
            raise PackingError(
                f"max_sequences_per_row must be >= 1, got {self.max_sequences_per_row}"
            )
        if self.max_predictions_per_row < 1:
            raise PackingError(
                f"max_predictions_per_row must be >= 1, got {self.max_predictions_per_row}"
            )


# The shortest sequence a row can hold: [CLS] a [SEP] b [SEP] (both segments non-empty, as
# create_pretraining_data and google-research/bert write them).
MIN_SEQUENCE_TOKENS = 5


def _expect_int(name, value, low, high, why, hint=""):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PackingError(
            f"--{name}: expected an integer in [{low}, {high}] ({why}){hint}, got {value!r}"
        )


def check_settings(
    max_seq_length,
    max_predictions_per_seq,
    max_sequences_per_row=3,
    max_predictions_per_row=None,
    buffer_size=1,
    masked_lm_prob=0.15,
):
    """The PackingConfig of these settings, checked before any data is read; raises
    PackingError naming the setting (as its flag), expected vs got. Bounds, for T tokens per
    row and P predictions per sequence:
      max_sequences_per_row S   1 .. T // 5 (a sequence has >= 5 tokens);
      max_predictions_per_row   P .. max(P, min(S * P, T)) (one sequence may carry P; a row
                                never holds more than S sequences' or T tokens' worth);
                                None = default_max_predictions_per_row;
      buffer_size               >= 1."""
    t, p = max_seq_length, max_predictions_per_seq
    _expect_int(
        "max_sequences_per_row",
        max_sequences_per_row,
        1,
        max(1, t // MIN_SEQUENCE_TOKENS),
        f"a row of --max_seq_length={t} tokens holds at most that many sequences of "
        f">= {MIN_SEQUENCE_TOKENS} tokens, [CLS] a [SEP] b [SEP]",
    )
    s = max_sequences_per_row
    default = default_max_predictions_per_row(t, p, s, masked_lm_prob)
    if max_predictions_per_row is not None:
        _expect_int(
            "max_predictions_per_row",
            max_predictions_per_row,
            p,
            max(p, min(s * p, t)),
            f"at least one sequence's --max_predictions_per_seq={p}, at most what "
            f"{s} sequences or {t} tokens can carry",
            f"; leave it unset for the default {default}",
        )
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
        raise PackingError(
            f"--pack_buffer_size: expected an integer >= 1 (sequences packed "
            f"together), got {buffer_size!r}"
        )
    return PackingConfig(
        t, s, default if max_predictions_per_row is None else max_predictions_per_row
    )


def default_max_predictions_per_row(
    max_seq_length, max_predictions_per_seq, max_sequences_per_row, masked_lm_prob=0.15
):
    """Room for the predictions of any row: a sequence of n tokens has at most
    max(1, round(n * prob)) <= n * prob + 1 of them, so a row of <= T tokens and S sequences
    has at most ceil(T * prob) + S; never more than S * P, never less than P."""
    p, s = max_predictions_per_seq, max_sequences_per_row
    return max(p, min(p * s, math.ceil(max_seq_length * masked_lm_prob) + s))


def best_fit_decreasing(lengths, predictions, config):
    """-> list of rows, each a list of indices into `lengths` (in placement order).

    lengths: int [N] tokens of each sequence (<= max_seq_length); predictions: int [N]
    masked-LM predictions of each (<= max_predictions_per_row)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    t, s, p = config.max_seq_length, config.max_sequences_per_row, config.max_predictions_per_row
    if lengths.size and lengths.max() > t:
        raise PackingError(f"a sequence of {lengths.max()} tokens does not fit max_seq_length={t}")
    if predictions.size and predictions.max() > p:
        raise PackingError(
            f"a sequence has {predictions.max()} masked-LM predictions, more "
            f"than max_predictions_per_row={p}"
        )
    n = lengths.size
    space = np.zeros(n, np.int64)  # free tokens of each open row
    room = np.zeros(n, np.int64)  # free prediction slots of each open row
    count = np.zeros(n, np.int64)  # sequences in each row
    rows = []
    for i in np.argsort(-lengths, kind="stable"):
        r = len(rows)
        fits = (space[:r] >= lengths[i]) & (count[:r] < s) & (room[:r] >= predictions[i])
        if fits.any():
            candidates = np.flatnonzero(fits)
            j = candidates[np.argmin(space[candidates])]  # tightest; first opened on ties
        else:
            j = r
            rows.append([])
            space[j], room[j] = t, p
        rows[j].append(int(i))
        space[j] -= lengths[i]
        room[j] -= predictions[i]
        count[j] += 1
    return rows


def _real_counts(examples):
    lengths = examples["input_mask"].astype(bool).sum(axis=1)
    if "masked_lm_weights" in examples:
        predictions = (examples["masked_lm_weights"] > 0).sum(axis=1)
    else:
        predictions = np.zeros_like(lengths)
    return lengths, predictions


def _empty_rows(num_rows, config, int_dtype):
    t, s, p = config.max_seq_length, config.max_sequences_per_row, config.max_predictions_per_row
    out = {
        name: np.zeros((num_rows, t), int_dtype)
        for name in ("input_ids", "input_mask", "segment_ids", "sequence_ids", "position_ids")
    }
    for name in ("masked_lm_positions", "masked_lm_ids"):
        out[name] = np.zeros((num_rows, p), int_dtype)
    out["masked_lm_weights"] = np.zeros((num_rows, p), np.float32)
    for name in ("next_sentence_positions", "next_sentence_labels"):
        out[name] = np.zeros((num_rows, s), int_dtype)
    out["next_sentence_weights"] = np.zeros((num_rows, s), np.float32)
    return out


def pack_examples(examples, config):
    """Packs a buffer of unpacked examples into rows.

    examples: dict of numpy arrays in the record layout: input_ids, input_mask, segment_ids
    [N, T]; masked_lm_positions, masked_lm_ids, masked_lm_weights [N, P0];
    next_sentence_labels [N] or [N, 1]. Real tokens must come first in each example (as the
    records store them). Returns the packed rows as a dict of [R, ...] arrays (module doc).
    """
    config.validate()
    lengths, predictions = _real_counts(examples)
    rows = best_fit_decreasing(lengths, predictions, config)
    int_dtype = examples["input_ids"].dtype
    out = _empty_rows(len(rows), config, int_dtype)
    nsp = np.reshape(examples["next_sentence_labels"], (-1,))
    for r, members in enumerate(rows):
        offset, slot = 0, 0
        for k, i in enumerate(members):
            n, m = int(lengths[i]), int(predictions[i])
            span = slice(offset, offset + n)
            for name in ("input_ids", "input_mask", "segment_ids"):
                out[name][r, span] = examples[name][i, :n]
            out["sequence_ids"][r, span] = k + 1
            out["position_ids"][r, span] = np.arange(n)
            if m:
                keep = np.flatnonzero(examples["masked_lm_weights"][i] > 0)
                out["masked_lm_positions"][r, slot : slot + m] = (
                    examples["masked_lm_positions"][i, keep] + offset
                )
                out["masked_lm_ids"][r, slot : slot + m] = examples["masked_lm_ids"][i, keep]
                out["masked_lm_weights"][r, slot : slot + m] = examples["masked_lm_weights"][
                    i, keep
                ]
            out["next_sentence_positions"][r, k] = offset
            out["next_sentence_labels"][r, k] = nsp[i]
            out["next_sentence_weights"][r, k] = 1.0
            offset, slot = offset + n, slot + m
    return out


def padding_share(input_mask):
    """Fraction of the token slots of `input_mask` [..., T] that are padding."""
    mask = np.asarray(input_mask)
    return 1.0 - float(mask.astype(bool).sum()) / max(mask.size, 1)
