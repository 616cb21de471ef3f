"""The `packing` benchmark case: padding share and real (non-padding) tokens/s of a
pre-training step, unpacked rows vs packed rows of the same real pre-training data.

Data: pre-training records made by bert_tf.data.pretraining.create (the recipe: dupe_factor 1,
short_seq_prob 0.1, 15% masks) from a corpus of documents, then packed with best-fit
decreasing (bert_tf/data/pretraining/packing.py, 3 sequences per row). Corpora:
  kjv        the embedded corpus of the default job: King James Bible, document = chapter
  bbc_news   BBC News articles (2,225 real news stories, ~380 words median): documents of
             realistic length, shorter than 512 tokens more often than not
Both implementations train the same BertPretrainer (MLM + NSP, AdamW) on batches of the same
row count; "examples" are rows, tokens/s counts real tokens only.
"""

import glob
import itertools
import os
import tempfile

import numpy as np

from benchmarks.cases import Case, Impl, _ours_encoder, _train_step
from benchmarks.flops import encoder_flops

CORPORA = ("kjv", "bbc_news")
UNPACKED, PACKED = "unpacked", "packed"


def write_corpus(name, path, max_documents):
    """Writes `max_documents` documents of corpus `name` as prose (one document per block)."""
    from demo_data import assets

    if name == "kjv":
        from demo_data import kjv_corpus

        docs = (" ".join(verses) for _, _, verses in kjv_corpus.chapters())
    elif name == "bbc_news":
        files = sorted(glob.glob(os.path.join(assets.bbc_news_dir(), "*", "*.txt")))
        # interleave the topics so a prefix of the list covers all five
        files = sorted(files, key=lambda f: (os.path.basename(f), f))

        def read(f):
            with open(f, encoding="utf-8", errors="replace") as fh:
                return " ".join(fh.read().split())

        docs = (read(f) for f in files)
    else:
        raise ValueError(f"packing corpus {name!r}: expected one of {CORPORA}")
    with open(path, "w", encoding="utf-8") as out:
        for doc in itertools.islice(docs, max_documents):
            out.write(doc + "\n\n")


def corpus_examples(name, vocab_file, seq_length, max_documents=300, workdir=None):
    """Masked pre-training examples (record layout, numpy) of corpus `name`."""
    import tensorflow as tf

    from bert_tf.data.pretraining import create as pd

    workdir = workdir or tempfile.mkdtemp(prefix="bench_packing_")
    text = os.path.join(workdir, f"{name}.txt")
    write_corpus(name, text, max_documents)
    preds = max(1, int(round(seq_length * 0.15)))
    prefix = os.path.join(workdir, f"{name}_{seq_length}")
    pd.create_pretraining_data(
        text,
        prefix,
        vocab_file,
        config=pd.CreationConfig(
            max_seq_length=seq_length,
            max_predictions_per_seq=preds,
            dupe_factor=1,
            input_format="prose",
        ),
        overwrite=True,
    )
    spec = {
        k: tf.io.FixedLenFeature([seq_length], tf.int64)
        for k in ("input_ids", "input_mask", "segment_ids")
    }
    spec.update(
        masked_lm_positions=tf.io.FixedLenFeature([preds], tf.int64),
        masked_lm_ids=tf.io.FixedLenFeature([preds], tf.int64),
        masked_lm_weights=tf.io.FixedLenFeature([preds], tf.float32),
        next_sentence_labels=tf.io.FixedLenFeature([1], tf.int64),
    )
    ds = tf.data.TFRecordDataset(sorted(glob.glob(prefix + "-*"))).batch(1 << 20)
    raw = next(iter(ds.map(lambda r: tf.io.parse_example(r, spec)).as_numpy_iterator()))
    return {
        k: v.astype(np.float32 if v.dtype == np.float32 else np.int32) for k, v in raw.items()
    }, preds


def padding_shares(examples, seq_length, preds, max_sequences_per_row=3):
    """(padding share unpacked, packed, packed rows as dict of arrays)."""
    from bert_tf.data.pretraining import packing

    config = packing.PackingConfig(
        seq_length,
        max_sequences_per_row,
        packing.default_max_predictions_per_row(seq_length, preds, max_sequences_per_row),
    )
    rows = packing.pack_examples(examples, config)
    return (
        packing.padding_share(examples["input_mask"]),
        packing.padding_share(rows["input_mask"]),
        rows,
    )


def _batches(arrays, batch_size, count, packed):
    """`count` consecutive batches of `batch_size` rows as model (features, labels)."""
    import tensorflow as tf

    from bert_tf.data.pretraining import packed_dataset

    out = []
    n = arrays["input_ids"].shape[0]
    for b in range(count):
        idx = np.arange(b * batch_size, (b + 1) * batch_size) % n
        x = {k: tf.constant(v[idx]) for k, v in arrays.items()}
        if packed:
            out.append(packed_dataset.to_packed_inputs(x))
        else:
            out.append(
                (
                    {
                        "input_word_ids": x["input_ids"],
                        "input_mask": x["input_mask"],
                        "input_type_ids": x["segment_ids"],
                        "masked_lm_positions": x["masked_lm_positions"],
                    },
                    {
                        "masked_lm_ids": x["masked_lm_ids"],
                        "masked_lm_weights": x["masked_lm_weights"],
                        "next_sentence_labels": x["next_sentence_labels"][:, 0],
                    },
                )
            )
    return out


def packing_case(setup, corpus="bbc_news", max_documents=300, num_batches=4):
    """Case `packing`: a pre-training step on unpacked vs packed rows of real data."""
    from bert_tf.models import BertEncoder, BertPretrainer  # noqa: F401 (keras objects)
    from bert_tf.tasks.pretraining import pretraining_loss

    examples, preds = corpus_examples(corpus, setup.vocab_file, setup.seq_length, max_documents)
    before, after, rows = padding_shares(examples, setup.seq_length, preds)
    b, t = setup.batch_size, setup.seq_length

    def build(name):
        arrays = rows if name == PACKED else examples
        batches = _batches(arrays, b, num_batches, packed=name == PACKED)
        # A step's time depends on the shapes only: count the corpus-wide mean real tokens
        # per row, not those of the few timed batches.
        real = b * float(arrays["input_mask"].sum(1).mean())
        model = BertPretrainer(_ours_encoder(setup))
        state = itertools.cycle(batches)

        def loss_fn(features, labels):
            return pretraining_loss(labels, model(features, training=True))

        train = _train_step("bert_tf", model, loss_fn)

        def step():
            features, labels = next(state)
            return train(features, labels)

        return Impl(
            step, b, int(real), encoder_flops(setup.config, b, t, training=True), warmup_steps=1
        )

    notes = (
        f"{corpus}, {examples['input_ids'].shape[0]} sequences from {max_documents} "
        f"documents -> {rows['input_ids'].shape[0]} packed rows (<= 3 per row); "
        f"padding {100 * before:.1f}% unpacked, {100 * after:.1f}% packed; "
        "tok/s = real tokens/s"
    )
    case = Case("packing", "rows", {UNPACKED: build(UNPACKED), PACKED: build(PACKED)}, notes=notes)
    case.padding = {
        "corpus": corpus,
        "unpacked": before,
        "packed": after,
        "sequences": int(examples["input_ids"].shape[0]),
        "rows": int(rows["input_ids"].shape[0]),
    }
    return case
