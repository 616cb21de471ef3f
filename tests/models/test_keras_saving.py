"""`.keras` save/load gives identical outputs for every model (and keeps the MLM tie)."""

import os

import keras
import numpy as np
import pytest

from bert_tf import (
    BertClassifier,
    BertEncoder,
    BertMultipleChoice,
    BertPretrainer,
    BertSpanQA,
    BertTagger,
)


def _choice_inputs(config):
    """[B=2, C=3, T=7] inputs with padding in one choice."""
    x = _inputs(config)
    rng = np.random.default_rng(2)
    out = {k: np.stack([np.roll(v, i, axis=0) for i in range(3)], axis=1) for k, v in x.items()}
    out["input_word_ids"] = rng.integers(0, config.vocab_size, (2, 3, 7)).astype("int32")
    return out


def _inputs(config, with_positions=False):
    rng = np.random.default_rng(0)
    mask = np.ones((2, 7), "int32")
    mask[1, 4:] = 0
    x = {
        "input_word_ids": rng.integers(0, config.vocab_size, (2, 7)).astype("int32"),
        "input_mask": mask,
        "input_type_ids": (np.arange(7)[None] > 3).astype("int32").repeat(2, 0),
    }
    if with_positions:
        x["masked_lm_positions"] = np.array([[1, 3], [0, 2]], "int32")
    return x


MODELS = {
    "encoder": lambda c: BertEncoder(c),
    "pretrainer": lambda c: BertPretrainer(BertEncoder(c)),
    "classifier": lambda c: BertClassifier(BertEncoder(c), 3, dropout=0.2),
    "tagger": lambda c: BertTagger(BertEncoder(c), 5),
    "span_qa": lambda c: BertSpanQA(BertEncoder(c)),
    "multiple_choice": lambda c: BertMultipleChoice(BertEncoder(c), dropout=0.2),
}
MODELS_REGISTERED = (
    BertEncoder,
    BertPretrainer,
    BertClassifier,
    BertTagger,
    BertSpanQA,
    BertMultipleChoice,
)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_keras_file_round_trip(tiny_config, tmp_path, name):
    model = MODELS[name](tiny_config)
    rng = np.random.default_rng(1)
    for v in model.weights:
        v.assign(rng.normal(0, 0.2, v.shape).astype("float32"))
    x = (
        _choice_inputs(tiny_config)
        if name == "multiple_choice"
        else _inputs(tiny_config, with_positions=name == "pretrainer")
    )
    want = keras.tree.map_structure(np.asarray, model(x))
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    got = keras.tree.map_structure(np.asarray, loaded(x))
    assert keras.tree.flatten(got) and len(keras.tree.flatten(got)) == len(keras.tree.flatten(want))
    for a, b in zip(keras.tree.flatten(got), keras.tree.flatten(want)):
        np.testing.assert_array_equal(a, b)
    encoder = loaded if name == "encoder" else loaded.encoder
    assert encoder.config == tiny_config
    if name == "pretrainer":
        assert loaded.mlm_head.embedding_layer is encoder.word_embeddings
        assert len(loaded.weights) == len(model.weights)


def test_mixed_precision_policy_survives_saving(tiny_config, tmp_path):
    model = BertClassifier(BertEncoder(tiny_config, dtype="mixed_bfloat16"), 2)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.encoder.dtype_policy.name == "mixed_bfloat16"
    assert loaded.encoder.blocks[0].compute_dtype == "bfloat16"


def test_multiple_choice_config_round_trip_and_maths(tiny_config):
    """get_config -> from_config rebuilds the same model; the logits are, per choice, the
    learned vector . pooled_output + bias of that choice's sequence encoded on its own."""
    model = BertMultipleChoice(BertEncoder(tiny_config), dropout=0.3)
    config = model.get_config()
    assert config["dropout"] == 0.3
    clone = BertMultipleChoice.from_config(config)
    clone.set_weights(model.get_weights())
    x = _choice_inputs(tiny_config)
    logits = np.asarray(model(x, training=False)["logits"])
    assert logits.shape == (2, 3)
    np.testing.assert_array_equal(np.asarray(clone(x, training=False)["logits"]), logits)
    kernel, bias = (np.asarray(w) for w in model.head.dense.weights)
    for b in range(2):
        for c in range(3):
            one = {k: v[b, c][None] for k, v in x.items()}  # [1, T]
            pooled = np.asarray(model.encoder(one, training=False)["pooled_output"])[0]
            np.testing.assert_allclose(logits[b, c], pooled @ kernel[:, 0] + bias[0], atol=1e-5)
    # any number of choices: C = 2 gives the first two scores of C = 3
    two = {k: v[:, :2] for k, v in x.items()}
    np.testing.assert_allclose(
        np.asarray(model(two, training=False)["logits"]), logits[:, :2], atol=1e-5
    )


def test_keras_file_saved_by_version_0_1_still_loads():
    """A .keras file saved before the models' base class was renamed (EncoderTask ->
    EncoderHeadModel): saved files name only the registered classes, which keep their names."""
    from bert_tf.models.head_model import EncoderHeadModel

    path = os.path.join(
        os.path.dirname(__file__), "..", "fixtures", "keras_saved", "classifier_v0.1.keras"
    )
    for cls in MODELS_REGISTERED:
        assert keras.saving.get_registered_name(cls) == f"bert_tf>{cls.__name__}"
    loaded = keras.saving.load_model(path)
    assert type(loaded) is BertClassifier and isinstance(loaded, EncoderHeadModel)
    assert (loaded.num_classes, loaded.dropout, loaded.encoder.config.hidden_size) == (3, 0.2, 16)
    x = {
        "input_word_ids": np.array([[2, 10, 20, 30, 3], [2, 40, 3, 0, 0]], "int32"),
        "input_mask": np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], "int32"),
        "input_type_ids": np.zeros((2, 5), "int32"),
    }
    want = [
        [-0.5726098, -0.12279268, 0.23474485],  # the logits when it was saved
        [-0.5728714, -0.13458806, 0.23247078],
    ]
    np.testing.assert_allclose(np.asarray(loaded(x)["logits"]), want, rtol=1e-5, atol=1e-6)
