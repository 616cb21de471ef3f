"""TFLite export: tokenizer in the graph, parity with the Keras model, quantized variants."""

import os

import numpy as np
import pytest

from tests.conftest import TINY_VOCAB
from tests.export.tiny_dirs import CLASS_LABELS, make_task_dir
from tests.export.window_reference import text_logits

SEQ = 16
STRIDE = 7  # the default: half a window of SEQ - 2 pieces
TEXTS = [
    "the quick brown fox",
    "hello world",
    "a good movie",
    "a terrible movie !",
    "the lazy dog jumps over the fox",
    "where is paris ?",
    "un affable john",
    "resume cafe",
    "what is the capital of france ?",
    "bad bad bad",
    "",
    "   ",
    "john lives in london , the capital " * 6,
    "great , great movie",
    "who is who ?",
    "is it good or bad",
    "the dog",
    "france",
    "over",
    "1 2 3 4 5",
]
BAD = ["", "  \t", b"\xff\xfe\xc3", "fox " * 200, "ﬁ™ Ｆｕｌｌ…"]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    from bert_tf import BertConfig

    root = tmp_path_factory.mktemp("tflite")
    config = BertConfig.preset(
        "tiny",
        vocab_size=len(TINY_VOCAB),
        num_layers=2,
        hidden_size=32,
        num_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        initializer_range=0.3,
    )
    model_dir = str(root / "cls")
    model = make_task_dir(
        model_dir,
        config,
        TINY_VOCAB,
        {"type": "classify", "label_names": CLASS_LABELS},
        seq_length=SEQ,
    )
    # A random model gives ~uniform, input-independent probabilities: re-center and scale the
    # head on the pooled outputs of TEXTS so labels vary and are mostly decisive.
    import tensorflow as tf

    import bert_tf

    vocab = list(TINY_VOCAB)
    tok = bert_tf.BertTokenizer(vocab=vocab, lower_case=True)
    pooled = []
    for t in TEXTS:
        ids = (
            [vocab.index("[CLS]")]
            + tok.tokenize(tf.constant([t])).to_list()[0][: SEQ - 2]
            + [vocab.index("[SEP]")]
        )
        x = np.array([ids], np.int32)
        pooled.append(
            model.encoder(
                {
                    "input_word_ids": x,
                    "input_mask": np.ones_like(x),
                    "input_type_ids": np.zeros_like(x),
                },
                training=False,
            )["pooled_output"][0].numpy()
        )
    pooled = np.array(pooled)
    w = np.random.RandomState(0).normal(size=(pooled.shape[1], 3)).astype(np.float32)
    logits = (pooled - pooled.mean(0)) @ w
    w *= 4.0 / logits.std()
    model.head.dense.kernel.assign(w)
    model.head.dense.bias.assign(-pooled.mean(0) @ w)
    return root, model_dir, model


def keras_reference(model, texts):
    """The Keras model on inputs packed by the project tokenizer (exact for these texts);
    texts longer than SEQ - 2 pieces: the mean of the logits of their STRIDE windows (the
    brute-force window reference)."""
    import tensorflow as tf

    import bert_tf

    vocab = list(TINY_VOCAB)
    tok = bert_tf.BertTokenizer(vocab=vocab, lower_case=True)
    ids = tok.tokenize(tf.constant(texts)).to_list()
    logits = text_logits(model, ids, SEQ, STRIDE, vocab.index("[CLS]"), vocab.index("[SEP]"))
    return tf.nn.softmax(logits).numpy()


@pytest.mark.parametrize(
    "variants", [("none",), pytest.param(("dynamic", "float16"), marks=pytest.mark.slow)]
)
def test_tflite_variants_match_keras(classifier, variants):
    from export.tflite import TFLiteClassifier, export_tflite

    root, model_dir, model = classifier
    ref = keras_reference(model, TEXTS)
    assert len(set(ref.argmax(-1))) > 1, "test model should predict several labels"
    sizes = {}
    for quantize in variants:
        path = str(root / f"m_{quantize}.tflite")
        sizes[quantize] = export_tflite(model_dir, path, quantize, model=model)
        run = TFLiteClassifier(path)
        got = [run(t) for t in TEXTS]
        probs = np.array([p for p, _ in got])
        labels = np.array([lab for _, lab in got])
        if quantize == "none":
            np.testing.assert_allclose(probs, ref, atol=1e-4)
            assert (labels == ref.argmax(-1)).all()
        else:
            assert (labels == ref.argmax(-1)).mean() >= 0.95, quantize
            np.testing.assert_allclose(probs, ref, atol=0.15)  # scaled random head
        for text in BAD:  # defined answers, never a crash
            p, lab = run(text)
            assert np.isfinite(p).all() and abs(p.sum() - 1) < 1e-4 and 0 <= lab < 3
    if "none" not in variants:
        return
    assert open(str(root / "m_none.tflite.labels.txt")).read().split() == CLASS_LABELS
    # the signature's outputs carry the SavedModel's names, the label name included
    from export.tflite import TFLiteModel

    named = TFLiteModel(str(root / "m_none.tflite"))
    assert named.output_names == ["label", "label_id", "probabilities"]
    out = named(text=TEXTS[0])
    assert out["label"].tolist() == [CLASS_LABELS[int(ref[0].argmax())].encode()]
    assert sizes["none"] > 3.5 * model.count_params()
    # a list is answered row by row, each row as alone
    run = TFLiteClassifier(str(root / "m_none.tflite"))
    rows = run(TEXTS[:3])
    np.testing.assert_allclose([p for p, _ in rows], ref[:3], atol=1e-4)


