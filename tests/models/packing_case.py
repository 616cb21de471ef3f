"""A fixed set of pre-training sequences, unpacked and packed, and their per-sequence losses
and gradients under BertPretrainer: shared by the in-process equivalence tests and the
MirroredStrategy subprocess (which imports this file by path)."""

import numpy as np
import tensorflow as tf

import bert_tf
from bert_tf.data.pretraining import packed_dataset, packing
from bert_tf.tasks import pretraining as pretraining_objective

T, P0, S = 16, 4, 3
LENGTHS = (16, 5, 9, 4, 7, 12, 3, 6)


def tiny_config():
    return bert_tf.BertConfig.preset(
        "tiny",
        vocab_size=50,
        num_layers=2,
        hidden_size=32,
        num_heads=4,
        intermediate_size=64,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        max_position_embeddings=T,
    )


def make_examples(seed=0, lengths=LENGTHS):
    """Record-layout numpy arrays of len(lengths) sequences ([CLS] a [SEP] b [SEP])."""
    rng = np.random.default_rng(seed)
    n = len(lengths)
    ex = {k: np.zeros((n, T), np.int32) for k in ("input_ids", "input_mask", "segment_ids")}
    for k in ("masked_lm_positions", "masked_lm_ids"):
        ex[k] = np.zeros((n, P0), np.int32)
    ex["masked_lm_weights"] = np.zeros((n, P0), np.float32)
    ex["next_sentence_labels"] = rng.integers(0, 2, (n, 1)).astype(np.int32)
    for i, length in enumerate(lengths):
        a = max(1, (length - 3) // 2)
        tokens = rng.integers(5, 50, length)
        tokens[0], tokens[a + 1], tokens[length - 1] = 2, 3, 3
        ex["input_ids"][i, :length] = tokens
        ex["input_mask"][i, :length] = 1
        ex["segment_ids"][i, a + 2 : length] = 1
        m = min(P0, max(1, length // 4))
        ex["masked_lm_positions"][i, :m] = np.sort(
            rng.choice(np.arange(1, length - 1), m, replace=False)
        )
        ex["masked_lm_ids"][i, :m] = rng.integers(5, 50, m)
        ex["masked_lm_weights"][i, :m] = 1.0
    return ex


def pack_config():
    return packing.PackingConfig(T, S, packing.default_max_predictions_per_row(T, P0, S))


def unpacked_batch(ex):
    features = {
        "input_word_ids": ex["input_ids"],
        "input_mask": ex["input_mask"],
        "input_type_ids": ex["segment_ids"],
        "masked_lm_positions": ex["masked_lm_positions"],
    }
    labels = {
        "masked_lm_ids": ex["masked_lm_ids"],
        "masked_lm_weights": ex["masked_lm_weights"],
        "next_sentence_labels": ex["next_sentence_labels"][:, 0],
    }
    return (
        {k: tf.constant(v) for k, v in features.items()},
        {k: tf.constant(v) for k, v in labels.items()},
    )


def packed_batch(ex):
    rows = packing.pack_examples(ex, pack_config())
    return packed_dataset.to_packed_inputs({k: tf.constant(v) for k, v in rows.items()})


def locations(ex):
    """For each sequence i: (row, slot k in the row, first masked-LM slot in the row)."""
    lengths = ex["input_mask"].sum(1)
    preds = (ex["masked_lm_weights"] > 0).sum(1)
    where = {}
    for r, members in enumerate(packing.best_fit_decreasing(lengths, preds, pack_config())):
        slot = 0
        for k, i in enumerate(members):
            where[i] = (r, k, slot)
            slot += preds[i]
    return [where[i] for i in range(len(lengths))]


def _ce(logits, ids):
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(ids, tf.int32), logits=tf.cast(logits, tf.float32)
    )


def sequence_losses(model, features, labels, ex, packed, training=False):
    """Per-sequence (MLM CE list, NSP CE) as tensors (differentiable), in sequence order."""
    out = model(features, training=training)
    mlm = _ce(out["mlm_logits"], labels["masked_lm_ids"])  # [B, P]
    nsp = _ce(out["nsp_logits"], labels["next_sentence_labels"])  # [B] or [B, S]
    preds = (ex["masked_lm_weights"] > 0).sum(1)
    result = []
    for i, (r, k, slot) in enumerate(locations(ex)):
        if packed:
            result.append((mlm[r, slot : slot + preds[i]], nsp[r, k]))
        else:
            result.append((mlm[i, : preds[i]], nsp[i]))
    return result, out


def losses_and_grads(model, features, labels, ex, packed, seq_index, training=False):
    """(per-sequence losses as numpy, total-loss gradients, gradients of sequence
    `seq_index`'s own loss (its MLM CE sum + NSP CE))."""
    variables = model.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        per_seq, out = sequence_losses(model, features, labels, ex, packed, training)
        total = pretraining_objective.pretraining_loss(labels, out)
        mlm_i, nsp_i = per_seq[seq_index]
        own = tf.reduce_sum(mlm_i) + nsp_i
    grads = [tf.convert_to_tensor(g).numpy() for g in tape.gradient(total, variables)]
    own_grads = [
        np.zeros(v.shape, np.float32) if g is None else tf.convert_to_tensor(g).numpy()
        for g, v in zip(tape.gradient(own, variables), variables)
    ]
    values = [(m.numpy(), float(n)) for m, n in per_seq]
    return values, float(total), grads, own_grads


def worst_relative(a_list, b_list):
    return max(
        float(np.abs(a - b).max() / (np.abs(a).max() + 1e-12)) for a, b in zip(a_list, b_list)
    )
