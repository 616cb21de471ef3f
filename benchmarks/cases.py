"""Benchmark cases: the same work done by bert-tf and by keras-hub, as zero-arg step callables.

Every case builder returns a `Case` with one `Impl` per implementation ("bert_tf" and, where
keras-hub has an equivalent, "keras_hub"). A step returns a scalar tensor (to sync on).
Both implementations get the same config, batch, sequence length, precision and inputs, and
the same optimizer maths: AdamW (weight decay 0.01, not on LayerNorm/bias), global-norm
clipping at 1.0, each side with its own stack's optimizer (ours: `bert_tf` AdamW, whose
update is one fused kernel per variable; keras-hub: `keras.optimizers.AdamW`). Both run
under a plain `tf.function` (no XLA: it is slower on CPU).

Shape legend: B batch, T sequence length, P masked positions per example, V vocab size.
"""

import csv
import dataclasses
import itertools
from typing import Callable, Optional

import numpy as np

from benchmarks import torch_cases
from benchmarks.flops import encoder_flops, mlm_head_flops
from bert_tf.data.batching import PAD_TO_MULTIPLE_OF

OURS = "bert_tf"
KERAS_HUB = "keras_hub"
TRANSFORMERS = "transformers"  # transformers + PyTorch, where installed (torch_cases.py)


@dataclasses.dataclass
class Impl:
    step: Callable
    examples_per_step: int
    tokens_per_step: Optional[int] = None
    flops_per_step: Optional[float] = None
    warmup_steps: int = 0  # untimed steps this case needs at least (e.g. one epoch)


@dataclasses.dataclass
class Case:
    name: str
    unit: str  # what an "example" is: "examples", "strings", "sentences"
    impls: dict
    notes: str = ""


@dataclasses.dataclass
class Setup:
    """What every case shares."""

    config: object  # bert_tf.BertConfig
    batch_size: int = 16
    seq_length: int = 128
    precision: str = "float32"  # or "mixed_bfloat16"
    num_predictions: int = 20  # masked positions per example (original BERT at seq 128)
    vocab_file: Optional[str] = None
    seed: int = 0

    @property
    def dtype(self):
        return None if self.precision == "float32" else self.precision


# ----------------------------------------------------------------------------- models


def _ours_encoder(setup):
    from bert_tf.models.encoder import BertEncoder

    return BertEncoder(setup.config, dtype=setup.dtype)


def keras_hub_backbone(setup):
    """keras-hub's BertBackbone with our config and random weights (no preset download).
    Note: keras-hub BERT uses the tanh GELU approximation; ours is exact erf GELU."""
    import keras_hub

    c = setup.config
    return keras_hub.models.BertBackbone(
        vocabulary_size=c.vocab_size,
        num_layers=c.num_layers,
        num_heads=c.num_heads,
        hidden_dim=c.hidden_size,
        intermediate_dim=c.intermediate_size,
        dropout=c.hidden_dropout,
        max_sequence_length=c.max_position_embeddings,
        num_segments=c.type_vocab_size,
        dtype=setup.dtype,
    )


