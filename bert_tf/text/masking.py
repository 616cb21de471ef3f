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


def create_masked_lm_predictions(
    token_ids,
    rng,
    *,
    masked_lm_prob,
    max_predictions_per_seq,
    vocab_size,
    mask_id,
    special_ids,
    is_continuation=None,
    whole_word_masking=False,
):
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
            if (
                candidates
                and is_continuation is not None
                and is_continuation(token)
                and candidates[-1][-1] == i - 1
            ):
                candidates[-1].append(i)
            else:
                candidates.append([i])
        keys = [rng.random() for _ in candidates]  # a shuffle, cheaper than rng.shuffle
        candidates = [candidates[i] for i in sorted(range(len(candidates)), key=keys.__getitem__)]
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


def greedy_take(lengths, valid, target):
    """The original whole-word rule over words in random order: take a word unless the
    prediction count has reached `target` or the word would overshoot it (then try the next).

    lengths int32 [B, K] (word lengths in the random order), valid bool [B, K], target int32
    [B] -> bool [B, K] taken."""

    def step(count, column):
        length, ok = column  # [B], [B]
        take = ok & (count < target) & (count + length <= target)
        return count + tf.where(take, length, 0), take

    columns = (tf.transpose(lengths), tf.transpose(valid))  # [K, B] each
    _, taken = tf.scan(
        lambda acc, col: step(acc[0], col),
        columns,
        initializer=(tf.zeros_like(target), tf.zeros_like(target, tf.bool)),
    )
    return tf.transpose(taken)  # [B, K]


def _whole_word_selection(input_ids, candidate, scores, target, continuation):
    """bool [B, T]: whole words (a piece and its "##" continuations) picked in the random
    order of `scores` at their first pieces, by `greedy_take`."""
    shape = tf.shape(input_ids)
    b, t = shape[0], shape[1]
    is_cont = tf.gather(tf.constant(continuation, tf.bool), input_ids) & candidate
    starts = candidate & ~is_cont  # [B, T]
    word = tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1  # [B, T] word index
    in_word = candidate & (word >= 0)
    rows = tf.range(b)[:, None] * t  # [B, 1]
    segment = tf.where(in_word, rows + word, b * t)  # sink for the rest
    lengths = tf.math.unsorted_segment_sum(
        tf.ones([b * t], tf.int32), tf.reshape(segment, [-1]), b * t + 1
    )[:-1]
    lengths = tf.reshape(lengths, [b, t])  # [B, T] by word index
    order = tf.argsort(tf.where(starts, scores, 2.0), axis=1, stable=True)  # starts first
    valid = tf.gather(starts, order, batch_dims=1)  # [B, T]
    word_in_order = tf.gather(word, order, batch_dims=1)
    length_in_order = tf.where(
        valid, tf.gather(lengths, tf.maximum(word_in_order, 0), batch_dims=1), 0
    )
    taken = greedy_take(length_in_order, valid, target)  # [B, T] in order
    taken_word = tf.math.unsorted_segment_max(
        tf.reshape(tf.cast(taken & valid, tf.int32), [-1]),
        tf.reshape(tf.where(valid, rows + word_in_order, b * t), [-1]),
        b * t + 1,
    )[:-1]
    taken_word = tf.reshape(taken_word, [b, t]) > 0  # [B, T] by word index
    return in_word & tf.gather(taken_word, tf.maximum(word, 0), batch_dims=1)