def test_long_texts_are_read_in_windows_as_the_saved_model(classifier):
    """Texts of thousands of words: the float32 TFLite graph averages the logits of all its
    windows, as the SavedModel's serving_default and the brute-force reference."""
    import tensorflow as tf

    from export.saved_model import read_model_dir
    from export.serving.module import ServingModule
    from export.tflite import TFLiteClassifier, export_tflite

    root, model_dir, model = classifier
    rng = np.random.default_rng(5)
    words = [w for w in TINY_VOCAB[5:] if not w.startswith("##")]
    texts = [" ".join(rng.choice(words, n)) for n in (3000, 700, 20)]
    config, vocab_file = read_model_dir(model_dir)
    module = ServingModule(model, config["task"], vocab_file, True, SEQ)
    module.max_request_tokens = 10_000 * SEQ  # 3,000 words: ~430 windows in one request
    served = module.signatures()["serving_default"](text=tf.constant(texts))
    ref = keras_reference(model, texts)
    np.testing.assert_allclose(served["probabilities"].numpy(), ref, atol=1e-5)
    path = str(root / "m_none.tflite")
    if not os.path.exists(path):  # (written by test_tflite_variants_match_keras)
        export_tflite(model_dir, path, model=model)
    run = TFLiteClassifier(path)
    got = run(texts)
    np.testing.assert_allclose([p for p, _ in got], served["probabilities"].numpy(), atol=1e-4)
    assert [lab for _, lab in got] == served["label_id"].numpy().tolist()
    # the answer is not the first window's
    first = keras_reference(model, [" ".join(texts[0].split()[: SEQ - 2])])
    assert np.abs(first[0] - ref[0]).max() > 1e-3


def _named_outputs_case(tmp_path, name):
    """(TFLite outputs, SavedModel serving_default outputs) of a tiny EXPORT_TASKS[name]
    model on the same inputs."""
    import tensorflow as tf

    from export.saved_model import read_model_dir
    from export.serving.module import ServingModule
    from export.tflite import TFLiteModel, build_tflite_module, convert
    from tests.export.tiny_dirs import EXPORT_TASKS, tiny_config

    task = EXPORT_TASKS[name]
    model_dir = str(tmp_path / name)
    model = make_task_dir(model_dir, tiny_config(), TINY_VOCAB, task, seq_length=SEQ)
    inputs = (
        {"text": "a good movie"}
        if name != "pair"
        else {"text": "a good movie", "text_b": "the lazy dog"}
    )
    config, vocab_file = read_model_dir(model_dir)
    ref = ServingModule(model, config["task"], vocab_file, True, SEQ).signatures()[
        "serving_default"
    ](**{k: tf.constant([v]) for k, v in inputs.items()})
    got = TFLiteModel(convert(build_tflite_module(model, list(TINY_VOCAB), True, SEQ, task)))(
        **inputs
    )
    return got, ref


def test_regression_answers_its_score_by_name(tmp_path):
    """A regression classifier answers `score` float32 [1], the SavedModel's (it used to
    answer probabilities [1, 1] = 1.0 and label_id 0 for every text)."""
    got, ref = _named_outputs_case(tmp_path, "regression")
    assert sorted(got) == sorted(ref) == ["score"]
    assert got["score"].shape == (1,)
    np.testing.assert_allclose(got["score"], ref["score"].numpy(), atol=1e-5)


@pytest.mark.slow
def test_pair_classifier_outputs_named_as_saved_model(tmp_path):
    got, ref = _named_outputs_case(tmp_path, "pair")
    assert sorted(got) == sorted(ref) == ["label", "label_id", "probabilities"]
    np.testing.assert_allclose(got["probabilities"], ref["probabilities"].numpy(), atol=1e-5)
    assert got["label"].tolist() == ref["label"].numpy().tolist()
    assert got["label_id"].tolist() == ref["label_id"].numpy().tolist()


def test_tflite_rejects_other_tasks(tmp_path):
    from bert_tf import BertConfig
    from bert_tf.errors import BertTfError
    from export.tflite import export_tflite

    config = BertConfig.preset(
        "tiny",
        vocab_size=len(TINY_VOCAB),
        num_layers=1,
        hidden_size=16,
        num_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    make_task_dir(str(tmp_path / "pt"), config, TINY_VOCAB, {"type": "pretraining"})
    with pytest.raises(BertTfError, match="pretraining"):
        export_tflite(str(tmp_path / "pt"), str(tmp_path / "x.tflite"))
    assert not os.path.exists(tmp_path / "x.tflite")


def test_tokenizer_agreement_is_measured():
    """Under LiteRT: FastBertTokenizer (NFKC folding) differs on the compatibility
    characters; the exact tokenizer (the default) never does."""
    from export.tflite import measure_tokenizer_agreement

    vocab = list(TINY_VOCAB) + ["fi", "tm", "full"]
    texts = ["the quick brown fox", "Café résumé", "ﬁ", "™"]
    frac, diffs = measure_tokenizer_agreement(vocab, True, texts, tokenizer="fast")
    assert frac == 0.5
    assert [d[0] for d in diffs] == ["ﬁ", "™"]
    assert diffs[0][1] == ["fi"] and diffs[0][2] == ["[UNK]"]
    assert measure_tokenizer_agreement(vocab, True, texts, tokenizer="exact") == (1.0, [])
