"""Pre-training record creation: determinism, the original recipe's statistics, record layout,
whole-word masking, bad inputs.

The synthetic corpora are pre-tokenized (space-separated pieces, PretokenizedFactory), so every
token's origin is known: document k only uses the pieces "d<k>_<j>", which lets the tests tell
where an NSP segment came from.
"""

import os
import random

import numpy as np
import pytest
import tensorflow as tf

from bert_tf.data.pretraining import create as pd

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD, UNK, CLS, SEP, MASK = range(5)
NUM_DOCS = 60
WORDS_PER_DOC = 12
CONT = [f"##c{i}" for i in range(8)]


def _vocab_tokens():
    return SPECIALS + [f"d{k}_{j}" for k in range(NUM_DOCS) for j in range(WORDS_PER_DOC)] + CONT


def _doc_of(token_id):
    """Document index of a piece id (None for specials and ## pieces)."""
    k = token_id - len(SPECIALS)
    if 0 <= k < NUM_DOCS * WORDS_PER_DOC:
        return k // WORDS_PER_DOC
    return None


def _write_corpus(
    path, seed=0, num_docs=NUM_DOCS, sentences=(4, 14), words=(3, 9), continuation_prob=0.0
):
    rng = random.Random(seed)
    with open(path, "w") as f:
        for k in range(num_docs):
            for _ in range(rng.randint(*sentences)):
                pieces = []
                for _ in range(rng.randint(*words)):
                    pieces.append(f"d{k}_{rng.randrange(WORDS_PER_DOC)}")
                    while rng.random() < continuation_prob:
                        pieces.append(rng.choice(CONT))
                f.write(" ".join(pieces) + "\n")
            f.write("\n")


@pytest.fixture
def corpus(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(_vocab_tokens()) + "\n")
    text = tmp_path / "corpus.txt"
    _write_corpus(text)
    return str(text), str(vocab)


def _create(text, vocab, prefix, num_workers=1, num_shards=2, overwrite=False, **config):
    defaults = dict(
        max_seq_length=32,
        max_predictions_per_seq=5,
        dupe_factor=2,
        random_seed=7,
        input_format="sentences",
        chunk_sentences=150,
    )
    defaults.update(config)
    return pd.create_pretraining_data(
        text,
        prefix,
        vocab,
        config=pd.CreationConfig(**defaults),
        num_shards=num_shards,
        num_workers=num_workers,
        tokenizer_factory=pd.PretokenizedFactory(vocab),
        overwrite=overwrite,
    )


def _read(prefix, max_seq_length, max_predictions):
    """Parses the shards with the raw spec of the original run_pretraining.py."""
    spec = {
        "input_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "input_mask": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "segment_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "masked_lm_positions": tf.io.FixedLenFeature([max_predictions], tf.int64),
        "masked_lm_ids": tf.io.FixedLenFeature([max_predictions], tf.int64),
        "masked_lm_weights": tf.io.FixedLenFeature([max_predictions], tf.float32),
        "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
    }
    files = sorted(tf.io.gfile.glob(prefix + "-*-of-*.tfrecord"))
    rows = [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset(files)]
    return {k: np.stack([row[k].numpy() for row in rows]) for k in spec}


def _files_bytes(prefix):
    return [open(p, "rb").read() for p in sorted(tf.io.gfile.glob(prefix + "-*.tfrecord"))]


def test_same_seed_same_bytes_any_worker_count(corpus, tmp_path):
    text, vocab = corpus
    _create(text, vocab, str(tmp_path / "a" / "x"), num_workers=1)
    _create(text, vocab, str(tmp_path / "b" / "x"), num_workers=1)
    _create(text, vocab, str(tmp_path / "c" / "x"), num_workers=2)
    _create(text, vocab, str(tmp_path / "d" / "x"), num_workers=1, random_seed=8)
    a = _files_bytes(str(tmp_path / "a" / "x"))
    assert len(a) == 2 and all(len(x) > 1000 for x in a)
    assert a == _files_bytes(str(tmp_path / "b" / "x"))
    assert a == _files_bytes(str(tmp_path / "c" / "x"))
    assert a != _files_bytes(str(tmp_path / "d" / "x"))


