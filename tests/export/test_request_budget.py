"""The request budget of the serving exports (export/serving_budget.py), on the shared tiny
exports (tiny_dirs.task_exports: seq_length 16, the default budget) as TF Serving loads them:

  * in every task's saved serving_default graph, the tokenizer's first op depends on the byte
    check and the encoder's matmuls on the token check (graph inspection of saved_model.pb);
  * through the session loader (TF Serving's path; a version's first call costs seconds of
    graph optimization, so tag and multiple choice only): a request over the byte budget is
    INVALID_ARGUMENT without being read, a 10,000-word text is answered in one request (the old
    cap of 64 windows refused it at seq 16), 60,000 choices are refused before tokenization;
  * the deprecated --max_windows_per_request maps to windows x seq_length tokens.

How fast a 50 MB request is refused (time, memory) is measured by benchmarks/serving_budget.py,
not asserted here."""

import json
import os

import numpy as np
import pytest

from tests.conftest import TINY_VOCAB
from tests.export.tiny_dirs import task_exports

SEQ = 16
DEFAULT_BYTES, DEFAULT_TOKENS = 262_144, 65_536
# the text inputs of each shared export, and where the big text goes
TEXT_INPUTS = {
    "classify": ("text",),
    "pair": ("text", "text_b"),
    "regression": ("text",),
    "tag": ("text",),
    "squad": ("question", "context"),
    "choice": ("context", "choices"),
}


def _graph_functions(saved_model_dir):
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    return proto.meta_graphs[0].graph_def.library.function


def _ancestors(function, name):
    """Names of the nodes `name` depends on (data and control inputs) in a FunctionDef."""
    inputs = {n.name: [i.lstrip("^").split(":")[0] for i in n.input] for n in function.node_def}
    seen, todo = set(), [name]
    while todo:
        for parent in inputs.get(todo.pop(), []):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def _checks(function, flag):
    """Names of the Assert nodes whose message names `flag`."""
    nodes = {n.name: n for n in function.node_def}
    formats = {
        n.name
        for n in function.node_def
        if n.op == "StringFormat" and flag in n.attr["template"].s.decode()
    }
    return {
        n.name
        for n in function.node_def
        if n.op == "Assert" and any(i.split(":")[0] in formats for i in n.input)
    } & set(nodes)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return {name: v[2] for name, v in task_exports(tmp_path_factory).items()}


@pytest.fixture(scope="module")
def servables(exports):
    from serving_testbed.servable import SessionServable

    loaded = {name: SessionServable(exports[name], 1) for name in ("tag", "choice")}
    yield loaded
    for servable in loaded.values():
        servable.close()


@pytest.mark.parametrize("task", sorted(TEXT_INPUTS))
def test_bytes_are_checked_before_tokenization_and_tokens_before_the_encoder(exports, task):
    functions = [
        f
        for f in _graph_functions(exports[task])
        if any(n.op == "UnicodeTranscode" for n in f.node_def)
    ]
    assert len(functions) == 1  # the traced serving_default
    f = functions[0]
    byte_checks, token_checks = (
        _checks(f, "--max_request_bytes"),
        _checks(f, "--max_request_tokens"),
    )
    assert byte_checks and token_checks
    first_ops = [n.name for n in f.node_def if n.op == "UnicodeTranscode"]
    matmuls = [n.name for n in f.node_def if n.op in ("MatMul", "BatchMatMulV2")]
    assert first_ops and matmuls
    for name in first_ops:  # tokenization waits for the byte check
        assert byte_checks & _ancestors(f, name), name
    for name in matmuls:  # the encoder waits for the token check
        assert token_checks & _ancestors(f, name), name
    with open(os.path.join(exports[task], "assets.extra", "export_settings.json")) as fh:
        settings = json.load(fh)
    assert (settings["max_request_bytes"], settings["max_request_tokens"]) == (
        DEFAULT_BYTES,
        DEFAULT_TOKENS,
    )


