"""Every export answers under TF Serving's load path (C++ LoadSavedModel: restore op + init op
+ Session::Run, driven through TensorFlow's C API in a fresh process by serving_testbed/capi.py)
exactly as under the Python loader (tf.saved_model.load), and replays its warm-up requests.

A module saved the old way (a Keras model tracked by a tf.Module) fails that path: the test
harness sees the defect, and export.saved_model.save_module refuses such a module."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from serving_testbed.capi_process import run_capi
from tests.conftest import ROOT, TINY_VOCAB
from tests.export.tiny_dirs import (
    CLASS_LABELS,
    EXPORT_TASKS,
    hub_exports,
    task_exports,
    tiny_config,
)

# The C API runs are slow tests: the default suite checks the session path (restore op +
# Session.run) of every text task's export in test_saved_model's fresh process (export.verify).
C_API_SLOW = pytest.mark.slow

TEXTS = np.array(
    [
        b"the quick brown fox jumps over the lazy dog",
        b"hello world",
        b"",
        "caf\u00e9 r\u00e9sum\u00e9!".encode(),
        b"\xff\xfe bad \xc3",
        b"john lives in paris , france " * 6,
    ],
    dtype=object,
)


def encoded_inputs(batch=3, width=9, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, len(TINY_VOCAB), (batch, width)).astype(np.int32)
    mask = (np.arange(width)[None, :] < np.array([width, 4, 2])[:batch, None]).astype(np.int32)
    types = (np.arange(width)[None, :] >= 5).astype(np.int32) * mask
    return {"input_word_ids": ids * mask, "input_mask": mask, "input_type_ids": types}


def old_style_export(path):
    """The pre-fix save path: the Keras model is a tracked attribute of the tf.Module."""
    import tensorflow as tf

    from bert_tf import BertEncoder

    module = tf.Module()
    module.model = BertEncoder(tiny_config())
    spec = {k: tf.TensorSpec([None, None], tf.int32, name=k) for k in encoded_inputs()}
    fn = tf.function(
        lambda inputs: {"pooled_output": module.model(inputs, training=False)["pooled_output"]},
        input_signature=[spec],
    )
    tf.saved_model.save(module, path, signatures={"serving_default": fn})
    return module, {"serving_default": fn}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """{name: SavedModel dir}: every task's serving export, the Hub preprocessor and encoder,
    and a module saved the old way."""
    out = {name: v[2] for name, v in task_exports(tmp_path_factory).items()}
    _, _, out["preprocessor"], out["encoder"] = hub_exports(tmp_path_factory)
    out["old"] = str(tmp_path_factory.mktemp("old_save_path") / "1")
    old_style_export(out["old"])
    return out


def requests(name):
    """[(signature, inputs)] for the export `name`: every signature, odd inputs included."""
    if name == "preprocessor":
        return [("serving_default", {"text": TEXTS})]
    if name in ("encoder", "old"):
        return [("serving_default", encoded_inputs())]
    if name == "squad":
        main = {
            "question": np.array(
                [b"where does john live ?", b"", b"what ?", b"who " * 9, b"\xff?", b"capital ?"],
                dtype=object,
            ),
            "context": TEXTS,
        }
    elif name == "pair":
        main = {"text": TEXTS, "text_b": TEXTS[::-1].copy()}
    elif name == "choice":  # context [B], choices [B, C]; encoded inputs [B, C, T]
        main = {
            "context": TEXTS,
            "choices": np.stack([TEXTS[::-1], TEXTS, TEXTS[::2].repeat(2)], axis=1),
        }
        encoded = {k: np.stack([v, v[::-1], v], axis=1) for k, v in encoded_inputs().items()}
        return [
            ("serving_default", main),
            (
                "serving_default",
                {"context": np.zeros([0], dtype=object), "choices": np.zeros([0, 3], dtype=object)},
            ),
            ("serving_encoded", encoded),
        ]
    else:
        main = {"text": TEXTS}
    empty = {k: np.zeros([0], dtype=object) for k in main}
    return [
        ("serving_default", main),
        ("serving_default", empty),
        ("serving_encoded", encoded_inputs()),
    ]


def python_loader_outputs(path, reqs):
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    return [
        {
            k: v.numpy()
            for k, v in loaded.signatures[sig](
                **{n: tf.constant(x) for n, x in inputs.items()}
            ).items()
        }
        for sig, inputs in reqs
    ]


def max_abs_diff(a, b):
    """Max |a - b| of two outputs (0 for equal strings / ints; inf if they differ)."""
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    if a.dtype.kind in "OSU" or a.dtype.kind in "iub":
        return 0.0 if np.array_equal(a, b) else float("inf")
    return float(np.max(np.abs(a - b), initial=0.0))


@pytest.fixture(scope="module")
def capi_answers(exports):
    names = [n for n in exports if n != "old"]
    jobs = [(exports[n], sig, inputs) for n in names + ["old"] for sig, inputs in requests(n)]
    jobs += [(exports[n], "__warmup__", None) for n in EXPORT_TASKS]
    answers = iter(run_capi(jobs))
    per_export = {n: [next(answers) for _ in requests(n)] for n in names + ["old"]}
    per_export["warmup"] = {n: next(answers) for n in EXPORT_TASKS}
    return per_export


@C_API_SLOW
def test_every_signature_answers_the_same_under_the_c_api_loader(exports, capi_answers):
    report = {}
    for name in exports:
        if name == "old":
            continue
        reqs = requests(name)
        ref = python_loader_outputs(exports[name], reqs)
        for (sig, _), got, want in zip(reqs, capi_answers[name], ref):
            assert "__error__" not in got, f"{name}/{sig}: {got.get('__error__')}"
            assert set(got) == set(want), (name, sig)
            diff = max(max_abs_diff(got[k], want[k]) for k in want)
            key = f"{name}/{sig}"
            report[key] = max(report.get(key, 0.0), diff)
            assert diff <= 1e-5, f"{key}: max |C API - Python| = {diff}"
    print("\nmax |C API - tf.saved_model.load| per export/signature:")
    for key, diff in report.items():
        print(f"  {key:40s} {diff:.3g}")
    # the answers are real: labels / entities / spans of the right kind
    cls = capi_answers["classify"][0]
    assert set(cls["label"]) <= {s.encode() for s in CLASS_LABELS}
    np.testing.assert_allclose(cls["probabilities"].sum(-1), 1.0, atol=1e-5)
    assert capi_answers["regression"][0]["score"].shape == (len(TEXTS),)


@C_API_SLOW
def test_warmup_records_replay_through_the_c_api_loader(capi_answers):
    for name, answer in capi_answers["warmup"].items():
        assert answer == {"replayed": 2}, (name, answer)


@C_API_SLOW
def test_old_save_path_fails_under_the_c_api_loader_and_is_refused(capi_answers, tmp_path):
    """The defect this suite guards against: loads, then every call fails."""
    from export.saved_model import ExportError, save_module

    error = capi_answers["old"][0].get("__error__", "")
    assert "Could not find variable" in error, capi_answers["old"][0]
    module, signatures = old_style_export(str(tmp_path / "again"))
    with pytest.raises(ExportError, match="Keras variable .* is tracked"):
        save_module(module, str(tmp_path / "refused"), signatures)
    assert not os.path.exists(tmp_path / "refused")


def test_saved_model_cli_run_with_tf_text(tmp_path_factory, tmp_path):
    """The saved_model_cli one-liner documented in docs/serving.md runs an export."""
    classify = task_exports(tmp_path_factory)["classify"][2]  # not `exports`: no C API runs
    readme = open(os.path.join(ROOT, "docs", "serving.md"), encoding="utf-8").read()
    smcli = re.search(r"^SMCLI='(.+)'$", readme, re.M).group(1)
    texts = ["a great movie", "awful"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            smcli,
            "run",
            "--dir",
            classify,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--input_exprs",
            f"text={json.dumps(texts)}",
        ],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr.strip().splitlines()[-2:]
    ref = python_loader_outputs(
        classify,
        [("serving_default", {"text": np.array([t.encode() for t in texts], dtype=object)})],
    )[0]
    assert f"Result for output key label:\n{ref['label']}" in proc.stdout, proc.stdout
    assert f"Result for output key label_id:\n{ref['label_id']}" in proc.stdout