def test_round_trip_original_features_and_recipe(corpus, tmp_path):
    text, vocab = corpus
    prefix = str(tmp_path / "out")
    meta = _create(text, vocab, prefix, num_shards=3)
    r = _read(prefix, 32, 5)
    n = len(r["input_ids"])
    assert n == meta["counts"]["instances"] == sum(meta["shard_instances"])
    assert meta["max_seq_length"] == 32 and meta["vocab_sha256"] == pd.file_sha256(vocab)
    assert os.path.exists(prefix + ".metadata.json")
    # Undo the masks, then check each instance is [CLS] A [SEP] B [SEP] with the right segments.
    ids = r["input_ids"].copy()
    for i in range(n):
        for p, t, w in zip(
            r["masked_lm_positions"][i], r["masked_lm_ids"][i], r["masked_lm_weights"][i]
        ):
            if w > 0:
                ids[i, p] = t
    for i in range(n):
        length = int(r["input_mask"][i].sum())
        assert (r["input_mask"][i, :length] == 1).all() and (r["input_mask"][i, length:] == 0).all()
        row = ids[i, :length]
        assert (ids[i, length:] == 0).all()
        seps = np.flatnonzero(row == SEP)
        assert row[0] == CLS and len(seps) == 2 and seps[1] == length - 1
        assert not np.isin(row[1 : seps[0]], [CLS, SEP, MASK, PAD]).any()
        seg = r["segment_ids"][i]
        assert (seg[: seps[0] + 1] == 0).all() and (seg[seps[0] + 1 : length] == 1).all()
        assert (seg[length:] == 0).all()
        # Masks: sorted positions, label weight 1 for real slots, count = round(0.15 * len).
        m = int(r["masked_lm_weights"][i].sum())
        assert m == min(5, max(1, round(length * 0.15)))
        pos = r["masked_lm_positions"][i, :m]
        assert (np.diff(pos) > 0).all() and (r["masked_lm_positions"][i, m:] == 0).all()
        assert not np.isin(r["masked_lm_ids"][i, :m], [CLS, SEP, PAD]).any()
        assert not np.isin(pos, [0, seps[0], seps[1]]).any()


def test_masking_statistics(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(_vocab_tokens()) + "\n")
    text = tmp_path / "big.txt"
    _write_corpus(text, seed=3, sentences=(8, 20))
    prefix = str(tmp_path / "m")
    _create(
        str(text),
        str(vocab),
        prefix,
        max_seq_length=64,
        max_predictions_per_seq=10,
        dupe_factor=6,
        chunk_sentences=400,
    )
    r = _read(prefix, 64, 10)
    weights = r["masked_lm_weights"] > 0
    lengths = r["input_mask"].sum(axis=1)
    assert abs(weights.sum() / lengths.sum() - 0.15) < 0.01
    shown = np.take_along_axis(r["input_ids"], r["masked_lm_positions"], axis=1)[weights]
    labels = r["masked_lm_ids"][weights]
    total = len(labels)
    assert total > 6000
    as_mask = np.mean(shown == MASK)
    kept = np.mean(shown == labels)
    random_tok = np.mean((shown != MASK) & (shown != labels))
    assert abs(as_mask - 0.8) < 0.02 and abs(kept - 0.1) < 0.015 and abs(random_tok - 0.1) < 0.015
    assert not np.isin(shown[shown != MASK], [PAD, UNK, CLS, SEP]).any()  # random never special
    # Outside the masked positions nothing changed: no [MASK] anywhere else.
    outside = r["input_ids"].copy()
    np.put_along_axis(outside, r["masked_lm_positions"], -1, axis=1)
    assert not (outside == MASK).any()


def test_next_sentence_half_random_and_from_other_documents(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(_vocab_tokens()) + "\n")
    text = tmp_path / "nsp.txt"
    _write_corpus(text, seed=5, sentences=(20, 30), words=(3, 6))
    prefix = str(tmp_path / "n")
    _create(
        str(text),
        str(vocab),
        prefix,
        max_seq_length=48,
        max_predictions_per_seq=0,
        short_seq_prob=0.0,
        dupe_factor=4,
        chunk_sentences=300,
    )
    spec = {
        "input_ids": tf.io.FixedLenFeature([48], tf.int64),
        "segment_ids": tf.io.FixedLenFeature([48], tf.int64),
        "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
    }
    files = sorted(tf.io.gfile.glob(prefix + "-*.tfrecord"))
    rows = [tf.io.parse_single_example(x, spec) for x in tf.data.TFRecordDataset(files)]
    labels = np.array([int(x["next_sentence_labels"][0]) for x in rows])
    assert len(labels) > 500
    assert 0.45 < labels.mean() < 0.58  # slightly over 0.5: one-segment chunks are always random
    for x, label in zip(rows, labels):
        ids, seg = x["input_ids"].numpy(), x["segment_ids"].numpy()
        docs_a = {_doc_of(t) for t, s in zip(ids, seg) if s == 0 and _doc_of(t) is not None}
        docs_b = {_doc_of(t) for t, s in zip(ids, seg) if s == 1 and _doc_of(t) is not None}
        assert len(docs_a) == 1 and len(docs_b) == 1
        assert (docs_a != docs_b) == bool(label)


