"""Packed pre-training data end to end: records packed after creation (pack_records and
`apps.create_pretraining_data --pack`) and packing in tf.data with dynamic masking hold
exactly the tokens, masks and NSP labels of the unpacked data, in fewer rows."""

import collections
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from bert_tf.data.pretraining import create as pd
from bert_tf.data.pretraining import pack_records, packing
from bert_tf.data.pretraining.dataset import pretraining_dataset
from bert_tf.data.pretraining.packing import PackingConfig, PackingError
from bert_tf.text import masking

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEQ, PREDS = 32, 5


def _corpus(tmp_path, masked=True):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(40)])
        + "\n"
    )
    rng = np.random.default_rng(1)
    docs = []
    for _ in range(30):  # documents of 2-6 short sentences: many sequences end early
        docs.append(
            "\n".join(
                " ".join(f"w{x}" for x in rng.integers(0, 40, rng.integers(2, 6)))
                for _ in range(rng.integers(2, 7))
            )
        )
    text = tmp_path / "c.txt"
    text.write_text("\n\n".join(docs) + "\n")
    prefix = str(tmp_path / ("pt" if masked else "plain"))
    meta = pd.create_pretraining_data(
        str(text),
        prefix,
        str(vocab),
        config=pd.CreationConfig(
            max_seq_length=SEQ,
            max_predictions_per_seq=PREDS if masked else 0,
            dupe_factor=2,
            input_format="sentences",
        ),
        num_shards=2,
        tokenizer_factory=pd.PretokenizedFactory(str(vocab)),
    )
    return prefix, str(vocab), meta, text


def _tokens_and_labels(ds, packed):
    tokens, masked, nsp, rows = collections.Counter(), collections.Counter(), 0, 0
    for f, l in ds:
        ids = f["input_word_ids"].numpy()
        w = l["masked_lm_weights"].numpy() > 0
        original = ids.copy()
        np.put_along_axis(
            original,
            f["masked_lm_positions"].numpy(),
            np.where(
                w,
                l["masked_lm_ids"].numpy(),
                np.take_along_axis(ids, f["masked_lm_positions"].numpy(), 1),
            ),
            1,
        )
        tokens.update(original[f["input_mask"].numpy() == 1].tolist())
        masked.update(l["masked_lm_ids"].numpy()[w].tolist())
        labels = l["next_sentence_labels"].numpy()
        nsp += int(labels[l["next_sentence_weights"].numpy() > 0].sum() if packed else labels.sum())
        rows += ids.shape[0]
    return tokens, masked, nsp, rows


def test_packed_records_hold_the_unpacked_data_in_fewer_rows(tmp_path):
    prefix, vocab, meta, _ = _corpus(tmp_path)
    out = pack_records.pack_record_files(
        prefix, str(tmp_path / "packed"), max_sequences_per_row=3, num_shards=2, buffer_size=64
    )
    info = out["packing"]
    assert info["sequences"] == meta["counts"]["instances"]
    assert info["max_predictions_per_row"] == packing.default_max_predictions_per_row(SEQ, PREDS, 3)
    assert info["padding_share_packed"] < info["padding_share_unpacked"] - 0.2
    unpacked = pretraining_dataset(prefix + "-*", 1000, SEQ, PREDS, is_training=False)
    packed = pretraining_dataset(
        str(tmp_path / "packed-*"), 7, SEQ, PREDS, is_training=False, vocab_file=vocab
    )
    f, l = next(iter(packed))
    assert f["input_sequence_ids"].shape == (7, SEQ) and l["next_sentence_labels"].shape == (7, 3)
    tu, mu, nu, ru = _tokens_and_labels(unpacked, False)
    tp, mp, np_, rp = _tokens_and_labels(packed, True)
    assert (tp, mp, np_) == (tu, mu, nu)
    assert ru == meta["counts"]["instances"] and rp == info["rows"] < 0.6 * ru
    assert nu == meta["counts"]["random_next"]
    # packed records keep fixed masks: no dynamic masking, no second packing
    with pytest.raises(pd.PretrainingDataError, match="records are packed with fixed masks"):
        pretraining_dataset(str(tmp_path / "packed-*"), 4, SEQ, PREDS, dynamic_masking=True)
    with pytest.raises(pd.PretrainingDataError, match="already packed"):
        pretraining_dataset(
            str(tmp_path / "packed-*"), 4, SEQ, PREDS, packing=PackingConfig(SEQ, 3, 8)
        )
    for order in (
        [prefix + "-*", str(tmp_path / "packed-*")],
        [str(tmp_path / "packed-*"), prefix + "-*"],
    ):
        with pytest.raises(pd.PretrainingDataError, match="packed and unpacked.*mixed"):
            pretraining_dataset(order, 4, SEQ, PREDS)
    with pytest.raises(pd.PretrainingDataError, match="max_seq_length=32, expected seq_length=64"):
        pretraining_dataset(str(tmp_path / "packed-*"), 4, 64, PREDS)


