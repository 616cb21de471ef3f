"""Reading pre-training records: original-format records, layout checks at construction,
dynamic masking, sharding across input pipelines."""

import json

import numpy as np
import pytest
import tensorflow as tf

from bert_tf.data.pretraining import create as pd
from bert_tf.data.pretraining.dataset import pretraining_dataset

PAD, UNK, CLS, SEP, MASK = range(5)
VOCAB_SIZE = 50


def _example(
    input_ids,
    segment_ids,
    positions,
    labels,
    max_seq_length,
    max_predictions,
    is_random_next,
    masked=True,
):
    """A record exactly as google-research/bert's write_instance_to_example_files builds it."""
    n = len(input_ids)
    feature = {
        "input_ids": input_ids + [0] * (max_seq_length - n),
        "input_mask": [1] * n + [0] * (max_seq_length - n),
        "segment_ids": segment_ids + [0] * (max_seq_length - n),
        "next_sentence_labels": [1 if is_random_next else 0],
    }
    if masked:
        m = len(positions)
        feature["masked_lm_positions"] = positions + [0] * (max_predictions - m)
        feature["masked_lm_ids"] = labels + [0] * (max_predictions - m)
    f = {k: tf.train.Feature(int64_list=tf.train.Int64List(value=v)) for k, v in feature.items()}
    if masked:
        f["masked_lm_weights"] = tf.train.Feature(
            float_list=tf.train.FloatList(
                value=[1.0] * len(positions) + [0.0] * (max_predictions - len(positions))
            )
        )
    return tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString()


def _write(path, records):
    with tf.io.TFRecordWriter(str(path)) as w:
        for r in records:
            w.write(r)
    return str(path)


def _original_records(n=6, seq=16, preds=4, masked=True, offset=0):
    out = []
    for i in range(n):
        a = [10 + (i + offset) % 30, 11, 12]
        b = [20, 21 + i % 5]
        ids = [CLS] + a + [SEP] + b + [SEP]
        seg = [0] * (len(a) + 2) + [1] * (len(b) + 1)
        shown = list(ids)
        shown[2] = MASK
        out.append(_example(shown, seg, [2], [ids[2]], seq, preds, i % 2 == 1, masked))
    return out


def test_reads_original_format_records(tmp_path):
    path = _write(tmp_path / "orig.tfrecord", _original_records())
    ds = pretraining_dataset(
        path, batch_size=4, seq_length=16, max_predictions_per_seq=4, is_training=False
    )
    batches = list(ds)
    assert [b[0]["input_word_ids"].shape[0] for b in batches] == [4, 2]  # eval keeps remainder
    features, labels = batches[0]
    assert features["input_word_ids"].dtype == tf.int32
    assert labels["masked_lm_weights"].dtype == tf.float32
    np.testing.assert_array_equal(
        features["input_word_ids"][0, :9], [CLS, 10, MASK, 12, SEP, 20, 21, SEP, 0]
    )
    np.testing.assert_array_equal(features["input_mask"][0, :9], [1] * 8 + [0])
    np.testing.assert_array_equal(features["input_type_ids"][0, :9], [0] * 5 + [1] * 3 + [0])
    np.testing.assert_array_equal(features["masked_lm_positions"][0], [2, 0, 0, 0])
    np.testing.assert_array_equal(labels["masked_lm_ids"][0], [11, 0, 0, 0])
    np.testing.assert_array_equal(labels["masked_lm_weights"][0], [1, 0, 0, 0])
    np.testing.assert_array_equal(labels["next_sentence_labels"], [0, 1, 0, 1])


def test_training_pipeline_drops_remainder_repeats_and_is_seeded(tmp_path):
    files = [
        _write(tmp_path / f"s{i}.tfrecord", _original_records(offset=10 * i)) for i in range(3)
    ]

    def first_ids(seed):
        ds = pretraining_dataset(
            str(tmp_path / "s*.tfrecord"),
            batch_size=4,
            seq_length=16,
            max_predictions_per_seq=4,
            seed=seed,
            shuffle_buffer_size=20,
        )
        return np.concatenate([f["input_word_ids"][:, 1].numpy() for f, _ in ds.take(10)])

    a = first_ids(1)
    assert len(a) == 40  # 18 records, repeated: only full batches
    np.testing.assert_array_equal(a, first_ids(1))
    assert not np.array_equal(a, first_ids(2))
    assert len(files) == 3


