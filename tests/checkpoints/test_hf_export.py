"""Hugging Face export (`apps.convert --to=hf`): tokenizer files that transformers reads with
the right casing and length, `architectures` that says which weights are really there, and a
one-line warning when never-trained heads are left out (also for --to=google).

The transformers tests need `transformers` (requirements-test.txt; tokenizers only, no torch);
the weight comparison in PyTorch is in the slow suite."""

import json
import logging
import os

import numpy as np
import pytest

from bert_tf import BertEncoder, BertPretrainer
from bert_tf.checkpoints import writers
from bert_tf.checkpoints.convert import convert
from bert_tf.model_dir.task_model import write_model_dir

TEXTS = [
    "Hello, World! Café résumé naïve façade.",
    "東京は日本の首都です。",
    "don't stop-believing... 3.14 $100 (a+b)=c",
    "ÀÉÎÕÜ Straße \u00e9\u0301 x\u0092y \t tabs\nand newlines",
    "a" * 120 + " short",
    "",
    "   ",
    "unaffable jumping fox's",
]


def _randomize(weights, seed=0):
    rng = np.random.default_rng(seed)
    for v in weights:
        v.assign(rng.normal(0.0, 0.3, v.shape).astype("float32"))


def _pretrainer(config, trained=("mlm", "nsp")):
    """A pretrainer whose encoder and the `trained` heads hold random (non-initial) weights;
    the other heads keep their fresh initialization."""
    model = BertPretrainer(BertEncoder(config))
    _randomize(model.encoder.weights)
    for head in trained:
        _randomize(getattr(model, f"{head}_head").weights, seed=1)
    return model


def _safetensors_names(path):
    from safetensors.numpy import load_file

    return set(load_file(os.path.join(path, "model.safetensors")))


@pytest.mark.parametrize(
    "trained,architecture",
    [(("mlm", "nsp"), "BertForPreTraining"), (("mlm",), "BertForMaskedLM"), ((), "BertModel")],
)
def test_architectures_name_only_trained_heads(
    tiny_config, tiny_vocab_file, tmp_path, caplog, trained, architecture
):
    model = _pretrainer(tiny_config, trained)
    src = str(tmp_path / "src")
    write_model_dir(src, model, tiny_vocab_file, True)
    with caplog.at_level(logging.WARNING):
        convert(src, str(tmp_path / "hf"), "hf")
        convert(src, str(tmp_path / "google"), "google")
    config = json.load(open(tmp_path / "hf" / "config.json"))
    assert config["architectures"] == [architecture]
    names = _safetensors_names(str(tmp_path / "hf"))
    assert any(n.startswith("cls.predictions.") for n in names) == ("mlm" in trained)
    assert any(n.startswith("cls.seq_relationship.") for n in names) == ("nsp" in trained)
    assert all(n.startswith(("bert.", "cls.")) for n in names) == bool(trained)
    import tensorflow as tf

    google = {n for n, _ in tf.train.list_variables(str(tmp_path / "google" / "bert_model.ckpt"))}
    assert any(n.startswith("cls/predictions/") for n in google) == ("mlm" in trained)
    assert any(n.startswith("cls/seq_relationship/") for n in google) == ("nsp" in trained)
    warnings = [r.getMessage() for r in caplog.records if "never trained" in r.getMessage()]
    if trained == ("mlm", "nsp"):
        assert warnings == []
    else:
        dropped = "NSP head was" if trained else "MLM and NSP heads were"
        assert warnings == [
            f"{dropped} never trained (freshly initialised weights): not written "
            f"(architectures: {architecture})",
            f"{dropped} never trained (freshly initialised weights): not written "
            f"(no cls/ variables for them)",
        ]
        assert all(len(w.splitlines()) == 1 for w in warnings)


def test_encoder_only_import_round_trip_declares_bert_model(tiny_config, tiny_vocab_file, tmp_path):
    """HF BertModel -> bert_tf (gets fresh heads, with a warning) -> HF: still a BertModel."""
    encoder = BertEncoder(tiny_config)
    _randomize(encoder.weights)
    writers.save_hf(encoder, str(tmp_path / "a"), tiny_vocab_file, lower_case=True)
    convert(str(tmp_path / "a"), str(tmp_path / "b"), "bert_tf")
    convert(str(tmp_path / "b"), str(tmp_path / "c"), "hf")
    assert json.load(open(tmp_path / "c" / "config.json"))["architectures"] == ["BertModel"]
    assert _safetensors_names(str(tmp_path / "a")) == _safetensors_names(str(tmp_path / "c"))


