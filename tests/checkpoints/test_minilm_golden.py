"""Real weights: all-MiniLM-L6-v2 loaded from its Hugging Face directory, from a Google TF1
checkpoint written from it, and from a bert-tf model dir, against the PyTorch reference
outputs in tests/golden/minilm_reference.npz."""

import os
import time

import numpy as np
import pytest

from bert_tf import load_encoder
from bert_tf.checkpoints import writers

pytestmark = pytest.mark.real_weights

TOLERANCE = 1e-4


def _inputs(golden, kind):
    return {
        "input_word_ids": golden[f"{kind}_input_ids"].astype("int32"),
        "input_mask": golden[f"{kind}_attention_mask"].astype("int32"),
        "input_type_ids": golden[f"{kind}_token_type_ids"].astype("int32"),
    }


def _run(encoder, golden):
    out = {}
    for kind in ("single", "pair"):
        result = encoder(_inputs(golden, kind))
        out[kind] = (np.asarray(result["sequence_output"]), np.asarray(result["pooled_output"]))
    return out


@pytest.fixture(scope="module")
def hf_encoder(minilm_dir):
    start = time.time()
    encoder = load_encoder(minilm_dir)
    print(f"\nMiniLM load_encoder (HF safetensors): {time.time() - start:.2f} s")
    return encoder


@pytest.fixture(scope="module")
def hf_outputs(hf_encoder, golden_minilm):
    return _run(hf_encoder, golden_minilm)


@pytest.mark.parametrize("kind", ["single", "pair"])
def test_hf_directory_matches_pytorch_reference(hf_outputs, golden_minilm, kind):
    seq, pooled = hf_outputs[kind]
    want_seq = golden_minilm[f"{kind}_last_hidden_state"]
    want_pooled = golden_minilm[f"{kind}_pooler_output"]
    real = golden_minilm[f"{kind}_attention_mask"].astype(bool)
    seq_diff = np.abs(seq - want_seq).max()
    real_diff = np.abs(seq - want_seq)[real].max()
    pooled_diff = np.abs(pooled - want_pooled).max()
    print(
        f"\n{kind}: last_hidden_state max |diff| {seq_diff:.3g} (real tokens {real_diff:.3g}), "
        f"pooler_output {pooled_diff:.3g}"
    )
    assert seq.shape == want_seq.shape and pooled.shape == want_pooled.shape
    assert seq_diff <= TOLERANCE
    assert pooled_diff <= TOLERANCE


def test_google_checkpoint_gives_identical_outputs(
    hf_encoder, hf_outputs, golden_minilm, minilm_dir, tmp_path
):
    import tensorflow as tf

    out = str(tmp_path / "google")
    writers.save_google(hf_encoder, out, os.path.join(minilm_dir, "vocab.txt"))
    reader = tf.train.load_checkpoint(os.path.join(out, "bert_model.ckpt"))
    shapes = reader.get_variable_to_shape_map()
    assert shapes["bert/encoder/layer_5/attention/self/query/kernel"] == [384, 384]
    assert shapes["bert/embeddings/word_embeddings"] == [30522, 384]
    encoder = load_encoder(out)
    for a, b in zip(hf_encoder.weights, encoder.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    got = _run(encoder, golden_minilm)
    for kind in ("single", "pair"):
        for a, b in zip(got[kind], hf_outputs[kind]):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_model_dir_gives_identical_outputs(hf_outputs, golden_minilm, minilm_dir, tmp_path):
    from bert_tf.checkpoints.convert import convert
    from bert_tf.model_dir import ModelDir

    out = str(tmp_path / "model")
    convert(minilm_dir, out, "bert_tf")
    values = ModelDir(out).read_config()
    assert values["task"]["type"] == "pretraining"
    assert values["preprocessing"]["lower_case"] is True
    encoder = load_encoder(out)
    got = _run(encoder, golden_minilm)
    for kind in ("single", "pair"):
        for a, b in zip(got[kind], hf_outputs[kind]):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
