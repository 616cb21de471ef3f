"""Reading pre-training records into a tf.data pipeline for BertPretrainer.

Reads the records written by `bert_tf.data.pretraining_data` and by google-research/bert's
create_pretraining_data.py (same feature names): int64 input_ids, input_mask, segment_ids
[seq_length]; masked_lm_positions, masked_lm_ids [P], float masked_lm_weights [P]; int64
next_sentence_labels [1].

Each file's first record (and the shards' metadata JSON when present) is checked when the
dataset is built, so a wrong seq_length, max_predictions_per_seq or a missing feature is a
one-line error naming the file, not a failure deep inside a training step.

Shape legend: B = batch, T = seq_length, P = max_predictions_per_seq.
"""

import json
import random
import re

import tensorflow as tf

from bert_tf.data import packed_dataset
from bert_tf.data.packing import PackingError
from bert_tf.data.pretraining_data import (METADATA_SUFFIX, SHARD_SUFFIX, PretrainingDataError,
                                           file_sha256)
from bert_tf.text import masking

BASE_FEATURES = ("input_ids", "input_mask", "segment_ids", "next_sentence_labels")
MASK_FEATURES = ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights")
_SHARD_NAME = re.compile(r"^(.*)-\d+-of-\d+" + re.escape(SHARD_SUFFIX) + r"$")


def expand_file_patterns(file_patterns):
    """Comma-separated globs or a list of globs -> sorted unique file names."""
    if isinstance(file_patterns, str):
        file_patterns = file_patterns.split(",")
    patterns = [p.strip() for p in file_patterns if p and p.strip()]
    if not patterns:
        raise PretrainingDataError("no pre-training record files given")
    files = []
    for pattern in patterns:
        matched = sorted(tf.io.gfile.glob(pattern))
        if not matched:
            raise PretrainingDataError(f"{pattern}: no pre-training record files match")
        files.extend(f for f in matched if f not in files)
    return files


def _first_record(path):
    try:
        for record in tf.data.TFRecordDataset(path).take(1):
            return record.numpy()
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        raise PretrainingDataError(f"{path}: not a readable TFRecord file "
                                   f"({e.message.splitlines()[0]})") from None
    return None


def _feature_values(feature):
    kind = feature.WhichOneof("kind")
    if kind is None:
        return "empty", []
    return kind, list(getattr(feature, kind).value)


def check_record(path, record, seq_length, max_predictions_per_seq, need_masks):
    """Checks one serialized example against the expected layout.

    Returns the number of masked-LM slots the record holds (0 if it has no masked_lm_*)."""
    example = tf.train.Example.FromString(record)
    features = example.features.feature

    def check(name, kind, length):
        if name not in features:
            raise PretrainingDataError(f"{path}: record lacks feature '{name}' (has "
                                       f"{', '.join(sorted(features)) or 'none'})")
        got_kind, values = _feature_values(features[name])
        if got_kind != kind:
            raise PretrainingDataError(f"{path}: feature '{name}' is {got_kind}, expected "
                                       f"{kind}")
        if length is not None and len(values) != length:
            what = {"next_sentence_labels": "1"}.get(name)
            expected = what or (f"seq_length={length}" if name in BASE_FEATURES
                                else f"max_predictions_per_seq={length}")
            raise PretrainingDataError(f"{path}: feature '{name}' has {len(values)} values, "
                                       f"expected {expected}")
        return len(values)

    for name in ("input_ids", "input_mask", "segment_ids"):
        check(name, "int64_list", seq_length)
    check("next_sentence_labels", "int64_list", 1)
    has_masks = [name in features for name in MASK_FEATURES]
    if need_masks:
        if not any(has_masks):
            raise PretrainingDataError(
                f"{path}: records are unmasked (no masked_lm_* features); read them with "
                "dynamic_masking=True")
        slots = check("masked_lm_positions", "int64_list", max_predictions_per_seq)
    else:
        if not any(has_masks):
            return 0
        slots = check("masked_lm_positions", "int64_list", None)
    check("masked_lm_ids", "int64_list", slots)
    check("masked_lm_weights", "float_list", slots)
    return slots


def _load_metadata(files):
    """The metadata JSON next to each group of shards, if present: {prefix: dict}."""
    found = {}
    for path in files:
        m = _SHARD_NAME.match(path)
        if not m or m.group(1) in found:
            continue
        meta_path = m.group(1) + METADATA_SUFFIX
        if tf.io.gfile.exists(meta_path):
            try:
                with tf.io.gfile.GFile(meta_path) as f:
                    found[m.group(1)] = (meta_path, json.load(f))
            except ValueError as e:
                raise PretrainingDataError(f"{meta_path}: not valid JSON ({e})") from None
    return found