@pytest.mark.parametrize("lower_case", [True, False])
def test_tokenizer_config_fields(tiny_config, tiny_vocab_file, tmp_path, lower_case):
    writers.save_hf(
        BertEncoder(tiny_config), str(tmp_path / "hf"), tiny_vocab_file, lower_case=lower_case
    )
    config = json.load(open(tmp_path / "hf" / "tokenizer_config.json"))
    assert config["do_lower_case"] is lower_case and config["strip_accents"] is lower_case
    assert config["tokenize_chinese_chars"] is True
    assert config["model_max_length"] == tiny_config.max_position_embeddings == 64
    assert (
        {k: config[k] for k in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")}
        == json.load(open(tmp_path / "hf" / "special_tokens_map.json"))
        == {
            "unk_token": "[UNK]",
            "sep_token": "[SEP]",
            "pad_token": "[PAD]",
            "cls_token": "[CLS]",
            "mask_token": "[MASK]",
        }
    )


def _cased_vocab(path):
    from tests.conftest import TINY_VOCAB

    words = [
        "Hello",
        "World",
        "Café",
        "C",
        "##af",
        "##é",
        "Str",
        "##aße",
        "À",
        "##É",
        "façade",
        "東",
        "京",
        "は",
        "日",
        "本",
        "の",
        "首",
        "都",
        "で",
        "す",
        "。",
        "$",
        "+",
        "=",
        "##ï",
        "na",
        "##ve",
        "é",
        "ß",
        "x",
        "y",
        "tabs",
        "and",
        "newlines",
        "short",
        "don",
        "stop",
        "believing",
        "##ing",
        "un",
        "fox",
        "s",
    ]
    tokens = list(dict.fromkeys(TINY_VOCAB + words))
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("lower_case", [True, False])
def test_auto_tokenizer_tokenizes_like_ours_and_truncates(
    minilm_dir, tiny_config, tmp_path, lower_case
):
    transformers = pytest.importorskip("transformers")
    import tensorflow as tf

    from bert_tf.text.tokenizer import BertTokenizer

    vocab = (
        os.path.join(minilm_dir, "vocab.txt")
        if lower_case  # the real uncased vocab
        else _cased_vocab(tmp_path / "cased_vocab.txt")
    )
    n_vocab = sum(1 for _ in open(vocab, encoding="utf-8"))
    config = tiny_config.__class__.from_dict(dict(tiny_config.to_dict(), vocab_size=n_vocab))
    out = str(tmp_path / "hf")
    writers.save_hf(BertEncoder(config), out, vocab, lower_case=lower_case)
    hf = transformers.AutoTokenizer.from_pretrained(out)
    ours = BertTokenizer(vocab_file=vocab, lower_case=lower_case)
    expected = ours.tokenize(tf.constant(TEXTS)).to_list()
    got = [hf(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    assert got == expected
    assert hf.model_max_length == 64
    ids = hf(" ".join(["hello"] * 200), truncation=True)["input_ids"]
    assert len(ids) == 64 and ids[0] == hf.cls_token_id and ids[-1] == hf.sep_token_id
    assert [hf.cls_token, hf.sep_token, hf.pad_token, hf.unk_token, hf.mask_token] == [
        "[CLS]",
        "[SEP]",
        "[PAD]",
        "[UNK]",
        "[MASK]",
    ]


@pytest.mark.slow
@pytest.mark.real_weights
def test_pytorch_bert_model_reads_the_exported_minilm_weights(minilm_dir, golden_minilm, tmp_path):
    """Real MiniLM: HF dir -> bert_tf -> our HF writer -> transformers BertModel (PyTorch)
    gives the outputs of the original HF directory and of the golden reference."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    convert(minilm_dir, str(tmp_path / "bt"), "bert_tf")
    convert(str(tmp_path / "bt"), str(tmp_path / "hf"), "hf")
    assert json.load(open(tmp_path / "hf" / "config.json"))["architectures"] == ["BertModel"]
    exported = transformers.BertModel.from_pretrained(str(tmp_path / "hf")).eval()
    original = transformers.BertModel.from_pretrained(minilm_dir).eval()
    for kind in ("single", "pair"):
        inputs = {
            k: torch.tensor(golden_minilm[f"{kind}_{k}"].astype(np.int64))
            for k in ("input_ids", "token_type_ids", "attention_mask")
        }
        with torch.no_grad():
            got, want = exported(**inputs), original(**inputs)
        for name in ("last_hidden_state", "pooler_output"):  # same weights, same maths
            np.testing.assert_array_equal(getattr(got, name).numpy(), getattr(want, name).numpy())
        real = golden_minilm[f"{kind}_attention_mask"].astype(bool)  # [B, T]
        np.testing.assert_allclose(
            got.last_hidden_state.numpy()[real],
            golden_minilm[f"{kind}_last_hidden_state"][real],
            atol=1e-5,
        )
        np.testing.assert_allclose(
            got.pooler_output.numpy(), golden_minilm[f"{kind}_pooler_output"], atol=1e-5
        )
