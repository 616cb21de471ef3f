"""The files of pre-training data creation: the input text files, the record shards
`<prefix>-NNNNN-of-MMMMM.tfrecord` and `<prefix>.metadata.json` (settings, vocab hash,
shards, counts)."""

import glob
import json
import os

import tensorflow as tf

from bert_tf import input_files, ownership
from bert_tf.data.pretraining.config import PretrainingDataError
from bert_tf.data.pretraining.instances import InstanceVocab
from bert_tf.data.text_files import looks_binary
from bert_tf.input_files import file_sha256
from bert_tf.text import vocab as vocab_lib

SHARD_SUFFIX = ".tfrecord"
METADATA_SUFFIX = ".metadata.json"
METADATA_FORMAT = "bert_tf.pretraining_records"


def expand_input_files(patterns):
    """Comma-separated globs (or a list of them) -> paths in pattern order, each once;
    one-line errors for patterns matching nothing, directories and empty or binary files.
    Remote globs (gs://...) go through TF's gfile."""
    if not input_files.split_patterns(patterns):
        raise PretrainingDataError("no input files given")
    files = input_files.expand_patterns(
        patterns, lambda pattern: PretrainingDataError(f"{pattern}: no such input file")
    )
    for path in files:
        if input_files.is_dir(path):
            raise PretrainingDataError(f"{path}: is a directory, expected a text file")
    for path in files:
        if input_files.file_size(path) == 0:
            raise PretrainingDataError(f"{path}: input file is empty")
        binary = looks_binary(path)
        if binary:
            raise PretrainingDataError(
                f"{path}: not a text file ({binary}); expected UTF-8 "
                "text (decompress archives first)"
            )
    return files


def shard_paths(output_prefix, num_shards):
    return [f"{output_prefix}-{i:05d}-of-{num_shards:05d}{SHARD_SUFFIX}" for i in range(num_shards)]


class ShardWriter:
    """Writes records round-robin over the shards `paths`, into `<path>.tmp` files that are
    renamed into place when the `with` block ends cleanly and removed when it raises, so a
    failed run never leaves shards that look complete. `counts`: records per shard."""

    def __init__(self, paths):
        self.paths = list(paths)
        self.tmp_paths = [p + ".tmp" for p in self.paths]
        self.counts = [0] * len(self.paths)
        self._writers = []
        self._next = 0

    def __enter__(self):
        self._writers = [tf.io.TFRecordWriter(p) for p in self.tmp_paths]
        return self

    def write(self, record):
        self._writers[self._next].write(record)
        self.counts[self._next] += 1
        self._next = (self._next + 1) % len(self._writers)

    def __exit__(self, exc_type, exc, tb):
        for w in self._writers:
            w.close()
        if exc_type is not None:
            for p in self.tmp_paths:
                if os.path.exists(p):
                    os.remove(p)
            return False
        for tmp, final in zip(self.tmp_paths, self.paths):
            os.replace(tmp, final)
        return False


def metadata_path(output_prefix):
    return output_prefix + METADATA_SUFFIX


def existing_outputs(output_prefix):
    """Shards or metadata already present under this prefix."""
    found = glob.glob(glob.escape(output_prefix) + "-*-of-*" + SHARD_SUFFIX)
    if os.path.exists(metadata_path(output_prefix)):
        found.append(metadata_path(output_prefix))
    return sorted(found)


def build_metadata(
    config, files, vocab_file, tokens, lower_case, shard_names, shard_counts, counts, engine="local"
):
    """The `<prefix>.metadata.json` dict (settings, vocab hash, shards, counts).
    `shard_counts` may be None when the writer does not report per-shard counts (Beam)."""
    vocab = InstanceVocab(tokens)
    return {
        "format": METADATA_FORMAT,
        "format_version": 1,
        "engine": engine,
        "masked": config.max_predictions_per_seq > 0,
        "max_seq_length": config.max_seq_length,
        "max_predictions_per_seq": config.max_predictions_per_seq,
        "masked_lm_prob": config.masked_lm_prob,
        "short_seq_prob": config.short_seq_prob,
        "dupe_factor": config.dupe_factor,
        "random_seed": config.random_seed,
        "whole_word_masking": config.whole_word_masking,
        "input_format": config.input_format,
        "chunk_sentences": config.chunk_sentences,
        "lower_case": (
            vocab_lib.infer_lower_case(tokens) if lower_case is None else bool(lower_case)
        ),
        "vocab_size": vocab.size,
        "vocab_sha256": file_sha256(vocab_file),
        "special_ids": {
            "pad": vocab.pad_id,
            "unk": vocab.unk_id,
            "cls": vocab.cls_id,
            "sep": vocab.sep_id,
            "mask": vocab.mask_id,
        },
        "input_files": list(files),
        "num_shards": len(shard_names),
        "shards": list(shard_names),
        "shard_instances": shard_counts,
        "counts": counts,
    }


WRITER = "create_pretraining_data"


def _legacy_owned(output_prefix):
    """Outputs written before the ownership record: a bert-tf metadata file and the shards
    it lists."""
    path = metadata_path(output_prefix)
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("format") != METADATA_FORMAT:
            return set()
        return {os.path.basename(path)} | {os.path.basename(s) for s in meta["shards"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


def check_outputs(output_prefix, num_shards, overwrite, inputs):
    """Refuses (one line, nothing changed) replacing shards or metadata under a local
    `output_prefix` that bert-tf did not write (bert_tf/ownership.py: the output directory's
    record, or for older outputs the shards a bert-tf metadata file lists), and an input
    `(flag, path)` among the files the run writes or removes. Returns a function that records
    the run's outputs, to call just before anything is written. A URI prefix is not checked."""
    if "://" in output_prefix:
        return lambda: None
    directory = os.path.dirname(os.path.abspath(output_prefix))
    existing = [os.path.basename(p) for p in existing_outputs(output_prefix)]
    new = [os.path.basename(p) for p in shard_paths(output_prefix, num_shards)]
    new.append(os.path.basename(metadata_path(output_prefix)))
    owned = ownership.owned_entries(directory)
    legacy = _legacy_owned(output_prefix)
    foreign = [n for n in existing if owned.get(n) != WRITER and n not in legacy]
    if overwrite and foreign:
        raise PretrainingDataError(
            f"{os.path.join(directory, foreign[0])}: bert-tf did not write it "
            f"({len(foreign)} such files under prefix {output_prefix}); overwrite replaces "
            "only outputs bert-tf wrote: choose another output prefix"
        )
    try:
        ownership.check_inputs_outside(directory, sorted(set(existing) | set(new)), inputs)
    except ownership.OwnershipError as e:
        raise PretrainingDataError(str(e)) from None
    return lambda: ownership.record(directory, {n: WRITER for n in new})