def _check_metadata(metadata, seq_length, max_predictions_per_seq, dynamic_masking,
                    vocab_size, vocab_file):
    vocab_hash = file_sha256(vocab_file) if vocab_file else None
    for meta_path, meta in metadata.values():
        if meta.get("max_seq_length") != seq_length:
            raise PretrainingDataError(
                f"{meta_path}: records have max_seq_length={meta.get('max_seq_length')}, "
                f"expected seq_length={seq_length}")
        if not dynamic_masking and meta.get("masked") is False:
            raise PretrainingDataError(
                f"{meta_path}: records are unmasked (max_predictions_per_seq=0); read them "
                "with dynamic_masking=True")
        if (not dynamic_masking
                and meta.get("max_predictions_per_seq") != max_predictions_per_seq):
            raise PretrainingDataError(
                f"{meta_path}: records have max_predictions_per_seq="
                f"{meta.get('max_predictions_per_seq')}, expected {max_predictions_per_seq}")
        if vocab_size is not None and meta.get("vocab_size", 0) > vocab_size:
            raise PretrainingDataError(
                f"{meta_path}: records use a vocab of {meta['vocab_size']} tokens, more than "
                f"the model's vocab_size={vocab_size}")
        if vocab_hash and meta.get("vocab_sha256") not in (None, vocab_hash):
            raise PretrainingDataError(
                f"{meta_path}: records were made with a different vocab (sha256 "
                f"{meta['vocab_sha256'][:12]}...), not {vocab_file} ({vocab_hash[:12]}...)")


def _limited_reader(record_limits):
    """TFRecordDataset of one file, cut to its `record_limits` entry (if any)."""
    if not record_limits:
        return tf.data.TFRecordDataset
    paths = tf.constant(sorted(record_limits))
    limits = tf.constant([int(record_limits[p]) for p in sorted(record_limits)], tf.int64)

    def read(path):
        limit = tf.reduce_max(tf.where(tf.equal(paths, path), limits, -1))   # -1: all
        return tf.data.TFRecordDataset(path).take(limit)
    return read


