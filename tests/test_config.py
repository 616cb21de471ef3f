"""BertConfig: presets, JSON round-trip, validation, HF/Google config import."""

import json

import pytest

from bert_tf import BertConfig

PRESETS = {
    "tiny": (2, 128, 2),
    "mini": (4, 256, 4),
    "small": (4, 512, 8),
    "medium": (8, 512, 8),
    "base": (12, 768, 12),
    "large": (24, 1024, 16),
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets(name):
    config = BertConfig.preset(name)
    layers, hidden, heads = PRESETS[name]
    assert (config.num_layers, config.hidden_size, config.num_heads) == (layers, hidden, heads)
    assert config.intermediate_size == 4 * hidden
    assert config.head_size == 64
    assert config.vocab_size == 30522 and config.max_position_embeddings == 512
    assert config.hidden_act == "gelu" and config.layer_norm_eps == 1e-12
    assert config.initializer_range == 0.02 and config.type_vocab_size == 2


def test_preset_overrides_and_names():
    config = BertConfig.preset("base", vocab_size=119547, hidden_dropout=0.0)
    assert config.vocab_size == 119547 and config.hidden_dropout == 0.0
    assert config.num_layers == 12
    assert set(BertConfig.preset_names()) == set(PRESETS)
    with pytest.raises(ValueError, match="Unknown BERT preset 'huge'"):
        BertConfig.preset("huge")


def test_json_round_trip(tmp_path):
    config = BertConfig.preset(
        "mini", hidden_act="relu", layer_norm_eps=1e-6, attention_dropout=0.0
    )
    assert BertConfig.from_json(config.to_json()) == config
    path = tmp_path / "config.json"
    config.save(str(path))
    assert BertConfig.load(str(path)) == config
    assert json.loads(path.read_text())["num_layers"] == 4


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("hidden_size", 100, "not divisible by num_heads=12"),
        ("num_layers", 0, "num_layers: expected a positive int, got 0"),
        ("vocab_size", 3.5, "vocab_size: expected a positive int"),
        ("num_heads", True, "num_heads: expected a positive int"),
        ("hidden_act", "swish", "hidden_act: expected one of"),
        ("hidden_dropout", 1.0, r"hidden_dropout: expected a value in \[0, 1\)"),
        ("attention_dropout", -0.1, "attention_dropout"),
    ],
)
def test_validation(field, value, message):
    with pytest.raises(ValueError, match=message):
        BertConfig(**{field: value})


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        BertConfig.load(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        BertConfig.load(str(bad))
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['hidden'\]"):
        BertConfig.from_dict({"hidden": 3})


def test_from_hf_and_google_dicts():
    hf = {
        "vocab_size": 30522,
        "hidden_size": 384,
        "num_hidden_layers": 6,
        "num_attention_heads": 12,
        "intermediate_size": 1536,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        "initializer_range": 0.02,
        "model_type": "bert",
    }
    config = BertConfig.from_hf_dict(hf)
    assert (config.num_layers, config.hidden_size, config.num_heads) == (6, 384, 12)
    assert (
        BertConfig.from_hf_dict({**hf, "hidden_act": "gelu_new"}).hidden_act == "gelu_approximate"
    )
    google = {k: v for k, v in hf.items() if k not in ("layer_norm_eps", "model_type")}
    assert BertConfig.from_google_dict(google).layer_norm_eps == 1e-12
