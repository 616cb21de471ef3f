"""TFLite export: tokenizer in the graph, parity with the Keras model, quantized variants."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import TINY_VOCAB  # noqa: E402
from tiny_dirs import CLASS_LABELS, make_task_dir  # noqa: E402

SEQ = 16
TEXTS = ["the quick brown fox", "hello world", "a good movie", "a terrible movie !",
         "the lazy dog jumps over the fox", "where is paris ?", "un affable john",
         "resume cafe", "what is the capital of france ?", "bad bad bad", "", "   ",
         "john lives in london , the capital " * 6, "great , great movie", "who is who ?",
         "is it good or bad", "the dog", "france", "over", "1 2 3 4 5"]
BAD = ["", "  \t", b"\xff\xfe\xc3", "fox " * 200, "ﬁ™ Ｆｕｌｌ…"]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    from bert_tf import BertConfig
    root = tmp_path_factory.mktemp("tflite")
    config = BertConfig.preset("tiny", vocab_size=len(TINY_VOCAB), num_layers=2,
                               hidden_size=32, num_heads=4, intermediate_size=64,
                               max_position_embeddings=64, initializer_range=0.3)
    model_dir = str(root / "cls")
    model = make_task_dir(model_dir, config, TINY_VOCAB,
                          {"type": "classify", "label_names": CLASS_LABELS}, seq_length=SEQ)
    # A random model gives ~uniform, input-independent probabilities: re-center and scale the
    # head on the pooled outputs of TEXTS so labels vary and are mostly decisive.
    import tensorflow as tf
    import bert_tf
    vocab = list(TINY_VOCAB)
    tok = bert_tf.BertTokenizer(vocab=vocab, lower_case=True)
    pooled = []
    for t in TEXTS:
        ids = [vocab.index("[CLS]")] + tok.tokenize(tf.constant([t])).to_list()[0][:SEQ - 2] \
            + [vocab.index("[SEP]")]
        x = np.array([ids], np.int32)
        pooled.append(model.encoder({"input_word_ids": x, "input_mask": np.ones_like(x),
                                     "input_type_ids": np.zeros_like(x)},
                                    training=False)["pooled_output"][0].numpy())
    pooled = np.array(pooled)
    w = np.random.RandomState(0).normal(size=(pooled.shape[1], 3)).astype(np.float32)
    logits = (pooled - pooled.mean(0)) @ w
    w *= 4.0 / logits.std()
    model.head.dense.kernel.assign(w)
    model.head.dense.bias.assign(-pooled.mean(0) @ w)
    return root, model_dir, model


def keras_reference(model, texts):
    """The Keras model on inputs packed by the project tokenizer (exact for these texts)."""
    import tensorflow as tf
    import bert_tf
    vocab = list(TINY_VOCAB)
    tok = bert_tf.BertTokenizer(vocab=vocab, lower_case=True)
    probs = []
    for t in texts:
        ids = tok.tokenize(tf.constant([t])).to_list()[0][:SEQ - 2]
        ids = [vocab.index("[CLS]")] + ids + [vocab.index("[SEP]")]
        x = np.array([ids], np.int32)
        logits = model({"input_word_ids": x, "input_mask": np.ones_like(x),
                        "input_type_ids": np.zeros_like(x)}, training=False)["logits"]
        probs.append(tf.nn.softmax(logits)[0].numpy())
    return np.array(probs)


@pytest.mark.parametrize("variants", [
    ("none",), pytest.param(("dynamic", "float16"), marks=pytest.mark.slow)])
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
        for text in BAD:   # defined answers, never a crash
            p, lab = run(text)
            assert np.isfinite(p).all() and abs(p.sum() - 1) < 1e-4 and 0 <= lab < 3
    if "none" not in variants:
        return
    assert open(str(root / "m_none.tflite.labels.txt")).read().split() == CLASS_LABELS
    assert sizes["none"] > 3.5 * model.count_params()
    # a list is answered row by row, each row as alone
    run = TFLiteClassifier(str(root / "m_none.tflite"))
    rows = run(TEXTS[:3])
    np.testing.assert_allclose([p for p, _ in rows], ref[:3], atol=1e-4)


def test_tflite_rejects_other_tasks(tmp_path):
    from bert_tf import BertConfig
    from bert_tf.errors import BertTfError
    from export.tflite import export_tflite
    config = BertConfig.preset("tiny", vocab_size=len(TINY_VOCAB), num_layers=1,
                               hidden_size=16, num_heads=2, intermediate_size=32,
                               max_position_embeddings=32)
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
