"""BertPreprocessor / load_preprocessor: directory formats, golden parity, serialization."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import bert_tf
from bert_tf.model_dir import ModelDir
from bert_tf.text.preprocessor import BertPreprocessor, load_preprocessor
from tests.conftest import TINY_VOCAB
from tests.text import reference_tokenization as ref

CASED_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "Hello",
    "hello",
    "World",
    "world",
    "!",
    "H",
    "##ello",
]


def _expected(vocab, lower_case, a, b=None, seq_length=16):
    """Hand-assembly from the reference tokenizer and the original truncation."""
    tok = ref.ReferenceTokenizer(vocab, lower_case)
    ta, tb = tok.ids(a), tok.ids(b) if b is not None else []
    if b is None:
        ta = ta[: seq_length - 2]
        ids, types = [2] + ta + [3], [0] * (len(ta) + 2)
    else:
        ref.truncate_seq_pair(ta, tb, seq_length - 3)
        ids = [2] + ta + [3] + tb + [3]
        types = [0] * (len(ta) + 2) + [1] * (len(tb) + 1)
    pad = seq_length - len(ids)
    return ids + [0] * pad, [1] * len(ids) + [0] * pad, types + [0] * pad


def test_single_and_pair(tiny_vocab_file):
    pre = BertPreprocessor(vocab_file=tiny_vocab_file, seq_length=10)
    singles = ["The quick brown fox jumps over the lazy dog!", "", "Hello WORLD"]
    out = pre(tf.constant(singles))
    for i, s in enumerate(singles):
        ids, mask, types = _expected(TINY_VOCAB, True, s, seq_length=10)
        assert out["input_word_ids"].numpy()[i].tolist() == ids
        assert out["input_mask"].numpy()[i].tolist() == mask
        assert out["input_type_ids"].numpy()[i].tolist() == types
    a = ["Who lives in Paris?", "what"]
    b = ["John lives in the capital of France, a good city.", "the great unaffable movie"]
    out = pre((tf.constant(a), tf.constant(b)))
    for i in range(2):
        ids, mask, types = _expected(TINY_VOCAB, True, a[i], b[i], seq_length=10)
        assert out["input_word_ids"].numpy()[i].tolist() == ids
        assert out["input_mask"].numpy()[i].tolist() == mask
        assert out["input_type_ids"].numpy()[i].tolist() == types


def _write(path, name, text):
    with open(os.path.join(path, name), "w", encoding="utf-8") as f:
        f.write(text)


def test_load_from_directory_formats(tmp_path, tiny_vocab_file, tiny_config):
    cased = "\n".join(CASED_VOCAB) + "\n"
    # bert-tf model dir: casing and seq_length from config.json.
    d = ModelDir(str(tmp_path / "model"))
    d.copy_vocab(tiny_vocab_file)
    d.write_config(
        tiny_config,
        {"vocab_file": "vocab.txt", "lower_case": False, "seq_length": 12},
        {"type": "pretraining"},
    )
    pre = load_preprocessor(d.path)
    assert (pre.lower_case, pre.seq_length) == (False, 12)
    assert load_preprocessor(d.path, seq_length=20).seq_length == 20
    # Hugging Face dir: tokenizer_config.json's do_lower_case wins over the vocab.
    hf = tmp_path / "hf"
    hf.mkdir()
    _write(hf, "vocab.txt", cased)
    _write(hf, "config.json", "{}")
    _write(hf, "tokenizer_config.json", json.dumps({"do_lower_case": True}))
    assert load_preprocessor(str(hf)).lower_case is True
    os.remove(hf / "tokenizer_config.json")
    assert load_preprocessor(str(hf)).lower_case is False  # inferred from the vocab
    # Google dir: the directory name, else the vocab.
    for name, expected in (
        ("uncased_L-2_H-128_A-2", True),
        ("cased_L-2_H-128_A-2", False),
        ("bert", False),
    ):
        g = tmp_path / name
        g.mkdir()
        _write(g, "vocab.txt", cased)
        _write(g, "bert_config.json", "{}")
        assert load_preprocessor(str(g)).lower_case is expected, name
    out = load_preprocessor(str(tmp_path / "bert"), seq_length=6)(tf.constant(["Hello World!"]))
    assert out["input_word_ids"].numpy().tolist() == [[2, 5, 7, 9, 3, 0]]
    # No vocab: one clear error.
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no vocab.txt"):
        load_preprocessor(str(tmp_path / "empty"))


def test_get_config_round_trip_and_public_api(tiny_vocab_file):
    pre = bert_tf.load_preprocessor(tiny_vocab_file, seq_length=9, pad_to_longest=True)
    assert isinstance(pre, bert_tf.BertPreprocessor)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(pre))
    assert clone.get_config() == pre.get_config()
    s = tf.constant(["the lazy dog", "hello"])
    for key, value in pre(s).items():
        np.testing.assert_array_equal(clone(s)[key], value)
    assert pre(s)["input_word_ids"].shape == (2, 5)  # padded to the longest


def test_functional_model_and_hub_style_methods(tiny_vocab_file):
    pre = BertPreprocessor(vocab_file=tiny_vocab_file, seq_length=8)
    a, b = keras.Input(shape=(), dtype="string"), keras.Input(shape=(), dtype="string")
    model = keras.Model([a, b], pre([a, b]))
    out = model([tf.constant(["the fox"]), tf.constant(["a lazy dog"])])
    # [CLS] the fox [SEP] a lazy dog [SEP] [PAD]; "a" is a duplicate: the last entry wins.
    v = TINY_VOCAB
    last = {t: i for i, t in enumerate(v)}
    assert out["input_word_ids"].numpy().tolist() == [
        [2, last["the"], last["fox"], 3, last["a"], last["lazy"], last["dog"], 3]
    ]
    words = pre.tokenize(tf.constant(["the unaffable fox", "x"]))
    assert words.to_list()[0] == [
        [last["the"]],
        [last["un"], last["##aff"], last["##able"]],
        [last["fox"]],
    ]
    three = pre.bert_pack_inputs([words, words, words], seq_length=9)
    assert three["input_word_ids"].numpy().tolist()[1] == [
        2,
        last["x"],
        3,
        last["x"],
        3,
        last["x"],
        3,
        0,
        0,
    ]
    assert three["input_type_ids"].numpy().tolist()[1] == [0, 0, 0, 1, 1, 2, 2, 0, 0]


def test_saved_model_loads_with_only_tensorflow_text(tmp_path, tiny_vocab_file):
    pre = BertPreprocessor(vocab_file=tiny_vocab_file, seq_length=12)
    module = tf.Module()
    module.pre = pre
    module.serve = tf.function(
        lambda a, b: pre([a, b]),
        input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.string)],
    )
    path = str(tmp_path / "saved")
    tf.saved_model.save(module, path)
    a, b = ["Who lives in Paris?", "Résumé"], ["John lives in Paris.", "CAFÉ ﬁ"]
    expected = pre([tf.constant(a), tf.constant(b)])["input_word_ids"].numpy().tolist()
    code = (
        "import json, sys, tensorflow as tf, tensorflow_text\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        "out = m.serve(tf.constant(json.loads(sys.argv[2])), "
        "tf.constant(json.loads(sys.argv[3])))\n"
        "assert not any(k.startswith('bert_tf') for k in sys.modules)\n"
        "print(json.dumps(out['input_word_ids'].numpy().tolist()))\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", code, path, json.dumps(a), json.dumps(b)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


@pytest.mark.real_weights
def test_golden_minilm_parity(minilm_dir, golden_minilm):
    g = golden_minilm
    pre = load_preprocessor(
        minilm_dir, seq_length=g["single_input_ids"].shape[1], pad_to_longest=True
    )
    out = pre(tf.constant(g["single_texts"]))
    np.testing.assert_array_equal(out["input_word_ids"], g["single_input_ids"])
    np.testing.assert_array_equal(out["input_mask"], g["single_attention_mask"])
    np.testing.assert_array_equal(out["input_type_ids"], g["single_token_type_ids"])
    pre = load_preprocessor(minilm_dir, seq_length=64)  # padded past the golden length
    texts = g["pair_texts"]
    out = pre([tf.constant(texts[:, 0]), tf.constant(texts[:, 1])])
    t = g["pair_input_ids"].shape[1]
    np.testing.assert_array_equal(out["input_word_ids"][:, :t], g["pair_input_ids"])
    np.testing.assert_array_equal(out["input_mask"][:, :t], g["pair_attention_mask"])
    np.testing.assert_array_equal(out["input_type_ids"][:, :t], g["pair_token_type_ids"])
    assert not out["input_mask"].numpy()[:, t:].any()