def _inputs(setup):
    rng = np.random.default_rng(setup.seed)
    b, t = setup.batch_size, setup.seq_length
    ids = rng.integers(5, setup.config.vocab_size, size=(b, t)).astype("int32")
    types = np.zeros((b, t), "int32")
    types[:, t // 2 :] = 1
    mask = np.ones((b, t), "int32")
    return ids, mask, types


def _optimizer(impl):
    """The BERT fine-tuning/pre-training optimizer of each stack, with the same maths."""
    import keras

    if impl == OURS:
        from bert_tf.training.optimization import AdamW

        return AdamW(1e-5, weight_decay=0.01, global_clipnorm=1.0)
    optimizer = keras.optimizers.AdamW(1e-5, weight_decay=0.01, epsilon=1e-6, global_clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


def _train_step(impl, model, loss_fn):
    """tf.function: forward (training=True), loss, gradients, AdamW update -> loss."""
    import tensorflow as tf

    optimizer = _optimizer(impl)
    optimizer.build(model.trainable_variables)

    @tf.function
    def step(*args):
        with tf.GradientTape() as tape:
            loss = loss_fn(*args)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return step


def _encoder_loss(outputs):
    import tensorflow as tf

    seq = tf.cast(outputs["sequence_output"], tf.float32)
    pooled = tf.cast(outputs["pooled_output"], tf.float32)
    return tf.reduce_mean(tf.square(seq)) + tf.reduce_mean(pooled)


def _pair(setup, build, torch_step=None):
    """Builds the keras-hub side only if keras-hub imports, and the transformers + PyTorch
    side (`torch_step()` -> Impl) only if torch and transformers are installed."""
    impls = {OURS: build(OURS)}
    try:
        import keras_hub  # noqa: F401

        impls[KERAS_HUB] = build(KERAS_HUB)
    except ImportError:
        pass
    if torch_step is not None and torch_cases.available():
        impls[TRANSFORMERS] = torch_step()
    return impls


# ----------------------------------------------------------------------------- encoder cases


def encoder_case(setup, training):
    import tensorflow as tf

    arrays = _inputs(setup)
    ids, mask, types = (tf.constant(a) for a in arrays)
    b, t = setup.batch_size, setup.seq_length
    flops = encoder_flops(setup.config, b, t, training=training)

    def torch_step():
        return Impl(torch_cases.encoder_step(setup, *arrays, training), b, b * t, flops)

    def build(impl):
        if impl == OURS:
            model = _ours_encoder(setup)
            feed = {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types}
        else:
            model = keras_hub_backbone(setup)
            feed = {"token_ids": ids, "padding_mask": mask, "segment_ids": types}
        if training:
            step = _train_step(impl, model, lambda: _encoder_loss(model(feed, training=True)))
        else:

            @tf.function
            def step():
                out = model(feed, training=False)
                return tf.reduce_sum(tf.cast(out["pooled_output"], tf.float32))

        return Impl(step, b, b * t, flops)

    name = "encoder_train" if training else "encoder_infer"
    return Case(name, "examples", _pair(setup, build, torch_step))


# ----------------------------------------------------------------------------- pre-training


def pretrain_case(setup):
    """MLM (P positions, tied decoder) + NSP heads, training step."""
    import keras
    import tensorflow as tf

    ids, mask, types = _inputs(setup)
    b, t = setup.batch_size, setup.seq_length
    p = min(setup.num_predictions, t - 1)
    rng = np.random.default_rng(setup.seed + 1)
    positions = np.sort(
        np.stack([rng.choice(np.arange(1, t), p, replace=False) for _ in range(b)]), axis=1
    ).astype("int32")
    labels = {
        "masked_lm_ids": tf.constant(np.take_along_axis(ids, positions, 1)),
        "masked_lm_weights": tf.ones((b, p), tf.float32),
        "next_sentence_labels": tf.constant(rng.integers(0, 2, (b,)).astype("int32")),
    }
    ids, mask, types, positions = (tf.constant(a) for a in (ids, mask, types, positions))
    flops = encoder_flops(setup.config, b, t, training=True) + mlm_head_flops(
        setup.config, b, p, training=True
    )

    def build(impl):
        if impl == OURS:
            from bert_tf.models.pretrainer import BertPretrainer
            from bert_tf.tasks.pretraining import pretraining_loss

            model = BertPretrainer(_ours_encoder(setup))
            feed = {
                "input_word_ids": ids,
                "input_mask": mask,
                "input_type_ids": types,
                "masked_lm_positions": positions,
            }

            def loss_fn():
                return pretraining_loss(labels, model(feed, training=True))
        else:
            import keras_hub

            backbone = keras_hub_backbone(setup)
            mlm = keras_hub.layers.MaskedLMHead(
                token_embedding=backbone.token_embedding,
                intermediate_activation="gelu",
                kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                layer_norm_epsilon=1e-12,
                dtype=backbone.dtype_policy,
                name="mlm_head",
            )
            nsp = keras.layers.Dense(2, dtype=backbone.dtype_policy, name="nsp_head")
            feed = {"token_ids": ids, "padding_mask": mask, "segment_ids": types}
            out = backbone(feed)  # builds the heads' weights
            mlm(out["sequence_output"], positions)
            nsp(out["pooled_output"])
            model = _VariableHolder([backbone, mlm, nsp])

            def loss_fn():
                out = backbone(feed, training=True)
                outputs = {
                    "mlm_logits": tf.cast(mlm(out["sequence_output"], positions), tf.float32),
                    "nsp_logits": tf.cast(nsp(out["pooled_output"]), tf.float32),
                }
                return _plain_pretraining_loss(labels, outputs)

        return Impl(_train_step(impl, model, loss_fn), b, b * t, flops)

    return Case(
        "pretrain", "examples", _pair(setup, build), notes=f"MLM at P={p} positions + NSP, AdamW"
    )


class _VariableHolder:
    def __init__(self, layers):
        self.layers = layers

    @property
    def trainable_variables(self):
        return [v for layer in self.layers for v in layer.trainable_variables]


def _plain_pretraining_loss(labels, outputs):
    """Weighted-mean MLM cross-entropy + mean NSP cross-entropy (single replica)."""
    import tensorflow as tf

    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels["masked_lm_ids"], outputs["mlm_logits"]
    )  # [B, P]
    w = labels["masked_lm_weights"]
    mlm = tf.reduce_sum(ce * w) / tf.maximum(tf.reduce_sum(w), 1.0)
    nsp = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels["next_sentence_labels"], outputs["nsp_logits"]
        )
    )
    return mlm + nsp