def test_layout_mismatches_fail_at_construction(tmp_path):
    path = _write(tmp_path / "orig.tfrecord", _original_records())
    with pytest.raises(
        pd.PretrainingDataError,
        match=r"orig.tfrecord: feature 'input_ids' has 16 values, expected "
        r"seq_length=512",
    ):
        pretraining_dataset(path, 8, seq_length=512, max_predictions_per_seq=4)
    with pytest.raises(
        pd.PretrainingDataError,
        match="masked_lm_positions' has 4 values, expected max_predictions_per_seq=20",
    ):
        pretraining_dataset(path, 8, seq_length=16, max_predictions_per_seq=20)
    unmasked = _write(tmp_path / "plain.tfrecord", _original_records(masked=False))
    with pytest.raises(pd.PretrainingDataError, match="unmasked.*dynamic_masking=True"):
        pretraining_dataset(unmasked, 8, seq_length=16, max_predictions_per_seq=4)
    ex = tf.train.Example()
    ex.ParseFromString(_original_records()[0])
    del ex.features.feature["segment_ids"]
    broken = _write(tmp_path / "broken.tfrecord", [ex.SerializeToString()])
    with pytest.raises(
        pd.PretrainingDataError, match="broken.tfrecord: record lacks feature 'segment_ids'"
    ):
        pretraining_dataset(broken, 8, seq_length=16, max_predictions_per_seq=4)
    with pytest.raises(pd.PretrainingDataError, match="no pre-training record files match"):
        pretraining_dataset(str(tmp_path / "nothing*.tfrecord"), 8, 16, 4)
    (tmp_path / "junk.tfrecord").write_bytes(b"not a tfrecord at all")
    with pytest.raises(pd.PretrainingDataError, match="junk.tfrecord: not a readable TFRecord"):
        pretraining_dataset(str(tmp_path / "junk.tfrecord"), 8, 16, 4)


def test_metadata_is_checked(tmp_path):
    prefix = tmp_path / "pt"
    _write(f"{prefix}-00000-of-00001.tfrecord", _original_records())
    meta = {
        "max_seq_length": 16,
        "max_predictions_per_seq": 4,
        "vocab_size": 30522,
        "vocab_sha256": "0" * 64,
        "special_ids": {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4},
    }
    (tmp_path / "pt.metadata.json").write_text(json.dumps(meta))
    pattern = str(tmp_path / "pt-*")
    pretraining_dataset(pattern, 2, 16, 4)
    with pytest.raises(pd.PretrainingDataError, match="vocab of 30522 tokens.*vocab_size=1000"):
        pretraining_dataset(pattern, 2, 16, 4, vocab_size=1000)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    with pytest.raises(pd.PretrainingDataError, match="different vocab"):
        pretraining_dataset(pattern, 2, 16, 4, vocab_file=str(vocab))


