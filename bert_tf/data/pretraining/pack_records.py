"""Packing pre-training records written by `create_pretraining_data` into packed records.

Reads the masked shards under one prefix in order (shard 0 first), packs every
`buffer_size` consecutive sequences with best-fit decreasing (bert_tf/data/pretraining/packing.py),
shuffles the rows of each buffer with a seeded generator, and deals them round-robin over the
output shards. Same inputs and settings -> byte-identical output. The metadata JSON of the
output is the input's plus a "packing" section (settings, rows, sequences, padding share
before and after). Every file goes through tf.io.gfile, so both prefixes may be local paths or
URIs (gs://, file://, ...), e.g. the output of the Beam pipeline on a cluster.
"""

import json

import numpy as np
import tensorflow as tf

from bert_tf.atomic_io import atomic_write_json
from bert_tf.data.pretraining import create as pretraining_data
from bert_tf.data.pretraining import example as pretraining_example
from bert_tf.data.pretraining import packing
from bert_tf.data.pretraining.packing import PackingError

_INT_NAMES = (
    "input_ids",
    "input_mask",
    "segment_ids",
    "sequence_ids",
    "position_ids",
    "masked_lm_positions",
    "masked_lm_ids",
    "next_sentence_positions",
    "next_sentence_labels",
)
_FLOAT_NAMES = ("masked_lm_weights", "next_sentence_weights")


def _input_shards(prefix):
    meta_path = pretraining_data.metadata_path(prefix)
    if not tf.io.gfile.exists(meta_path):
        raise PackingError(f"{meta_path}: no metadata next to the records to pack")
    with tf.io.gfile.GFile(meta_path) as f:
        meta = json.load(f)
    if not meta.get("masked"):
        raise PackingError(
            f"{meta_path}: records are unmasked; packing records needs stored "
            "masks (for dynamic masking pack at training time: apps.pretrain "
            "--pack)"
        )
    return meta, _shards(prefix)


def _shards(prefix):
    # gfile globs treat [ ] * ? as patterns: escape the prefix's own ones
    escaped = "".join(f"[{c}]" if c in "[]*?" else c for c in prefix)
    return sorted(tf.io.gfile.glob(escaped + "-*-of-*" + pretraining_data.SHARD_SUFFIX))


def existing_outputs(prefix):
    """Shards and metadata already under `prefix` (a path or a URI)."""
    meta_path = pretraining_data.metadata_path(prefix)
    return _shards(prefix) + ([meta_path] if tf.io.gfile.exists(meta_path) else [])


def remove_outputs(prefix):
    for path in existing_outputs(prefix):
        tf.io.gfile.remove(path)


def _buffers(shards, seq_length, slots, buffer_size):
    spec = {
        name: tf.io.FixedLenFeature([seq_length], tf.int64)
        for name in ("input_ids", "input_mask", "segment_ids")
    }
    spec["next_sentence_labels"] = tf.io.FixedLenFeature([1], tf.int64)
    spec["masked_lm_positions"] = tf.io.FixedLenFeature([slots], tf.int64)
    spec["masked_lm_ids"] = tf.io.FixedLenFeature([slots], tf.int64)
    spec["masked_lm_weights"] = tf.io.FixedLenFeature([slots], tf.float32)
    ds = tf.data.TFRecordDataset(shards).batch(buffer_size)
    ds = ds.map(lambda r: tf.io.parse_example(r, spec))
    for batch in ds.as_numpy_iterator():
        yield batch


def _serialize(rows, r):
    ints = {name: rows[name][r].tolist() for name in _INT_NAMES}
    floats = {name: rows[name][r].tolist() for name in _FLOAT_NAMES}
    return pretraining_example.encode_example(ints, floats)


def pack_record_files(
    input_prefix,
    output_prefix,
    *,
    max_sequences_per_row=3,
    max_predictions_per_row=None,
    num_shards=1,
    buffer_size=4096,
    seed=0,
):
    """Packs the records under `input_prefix` into `<output_prefix>-NNNNN-of-MMMMM.tfrecord`
    and `<output_prefix>.metadata.json`; returns the metadata dict."""
    meta, shards = _input_shards(input_prefix)
    t, p = meta["max_seq_length"], meta["max_predictions_per_seq"]
    config = packing.check_settings(
        t,
        p,
        max_sequences_per_row,
        max_predictions_per_row,
        buffer_size,
        meta.get("masked_lm_prob", 0.15),
    )
    per_row = config.max_predictions_per_row
    paths = pretraining_data.shard_paths(output_prefix, num_shards)
    tmp_paths = [path + ".tmp" for path in paths]
    writers = [tf.io.TFRecordWriter(path) for path in tmp_paths]
    rng = np.random.default_rng(seed)
    counts = [0] * num_shards
    tokens = sequences = slots_before = rows_total = next_shard = 0
    try:
        for batch in _buffers(shards, t, p, buffer_size):
            rows = packing.pack_examples(batch, config)
            tokens += int(batch["input_mask"].sum())
            sequences += batch["input_mask"].shape[0]
            slots_before += batch["input_mask"].size
            for r in rng.permutation(rows["input_ids"].shape[0]):
                writers[next_shard].write(_serialize(rows, r))
                counts[next_shard] += 1
                next_shard = (next_shard + 1) % num_shards
                rows_total += 1
    except BaseException:
        for w in writers:
            w.close()
        for path in tmp_paths:
            if tf.io.gfile.exists(path):
                tf.io.gfile.remove(path)
        raise
    for w in writers:
        w.close()
    for tmp, path in zip(tmp_paths, paths):
        tf.io.gfile.rename(tmp, path, overwrite=True)
    out = dict(meta)
    out.update(
        num_shards=num_shards, shards=[x.rsplit("/", 1)[-1] for x in paths], shard_instances=counts
    )
    out["packing"] = {
        "algorithm": packing.ALGORITHM,
        "max_sequences_per_row": max_sequences_per_row,
        "max_predictions_per_row": per_row,
        "buffer_size": buffer_size,
        "seed": seed,
        "rows": rows_total,
        "sequences": sequences,
        "tokens": tokens,
        "padding_share_unpacked": 1.0 - tokens / max(slots_before, 1),
        "padding_share_packed": 1.0 - tokens / max(rows_total * t, 1),
    }
    atomic_write_json(pretraining_data.metadata_path(output_prefix), out)
    return out
