"""Reading pre-training records into a tf.data pipeline for BertPretrainer.

Reads the records written by `bert_tf.data.pretraining.create` and by google-research/bert's
create_pretraining_data.py (same feature names): int64 input_ids, input_mask, segment_ids
[seq_length]; masked_lm_positions, masked_lm_ids [P], float masked_lm_weights [P]; int64
next_sentence_labels [1].

Each file's first record (and the shards' metadata JSON when present) is checked when the
dataset is built, so a wrong seq_length, max_predictions_per_seq or a missing feature is a
one-line error naming the file, not a failure deep inside a training step.

Shape legend: B = batch, T = seq_length, P = max_predictions_per_seq.
"""

import random

import tensorflow as tf

from bert_tf import input_files
from bert_tf.data.pretraining import packed_dataset
from bert_tf.data.pretraining import record_checks as checks
from bert_tf.data.pretraining.config import PretrainingDataError
from bert_tf.text import masking


def expand_file_patterns(file_patterns):
    """Comma-separated globs or a list of globs -> file names in pattern order, each once."""
    if not input_files.split_patterns(file_patterns):
        raise PretrainingDataError("no pre-training record files given")
    return input_files.expand_patterns(
        file_patterns,
        lambda pattern: PretrainingDataError(f"{pattern}: no pre-training record files match"),
    )


def _limited_reader(record_limits):
    """TFRecordDataset of one file, cut to its `record_limits` entry (if any)."""
    if not record_limits:
        return tf.data.TFRecordDataset
    paths = tf.constant(sorted(record_limits))
    limits = tf.constant([int(record_limits[p]) for p in sorted(record_limits)], tf.int64)

    def read(path):
        limit = tf.reduce_max(tf.where(tf.equal(paths, path), limits, -1))  # -1: all
        return tf.data.TFRecordDataset(path).take(limit)

    return read