def dynamic_mask(
    input_ids,
    input_mask,
    seed,
    *,
    vocab_size,
    mask_id,
    special_ids=(),
    masked_lm_prob=0.15,
    max_predictions_per_seq=20,
    continuation=None,
):
    """Masks a batch in TF with stateless random ops (deterministic for `seed`).

    Args:
      input_ids: int32 [B, T] unmasked token ids.
      input_mask: int32 [B, T], 1 for real tokens; padding is never masked.
      seed: int32/int64 [2] stateless seed (e.g. (base_seed, batch_index)).
      special_ids: ids never masked and never used as random replacements.
      continuation: None, or per vocab id True for "##" pieces: whole-word masking (a word's
        pieces are masked together; words are drawn in random order and skipped when they
        would exceed the number of predictions, as the original).

    Returns:
      dict with input_word_ids int32 [B, T] (masked), masked_lm_positions int32 [B, P],
      masked_lm_ids int32 [B, P], masked_lm_weights float32 [B, P] (1.0 real, 0.0 padding).
    """
    input_ids = tf.convert_to_tensor(input_ids, tf.int32)
    input_mask = tf.convert_to_tensor(input_mask, tf.int32)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    shape = tf.shape(input_ids)
    seeds = tf.random.experimental.stateless_split(seed, num=4)
    candidate, target = _candidates_and_targets(
        input_ids, input_mask, special_ids, masked_lm_prob, max_predictions_per_seq
    )

    # A random rank for every candidate; the `target` lowest-scoring candidates get masked.
    scores = tf.random.stateless_uniform(shape, seeds[0])  # [B, T]
    scores = tf.where(candidate, scores, 2.0)
    if continuation is not None:
        selected = _whole_word_selection(input_ids, candidate, scores, target, continuation)
    else:
        order = tf.argsort(scores, axis=1, stable=True)  # [B, T] positions by score
        ranks = tf.argsort(order, axis=1, stable=True)  # [B, T] rank of each position
        selected = ranks < target[:, None]  # [B, T]

    masked_positions, masked_ids, weights = _selected_positions(
        input_ids, selected, max_predictions_per_seq
    )
    replacement = _replacements(input_ids, seeds, vocab_size, mask_id, special_ids)
    masked_input = tf.where(selected, replacement, input_ids)
    return {
        "input_word_ids": masked_input,
        "masked_lm_positions": tf.cast(masked_positions, tf.int32),
        "masked_lm_ids": tf.cast(masked_ids, tf.int32),
        "masked_lm_weights": tf.cast(weights, tf.float32),
    }


def _candidates_and_targets(input_ids, input_mask, special_ids, masked_lm_prob, p):
    """Which tokens may be masked [B, T] bool, and how many to mask per row [B]."""
    candidate = tf.not_equal(input_mask, 0)  # [B, T]
    for special in special_ids:
        candidate &= tf.not_equal(input_ids, special)
    num_tokens = tf.reduce_sum(input_mask, axis=1)  # [B]
    # round-half-away-from-zero isn't needed: the original uses Python round (half to even),
    # and tf.round is half to even as well.
    target = tf.cast(tf.round(tf.cast(num_tokens, tf.float32) * masked_lm_prob), tf.int32)
    target = tf.minimum(tf.maximum(target, 1), p)
    target = tf.minimum(target, tf.reduce_sum(tf.cast(candidate, tf.int32), axis=1))  # [B]
    return candidate, target


def _selected_positions(input_ids, selected, p):
    """The selected positions in increasing order, padded to P: positions [B, P], their
    original ids [B, P], and weights [B, P] (True for real entries)."""
    length = tf.shape(input_ids)[1]
    # Sort keys that put the selected positions first.
    positions = tf.range(length)[None, :]  # [1, T]
    keys = tf.where(selected, positions, positions + length)  # [B, T]
    keys = tf.sort(keys, axis=1)
    pad = tf.maximum(p - length, 0)
    keys = tf.pad(keys, [[0, 0], [0, pad]], constant_values=2 * length)[:, :p]  # [B, P]
    weights = keys < length  # [B, P]
    masked_positions = tf.where(weights, keys, 0)
    masked_ids = tf.where(weights, tf.gather(input_ids, masked_positions, batch_dims=1), 0)
    return masked_positions, masked_ids, weights


def _replacements(input_ids, seeds, vocab_size, mask_id, special_ids):
    """What a selected token becomes [B, T]: 80% [MASK], 10% a random token, 10% unchanged
    (a random draw of a special id keeps the token)."""
    shape = tf.shape(input_ids)
    choice = tf.random.stateless_uniform(shape, seeds[1])  # [B, T]
    random_ids = tf.random.stateless_uniform(
        shape, seeds[2], minval=0, maxval=vocab_size, dtype=tf.int32
    )  # [B, T]
    random_ok = tf.ones_like(input_ids, tf.bool)
    for special in special_ids:
        random_ok &= tf.not_equal(random_ids, special)
    random_ids = tf.where(random_ok, random_ids, input_ids)  # a special draw keeps the token
    return tf.where(
        choice < 0.8, tf.fill(shape, mask_id), tf.where(choice < 0.9, random_ids, input_ids)
    )


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
