"""Pre-training instances from token-id documents, as google-research/bert makes them, and
their serialization as tf.train.Example records.

An instance is `[CLS] A [SEP] B [SEP]`: A is the first segments of a chunk of one document,
B the rest of the chunk or (half of the time, and always for a one-segment chunk) segments
from a random other document, in which case the A-side segments not used are put back.
Pairs are truncated longest-first from a random end, then masked (bert_tf/text/masking.py).
Every random decision comes from `rng`, in the original's order, so a seed gives the same
records as before.
"""

import collections

from bert_tf.data.pretraining import example as pretraining_example
from bert_tf.text import masking
from bert_tf.text import vocab as vocab_lib

Instance = collections.namedtuple(
    "Instance", "input_ids segment_ids masked_positions masked_ids is_random_next"
)


class InstanceVocab:
    """What instance creation needs to know about the vocab (small, picklable)."""

    def __init__(self, tokens):
        self.size = len(tokens)
        ids = {t: i for i, t in enumerate(tokens)}
        self.cls_id, self.sep_id, self.mask_id = ids["[CLS]"], ids["[SEP]"], ids["[MASK]"]
        self.pad_id, self.unk_id = ids["[PAD]"], ids["[UNK]"]
        self.special_ids = frozenset(ids[t] for t in vocab_lib.SPECIAL_TOKENS)
        self.continuation = frozenset(i for i, t in enumerate(tokens) if t.startswith("##"))


def _truncate_pair(tokens_a, tokens_b, max_num_tokens, rng):
    """Longest-first truncation, each cut from the front or the back at random (original)."""
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def _random_segments(documents, index, target_length, rng):
    """Tokens of consecutive segments of a random other document (from a random start) until
    `target_length` is reached."""
    random_index = index
    if len(documents) > 1:
        for _ in range(10):
            random_index = rng.randint(0, len(documents) - 1)
            if random_index != index:
                break
    random_document = documents[random_index]
    tokens = []
    for j in range(rng.randint(0, len(random_document) - 1), len(random_document)):
        tokens.extend(random_document[j])
        if len(tokens) >= target_length:
            break
    return tokens


def _segment_pair(chunk, documents, index, target_seq_length, rng):
    """(tokens_a, tokens_b, is_random_next, number of A-side segments put back)."""
    a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
    tokens_a = [t for seg in chunk[:a_end] for t in seg]
    if not (len(chunk) == 1 or rng.random() < 0.5):
        return tokens_a, [t for seg in chunk[a_end:] for t in seg], False, 0
    tokens_b = _random_segments(documents, index, target_seq_length - len(tokens_a), rng)
    # The A-side segments not used go back to be used again.
    return tokens_a, tokens_b, True, len(chunk) - a_end


def _make_instance(tokens_a, tokens_b, is_random_next, config, vocab, rng):
    tokens = [vocab.cls_id, *tokens_a, vocab.sep_id, *tokens_b, vocab.sep_id]
    segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
    if not config.max_predictions_per_seq:
        return Instance(tokens, segment_ids, [], [], is_random_next)
    tokens, positions, labels = masking.create_masked_lm_predictions(
        tokens,
        rng,
        masked_lm_prob=config.masked_lm_prob,
        max_predictions_per_seq=config.max_predictions_per_seq,
        vocab_size=vocab.size,
        mask_id=vocab.mask_id,
        special_ids=vocab.special_ids,
        is_continuation=vocab.continuation.__contains__,
        whole_word_masking=config.whole_word_masking,
    )
    return Instance(tokens, segment_ids, positions, labels, is_random_next)


def create_instances_from_document(documents, index, config, vocab, rng):
    """The original's create_instances_from_document, on token-id documents."""
    document = documents[index]
    max_num_tokens = config.max_seq_length - 3
    target_seq_length = max_num_tokens
    if rng.random() < config.short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)
    instances = []
    chunk, chunk_length = [], 0
    i = 0
    while i < len(document):
        chunk.append(document[i])
        chunk_length += len(document[i])
        if i == len(document) - 1 or chunk_length >= target_seq_length:
            tokens_a, tokens_b, is_random_next, put_back = _segment_pair(
                chunk, documents, index, target_seq_length, rng
            )
            i -= put_back
            _truncate_pair(tokens_a, tokens_b, max_num_tokens, rng)
            if tokens_a and tokens_b:
                instances.append(
                    _make_instance(tokens_a, tokens_b, is_random_next, config, vocab, rng)
                )
            chunk, chunk_length = [], 0
        i += 1
    return instances


def serialize_instance(instance, max_seq_length, max_predictions_per_seq):
    """One tf.train.Example with the original feature names, as bytes (the same bytes as
    tf.train.Example.SerializeToString(deterministic=True))."""
    n = len(instance.input_ids)
    pad = max_seq_length - n
    ints = {
        "input_ids": instance.input_ids + [0] * pad,
        "input_mask": [1] * n + [0] * pad,
        "segment_ids": instance.segment_ids + [0] * pad,
        "next_sentence_labels": [1 if instance.is_random_next else 0],
    }
    floats = {}
    if max_predictions_per_seq:
        m = len(instance.masked_positions)
        mpad = max_predictions_per_seq - m
        ints["masked_lm_positions"] = instance.masked_positions + [0] * mpad
        ints["masked_lm_ids"] = instance.masked_ids + [0] * mpad
        floats["masked_lm_weights"] = [1.0] * m + [0.0] * mpad
    return pretraining_example.encode_example(ints, floats)