def pretraining_dataset(file_patterns, batch_size, seq_length, max_predictions_per_seq,
                        is_training=True, seed=None, dynamic_masking=False, vocab_size=None,
                        mask_id=None, special_ids=(), masked_lm_prob=0.15, input_context=None,
                        num_epochs=None, vocab_file=None, shuffle_buffer_size=10000,
                        cycle_length=8, whole_word_masking=False, packing=None,
                        pack_buffer_size=1024, record_limits=None):
    """A tf.data.Dataset of (features, labels) batches for BertPretrainer.

    features: input_word_ids, input_mask, input_type_ids int32 [B, T], masked_lm_positions
    int32 [B, P]; labels: masked_lm_ids int32 [B, P], masked_lm_weights float32 [B, P],
    next_sentence_labels int32 [B].

    Args:
      file_patterns: comma-separated globs or a list of globs of TFRecord files.
      batch_size: the global batch size; with `input_context` each input pipeline yields
        `input_context.get_per_replica_batch_size(batch_size)` examples per batch.
      is_training: shuffle files and records, repeat, drop the last partial batch.
      seed: makes file order, record shuffling and dynamic masks reproducible.
      dynamic_masking: draw fresh masks for every batch (so every epoch) instead of using the
        stored ones; works on unmasked records (max_predictions_per_seq=0 at creation) and on
        masked ones (the stored masks are undone first). Needs vocab_size and mask_id, taken
        from the shards' metadata JSON when not given.
      special_ids: token ids never masked (e.g. [CLS], [SEP], [PAD]); defaults from metadata.
      input_context: a tf.distribute.InputContext; files are sharded across its pipelines.
      num_epochs: passes over the data; None = forever when training, once otherwise.
      vocab_file: if given, checked against the vocab hash in the shards' metadata.
      whole_word_masking: with dynamic_masking, mask whole words (a piece and its "##"
        continuations, read from `vocab_file`, which is then required).
      packing: a `bert_tf.data.packing.PackingConfig`: pack the (masked) examples into rows
        of several sequences in the pipeline, `pack_buffer_size` examples at a time; batches
        are then packed rows (see bert_tf/data/packed_dataset.py for their features).
        Records written packed (`create_pretraining_data --pack`) are read as packed rows
        without this argument.
      record_limits: {file path: n}: read only the first n records of that file (the good
        records before a corrupt one, see bert_tf/data/record_scan.py).
    """
    if whole_word_masking and not dynamic_masking:
        raise PretrainingDataError(
            "whole_word_masking applies to dynamic_masking (stored masks are whole-word if "
            "the records were created with --whole_word_masking)")
    if whole_word_masking and not vocab_file:
        raise PretrainingDataError("whole_word_masking needs vocab_file (to find the '##' "
                                   "pieces)")
    files = expand_file_patterns(file_patterns)
    metadata = _load_metadata(files)
    _check_metadata(metadata, seq_length, max_predictions_per_seq, dynamic_masking, vocab_size,
                    vocab_file)
    if dynamic_masking:
        metas = [m for _, m in metadata.values()]
        if metas:
            special = metas[0].get("special_ids", {})
            if mask_id is None:
                mask_id = special.get("mask")
            if vocab_size is None:
                vocab_size = metas[0].get("vocab_size")
            if not special_ids:
                special_ids = tuple(sorted(set(special.values())))
        if mask_id is None or vocab_size is None:
            raise PretrainingDataError(
                "dynamic_masking needs vocab_size and mask_id (no metadata JSON next to "
                f"{files[0]} to take them from)")
        if max_predictions_per_seq < 1:
            raise PretrainingDataError("dynamic_masking needs max_predictions_per_seq >= 1, "
                                       f"got {max_predictions_per_seq}")
    continuation = None
    if whole_word_masking:
        from bert_tf.text.vocab import load_vocab
        continuation = [token.startswith("##") for token in load_vocab(vocab_file)]
        if len(continuation) != int(vocab_size):
            raise PretrainingDataError(f"{vocab_file}: {len(continuation)} tokens, the "
                                       f"records' vocab has {vocab_size}")

    stored_slots = None
    stored_packing = None
    readable = []
    for path in files:
        record = _first_record(path)
        if record is None:
            continue  # an empty shard: nothing to check, nothing to read
        file_packing = packed_dataset.record_packing_config(path, record)
        if file_packing is not None or stored_packing is not None:
            if stored_slots is not None:
                file_packing = None   # an unpacked file came first: a mix
            stored_packing = _check_packed_file(path, file_packing, stored_packing, seq_length,
                                                dynamic_masking, packing)
            readable.append(path)
            continue
        slots = check_record(path, record, seq_length, max_predictions_per_seq,
                             need_masks=not dynamic_masking)
        if stored_slots is not None and slots != stored_slots:
            raise PretrainingDataError(
                f"{path}: records hold {slots} masked-LM slots, other files {stored_slots}")
        stored_slots = slots
        readable.append(path)
    if not readable:
        raise PretrainingDataError(f"{files[0]}: all {len(files)} record files are empty")

    if packing is not None and not (stored_slots or dynamic_masking):
        raise PackingError(f"{readable[0]}: packing needs masked records or dynamic_masking")
    if packing is not None and packing.max_seq_length != seq_length:
        raise PackingError(f"packing max_seq_length={packing.max_seq_length}, records have "
                           f"seq_length={seq_length}")

    spec = {
        "input_ids": tf.io.FixedLenFeature([seq_length], tf.int64),
        "input_mask": tf.io.FixedLenFeature([seq_length], tf.int64),
        "segment_ids": tf.io.FixedLenFeature([seq_length], tf.int64),
        "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
    }
    if stored_slots:
        spec["masked_lm_positions"] = tf.io.FixedLenFeature([stored_slots], tf.int64)
        spec["masked_lm_ids"] = tf.io.FixedLenFeature([stored_slots], tf.int64)
        spec["masked_lm_weights"] = tf.io.FixedLenFeature([stored_slots], tf.float32)

    if dynamic_masking and seed is None:
        seed = random.SystemRandom().randrange(1 << 31)
    deterministic = seed is not None or not is_training
    per_pipeline_batch = batch_size
    ds = tf.data.Dataset.from_tensor_slices(readable)
    if input_context is not None:
        per_pipeline_batch = input_context.get_per_replica_batch_size(batch_size)
        if input_context.num_input_pipelines > 1:
            if len(readable) < input_context.num_input_pipelines:
                raise PretrainingDataError(
                    f"{readable[0]}: {len(readable)} record files cannot be split across "
                    f"{input_context.num_input_pipelines} input pipelines; write more shards")
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if is_training:
        ds = ds.shuffle(len(readable), seed=seed, reshuffle_each_iteration=True)
        ds = ds.repeat(num_epochs)
    elif num_epochs:
        ds = ds.repeat(num_epochs)
    ds = ds.interleave(_limited_reader(record_limits),
                       cycle_length=min(cycle_length, len(readable)),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if is_training:
        ds = ds.shuffle(shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True)
    if stored_packing is not None:
        spec = packed_dataset.packed_spec(stored_packing)
        ds = ds.batch(per_pipeline_batch, drop_remainder=is_training)
    elif packing is not None:
        ds = ds.batch(pack_buffer_size)   # a buffer of examples to pack together
    else:
        ds = ds.batch(per_pipeline_batch, drop_remainder=is_training)

    def parse(records):
        raw = tf.io.parse_example(records, spec)
        out = {k: tf.cast(v, tf.float32 if k == "masked_lm_weights" else tf.int32)
               for k, v in raw.items()}
        return out

    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if stored_packing is not None:
        ds = ds.map(packed_dataset.to_packed_inputs, num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=deterministic)
        return _finish(ds, deterministic)

    def to_inputs(x):
        if packing is not None:
            return x   # record layout, for pack_batch
        features = {"input_word_ids": x["input_ids"], "input_mask": x["input_mask"],
                    "input_type_ids": x["segment_ids"],
                    "masked_lm_positions": x["masked_lm_positions"]}
        labels = {"masked_lm_ids": x["masked_lm_ids"],
                  "masked_lm_weights": x["masked_lm_weights"],
                  "next_sentence_labels": x["next_sentence_labels"][:, 0]}
        return features, labels

    if dynamic_masking:
        masking_kwargs = dict(vocab_size=int(vocab_size), mask_id=int(mask_id),
                              special_ids=tuple(int(i) for i in special_ids),
                              masked_lm_prob=masked_lm_prob,
                              max_predictions_per_seq=max_predictions_per_seq,
                              continuation=continuation)
        pipeline_id = input_context.input_pipeline_id if input_context is not None else 0

        def remask(index, x):
            ids = x["input_ids"]
            if stored_slots:
                ids = masking.unmask(ids, x["masked_lm_positions"], x["masked_lm_ids"],
                                     x["masked_lm_weights"])
            # One stateless seed per (run seed, pipeline, batch index): new masks every batch
            # (so every epoch), the same ones on a rerun with the same seed.
            batch_seed = tf.stack([tf.constant(seed, tf.int64),
                                   index * 1024 + pipeline_id])
            m = masking.dynamic_mask(ids, x["input_mask"], batch_seed, **masking_kwargs)
            x = dict(x)
            x["input_ids"] = m["input_word_ids"]
            for k in ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights"):
                x[k] = m[k]
            return to_inputs(x)

        ds = ds.enumerate().map(remask, num_parallel_calls=tf.data.AUTOTUNE,
                                deterministic=deterministic)
    else:
        ds = ds.map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if packing is not None:
        ds = ds.map(lambda x: packed_dataset.pack_batch(x, packing),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic).unbatch()
        if is_training:   # rows come out longest-first within a buffer: mix them
            ds = ds.shuffle(pack_buffer_size, seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(per_pipeline_batch, drop_remainder=is_training)
        ds = ds.map(packed_dataset.to_packed_inputs, num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=deterministic)
    return _finish(ds, deterministic)


def _finish(ds, deterministic):
    options = tf.data.Options()
    options.deterministic = deterministic
    ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE)


def _check_packed_file(path, file_packing, stored_packing, seq_length, dynamic_masking,
                       packing):
    """Checks one file of records written packed; returns its PackingConfig."""
    if file_packing is None or (stored_packing is not None and file_packing != stored_packing):
        raise PretrainingDataError(f"{path}: packed and unpacked (or differently packed) "
                                   "record files mixed")
    if file_packing.max_seq_length != seq_length:
        raise PretrainingDataError(f"{path}: feature 'input_ids' has "
                                   f"{file_packing.max_seq_length} values, expected "
                                   f"seq_length={seq_length}")
    if dynamic_masking:
        raise PretrainingDataError(f"{path}: records are packed with fixed masks; dynamic "
                                   "masking packs in the pipeline instead (write unpacked "
                                   "records and use packing)")
    if packing is not None:
        raise PretrainingDataError(f"{path}: records are already packed; read them without "
                                   "packing")
    return file_packing
