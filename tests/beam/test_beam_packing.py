"""`apps.create_pretraining_data --pack` with a Beam runner: the pipeline's instances, packed
on the launching host, are exactly the single-host path's sequences (tokens, segments, masks,
NSP labels), in fewer rows. Runs only where apache_beam is installed (see
test_beam_pipeline.py); the gfile (URI) side of the packing is tested in
tests/data/test_packed_records.py."""

import collections
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

if os.environ.get("BERT_TF_REQUIRE_BEAM") == "1":
    import apache_beam  # noqa: F401
else:
    pytest.importorskip("apache_beam")

from tests.data.test_packed_records import PREDS, SEQ, _corpus  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _parse(files, spec):
    ds = tf.data.TFRecordDataset(files).batch(10000).map(lambda r: tf.io.parse_example(r, spec))
    return next(iter(ds.as_numpy_iterator()))


def _sequence(ids, segments, positions, masked_ids, nsp):
    """One sequence as a hashable tuple: tokens, segment ids, (position, id) of each mask."""
    order = np.argsort(positions, kind="stable")
    return (
        tuple(ids),
        tuple(segments),
        tuple(zip(positions[order].tolist(), masked_ids[order].tolist())),
        int(nsp),
    )


def _unpacked_sequences(prefix):
    spec = {
        k: tf.io.FixedLenFeature([SEQ], tf.int64)
        for k in ("input_ids", "input_mask", "segment_ids")
    }
    spec.update(
        {
            k: tf.io.FixedLenFeature([PREDS], tf.int64)
            for k in ("masked_lm_positions", "masked_lm_ids")
        }
    )
    spec["masked_lm_weights"] = tf.io.FixedLenFeature([PREDS], tf.float32)
    spec["next_sentence_labels"] = tf.io.FixedLenFeature([1], tf.int64)
    x = _parse(sorted(tf.io.gfile.glob(prefix + "-*-of-*.tfrecord")), spec)
    out = collections.Counter()
    for i in range(x["input_ids"].shape[0]):
        n, w = int(x["input_mask"][i].sum()), x["masked_lm_weights"][i] > 0
        out[
            _sequence(
                x["input_ids"][i, :n].tolist(),
                x["segment_ids"][i, :n].tolist(),
                x["masked_lm_positions"][i][w],
                x["masked_lm_ids"][i][w],
                x["next_sentence_labels"][i, 0],
            )
        ] += 1
    return out


def _packed_sequences(prefix, meta):
    p, s = meta["packing"]["max_predictions_per_row"], meta["packing"]["max_sequences_per_row"]
    spec = {
        k: tf.io.FixedLenFeature([SEQ], tf.int64)
        for k in ("input_ids", "segment_ids", "sequence_ids")
    }
    spec.update(
        {k: tf.io.FixedLenFeature([p], tf.int64) for k in ("masked_lm_positions", "masked_lm_ids")}
    )
    spec["masked_lm_weights"] = tf.io.FixedLenFeature([p], tf.float32)
    spec.update(
        {
            k: tf.io.FixedLenFeature([s], tf.int64)
            for k in ("next_sentence_positions", "next_sentence_labels")
        }
    )
    x = _parse(sorted(tf.io.gfile.glob(prefix + "-*-of-*.tfrecord")), spec)
    out, rows = collections.Counter(), x["input_ids"].shape[0]
    for r in range(rows):
        seq_ids, w = x["sequence_ids"][r], x["masked_lm_weights"][r] > 0
        pos, mid = x["masked_lm_positions"][r][w], x["masked_lm_ids"][r][w]
        for k in range(1, seq_ids.max() + 1):
            span = np.flatnonzero(seq_ids == k)
            start = int(x["next_sentence_positions"][r, k - 1])
            assert start == span[0] and (np.diff(span) == 1).all()
            mine = (pos >= span[0]) & (pos <= span[-1])
            out[
                _sequence(
                    x["input_ids"][r, span].tolist(),
                    x["segment_ids"][r, span].tolist(),
                    pos[mine] - start,
                    mid[mine],
                    x["next_sentence_labels"][r, k - 1],
                )
            ] += 1
    return out, rows


@pytest.mark.slow
def test_beam_runner_with_pack_writes_the_single_host_sequences_packed(tmp_path):
    prefix, vocab, meta, text = _corpus(tmp_path)  # single host: dupe 2, seed 12345
    out = str(tmp_path / "beam" / "train")
    args = [
        sys.executable,
        "-m",
        "apps.create_pretraining_data",
        f"--input_files={text}",
        f"--output_prefix={out}",
        f"--vocab_file={vocab}",
        "--tokenizer=pretokenized",
        f"--max_seq_length={SEQ}",
        f"--max_predictions_per_seq={PREDS}",
        "--dupe_factor=2",
        "--input_format=sentences",
        "--runner=DirectRunner",
        "--pack",
        "--max_sequences_per_row=3",
        "--num_shards=2",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(os.listdir(tmp_path / "beam")) == [
        ".bert_tf_manifest.json",
        "train-00000-of-00002.tfrecord",
        "train-00001-of-00002.tfrecord",
        "train.metadata.json",
    ]  # the intermediate unpacked shards are gone
    packed_meta = json.loads((tmp_path / "beam" / "train.metadata.json").read_text())
    assert packed_meta["engine"] == "beam:DirectRunner"
    assert packed_meta["packing"]["sequences"] == meta["counts"]["instances"]
    got, rows = _packed_sequences(out, packed_meta)
    want = _unpacked_sequences(prefix)
    assert sum(want.values()) == meta["counts"]["instances"] > 50
    assert got == want and rows == packed_meta["packing"]["rows"] < 0.6 * sum(want.values())
    again = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert (
        again.returncode == 1
        and again.stderr.strip().splitlines()[-1].startswith("create_pretraining_data: ")
        and "output already exists" in again.stderr
    )
