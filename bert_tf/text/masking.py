"""Masked-LM masking, the BERT recipe: pick ~15% of the tokens (never special tokens), replace
80% of those by [MASK], 10% by a random token, keep 10%; the model predicts the originals.

Two implementations of the same recipe:
  create_masked_lm_predictions  static masking while writing pre-training records (pure Python,
                                driven by a `random.Random`, as google-research/bert does it;
                                optional whole-word masking).
  dynamic_mask                  masking inside tf.data, fresh every epoch (stateless TF random
                                ops, so a given seed and batch index always give the same masks).

Shape legend: B = batch, T = sequence length, P = max predictions per sequence.
"""

import tensorflow as tf


def num_to_predict(num_tokens, masked_lm_prob, max_predictions_per_seq):
    """How many positions the original masks: round(num_tokens * prob), at least 1, capped."""
    return min(max_predictions_per_seq, max(1, int(round(num_tokens * masked_lm_prob))))


def random_token_id(rng, vocab_size, special_ids):
    """A uniformly random id from the vocab, excluding the special tokens."""
    while True:
        token = rng.randrange(vocab_size)
        if token not in special_ids:
            return token


def create_masked_lm_predictions(token_ids, rng, *, masked_lm_prob, max_predictions_per_seq,
                                 vocab_size, mask_id, special_ids, is_continuation=None,
                                 whole_word_masking=False):
    """Static masking of one sequence (list of ints, including [CLS]/[SEP]).

    Args:
      rng: a `random.Random`; the result is a function of its state (deterministic).
      special_ids: ids never masked and never used as random replacements ([CLS], [SEP],
        [PAD], [MASK], [UNK]).
      is_continuation: callable id -> bool, True for "##" pieces; with whole_word_masking a
        word's pieces are masked together (all or none).

    Returns:
      (output_ids, masked_positions, masked_label_ids): the sequence with masks applied, and the
      masked positions in increasing order with their original ids.
    """
    target = num_to_predict(len(token_ids), masked_lm_prob, max_predictions_per_seq)
    if not whole_word_masking:
        # Every candidate is one token, so the first `target` of a shuffle is a plain sample.
        positions = [i for i, t in enumerate(token_ids) if t not in special_ids]
        candidates = [[i] for i in rng.sample(positions, min(target, len(positions)))]
    else:
        candidates = []  # groups of positions, one per word
        for i, token in enumerate(token_ids):
            if token in special_ids:
                continue
            if (candidates and is_continuation is not None and is_continuation(token)
                    and candidates[-1][-1] == i - 1):
                candidates[-1].append(i)
            else:
                candidates.append([i])
        keys = [rng.random() for _ in candidates]  # a shuffle, cheaper than rng.shuffle
        candidates = [candidates[i] for i in sorted(range(len(candidates)),
                                                    key=keys.__getitem__)]
    output = list(token_ids)
    masked = []  # (position, original id)
    for group in candidates:
        if len(masked) >= target:
            break
        if len(masked) + len(group) > target:
            continue  # a whole word that does not fit; a smaller one later may
        for position in group:
            if rng.random() < 0.8:
                replacement = mask_id
            elif rng.random() < 0.5:
                replacement = token_ids[position]
            else:
                replacement = random_token_id(rng, vocab_size, special_ids)
            output[position] = replacement
            masked.append((position, token_ids[position]))
    masked.sort()
    return output, [p for p, _ in masked], [t for _, t in masked]