# ----------------------------------------------------------------------------- text cases


def sms_texts(limit=None):
    """The SMS spam texts and 0/1 labels from demo_data.assets.sms_spam_csv()."""
    from demo_data import assets

    texts, labels = [], []
    with open(assets.sms_spam_csv(), newline="", encoding="utf-8", errors="replace") as f:
        for row in csv.DictReader(f):
            texts.append(row["text"])
            labels.append(int(row["spam"]))
            if limit and len(texts) >= limit:
                break
    return texts, labels


def _string_batches(texts, labels, batch_size, count=64):
    import tensorflow as tf

    batches = []
    for i in range(0, min(len(texts), count * batch_size) - batch_size + 1, batch_size):
        batches.append(
            (
                tf.constant(texts[i : i + batch_size]),
                tf.constant(labels[i : i + batch_size], tf.int32),
            )
        )
    return batches


def finetune_case(setup):
    """Strings in: tokenize + pack + classifier training step on real SMS texts.
    Both see the same examples (the first 64 batches' worth). Ours draws them as
    `apps.finetune` does (a seeded random permutation, `epochs_order`), pads each batch
    to its longest, rounded up to a multiple of 8, and trains on it packed into full rows;
    keras-hub's preprocessor pads to seq_length, so its grouping does not matter (file
    order)."""
    import tensorflow as tf

    texts, labels = sms_texts()
    b = setup.batch_size
    batches = _string_batches(texts, labels, b)
    n = len(batches) * b

    def recipe_batches():
        from bert_tf.data.batching import epochs_order
        from bert_tf.text.tokenizer import BertTokenizer

        pieces = BertTokenizer(vocab_file=setup.vocab_file).tokenize(tf.constant(texts[:n]))
        order = epochs_order(pieces.row_lengths().numpy() + 2, b, 1, setup.seed)
        return [
            (tf.constant([texts[i] for i in idx]), tf.constant([labels[i] for i in idx], tf.int32))
            for idx in order
        ]

    def build(impl):
        cycle = itertools.cycle(recipe_batches() if impl == OURS else batches)
        if impl == OURS:
            from bert_tf.models.classifier import BertClassifier
            from bert_tf.text.preprocessor import BertPreprocessor

            pre = BertPreprocessor(
                vocab_file=setup.vocab_file,
                seq_length=setup.seq_length,
                pad_to_longest=True,
                pad_to_multiple_of=PAD_TO_MULTIPLE_OF,
            )
            encoder = _ours_encoder(setup)
            encoder.train_packing = setup.seq_length  # as apps.finetune runs random batches
            model = BertClassifier(encoder, 2)

            def loss_fn(strings, y):
                logits = model(pre(strings), training=True)["logits"]
                return tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(y, tf.cast(logits, tf.float32))
                )
        else:
            import keras_hub

            tokenizer = keras_hub.models.BertTokenizer(vocabulary=setup.vocab_file, lowercase=True)
            pre = keras_hub.models.BertTextClassifierPreprocessor(
                tokenizer, sequence_length=setup.seq_length
            )
            model = keras_hub.models.BertTextClassifier(
                keras_hub_backbone(setup), 2, preprocessor=None
            )

            def loss_fn(strings, y):
                logits = model(pre(strings), training=True)
                return tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(y, tf.cast(logits, tf.float32))
                )

        train = _train_step(impl, model, loss_fn)
        # One untimed pass over the batches: each padded length compiles its kernels once.
        return Impl(lambda: train(*next(cycle)), b, warmup_steps=len(batches))

    def torch_step():
        train = torch_cases.finetune_step(setup, setup.seq_length)
        cycle = itertools.cycle([(texts[i : i + b], labels[i : i + b]) for i in range(0, n, b)])
        return Impl(lambda: train(*next(cycle)), b)

    return Case(
        "finetune",
        "examples",
        _pair(setup, build, torch_step),
        notes="SMS spam texts; ours: random batches (as apps.finetune) padded to their "
        f"longest (multiple of {PAD_TO_MULTIPLE_OF}); keras-hub: padded to "
        f"{setup.seq_length}; transformers: file-order batches padded to their "
        "longest (dynamic padding)",
    )


