"""Packed pre-training rows in tf.data: packing a stream of examples, reading packed records,
and the model's feature/label names for them (see packing.py for the layout).

Model inputs of a packed batch (B rows, T tokens, S sequences per row, P predictions per row):
  features: input_word_ids, input_mask, input_type_ids, input_position_ids,
            input_sequence_ids int32 [B, T]; masked_lm_positions int32 [B, P];
            next_sentence_positions int32 [B, S]
  labels:   masked_lm_ids int32 [B, P], masked_lm_weights float32 [B, P],
            next_sentence_labels int32 [B, S], next_sentence_weights float32 [B, S]
"""

import tensorflow as tf

from bert_tf.data.pretraining import packing

# The record-layout fields a buffer of unpacked examples must hold, in this order.
_UNPACKED_KEYS = (
    "input_ids",
    "input_mask",
    "segment_ids",
    "masked_lm_positions",
    "masked_lm_ids",
    "masked_lm_weights",
    "next_sentence_labels",
)
_PACKED_KEYS = (
    "input_ids",
    "input_mask",
    "segment_ids",
    "sequence_ids",
    "position_ids",
    "masked_lm_positions",
    "masked_lm_ids",
    "masked_lm_weights",
    "next_sentence_positions",
    "next_sentence_labels",
    "next_sentence_weights",
)
_FLOAT_KEYS = ("masked_lm_weights", "next_sentence_weights")


def _width(name, config):
    if name.startswith("masked_lm"):
        return config.max_predictions_per_row
    if name.startswith("next_sentence"):
        return config.max_sequences_per_row
    return config.max_seq_length


def pack_batch(x, config):
    """A buffer of unpacked examples (dict of int32 / float32 [N, ...] tensors in the record
    layout) -> dict of [R, ...] packed rows, R <= N data-dependent (best-fit decreasing, in
    numpy inside the pipeline)."""

    def run(*arrays):
        out = packing.pack_examples(dict(zip(_UNPACKED_KEYS, arrays)), config)
        return [out[k].astype("float32" if k in _FLOAT_KEYS else "int32") for k in _PACKED_KEYS]

    tout = [tf.float32 if k in _FLOAT_KEYS else tf.int32 for k in _PACKED_KEYS]
    values = tf.numpy_function(run, [x[k] for k in _UNPACKED_KEYS], tout, stateful=False)
    out = {}
    for name, value in zip(_PACKED_KEYS, values):
        value.set_shape([None, _width(name, config)])
        out[name] = value
    return out


def packed_spec(config):
    """tf.io.parse_example spec of a packed record."""
    spec = {
        name: tf.io.FixedLenFeature([_width(name, config)], tf.int64)
        for name in _PACKED_KEYS
        if name not in _FLOAT_KEYS
    }
    for name in _FLOAT_KEYS:
        spec[name] = tf.io.FixedLenFeature([_width(name, config)], tf.float32)
    return spec


def record_packing_config(path, record):
    """The PackingConfig of a serialized packed record, or None for an unpacked one."""
    features = tf.train.Example.FromString(record).features.feature
    if "sequence_ids" not in features:
        return None
    missing = [k for k in _PACKED_KEYS if k not in features]
    if missing:
        raise packing.PackingError(f"{path}: packed record lacks feature '{missing[0]}'")

    def size(name):
        f = features[name]
        return len(f.float_list.value if name in _FLOAT_KEYS else f.int64_list.value)

    config = packing.PackingConfig(
        size("input_ids"), size("next_sentence_labels"), size("masked_lm_positions")
    )
    for name in _PACKED_KEYS:
        if size(name) != _width(name, config):
            raise packing.PackingError(
                f"{path}: packed feature '{name}' has {size(name)} values, expected "
                f"{_width(name, config)}"
            )
    return config


def to_packed_inputs(x):
    """Parsed packed rows (record names) -> (features, labels) for BertPretrainer."""
    x = {k: tf.cast(v, tf.float32 if k in _FLOAT_KEYS else tf.int32) for k, v in x.items()}
    features = {
        "input_word_ids": x["input_ids"],
        "input_mask": x["input_mask"],
        "input_type_ids": x["segment_ids"],
        "input_position_ids": x["position_ids"],
        "input_sequence_ids": x["sequence_ids"],
        "masked_lm_positions": x["masked_lm_positions"],
        "next_sentence_positions": x["next_sentence_positions"],
    }
    labels = {
        "masked_lm_ids": x["masked_lm_ids"],
        "masked_lm_weights": x["masked_lm_weights"],
        "next_sentence_labels": x["next_sentence_labels"],
        "next_sentence_weights": x["next_sentence_weights"],
    }
    return features, labels