def dynamic_mask(input_ids, input_mask, seed, *, vocab_size, mask_id, special_ids=(),
                 masked_lm_prob=0.15, max_predictions_per_seq=20):
    """Masks a batch in TF with stateless random ops (deterministic for `seed`).

    Args:
      input_ids: int32 [B, T] unmasked token ids.
      input_mask: int32 [B, T], 1 for real tokens; padding is never masked.
      seed: int32/int64 [2] stateless seed (e.g. (base_seed, batch_index)).
      special_ids: ids never masked and never used as random replacements.

    Returns:
      dict with input_word_ids int32 [B, T] (masked), masked_lm_positions int32 [B, P],
      masked_lm_ids int32 [B, P], masked_lm_weights float32 [B, P] (1.0 real, 0.0 padding).
    """
    input_ids = tf.convert_to_tensor(input_ids, tf.int32)
    input_mask = tf.convert_to_tensor(input_mask, tf.int32)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    shape = tf.shape(input_ids)
    length = shape[1]
    p = max_predictions_per_seq
    seeds = tf.random.experimental.stateless_split(seed, num=4)

    candidate = tf.not_equal(input_mask, 0)  # [B, T]
    for special in special_ids:
        candidate &= tf.not_equal(input_ids, special)
    num_tokens = tf.reduce_sum(input_mask, axis=1)  # [B]
    # round-half-away-from-zero isn't needed: the original uses Python round (half to even),
    # and tf.round is half to even as well.
    target = tf.cast(tf.round(tf.cast(num_tokens, tf.float32) * masked_lm_prob), tf.int32)
    target = tf.minimum(tf.maximum(target, 1), p)
    target = tf.minimum(target, tf.reduce_sum(tf.cast(candidate, tf.int32), axis=1))  # [B]

    # A random rank for every candidate; the `target` lowest-scoring candidates get masked.
    scores = tf.random.stateless_uniform(shape, seeds[0])  # [B, T]
    scores = tf.where(candidate, scores, 2.0)
    order = tf.argsort(scores, axis=1, stable=True)  # [B, T] positions by score
    ranks = tf.argsort(order, axis=1, stable=True)  # [B, T] rank of each position
    selected = ranks < target[:, None]  # [B, T]

    # Positions in increasing order: sort keys that put the selected positions first.
    positions = tf.range(length)[None, :]  # [1, T]
    keys = tf.where(selected, positions, positions + length)  # [B, T]
    keys = tf.sort(keys, axis=1)
    pad = tf.maximum(p - length, 0)
    keys = tf.pad(keys, [[0, 0], [0, pad]], constant_values=2 * length)[:, :p]  # [B, P]
    weights = keys < length  # [B, P]
    masked_positions = tf.where(weights, keys, 0)
    masked_ids = tf.where(weights, tf.gather(input_ids, masked_positions, batch_dims=1), 0)

    # 80% [MASK], 10% random token, 10% unchanged.
    choice = tf.random.stateless_uniform(shape, seeds[1])  # [B, T]
    random_ids = tf.random.stateless_uniform(shape, seeds[2], minval=0, maxval=vocab_size,
                                             dtype=tf.int32)  # [B, T]
    random_ok = tf.ones_like(candidate)
    for special in special_ids:
        random_ok &= tf.not_equal(random_ids, special)
    random_ids = tf.where(random_ok, random_ids, input_ids)  # a special draw keeps the token
    replacement = tf.where(choice < 0.8, tf.fill(shape, mask_id),
                           tf.where(choice < 0.9, random_ids, input_ids))
    masked_input = tf.where(selected, replacement, input_ids)
    return {
        "input_word_ids": masked_input,
        "masked_lm_positions": tf.cast(masked_positions, tf.int32),
        "masked_lm_ids": tf.cast(masked_ids, tf.int32),
        "masked_lm_weights": tf.cast(weights, tf.float32),
    }


def unmask(input_ids, masked_lm_positions, masked_lm_ids, masked_lm_weights):
    """Undoes static masking: writes the original ids back at the masked positions.

    input_ids [B, T], masked_lm_* [B, P] -> [B, T]."""
    input_ids = tf.convert_to_tensor(input_ids, tf.int32)
    positions = tf.cast(masked_lm_positions, tf.int32)
    real = tf.cast(masked_lm_weights, tf.float32) > 0  # [B, P]
    batch = tf.shape(input_ids)[0]
    rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(positions))  # [B, P]
    indices = tf.stack([tf.boolean_mask(rows, real), tf.boolean_mask(positions, real)], axis=1)
    updates = tf.boolean_mask(tf.cast(masked_lm_ids, tf.int32), real)
    return tf.tensor_scatter_nd_update(input_ids, indices, updates)