def pretraining_dataset(
    file_patterns,
    batch_size,
    seq_length,
    max_predictions_per_seq,
    is_training=True,
    seed=None,
    dynamic_masking=False,
    vocab_size=None,
    mask_id=None,
    special_ids=(),
    masked_lm_prob=0.15,
    input_context=None,
    num_epochs=None,
    vocab_file=None,
    shuffle_buffer_size=10000,
    cycle_length=8,
    whole_word_masking=False,
    packing=None,
    pack_buffer_size=1024,
    record_limits=None,
):
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
      packing: a `bert_tf.data.pretraining.packing.PackingConfig`: pack the (masked)
        examples into rows of several sequences in the pipeline, `pack_buffer_size` examples
        at a time; batches are then packed rows (see packed_dataset.py for their features).
        Records written packed (`create_pretraining_data --pack`) are read as packed rows
        without this argument.
      record_limits: {file path: n}: read only the first n records of that file (the good
        records before a corrupt one, see bert_tf/data/pretraining/record_scan.py).
    """
    _check_masking_arguments(whole_word_masking, dynamic_masking, vocab_file)
    files = expand_file_patterns(file_patterns)
    metadata = checks.load_metadata(files)
    checks.check_metadata(
        metadata, seq_length, max_predictions_per_seq, dynamic_masking, vocab_size, vocab_file
    )
    if dynamic_masking:
        vocab_size, mask_id, special_ids = checks.masking_settings(
            metadata, files, vocab_size, mask_id, special_ids, max_predictions_per_seq
        )
    continuation = checks.continuation_flags(vocab_file, vocab_size) if whole_word_masking else None
    readable, stored_slots, stored_packing = checks.readable_files(
        files, seq_length, max_predictions_per_seq, dynamic_masking, packing
    )

    if dynamic_masking and seed is None:
        seed = random.SystemRandom().randrange(1 << 31)
    deterministic = seed is not None or not is_training
    per_pipeline_batch = (
        batch_size
        if input_context is None
        else input_context.get_per_replica_batch_size(batch_size)
    )
    ds = _records(
        readable,
        is_training,
        seed,
        num_epochs,
        input_context,
        cycle_length,
        record_limits,
        shuffle_buffer_size,
        deterministic,
    )
    spec = (
        packed_dataset.packed_spec(stored_packing)
        if stored_packing is not None
        else _record_spec(seq_length, stored_slots)
    )
    if stored_packing is None and packing is not None:
        ds = ds.batch(pack_buffer_size)  # a buffer of examples to pack together
    else:
        ds = ds.batch(per_pipeline_batch, drop_remainder=is_training)
    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = ds.map(lambda records: _parse(records, spec), **parallel)
    if stored_packing is not None:
        ds = ds.map(packed_dataset.to_packed_inputs, **parallel)
        return _finish(ds, deterministic)
    if dynamic_masking:
        masking_kwargs = dict(
            vocab_size=int(vocab_size),
            mask_id=int(mask_id),
            special_ids=tuple(int(i) for i in special_ids),
            masked_lm_prob=masked_lm_prob,
            max_predictions_per_seq=max_predictions_per_seq,
            continuation=continuation,
        )
        pipeline_id = input_context.input_pipeline_id if input_context is not None else 0
        remask = _remasker(seed, pipeline_id, stored_slots, packing, masking_kwargs)
        ds = ds.enumerate().map(remask, **parallel)
    else:
        ds = ds.map(lambda x: _to_inputs(x, packing), **parallel)
    if packing is not None:
        ds = _pack_rows(
            ds, packing, is_training, seed, pack_buffer_size, per_pipeline_batch, parallel
        )
    return _finish(ds, deterministic)


def _pack_rows(ds, packing, is_training, seed, pack_buffer_size, batch_size, parallel):
    """Buffers of examples -> batches of packed rows (packed_dataset.py)."""
    ds = ds.map(lambda x: packed_dataset.pack_batch(x, packing), **parallel).unbatch()
    if is_training:  # rows come out longest-first within a buffer: mix them
        ds = ds.shuffle(pack_buffer_size, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=is_training)
    return ds.map(packed_dataset.to_packed_inputs, **parallel)


def _check_masking_arguments(whole_word_masking, dynamic_masking, vocab_file):
    if whole_word_masking and not dynamic_masking:
        raise PretrainingDataError(
            "whole_word_masking applies to dynamic_masking (stored masks are whole-word if "
            "the records were created with --whole_word_masking)"
        )
    if whole_word_masking and not vocab_file:
        raise PretrainingDataError("whole_word_masking needs vocab_file (to find the '##' pieces)")


def _records(
    readable,
    is_training,
    seed,
    num_epochs,
    input_context,
    cycle_length,
    record_limits,
    shuffle_buffer_size,
    deterministic,
):
    """The serialized records of this input pipeline's share of the files: files shuffled
    and repeated when training, read `cycle_length` at a time, records shuffled."""
    ds = tf.data.Dataset.from_tensor_slices(readable)
    if input_context is not None and input_context.num_input_pipelines > 1:
        if len(readable) < input_context.num_input_pipelines:
            raise PretrainingDataError(
                f"{readable[0]}: {len(readable)} record files cannot be split across "
                f"{input_context.num_input_pipelines} input pipelines; write more shards"
            )
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if is_training:
        ds = ds.shuffle(len(readable), seed=seed, reshuffle_each_iteration=True)
        ds = ds.repeat(num_epochs)
    elif num_epochs:
        ds = ds.repeat(num_epochs)
    ds = ds.interleave(
        _limited_reader(record_limits),
        cycle_length=min(cycle_length, len(readable)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if is_training:
        ds = ds.shuffle(shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True)
    return ds


def _record_spec(seq_length, stored_slots):
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
    return spec


def _parse(records, spec):
    raw = tf.io.parse_example(records, spec)
    return {
        k: tf.cast(v, tf.float32 if k == "masked_lm_weights" else tf.int32) for k, v in raw.items()
    }


def _to_inputs(x, packing):
    """Record features -> (features, labels) of BertPretrainer (the record layout itself
    when the batch is packed next)."""
    if packing is not None:
        return x  # record layout, for pack_batch
    features = {
        "input_word_ids": x["input_ids"],
        "input_mask": x["input_mask"],
        "input_type_ids": x["segment_ids"],
        "masked_lm_positions": x["masked_lm_positions"],
    }
    labels = {
        "masked_lm_ids": x["masked_lm_ids"],
        "masked_lm_weights": x["masked_lm_weights"],
        "next_sentence_labels": x["next_sentence_labels"][:, 0],
    }  # [B, 1] -> [B]
    return features, labels


def _remasker(seed, pipeline_id, stored_slots, packing, masking_kwargs):
    """(batch index, record features) -> inputs with fresh masks (stored masks undone)."""

    def remask(index, x):
        ids = x["input_ids"]
        if stored_slots:
            ids = masking.unmask(
                ids, x["masked_lm_positions"], x["masked_lm_ids"], x["masked_lm_weights"]
            )
        # One stateless seed per (run seed, pipeline, batch index): new masks every batch
        # (so every epoch), the same ones on a rerun with the same seed.
        batch_seed = tf.stack([tf.constant(seed, tf.int64), index * 1024 + pipeline_id])
        m = masking.dynamic_mask(ids, x["input_mask"], batch_seed, **masking_kwargs)
        x = dict(x)
        x["input_ids"] = m["input_word_ids"]
        for k in ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights"):
            x[k] = m[k]
        return _to_inputs(x, packing)

    return remask


def _finish(ds, deterministic):
    options = tf.data.Options()
    options.deterministic = deterministic
    ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE)
