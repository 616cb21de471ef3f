"""Tiny-model tests of the checkpoint formats: exact HF / Google layouts, strict loading with
one-line errors, model-directory loading for every task type."""

import json
import logging
import os

import numpy as np
import pytest

from bert_tf import (
    BertClassifier,
    BertEncoder,
    BertPretrainer,
    BertSpanQA,
    BertTagger,
    load_encoder,
    load_pretrainer,
    load_task_model,
)
from bert_tf.checkpoints import writers
from bert_tf.checkpoints.loader import assign_from_source
from bert_tf.checkpoints.sources import (
    CheckpointError,
    infer_lower_case,
    read_encoder_config,
    read_source,
)
from bert_tf.model_dir.task_model import write_model_dir


def randomize(model, seed=0):
    """Non-trivial values everywhere (random init has zero biases and unit LayerNorm gammas,
    which would hide a swapped or transposed tensor)."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(0.0, 0.3, v.shape).astype("float32"))
    return model


def inputs(config, batch=2, length=7, seed=1):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, length), "int32")
    mask[0, 4:] = 0
    return {
        "input_word_ids": rng.integers(0, config.vocab_size, (batch, length)).astype("int32"),
        "input_mask": mask,
        "input_type_ids": (np.arange(length)[None] >= 3).astype("int32").repeat(batch, 0),
    }


def assert_same_weights(a, b):
    assert len(a.weights) == len(b.weights)
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.path)


@pytest.fixture
def pretrainer(tiny_config):
    return randomize(BertPretrainer(BertEncoder(tiny_config)))


def _read_safetensors(directory):
    from safetensors.numpy import load_file

    return load_file(os.path.join(directory, "model.safetensors"))


def _write_safetensors(directory, tensors):
    from safetensors.numpy import save_file

    save_file(tensors, os.path.join(directory, "model.safetensors"))


def _one_line(error):
    text = str(error.value)
    assert "\n" not in text, text
    return text


# ---- layouts ----------------------------------------------------------------------------
def test_hf_layout_of_a_pretrainer(pretrainer, tiny_vocab_file, tmp_path):
    out = str(tmp_path / "hf")
    writers.save_hf(pretrainer, out, tiny_vocab_file, lower_case=True)
    t = _read_safetensors(out)
    enc = pretrainer.encoder
    h = enc.config.hidden_size
    att = enc.blocks[1].attention
    qkv = att.qkv_kernel.numpy()
    # torch Linear weights are [out, in]: our [in, out] kernels transposed.
    np.testing.assert_array_equal(
        t["bert.encoder.layer.1.attention.self.query.weight"], qkv[:, 0].reshape(h, h).T
    )
    np.testing.assert_array_equal(
        t["bert.encoder.layer.1.attention.self.value.weight"], qkv[:, 2].reshape(h, h).T
    )
    np.testing.assert_array_equal(
        t["bert.encoder.layer.1.attention.self.key.bias"], att.qkv_bias.numpy()[1].reshape(h)
    )
    np.testing.assert_array_equal(
        t["bert.encoder.layer.1.attention.output.dense.weight"],
        att.output_kernel.numpy().reshape(h, h).T,
    )
    np.testing.assert_array_equal(
        t["bert.encoder.layer.0.intermediate.dense.weight"],
        enc.blocks[0].intermediate.kernel.numpy().T,
    )
    np.testing.assert_array_equal(
        t["bert.embeddings.LayerNorm.weight"], enc.embeddings.layer_norm.gamma.numpy()
    )
    np.testing.assert_array_equal(t["bert.pooler.dense.weight"], enc.pooler.kernel.numpy().T)
    np.testing.assert_array_equal(
        t["cls.seq_relationship.weight"], pretrainer.nsp_head.dense.kernel.numpy().T
    )  # [2, H]
    np.testing.assert_array_equal(
        t["cls.predictions.bias"], pretrainer.mlm_head.output_bias.numpy()
    )
    assert "cls.predictions.decoder.weight" not in t  # tied to the word embeddings
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["num_hidden_layers"] == 2 and config["hidden_size"] == 32
    assert json.load(open(os.path.join(out, "tokenizer_config.json")))["do_lower_case"] is True
    assert os.path.isfile(os.path.join(out, "vocab.txt"))

    loaded = load_pretrainer(out)
    assert_same_weights(pretrainer, loaded)


def test_hf_encoder_uses_bertmodel_names(tiny_config, tmp_path):
    encoder = randomize(BertEncoder(tiny_config))
    writers.save_hf(encoder, str(tmp_path / "hf"))
    names = set(_read_safetensors(str(tmp_path / "hf")))
    assert "embeddings.word_embeddings.weight" in names
    assert not any(n.startswith(("bert.", "cls.")) for n in names)
    assert len(names) == 5 + 16 * tiny_config.num_layers + 2
    loaded = load_encoder(str(tmp_path / "hf"))
    assert_same_weights(encoder, loaded)
    x = inputs(tiny_config)
    np.testing.assert_array_equal(encoder(x)["sequence_output"], loaded(x)["sequence_output"])


def test_google_layout_of_a_pretrainer(pretrainer, tiny_vocab_file, tmp_path):
    import tensorflow as tf

    out = str(tmp_path / "google")
    writers.save_google(pretrainer, out, tiny_vocab_file)
    assert {"bert_config.json", "vocab.txt", "bert_model.ckpt.index"} <= set(os.listdir(out))
    reader = tf.train.load_checkpoint(os.path.join(out, "bert_model.ckpt"))
    shapes = reader.get_variable_to_shape_map()
    enc = pretrainer.encoder
    h, v = enc.config.hidden_size, enc.config.vocab_size
    assert shapes["bert/embeddings/word_embeddings"] == [v, h]
    assert shapes["bert/encoder/layer_0/attention/self/query/kernel"] == [h, h]
    assert shapes["bert/encoder/layer_1/output/LayerNorm/gamma"] == [h]
    assert shapes["cls/predictions/output_bias"] == [v]
    assert shapes["cls/seq_relationship/output_weights"] == [2, h]
    np.testing.assert_array_equal(
        reader.get_tensor("cls/seq_relationship/output_weights"),
        pretrainer.nsp_head.dense.kernel.numpy().T,
    )
    np.testing.assert_array_equal(
        reader.get_tensor("bert/encoder/layer_0/attention/self/key/kernel"),
        enc.blocks[0].attention.qkv_kernel.numpy()[:, 1].reshape(h, h),
    )
    np.testing.assert_array_equal(
        reader.get_tensor("cls/predictions/transform/LayerNorm/beta"),
        pretrainer.mlm_head.layer_norm.beta.numpy(),
    )
    assert len(shapes) == 5 + 16 * enc.config.num_layers + 2 + 5 + 2
    loaded = load_pretrainer(out)
    assert_same_weights(pretrainer, loaded)
    # A checkpoint prefix works as well as the directory.
    assert_same_weights(enc, load_encoder(os.path.join(out, "bert_model.ckpt")))


# ---- strictness -------------------------------------------------------------------------
def test_config_shape_mismatch_names_the_variable(tiny_config, tmp_path):
    out = str(tmp_path / "hf")
    writers.save_hf(randomize(BertEncoder(tiny_config)), out)
    config = json.load(open(os.path.join(out, "config.json")))
    config["intermediate_size"] = 128
    json.dump(config, open(os.path.join(out, "config.json"), "w"))
    with pytest.raises(CheckpointError) as error:
        load_encoder(out)
    text = _one_line(error)
    assert "'encoder.layer.0.intermediate.dense.weight'" in text
    assert "expected shape [128, 32], got [64, 32]" in text
    assert "transformer_0/intermediate/kernel" in text


def test_google_shape_mismatch_names_the_variable(tiny_config, tmp_path):
    out = str(tmp_path / "google")
    writers.save_google(randomize(BertEncoder(tiny_config)), out)
    config = json.load(open(os.path.join(out, "bert_config.json")))
    config["max_position_embeddings"] = 128
    json.dump(config, open(os.path.join(out, "bert_config.json"), "w"))
    with pytest.raises(CheckpointError) as error:
        load_encoder(out)
    text = _one_line(error)
    assert "'bert/embeddings/position_embeddings'" in text
    assert "expected shape [128, 32], got [64, 32]" in text


def test_missing_tensor_is_named(tiny_config, tmp_path):
    out = str(tmp_path / "hf")
    writers.save_hf(randomize(BertEncoder(tiny_config)), out)
    tensors = _read_safetensors(out)
    del tensors["encoder.layer.1.attention.self.key.bias"]
    _write_safetensors(out, tensors)
    with pytest.raises(CheckpointError) as error:
        load_encoder(out)
    text = _one_line(error)
    assert "no tensor 'encoder.layer.1.attention.self.key.bias'" in text
    assert "transformer_1/attention/qkv_bias" in text


def test_failed_load_leaves_the_model_untouched(tiny_config, tmp_path):
    out = str(tmp_path / "hf")
    writers.save_hf(randomize(BertEncoder(tiny_config), seed=1), out)
    tensors = _read_safetensors(out)
    del tensors["pooler.dense.bias"]  # the very last tensor: everything before it is fine
    _write_safetensors(out, tensors)
    target = randomize(BertEncoder(tiny_config), seed=2)
    before = [v.numpy().copy() for v in target.weights]
    with pytest.raises(CheckpointError, match="pooler.dense.bias"):
        assign_from_source(target, read_source(out))
    for v, old in zip(target.weights, before):
        np.testing.assert_array_equal(v.numpy(), old)


def test_unused_tensors_are_an_error(tiny_config, tmp_path):
    out = str(tmp_path / "hf")
    writers.save_hf(randomize(BertEncoder(tiny_config)), out)
    tensors = _read_safetensors(out)
    tensors["embeddings.position_ids"] = np.arange(64)[None].astype("int64")
    _write_safetensors(out, tensors)
    load_encoder(out)  # a position_ids buffer is not a weight: fine
    tensors["classifier.weight"] = np.zeros((3, 32), "float32")
    _write_safetensors(out, tensors)
    with pytest.raises(CheckpointError) as error:
        load_encoder(out)
    text = _one_line(error)
    assert text == (
        f"{out}/model.safetensors: 1 tensor(s) not used by the model: "
        "classifier.weight (loading is strict: a checkpoint must fit its config "
        "exactly)"
    )


@pytest.mark.parametrize("fmt", ["hf", "google"])
def test_config_with_fewer_layers_than_the_weights_fails(tiny_config, tmp_path, fmt):
    assert tiny_config.num_layers == 2
    out = str(tmp_path / fmt)
    save, config_file = (
        (writers.save_hf, "config.json")
        if fmt == "hf"
        else (writers.save_google, "bert_config.json")
    )
    save(randomize(BertEncoder(tiny_config)), out)
    config = json.load(open(os.path.join(out, config_file)))
    config["num_hidden_layers"] = 1
    json.dump(config, open(os.path.join(out, config_file), "w"))
    with pytest.raises(CheckpointError) as error:
        load_encoder(out)
    text = _one_line(error)
    assert (
        "16 tensor(s) not used by the model (the checkpoint has 2 layers, its config "
        "num_hidden_layers=1)" in text
    )
    assert ("encoder.layer.1." if fmt == "hf" else "bert/encoder/layer_1/") in text


def test_encoder_from_a_full_pretraining_checkpoint_skips_the_heads(pretrainer, tmp_path):
    """The MLM/NSP heads of a complete checkpoint are known weights the encoder has no place
    for: load_encoder skips them; load_pretrainer uses every tensor."""
    for save, name in ((writers.save_hf, "hf"), (writers.save_google, "google")):
        out = str(tmp_path / name)
        save(pretrainer, out)
        assert_same_weights(pretrainer.encoder, load_encoder(out))
        assert_same_weights(pretrainer, load_pretrainer(out))


def test_untied_mlm_decoder_fails_only_where_the_heads_are_loaded(pretrainer, tmp_path):
    out = str(tmp_path / "hf")
    writers.save_hf(pretrainer, out)
    tensors = _read_safetensors(out)
    tensors["cls.predictions.decoder.weight"] = (
        tensors["bert.embeddings.word_embeddings.weight"] + 1.0
    )
    _write_safetensors(out, tensors)
    assert_same_weights(pretrainer.encoder, load_encoder(out))
    with pytest.raises(CheckpointError) as error:
        load_pretrainer(out)
    assert _one_line(error) == (
        f"{out}/model.safetensors: 1 tensor(s) not used by the model: "
        "cls.predictions.decoder.weight (not tied to the word embeddings) (loading is strict: "
        "a checkpoint must fit its config exactly)"
    )


def test_partial_head_fails(pretrainer, tmp_path):
    out = str(tmp_path / "hf")
    writers.save_hf(pretrainer, out)
    tensors = _read_safetensors(out)
    del tensors["cls.predictions.transform.dense.bias"]
    _write_safetensors(out, tensors)
    with pytest.raises(CheckpointError) as error:
        load_pretrainer(out)
    assert "cls.predictions.transform.dense.bias" in _one_line(error)


def test_pretrainer_from_encoder_only_checkpoint_warns(tiny_config, tmp_path, caplog):
    encoder = randomize(BertEncoder(tiny_config))
    writers.save_hf(encoder, str(tmp_path / "hf"))
    with caplog.at_level(logging.WARNING, logger="bert_tf.checkpoints"):
        model = load_pretrainer(str(tmp_path / "hf"))
    assert "no masked-LM head weights" in caplog.text
    assert "no next-sentence head weights" in caplog.text
    assert_same_weights(encoder, model.encoder)


def test_encoder_config_without_reading_tensors(pretrainer, tiny_config, tiny_vocab_file, tmp_path):
    writers.save_hf(pretrainer, str(tmp_path / "hf"))
    writers.save_google(pretrainer, str(tmp_path / "google"))
    write_model_dir(str(tmp_path / "dir"), pretrainer, tiny_vocab_file, True)
    for path in ("hf", "google", "google/bert_model.ckpt", "dir"):
        got = read_encoder_config(str(tmp_path / path))
        assert (got.num_layers, got.hidden_size, got.max_position_embeddings) == (
            tiny_config.num_layers,
            tiny_config.hidden_size,
            tiny_config.max_position_embeddings,
        ), path
    (tmp_path / "file").write_text("x")
    with pytest.raises(
        CheckpointError,
        match=r"file: is a file, not a checkpoint directory "
        r"\(expected a bert-tf model dir",
    ):
        read_encoder_config(str(tmp_path / "file"))


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_encoder(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a BERT checkpoint directory"):
        load_encoder(str(tmp_path / "empty"))


def test_lower_case_inference(tmp_path, tiny_vocab_file):
    assert infer_lower_case(tiny_vocab_file) is True
    cased = tmp_path / "cased.txt"
    cased.write_text(
        "\n".join(
            ["[PAD]", "[UNK]"] + [f"Word{i}" for i in range(50)] + [f"w{i}" for i in range(50)]
        )
        + "\n"
    )
    assert infer_lower_case(str(cased)) is False
    tokenizer_config = tmp_path / "tokenizer_config.json"
    tokenizer_config.write_text('{"do_lower_case": false}')
    assert infer_lower_case(tiny_vocab_file, str(tokenizer_config)) is False


# ---- bert-tf model directories ----------------------------------------------------------
TASKS = [
    ({"type": "pretraining"}, BertPretrainer),
    ({"type": "classify", "label_names": ["neg", "neu", "pos"]}, BertClassifier),
    ({"type": "classify", "num_classes": 1}, BertClassifier),
    ({"type": "tag", "label_names": ["O", "B-PER", "I-PER"]}, BertTagger),
    ({"type": "squad"}, BertSpanQA),
]


def _task_model(config, task):
    encoder = BertEncoder(config)
    kind = task["type"]
    if kind == "pretraining":
        return BertPretrainer(encoder)
    if kind == "classify":
        return BertClassifier(encoder, len(task.get("label_names", [])) or task["num_classes"])
    if kind == "tag":
        return BertTagger(encoder, len(task["label_names"]))
    return BertSpanQA(encoder)


@pytest.mark.parametrize("task,cls", TASKS, ids=lambda x: str(x)[:30])
def test_model_dir_round_trip(tiny_config, tiny_vocab_file, tmp_path, task, cls):
    model = randomize(_task_model(tiny_config, task))
    out = str(tmp_path / "model")
    write_model_dir(out, model, tiny_vocab_file, True, task=task)
    loaded = load_task_model(out)
    assert type(loaded) is cls
    assert_same_weights(model, loaded)
    x = inputs(tiny_config)
    if cls is BertPretrainer:
        x["masked_lm_positions"] = np.array([[1, 2], [0, 5]], "int32")
    for key, value in model(x).items():
        np.testing.assert_allclose(np.asarray(loaded(x)[key]), np.asarray(value), atol=1e-6)
    assert_same_weights(model.encoder, load_encoder(out))


def test_model_dir_from_training_checkpoint(tiny_config, tiny_vocab_file, tmp_path):
    import keras
    import tensorflow as tf

    task = {"type": "classify", "label_names": ["a", "b"]}
    model = randomize(_task_model(tiny_config, task))
    out = tmp_path / "model"
    write_model_dir(str(out), model, tiny_vocab_file, True, task=task)
    os.remove(out / "model.weights.h5")
    checkpoint = tf.train.Checkpoint(
        model=model, optimizer=keras.optimizers.Adam(), step=tf.Variable(7, dtype=tf.int64)
    )
    checkpoint.save(str(out / "checkpoints" / "ckpt"))
    randomize(model, seed=5)
    checkpoint.save(str(out / "checkpoints" / "ckpt"))  # the latest one must win
    loaded = load_task_model(str(out))
    assert_same_weights(model, loaded)


def test_model_dir_weights_that_do_not_fit(tiny_config, tiny_vocab_file, tmp_path):
    task = {"type": "classify", "label_names": ["a", "b"]}
    out = str(tmp_path / "model")
    write_model_dir(
        out, randomize(_task_model(tiny_config, task)), tiny_vocab_file, True, task=task
    )
    config = json.load(open(os.path.join(out, "config.json")))
    config["task"]["label_names"] = ["a", "b", "c"]
    json.dump(config, open(os.path.join(out, "config.json"), "w"))
    with pytest.raises(CheckpointError) as error:
        load_task_model(out)
    assert "model.weights.h5: does not fit" in _one_line(error)


def test_model_dir_config_with_fewer_layers_than_the_weights(
    tiny_config, tiny_vocab_file, tmp_path
):
    out = str(tmp_path / "dir")
    write_model_dir(out, randomize(BertPretrainer(BertEncoder(tiny_config))), tiny_vocab_file, True)
    config = json.load(open(os.path.join(out, "config.json")))
    config["encoder"]["num_layers"] = 1
    json.dump(config, open(os.path.join(out, "config.json"), "w"))
    with pytest.raises(CheckpointError) as error:
        load_encoder(out)
    assert _one_line(error) == (
        f"{out}/model.weights.h5: holds 38 weight tensors but the model of {out}/config.json "
        "has 26 (e.g. a config with fewer layers than the weights); loading is strict"
    )


def test_model_dir_without_weights(tiny_config, tiny_vocab_file, tmp_path):
    out = tmp_path / "model"
    write_model_dir(str(out), BertPretrainer(BertEncoder(tiny_config)), tiny_vocab_file, True)
    os.remove(out / "model.weights.h5")
    with pytest.raises(CheckpointError, match="no model.weights.h5 and no checkpoint"):
        load_encoder(str(out))


def test_task_model_needs_a_model_dir(tiny_config, tmp_path):
    writers.save_hf(BertEncoder(tiny_config), str(tmp_path / "hf"))
    with pytest.raises(CheckpointError, match="needs a bert-tf model directory"):
        load_task_model(str(tmp_path / "hf"))


def test_load_with_mixed_precision(tiny_config, tmp_path):
    encoder = randomize(BertEncoder(tiny_config))
    writers.save_hf(encoder, str(tmp_path / "hf"))
    mixed = load_encoder(str(tmp_path / "hf"), dtype="mixed_bfloat16")
    assert mixed.dtype_policy.compute_dtype == "bfloat16"
    assert_same_weights(encoder, mixed)  # variables stay float32
