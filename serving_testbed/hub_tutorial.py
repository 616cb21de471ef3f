"""The code of TensorFlow's BERT tutorials, run on a Hub-style export (test tooling).

"Classify text with BERT": hub.KerasLayer(preprocessor) -> hub.KerasLayer(encoder,
trainable=...) -> Dropout -> Dense(1) in a tf-keras functional model, trained with
binary cross-entropy. "Solve GLUE tasks using BERT": hub.KerasLayer(preprocessor.tokenize) per
segment, then hub.KerasLayer(preprocessor.bert_pack_inputs, arguments=dict(seq_length=N)).

Runs with TF_USE_LEGACY_KERAS=1 (tf-keras 2.x, as tensorflow_hub needs) in a fresh process that
imports no project code:

    TF_USE_LEGACY_KERAS=1 python serving_testbed/hub_tutorial.py JOB.json OUT.json

JOB: pre_dir, enc_dir, train/test {"text": [...], "label": [0/1...]}, trainable, epochs,
batch_size, learning_rate, seed, glue_seq_length, glue_pairs [[a, b], ...].
OUT: loss per epoch, test accuracy, the encoder's number of trainable weights, the largest
change of any encoder weight, and the GLUE packer's outputs (lists).
"""

import json
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_hub as hub  # noqa: E402
import tensorflow_text  # noqa: E402,F401  registers the tf.text ops

keras = tf.keras  # tf-keras 2.x under TF_USE_LEGACY_KERAS=1


def build_classifier_model(pre_dir, enc_dir, trainable):
    """The tutorial's build_classifier_model, with local paths for the handles."""
    text_input = keras.layers.Input(shape=(), dtype=tf.string, name="text")
    preprocessing_layer = hub.KerasLayer(pre_dir, name="preprocessing")
    encoder_inputs = preprocessing_layer(text_input)
    encoder = hub.KerasLayer(enc_dir, trainable=trainable, name="BERT_encoder")
    outputs = encoder(encoder_inputs)
    net = outputs["pooled_output"]
    net = keras.layers.Dropout(0.1)(net)
    net = keras.layers.Dense(1, activation=None, name="classifier")(net)
    return keras.Model(text_input, net), encoder


def make_bert_preprocess_model(pre_dir, sentence_features, seq_length):
    """The GLUE tutorial's preprocessing model."""
    input_segments = [
        keras.layers.Input(shape=(), dtype=tf.string, name=ft) for ft in sentence_features
    ]
    bert_preprocess = hub.load(pre_dir)
    tokenizer = hub.KerasLayer(bert_preprocess.tokenize, name="tokenizer")
    segments = [tokenizer(s) for s in input_segments]
    packer = hub.KerasLayer(
        bert_preprocess.bert_pack_inputs, arguments=dict(seq_length=seq_length), name="packer"
    )
    return keras.Model(input_segments, packer(segments))


def classify(job):
    tf.random.set_seed(job.get("seed", 0))
    model, encoder = build_classifier_model(job["pre_dir"], job["enc_dir"], job["trainable"])
    model.compile(
        optimizer=keras.optimizers.Adam(job["learning_rate"]),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy()],
    )
    before = [w.numpy() for w in encoder.weights]
    train, test = job["train"], job["test"]
    history = model.fit(
        tf.constant(train["text"]),
        np.array(train["label"], np.float32),
        epochs=job["epochs"],
        batch_size=job["batch_size"],
        verbose=0,
        shuffle=True,
    )
    logits = model.predict(tf.constant(test["text"]), batch_size=64, verbose=0)[:, 0]
    accuracy = float(np.mean((logits > 0).astype(int) == np.array(test["label"])))
    change = max(
        (
            float(np.max(np.abs(w.numpy() - b)))
            for w, b in zip(encoder.weights, before)
            if w.dtype.is_floating
        ),
        default=0.0,
    )
    return {
        "loss": [float(x) for x in history.history["loss"]],
        "accuracy": accuracy,
        "encoder_trainable_weights": len(encoder.trainable_weights),
        "encoder_weight_change": change,
    }


def glue_pack(job):
    model = make_bert_preprocess_model(
        job["pre_dir"], ["sentence1", "sentence2"], job["glue_seq_length"]
    )
    a, b = zip(*job["glue_pairs"])
    out = model([tf.constant(list(a)), tf.constant(list(b))])
    return {k: v.numpy().tolist() for k, v in out.items()}


def main(argv):
    with open(argv[0]) as f:
        job = json.load(f)
    out = {}
    if job.get("train"):
        out.update(classify(job))
    if job.get("glue_pairs"):
        out["glue"] = glue_pack(job)
    with open(argv[1], "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