def test_whole_word_masking_masks_all_pieces(tmp_path):
    vocab = tmp_path / "vocab.txt"
    tokens = _vocab_tokens()
    vocab.write_text("\n".join(tokens) + "\n")
    text = tmp_path / "wwm.txt"
    _write_corpus(text, seed=9, continuation_prob=0.5)
    cont_ids = {i for i, t in enumerate(tokens) if t.startswith("##")}
    prefix = str(tmp_path / "w")
    _create(
        str(text),
        str(vocab),
        prefix,
        max_seq_length=48,
        max_predictions_per_seq=8,
        whole_word_masking=True,
    )
    r = _read(prefix, 48, 8)
    multi_piece_words = 0
    for i in range(len(r["input_ids"])):
        ids = r["input_ids"][i].copy()
        w = r["masked_lm_weights"][i] > 0
        masked = set(r["masked_lm_positions"][i][w].tolist())
        np.put(ids, r["masked_lm_positions"][i][w], r["masked_lm_ids"][i][w])
        # Split the sequence into words: a piece in cont_ids continues the previous word
        # (never across [CLS]/[SEP]: a front-truncated segment may start with "##" pieces).
        words, current = [], []
        for p, t in enumerate(ids[: int(r["input_mask"][i].sum())]):
            if t in (CLS, SEP):
                if current:
                    words.append(current)
                current = []
            elif t in cont_ids and current:
                current.append(p)
            else:
                if current:
                    words.append(current)
                current = [p]
        if current:
            words.append(current)
        for word in words:
            hit = [p in masked for p in word]
            assert all(hit) or not any(hit), (i, word, masked)
            multi_piece_words += all(hit) and len(word) > 1
    assert multi_piece_words > 50


def test_short_and_truncated_instances_stay_within_max_length():
    vocab = pd._Vocab(SPECIALS + [f"t{i}" for i in range(50)])
    rng = random.Random(0)
    documents = [[[5 + (i % 50)] * rng.randint(1, 40) for i in range(10)] for _ in range(4)]
    config = pd.CreationConfig(max_seq_length=24, max_predictions_per_seq=4, short_seq_prob=0.5)
    lengths = []
    for d in range(4):
        for x in pd.create_instances_from_document(documents, d, config, vocab, rng):
            assert len(x.input_ids) <= 24 and x.input_ids[0] == CLS and x.input_ids[-1] == SEP
            lengths.append(len(x.input_ids))
    assert max(lengths) == 24 and min(lengths) < 24


def test_unused_segments_are_put_back():
    """After a random next segment, the A-side sentences not used go back: the next instance
    starts right after the last sentence used as A (after B when B was the real next)."""
    vocab = pd._Vocab(SPECIALS + [f"t{i}" for i in range(100)])
    # Sentence s of document 0 is three copies of token 5 + s; document 1 uses tokens >= 60.
    documents = [[[5 + s] * 3 for s in range(30)], [[60 + s] * 3 for s in range(30)]]
    config = pd.CreationConfig(max_seq_length=16, max_predictions_per_seq=0, short_seq_prob=0)
    random_count = 0
    for seed in range(5):
        instances = pd.create_instances_from_document(
            documents, 0, config, vocab, random.Random(seed)
        )
        expected_start = 0
        for x in instances:
            a = sorted({t - 5 for t, s in zip(x.input_ids, x.segment_ids) if s == 0 and t >= 5})
            b = sorted({t for t, s in zip(x.input_ids, x.segment_ids) if s == 1 and t >= 5})
            assert a == list(range(a[0], a[-1] + 1)) and a[0] == expected_start
            if x.is_random_next:
                random_count += 1
                assert all(t >= 60 for t in b)
                expected_start = a[-1] + 1
            else:
                assert [t - 5 for t in b] == list(range(a[-1] + 1, a[-1] + 1 + len(b)))
                expected_start = b[-1] - 5 + 1
        assert expected_start == 30
    assert random_count >= 5


