"""Multiple-choice serving SavedModel: context [B] + choices [B, C] -> probabilities [B, C],
choice [B], answered in a fresh tensorflow + tensorflow_text process and compared with the
Keras model on independently packed inputs."""

import numpy as np
import pytest

from tests.conftest import TINY_VOCAB
from tests.export.test_saved_model import (
    SEQ,
    _check_ops,
    pack_reference,
    tiny_config,
    tokenize,
    warmup_as_requests,
)
from tests.export.tiny_dirs import make_task_dir

CONTEXTS = ["john lives in paris , france", "the quick brown fox " * 6, "", b"\xff\xfe bad"]
CHOICES = [
    ["he loves the capital of france", "a lazy dog", "hello", ""],
    ["jumps over the lazy dog", "is great", "who ? " * 20, "paris"],
    ["good", "bad", "movie", "world"],
    ["caf\u00e9 r\u00e9sum\u00e9", b"\xc3", "london", "what"],
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from export.saved_model import export_serving
    from export.verify import run_fresh

    root = tmp_path_factory.mktemp("mc")
    model_dir = str(root / "mc_dir")
    model = make_task_dir(
        model_dir,
        tiny_config(),
        TINY_VOCAB,
        {"type": "multiple_choice", "num_choices": 4},
        seq_length=SEQ,
    )
    path = export_serving(model_dir, str(root / "serving" / "mc"))
    two = [c[:2] for c in CHOICES[:2]]
    requests = [
        {"inputs": {"context": CONTEXTS, "choices": CHOICES}},
        {"inputs": {"context": CONTEXTS[:2], "choices": two}},
        {"inputs": {"context": [], "choices": []}, "empty_shapes": {"choices": [0, 4]}},
        {"inputs": {"context": CONTEXTS[:1], "choices": CHOICES[:2]}},
    ] + warmup_as_requests(path)
    return model_dir, model, path, run_fresh(path, requests)


def keras_probabilities(model_dir, model, contexts, choices):
    """[B, C] softmax of the Keras model on numpy-packed [CLS] context [SEP] choice [SEP]."""
    b, c = len(choices), len(choices[0])
    ctx = tokenize(model_dir, contexts)[0]
    chs = tokenize(model_dir, [x for row in choices for x in row])[0]
    flat = pack_reference(model_dir, [(ctx[i // c], chs[i]) for i in range(b * c)])
    inputs = {k: v.reshape(b, c, -1) for k, v in flat.items()}  # [B, C, T]
    logits = np.asarray(model(inputs, training=False)["logits"])
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True), inputs


def test_fresh_process_matches_keras(exported):
    model_dir, model, path, (report, outs) = exported
    _check_ops(report)
    assert {"serving_default", "serving_encoded"} <= set(report["signatures"])
    want, _ = keras_probabilities(model_dir, model, CONTEXTS, CHOICES)
    np.testing.assert_allclose(outs[0]["probabilities"], want, atol=1e-5)
    assert outs[0]["choice"].dtype == np.int32
    np.testing.assert_array_equal(outs[0]["choice"], want.argmax(-1))
    assert len(set(outs[0]["choice"].tolist())) > 1 or want.std() > 0  # not a constant
    # C = 2 in its own batch (padded to its own longest): the same as the Keras model on C = 2
    want2, _ = keras_probabilities(model_dir, model, CONTEXTS[:2], [c[:2] for c in CHOICES[:2]])
    np.testing.assert_allclose(outs[1]["probabilities"], want2, atol=1e-5)
    assert outs[2]["probabilities"].shape == (0, 4) and outs[2]["choice"].shape == (0,)
    assert "__error__" in outs[3]  # mismatched B: an error, not a crash
    # the warm-up requests (batches of 1 and 2, two choices) run cleanly
    assert [o["probabilities"].shape for o in outs[4:]] == [(1, 2), (2, 2)]


def test_encoded_signature_takes_b_c_t(exported):
    """serving_encoded on [B, C, T] equals the Keras logits (in-process, loaded SavedModel)."""
    import tensorflow as tf

    model_dir, model, path, _ = exported
    _, inputs = keras_probabilities(model_dir, model, CONTEXTS[:2], CHOICES[:2])
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_encoded"](**{k: tf.constant(v) for k, v in inputs.items()})
    np.testing.assert_allclose(
        out["logits"].numpy(), np.asarray(model(inputs, training=False)["logits"]), atol=1e-5
    )
    assert out["probabilities"].shape == (2, 4)


def test_warmup_requests_have_b_c_choices(exported):
    from export.serving.warmup import read_warmup_requests

    requests = read_warmup_requests(exported[2])
    dims = [[d.size for d in r.inputs["choices"].tensor_shape.dim] for r in requests]
    assert dims == [[1, 2], [2, 2]]