def test_dynamic_masking_on_unmasked_and_masked_records(tmp_path):
    # Long rows of ordinary tokens so the statistics mean something.
    rng = np.random.default_rng(0)
    records = []
    for i in range(64):
        n = int(rng.integers(20, 31))
        ids = [CLS] + rng.integers(5, VOCAB_SIZE, n - 2).tolist() + [SEP]
        records.append(_example(ids, [0] * n, [], [], 32, 0, False, masked=False))
    path = _write(tmp_path / "plain.tfrecord", records)
    kwargs = dict(
        batch_size=16,
        seq_length=32,
        max_predictions_per_seq=6,
        seed=3,
        dynamic_masking=True,
        vocab_size=VOCAB_SIZE,
        mask_id=MASK,
        special_ids=(PAD, UNK, CLS, SEP, MASK),
        shuffle_buffer_size=1,
    )
    ds = pretraining_dataset(path, is_training=True, **kwargs)
    batches = list(ds.take(8))  # two epochs of 4 batches
    again = list(pretraining_dataset(path, is_training=True, **kwargs).take(8))
    for (f1, l1), (f2, l2) in zip(batches, again):
        np.testing.assert_array_equal(f1["input_word_ids"], f2["input_word_ids"])
        np.testing.assert_array_equal(f1["masked_lm_positions"], f2["masked_lm_positions"])
    originals = {
        tuple(tf.train.Example.FromString(r).features.feature["input_ids"].int64_list.value)
        for r in records
    }
    epoch_masks = [[], []]
    for k, (features, labels) in enumerate(batches):
        ids = features["input_word_ids"].numpy().copy()
        pos = features["masked_lm_positions"].numpy()
        w = labels["masked_lm_weights"].numpy() > 0
        n_tokens = features["input_mask"].numpy().sum(1)
        np.testing.assert_array_equal(w.sum(1), np.minimum(6, np.round(n_tokens * 0.15)))
        for row in range(len(ids)):
            p = pos[row][w[row]]
            assert (np.diff(p) > 0).all() and (p > 0).all() and (p < n_tokens[row] - 1).all()
            ids[row, p] = labels["masked_lm_ids"].numpy()[row][w[row]]
            assert tuple(ids[row]) in originals  # labels restore the original record
            epoch_masks[k // 4].append((tuple(ids[row]), tuple(p)))
    # A new epoch draws new masks for the same records.
    assert set(epoch_masks[0]) != set(epoch_masks[1])
    # Statically masked records are unmasked first, then re-masked.
    static = _write(tmp_path / "static.tfrecord", _original_records(n=8, seq=16, preds=4))
    f, l = next(
        iter(
            pretraining_dataset(
                static,
                batch_size=8,
                seq_length=16,
                max_predictions_per_seq=4,
                is_training=False,
                seed=0,
                dynamic_masking=True,
                vocab_size=VOCAB_SIZE,
                mask_id=MASK,
                special_ids=(PAD, CLS, SEP, MASK),
            )
        )
    )
    ids = f["input_word_ids"].numpy().copy()
    w = l["masked_lm_weights"].numpy() > 0
    for row in range(8):
        positions = f["masked_lm_positions"].numpy()[row][w[row]]
        ids[row, positions] = l["masked_lm_ids"].numpy()[row][w[row]]
    assert (ids[:, 2] == 11).all()  # the statically masked token is back


def test_input_context_shards_files(tmp_path):
    for i in range(4):
        _write(tmp_path / f"s{i}.tfrecord", _original_records(n=4, offset=5 * i))
    seen = []
    for pipeline in range(2):
        ctx = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2
        )
        ds = pretraining_dataset(
            str(tmp_path / "s*.tfrecord"),
            batch_size=4,
            seq_length=16,
            max_predictions_per_seq=4,
            is_training=False,
            input_context=ctx,
        )
        batches = list(ds)
        assert all(f["input_word_ids"].shape[0] <= 2 for f, _ in batches)  # per-replica batch
        seen.append({int(x) for f, _ in batches for x in f["input_word_ids"][:, 1].numpy()})
    assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == 16


def test_reads_what_creation_wrote(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(40)])
        + "\n"
    )
    text = tmp_path / "c.txt"
    rng = np.random.default_rng(1)
    text.write_text(
        "\n\n".join(
            "\n".join(" ".join(f"w{x}" for x in rng.integers(0, 40, 6)) for _ in range(5))
            for _ in range(20)
        )
        + "\n"
    )
    prefix = str(tmp_path / "pt")
    meta = pd.create_pretraining_data(
        str(text),
        prefix,
        str(vocab),
        config=pd.CreationConfig(
            max_seq_length=24, max_predictions_per_seq=4, dupe_factor=1, input_format="sentences"
        ),
        num_shards=2,
        tokenizer_factory=pd.PretokenizedFactory(str(vocab)),
    )
    ds = pretraining_dataset(
        prefix + "-*",
        batch_size=1000,
        seq_length=24,
        max_predictions_per_seq=4,
        is_training=False,
        vocab_file=str(vocab),
    )
    ((features, labels),) = list(ds)
    assert features["input_word_ids"].shape[0] == meta["counts"]["instances"]
    assert int(labels["next_sentence_labels"].numpy().sum()) == meta["counts"]["random_next"]
    assert int(labels["masked_lm_weights"].numpy().sum()) == meta["counts"]["masked_tokens"]
    # Dynamic masking takes vocab_size, mask_id and special ids from the metadata.
    ds = pretraining_dataset(
        prefix + "-*",
        batch_size=8,
        seq_length=24,
        max_predictions_per_seq=4,
        seed=1,
        dynamic_masking=True,
    )
    f, l = next(iter(ds))
    shown = np.take_along_axis(f["input_word_ids"].numpy(), f["masked_lm_positions"].numpy(), 1)
    assert not np.isin(
        l["masked_lm_ids"].numpy()[l["masked_lm_weights"].numpy() > 0], [0, 1, 2, 3, 4]
    ).any()
    assert (shown[l["masked_lm_weights"].numpy() > 0] < 45).all()