def test_bad_inputs_are_one_line_errors(corpus, tmp_path):
    text, vocab = corpus
    out = str(tmp_path / "o" / "x")
    cases = [
        (dict(input_files=str(tmp_path / "missing*.txt")), "no such input file"),
        (dict(input_files=str(tmp_path / "empty.txt")), "input file is empty"),
        (dict(vocab_file=str(tmp_path / "bad_vocab.txt")), "no [MASK] token"),
        (
            dict(config=pd.CreationConfig(max_seq_length=128, max_predictions_per_seq=10)),
            "needs at least 19",
        ),
        # absurd: every record would carry 100000 empty slots
        (
            dict(config=pd.CreationConfig(max_seq_length=32, max_predictions_per_seq=100_000)),
            "--max_predictions_per_seq: expected an integer in [0, 32] (a sequence of "
            "--max_seq_length=32 tokens has no more to mask), got 100000",
        ),
    ]
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "bad_vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n")
    for overrides, expected in cases:
        kwargs = dict(
            input_files=text,
            output_prefix=out,
            vocab_file=vocab,
            config=pd.CreationConfig(max_seq_length=32, max_predictions_per_seq=5),
            tokenizer_factory=pd.PretokenizedFactory(vocab),
        )
        kwargs.update(overrides)
        with pytest.raises(pd.PretrainingDataError) as e:
            pd.create_pretraining_data(**kwargs)
        assert expected in str(e.value) and "\n" not in str(e.value)
    assert not os.path.exists(os.path.dirname(out)) or not os.listdir(os.path.dirname(out))
    _create(text, vocab, out)
    before = _files_bytes(out)
    with pytest.raises(pd.PretrainingDataError, match="already exists"):
        _create(text, vocab, out, random_seed=99)
    assert _files_bytes(out) == before  # untouched
    _create(text, vocab, out, random_seed=99, num_shards=1, overwrite=True)
    assert len(_files_bytes(out)) == 1  # old 2-shard set replaced, not mixed


@pytest.mark.slow
def test_memory_stays_flat_on_a_larger_corpus(tmp_path):
    """Peak RSS on a corpus 8x larger grows by far less than the corpus (streamed)."""
    import subprocess
    import sys

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(_vocab_tokens()) + "\n")
    script = (
        "import resource, sys\n"
        "from bert_tf.data.pretraining import create as pd\n"
        "pd.create_pretraining_data(sys.argv[1], sys.argv[2], sys.argv[3], "
        "config=pd.CreationConfig(max_seq_length=64, max_predictions_per_seq=10, dupe_factor=1, "
        "input_format='sentences', chunk_sentences=2000), "
        "tokenizer_factory=pd.PretokenizedFactory(sys.argv[3]))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    peaks, sizes = [], []
    for name, docs in (("small", 4000), ("large", 40000)):
        text = tmp_path / f"{name}.txt"
        with open(text, "w") as f:
            rng = random.Random(1)
            for _ in range(docs):
                k = rng.randrange(NUM_DOCS)
                for _ in range(rng.randint(10, 30)):
                    f.write(
                        " ".join(
                            f"d{k}_{rng.randrange(WORDS_PER_DOC)}"
                            for _ in range(rng.randint(5, 15))
                        )
                        + "\n"
                    )
                f.write("\n")
        sizes.append(os.path.getsize(text))
        out = subprocess.run(
            [sys.executable, "-c", script, str(text), str(tmp_path / name), str(vocab)],
            capture_output=True,
            text=True,
            check=True,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
        )
        peaks.append(int(out.stdout.split()[-1]) * 1024)
    growth = peaks[1] - peaks[0]
    print(
        f"peak RSS {peaks[0] / 1e6:.0f} MB on {sizes[0] / 1e6:.0f} MB of text, "
        f"{peaks[1] / 1e6:.0f} MB on {sizes[1] / 1e6:.0f} MB"
    )
    assert sizes[1] - sizes[0] > 40e6
    assert growth < 0.25 * (sizes[1] - sizes[0]), (peaks, sizes)


def test_hand_encoded_examples_equal_protobuf_bytes():
    from bert_tf.data.pretraining.example import encode_example

    x = pd.Instance([CLS, 7, MASK, SEP, 300000, SEP], [0, 0, 0, 0, 1, 1], [2], [9], True)
    got = pd.serialize_instance(x, 8, 3)
    features = {
        "input_ids": [CLS, 7, MASK, SEP, 300000, SEP, 0, 0],
        "input_mask": [1] * 6 + [0] * 2,
        "segment_ids": [0, 0, 0, 0, 1, 1, 0, 0],
        "masked_lm_positions": [2, 0, 0],
        "masked_lm_ids": [9, 0, 0],
        "next_sentence_labels": [1],
    }
    f = {k: tf.train.Feature(int64_list=tf.train.Int64List(value=v)) for k, v in features.items()}
    f["masked_lm_weights"] = tf.train.Feature(float_list=tf.train.FloatList(value=[1, 0, 0]))
    want = tf.train.Example(features=tf.train.Features(feature=f))
    assert got == want.SerializeToString(deterministic=True)
    odd = {"neg": [-1, 1 << 40, 127, 128], "empty": []}
    want = tf.train.Example(
        features=tf.train.Features(
            feature={
                k: tf.train.Feature(int64_list=tf.train.Int64List(value=v)) for k, v in odd.items()
            }
        )
    )
    assert encode_example(odd) == want.SerializeToString(deterministic=True)
