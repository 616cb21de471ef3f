"""Checks of pre-training record files before a dataset reads them: each file's first
record, the shards' metadata JSON, records written packed, and the masking settings the
metadata supplies. Every problem is a one-line error naming the file."""

import json
import re

import tensorflow as tf

from bert_tf.data.pretraining import packed_dataset
from bert_tf.data.pretraining.config import PretrainingDataError
from bert_tf.data.pretraining.outputs import METADATA_SUFFIX, SHARD_SUFFIX
from bert_tf.data.pretraining.packing import PackingError
from bert_tf.input_files import file_sha256
from bert_tf.text.vocab import load_vocab

BASE_FEATURES = ("input_ids", "input_mask", "segment_ids", "next_sentence_labels")
MASK_FEATURES = ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights")
_SHARD_NAME = re.compile(r"^(.*)-\d+-of-\d+" + re.escape(SHARD_SUFFIX) + r"$")


def first_record(path):
    """The first serialized record of a TFRecord file (None for an empty file)."""
    try:
        for record in tf.data.TFRecordDataset(path).take(1):
            return record.numpy()
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        raise PretrainingDataError(
            f"{path}: not a readable TFRecord file ({e.message.splitlines()[0]})"
        ) from None
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
            raise PretrainingDataError(
                f"{path}: record lacks feature '{name}' (has "
                f"{', '.join(sorted(features)) or 'none'})"
            )
        got_kind, values = _feature_values(features[name])
        if got_kind != kind:
            raise PretrainingDataError(f"{path}: feature '{name}' is {got_kind}, expected {kind}")
        if length is not None and len(values) != length:
            what = {"next_sentence_labels": "1"}.get(name)
            expected = what or (
                f"seq_length={length}"
                if name in BASE_FEATURES
                else f"max_predictions_per_seq={length}"
            )
            raise PretrainingDataError(
                f"{path}: feature '{name}' has {len(values)} values, expected {expected}"
            )
        return len(values)

    for name in ("input_ids", "input_mask", "segment_ids"):
        check(name, "int64_list", seq_length)
    check("next_sentence_labels", "int64_list", 1)
    has_masks = [name in features for name in MASK_FEATURES]
    if need_masks:
        if not any(has_masks):
            raise PretrainingDataError(
                f"{path}: records are unmasked (no masked_lm_* features); read them with "
                "dynamic_masking=True"
            )
        slots = check("masked_lm_positions", "int64_list", max_predictions_per_seq)
    else:
        if not any(has_masks):
            return 0
        slots = check("masked_lm_positions", "int64_list", None)
    check("masked_lm_ids", "int64_list", slots)
    check("masked_lm_weights", "float_list", slots)
    return slots


def load_metadata(files):
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


def check_metadata(
    metadata, seq_length, max_predictions_per_seq, dynamic_masking, vocab_size, vocab_file
):
    """Checks the shards' metadata against the reader's settings (one-line errors)."""
    vocab_hash = file_sha256(vocab_file) if vocab_file else None
    for meta_path, meta in metadata.values():
        if meta.get("max_seq_length") != seq_length:
            raise PretrainingDataError(
                f"{meta_path}: records have max_seq_length={meta.get('max_seq_length')}, "
                f"expected seq_length={seq_length}"
            )
        if not dynamic_masking and meta.get("masked") is False:
            raise PretrainingDataError(
                f"{meta_path}: records are unmasked (max_predictions_per_seq=0); read them "
                "with dynamic_masking=True"
            )
        if not dynamic_masking and meta.get("max_predictions_per_seq") != max_predictions_per_seq:
            raise PretrainingDataError(
                f"{meta_path}: records have max_predictions_per_seq="
                f"{meta.get('max_predictions_per_seq')}, expected {max_predictions_per_seq}"
            )
        if vocab_size is not None and meta.get("vocab_size", 0) > vocab_size:
            raise PretrainingDataError(
                f"{meta_path}: records use a vocab of {meta['vocab_size']} tokens, more than "
                f"the model's vocab_size={vocab_size}"
            )
        if vocab_hash and meta.get("vocab_sha256") not in (None, vocab_hash):
            raise PretrainingDataError(
                f"{meta_path}: records were made with a different vocab (sha256 "
                f"{meta['vocab_sha256'][:12]}...), not {vocab_file} ({vocab_hash[:12]}...)"
            )