def _request(task, big):
    """One example whose last text input holds `big`."""
    names = TEXT_INPUTS[task]
    inputs = {name: np.array([b"who lives here ?"], object) for name in names}
    if task == "choice":
        inputs["choices"] = np.array([[b"yes", big]], object)
    else:
        inputs[names[-1]] = np.array([big], object)
    return inputs


@pytest.mark.parametrize("task", ["tag", "choice"])  # every task: the graph test above
def test_a_request_over_the_byte_budget_is_refused_unread(servables, task):
    from serving_testbed.servable import ServingError

    servable = servables[task]
    fixed = sum(len(v) for a in _request(task, b"").values() for v in np.ravel(a))
    fits = b"x" * (DEFAULT_BYTES - fixed)
    if task == "tag":  # exactly the budget: answered (8 s here: tag only)
        servable.run("", _request(task, fits))
    what = {"choice": "multiple_choice"}.get(task, task)
    with pytest.raises(
        ServingError,
        match=(
            rf"{what} request is {DEFAULT_BYTES + 1} bytes of text; this export reads at most "
            rf"{DEFAULT_BYTES} per request \(export.saved_model --max_request_bytes\)"
        ),
    ) as e:
        servable.run("", _request(task, fits + b"\xff"))  # invalid UTF-8: bytes count
    assert e.value.code == "INVALID_ARGUMENT"


def test_a_10000_word_text_is_answered_in_one_request(servables):
    """10,000 words = 1,429 windows of 14 pieces at seq 16: 22,864 tokens. The old cap (64
    windows whatever the seq_length) refused anything over ~450 words here."""
    rng = np.random.default_rng(0)
    words = [w for w in TINY_VOCAB[5:] if not w.startswith("##") and w.isalpha()]
    text = " ".join(rng.choice(words, 10_000)).encode()
    out = servables["tag"].run("", {"text": np.array([text, b"john"], object)})[1]
    assert out["num_entities"].shape == (2,)
    assert out["entity_end"].max() <= len(text)


def test_multiple_choice_requests_are_capped_before_tokenization(servables):
    from serving_testbed.servable import ServingError

    servable = servables["choice"]
    choices = np.array([[b"a"] * 60_000], object)  # 60 KB: within the bytes
    with pytest.raises(
        ServingError,
        match=(
            r"multiple_choice request needs 960000 tokens \(60000 choices x seq_length 16\); "
            r"this export answers at most 65536 per request \(export.saved_model "
            r"--max_request_tokens\)"
        ),
    ) as e:
        servable.run("", {"context": np.array([b"x"], object), "choices": choices})
    assert e.value.code == "INVALID_ARGUMENT"
    most = DEFAULT_TOKENS // SEQ  # 4,096 rows: answered
    out = servable.run(
        "",
        {
            "context": np.array([b"x"] * 2, object),
            "choices": np.array([[b"a"] * (most // 2)] * 2, object),
        },
    )[1]
    assert out["probabilities"].shape == (2, most // 2)


def test_deprecated_window_flag_means_windows_times_seq_length():
    from export.saved_model import ExportError, request_budget

    assert request_budget(64) == (DEFAULT_BYTES, DEFAULT_TOKENS)
    assert request_budget(64, max_windows_per_request=100) == (DEFAULT_BYTES, 6_400)
    assert request_budget(128, max_windows_per_request=100) == (DEFAULT_BYTES, 12_800)
    assert request_budget(16, 1_000, 16) == (1_000, 16)
    for args, message in (
        ((16, None, None, 0), "max_windows_per_request=0: expected >= 1"),
        ((16, 0), "max_request_bytes=0: expected >= 1"),
        ((16, None, 15), "max_request_tokens=15: expected >= 16"),
        ((16, None, 64, 2), "give only max_request_tokens"),
    ):
        with pytest.raises(ExportError, match=message):
            request_budget(*args)