def tokenize_case(setup, batch_size=256):
    """Strings/s of the WordPiece tokenizers alone (ragged ids out) on SMS texts."""
    import tensorflow as tf

    texts, _ = sms_texts()
    batches = [
        tf.constant(texts[i : i + batch_size])
        for i in range(0, len(texts) - batch_size + 1, batch_size)
    ]

    def build(impl):
        cycle = itertools.cycle(batches)
        if impl == OURS:
            from bert_tf.text.tokenizer import BertTokenizer

            tokenizer = BertTokenizer(vocab_file=setup.vocab_file)
            tokenize = tokenizer.tokenize
        else:
            import keras_hub

            tokenizer = keras_hub.models.BertTokenizer(vocabulary=setup.vocab_file, lowercase=True)
            tokenize = tokenizer.tokenize

        @tf.function
        def step(strings):
            return tf.reduce_sum(tokenize(strings).row_lengths())

        return Impl(lambda: step(next(cycle)), batch_size)

    return Case(
        "tokenize",
        "strings",
        _pair(setup, build),
        notes=f"batches of {batch_size} SMS texts, ragged ids out",
    )


def pretraining_data_case(setup, text_file, num_lines=2000, workdir=None):
    """Sentences/s of bert_tf.data.pretraining.create.create_pretraining_data (ours only) on
    the first `num_lines` lines of `text_file` (dupe_factor 1, one process)."""
    import os
    import tempfile

    from bert_tf.data.pretraining import create as pd

    workdir = workdir or tempfile.mkdtemp(prefix="bench_ptdata_")
    src = os.path.join(workdir, "input.txt")
    with open(text_file, encoding="utf-8") as f, open(src, "w", encoding="utf-8") as out:
        for line in itertools.islice(f, num_lines):
            out.write(line)
    counter = itertools.count()
    state = {"sentences": 0}

    def step():
        import tensorflow as tf

        config = pd.CreationConfig(
            max_seq_length=setup.seq_length,
            max_predictions_per_seq=max(1, int(round(setup.seq_length * 0.15))),
            dupe_factor=1,
        )
        meta = pd.create_pretraining_data(
            src,
            os.path.join(workdir, f"out{next(counter)}"),
            setup.vocab_file,
            config=config,
            overwrite=True,
        )
        state["sentences"] = meta.get("sentences") or meta.get("counts", {}).get("sentences", 0)
        return tf.constant(0)

    step()  # the sentence count is only known after one run
    sentences = int(state["sentences"]) or num_lines
    return Case(
        "pretraining_data",
        "sentences",
        {OURS: Impl(step, sentences)},
        notes=f"{num_lines} lines of the KJV, dupe_factor 1, 1 worker",
    )
