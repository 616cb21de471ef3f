"""TF Hub-style preprocessor + encoder export of a pre-trained model dir."""

import os

import numpy as np
import pytest

from tests.export.tiny_dirs import hub_exports

TEXTS = ["hello world", "the quick brown fox jumps over the lazy dog " * 3, "", b"\xffunaffable"]


@pytest.fixture(scope="module")
def hub_export(tmp_path_factory):
    """(model dir, BertPretrainer, preprocessor dir, encoder dir), shared per session."""
    return hub_exports(tmp_path_factory)


@pytest.mark.slow  # a fresh tensorflow process (~20-40 s on 2 shared cores)
def test_hub_export_fresh_process_matches_keras(hub_export):
    import bert_tf
    from export.verify import run_fresh_many

    model_dir, model, pre_dir, enc_dir = hub_export
    pre = bert_tf.load_preprocessor(model_dir)
    import tensorflow as tf

    inputs = {
        k: v.numpy()
        for k, v in pre(
            tf.constant([t if isinstance(t, bytes) else t.encode() for t in TEXTS])
        ).items()
    }
    res = run_fresh_many(
        {
            "pre": (pre_dir, [{"inputs": {"text": TEXTS}}, {"inputs": {"text": []}}]),
            "enc": (enc_dir, [{"inputs": inputs}]),
        }
    )
    report, outs = res["pre"]
    assert not report["unknown_ops"] and not report["project_modules"]
    for k in inputs:
        np.testing.assert_array_equal(outs[0][k], inputs[k])
    assert outs[1]["input_word_ids"].shape == (0, 16)
    report, outs = res["enc"]
    assert not report["unknown_ops"]
    ref = model.encoder(inputs, training=False)
    np.testing.assert_allclose(outs[0]["pooled_output"], ref["pooled_output"], atol=1e-5)
    np.testing.assert_allclose(outs[0]["sequence_output"], ref["sequence_output"], atol=1e-5)
    np.testing.assert_allclose(
        outs[0]["encoder_outputs"],
        np.stack([np.asarray(x) for x in ref["encoder_outputs"]]),
        atol=1e-5,
    )


def test_tokenize_and_bert_pack_inputs_like_tf_hub(hub_export):
    import tensorflow as tf

    model_dir, model, pre_dir, enc_dir = hub_export
    pre = tf.saved_model.load(pre_dir)
    enc = tf.saved_model.load(enc_dir)
    vocab = [t for t in open(os.path.join(pre_dir, "assets", "vocab.txt")).read().split("\n")]
    a = pre.tokenize(tf.constant(["unaffable fox", "hello"]))  # [B, (words), (pieces)]
    assert a.ragged_rank == 2
    assert [[vocab[i] for i in w] for w in a[0].to_list()] == [["un", "##aff", "##able"], ["fox"]]
    b = pre.tokenize(tf.constant(["the lazy dog", "world " * 40]))
    packed = pre.bert_pack_inputs([a, b], seq_length=32)
    ids = packed["input_word_ids"].numpy()
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    row0 = (
        [cls]
        + [vocab.index(t) for t in ["un", "##aff", "##able", "fox"]]
        + [sep]
        + [vocab.index(t) for t in ["the", "lazy", "dog"]]
        + [sep]
    )
    assert (
        ids.shape == (2, 32) and list(ids[0, : len(row0)]) == row0 and not ids[0, len(row0) :].any()
    )
    np.testing.assert_array_equal(packed["input_type_ids"][0, : len(row0)], [0] * 6 + [1] * 4)
    assert packed["input_mask"].numpy()[1].sum() == 32  # truncated pair fills all
    single = pre.bert_pack_inputs([a.merge_dims(1, 2)])  # default seq_length 16
    assert single["input_word_ids"].shape == (2, 16)
    out = enc(packed)
    assert len(out["encoder_outputs"]) == 2
    ref = model.encoder({k: v.numpy() for k, v in packed.items()}, training=False)
    np.testing.assert_allclose(out["pooled_output"], ref["pooled_output"], atol=1e-5)
    assert bool(pre.do_lower_case.numpy()) is True


def test_hub_export_never_overwrites(hub_export, tmp_path):
    from export.hub import export_hub

    model_dir = hub_export[0]
    os.makedirs(tmp_path / "encoder")
    with pytest.raises(FileExistsError, match="already exists"):
        export_hub(model_dir, str(tmp_path))
    assert not os.path.exists(tmp_path / "preprocessor")