def test_unmasked_records_cannot_be_packed_offline(tmp_path):
    prefix, _, _, _ = _corpus(tmp_path, masked=False)
    with pytest.raises(PackingError, match="unmasked.*apps.pretrain --pack"):
        pack_records.pack_record_files(prefix, str(tmp_path / "packed"))


def test_dynamic_masking_then_packing_in_tf_data(tmp_path):
    prefix, vocab, meta, _ = _corpus(tmp_path, masked=False)
    config = PackingConfig(SEQ, 3, packing.default_max_predictions_per_row(SEQ, PREDS, 3))
    ds = pretraining_dataset(
        prefix + "-*",
        8,
        SEQ,
        PREDS,
        is_training=False,
        seed=3,
        dynamic_masking=True,
        packing=config,
        pack_buffer_size=50,
    )
    sequences = rows = 0
    for f, l in ds:
        seq_ids = f["input_sequence_ids"].numpy()
        positions, w = f["masked_lm_positions"].numpy(), l["masked_lm_weights"].numpy()
        owner = np.take_along_axis(seq_ids, positions, 1)
        assert (owner[w > 0] > 0).all()  # masks on real tokens
        for r in range(seq_ids.shape[0]):
            for k in range(1, seq_ids[r].max() + 1):  # each sequence's own
                n = int((seq_ids[r] == k).sum())  # masking rule
                assert int((owner[r][w[r] > 0] == k).sum()) == masking.num_to_predict(
                    n, 0.15, PREDS
                )
                start = int(f["next_sentence_positions"].numpy()[r, k - 1])
                assert f["input_word_ids"].numpy()[r, start] == 2  # [CLS]
                assert f["input_position_ids"].numpy()[r, start] == 0
        sequences += int(l["next_sentence_weights"].numpy().sum())
        rows += seq_ids.shape[0]
    assert sequences == meta["counts"]["instances"] and rows < 0.6 * sequences


def test_create_pretraining_data_pack_flag(tmp_path):
    _, vocab, _, text = _corpus(tmp_path)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    args = [
        sys.executable,
        "-m",
        "apps.create_pretraining_data",
        f"--input_files={text}",
        f"--output_dir={tmp_path}/out",
        f"--vocab_file={vocab}",
        "--tokenizer=pretokenized",
        f"--max_seq_length={SEQ}",
        f"--max_predictions_per_seq={PREDS}",
        "--dupe_factor=1",
        "--pack",
        "--max_sequences_per_row=2",
        "--num_shards=2",
    ]
    result = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "packed" in result.stdout and "rows of up to 2" in result.stdout
    assert sorted(os.listdir(tmp_path / "out")) == [
        ".bert_tf_manifest.json",
        "pretraining-00000-of-00002.tfrecord",
        "pretraining-00001-of-00002.tfrecord",
        "pretraining.metadata.json",
    ]
    meta = json.loads((tmp_path / "out" / "pretraining.metadata.json").read_text())
    assert meta["packing"]["max_sequences_per_row"] == 2
    bad = subprocess.run(
        args[:-3] + ["--max_predictions_per_seq=0", "--pack", "--overwrite"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert (
        bad.stderr.strip()
        .splitlines()[-1]
        .startswith("create_pretraining_data: --pack needs masked records")
    )


def test_packing_reads_and_writes_uris_through_gfile(tmp_path):
    """file:// in, ram:// out (both tf.io.gfile file systems, as gs:// is): the same bytes as
    local paths; existing outputs are found and removed through gfile too."""
    prefix, _, _, _ = _corpus(tmp_path)
    local = pack_records.pack_record_files(
        prefix, str(tmp_path / "packed"), num_shards=2, buffer_size=64, seed=5
    )
    out = "ram://packing_uri_test/dir/packed"
    uri = pack_records.pack_record_files(
        "file://" + prefix, out, num_shards=2, buffer_size=64, seed=5
    )
    assert (
        uri["shards"]
        == local["shards"]
        == ["packed-00000-of-00002.tfrecord", "packed-00001-of-00002.tfrecord"]
    )
    assert uri["packing"] == local["packing"]
    for name in local["shards"]:
        with tf.io.gfile.GFile("ram://packing_uri_test/dir/" + name, "rb") as f:
            assert f.read() == (tmp_path / name).read_bytes()
    assert pack_records.existing_outputs(out) == [
        f"{out}-00000-of-00002.tfrecord",
        f"{out}-00001-of-00002.tfrecord",
        f"{out}.metadata.json",
    ]
    assert not tf.io.gfile.glob("ram://packing_uri_test/dir/*.tmp*")
    pack_records.remove_outputs(out)
    assert pack_records.existing_outputs(out) == []
    with pytest.raises(PackingError, match="ram://nowhere/x.metadata.json: no metadata"):
        pack_records.pack_record_files("ram://nowhere/x", out)