def check_packed_file(path, file_packing, stored_packing, seq_length, dynamic_masking, packing):
    """Checks one file of records written packed; returns its PackingConfig."""
    if file_packing is None or (stored_packing is not None and file_packing != stored_packing):
        raise PretrainingDataError(
            f"{path}: packed and unpacked (or differently packed) record files mixed"
        )
    if file_packing.max_seq_length != seq_length:
        raise PretrainingDataError(
            f"{path}: feature 'input_ids' has "
            f"{file_packing.max_seq_length} values, expected "
            f"seq_length={seq_length}"
        )
    if dynamic_masking:
        raise PretrainingDataError(
            f"{path}: records are packed with fixed masks; dynamic "
            "masking packs in the pipeline instead (write unpacked "
            "records and use packing)"
        )
    if packing is not None:
        raise PretrainingDataError(f"{path}: records are already packed; read them without packing")
    return file_packing


def readable_files(files, seq_length, max_predictions_per_seq, dynamic_masking, packing):
    """Checks each file's first record. -> (the non-empty files, masked-LM slots the records
    store (None when no file is unpacked), the PackingConfig of records written packed)."""
    stored_slots = None
    stored_packing = None
    readable = []
    for path in files:
        record = first_record(path)
        if record is None:
            continue  # an empty shard: nothing to check, nothing to read
        file_packing = packed_dataset.record_packing_config(path, record)
        if file_packing is not None or stored_packing is not None:
            if stored_slots is not None:
                file_packing = None  # an unpacked file came first: a mix
            stored_packing = check_packed_file(
                path, file_packing, stored_packing, seq_length, dynamic_masking, packing
            )
            readable.append(path)
            continue
        slots = check_record(
            path, record, seq_length, max_predictions_per_seq, need_masks=not dynamic_masking
        )
        if stored_slots is not None and slots != stored_slots:
            raise PretrainingDataError(
                f"{path}: records hold {slots} masked-LM slots, other files {stored_slots}"
            )
        stored_slots = slots
        readable.append(path)
    if not readable:
        raise PretrainingDataError(f"{files[0]}: all {len(files)} record files are empty")
    if packing is not None and not (stored_slots or dynamic_masking):
        raise PackingError(f"{readable[0]}: packing needs masked records or dynamic_masking")
    if packing is not None and packing.max_seq_length != seq_length:
        raise PackingError(
            f"packing max_seq_length={packing.max_seq_length}, records have seq_length={seq_length}"
        )
    return readable, stored_slots, stored_packing


def masking_settings(metadata, files, vocab_size, mask_id, special_ids, max_predictions_per_seq):
    """(vocab_size, mask_id, special_ids) for dynamic masking: the given values, else the
    shards' metadata's."""
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
            f"{files[0]} to take them from)"
        )
    if max_predictions_per_seq < 1:
        raise PretrainingDataError(
            f"dynamic_masking needs max_predictions_per_seq >= 1, got {max_predictions_per_seq}"
        )
    return vocab_size, mask_id, special_ids


def continuation_flags(vocab_file, vocab_size):
    """[token is a "##" continuation] for every vocab id (whole-word masking)."""
    continuation = [token.startswith("##") for token in load_vocab(vocab_file)]
    if len(continuation) != int(vocab_size):
        raise PretrainingDataError(
            f"{vocab_file}: {len(continuation)} tokens, the records' vocab has {vocab_size}"
        )
    return continuation