def _unmasked_records(tmp_path, tokens, text, seq_length):
    """Records without stored masks (max_predictions_per_seq=0) of pre-tokenized `text`
    (sentences, blank line between documents) -> (shard prefix, vocab path)."""
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + tokens) + "\n")
    path = tmp_path / "c.txt"
    path.write_text(text)
    prefix = str(tmp_path / "plain")
    pd.create_pretraining_data(
        str(path),
        prefix,
        str(vocab),
        config=pd.CreationConfig(
            max_seq_length=seq_length,
            max_predictions_per_seq=0,
            dupe_factor=1,
            input_format="sentences",
        ),
        tokenizer_factory=pd.PretokenizedFactory(str(vocab)),
    )
    return prefix, str(vocab)


def test_unmasked_records_from_creation_need_dynamic_masking(tmp_path):
    text = "\n\n".join("\n".join(f"w{d} w{s} w{d + s}" for s in range(4)) for d in range(6)) + "\n"
    prefix, _ = _unmasked_records(tmp_path, [f"w{i}" for i in range(20)], text, 16)
    with pytest.raises(pd.PretrainingDataError, match="unmasked.*dynamic_masking=True"):
        pretraining_dataset(prefix + "-*", 4, 16, 3)
    f, l = next(iter(pretraining_dataset(prefix + "-*", 4, 16, 3, dynamic_masking=True, seed=0)))
    assert (l["masked_lm_weights"].numpy().sum(1) >= 1).all()


def test_dynamic_whole_word_masking_from_the_vocab(tmp_path):
    """With whole_word_masking the '##' pieces of the vocab are masked with their word."""
    rng = np.random.default_rng(2)

    def word():
        return " ".join(
            [f"w{rng.integers(10)}"] + [f"##s{rng.integers(10)}" for _ in range(rng.integers(0, 3))]
        )

    text = (
        "\n\n".join(
            "\n".join(" ".join(word() for _ in range(4)) for _ in range(4)) for _ in range(12)
        )
        + "\n"
    )
    prefix, vocab = _unmasked_records(
        tmp_path, [f"w{i}" for i in range(10)] + [f"##s{i}" for i in range(10)], text, 32
    )
    with pytest.raises(pd.PretrainingDataError, match="applies to dynamic_masking"):
        pretraining_dataset(prefix + "-*", 4, 32, 6, whole_word_masking=True, vocab_file=vocab)
    ds = pretraining_dataset(
        prefix + "-*",
        16,
        32,
        6,
        is_training=False,
        seed=3,
        dynamic_masking=True,
        whole_word_masking=True,
        vocab_file=vocab,
    )
    checked = 0
    for f, l in ds:
        ids = f["input_word_ids"].numpy()
        weights = l["masked_lm_weights"].numpy() > 0
        originals = l["masked_lm_ids"].numpy()
        for r in range(len(ids)):
            row = ids[r].copy()
            positions = f["masked_lm_positions"].numpy()[r][weights[r]]
            row[positions] = originals[r][weights[r]]  # the unmasked row
            masked = set(positions.tolist())
            words = []  # the original's candidate words: specials skipped,
            for i, token in enumerate(row):  # a "##sN" joins the word before it
                if token < 5:
                    continue
                if token >= 15 and words:
                    words[-1].append(i)
                else:
                    words.append([i])
            for word in words:
                assert set(word) <= masked or not set(word) & masked, (row, masked, word)
                checked += bool(set(word) & masked)
    assert checked > 50
