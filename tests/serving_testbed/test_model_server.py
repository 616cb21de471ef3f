"""The TF Serving stand-in: session-path loading, versions, warm-up, gRPC and REST rules.

Every model here is a tiny hand-made SavedModel (tests/serving_testbed/handmade.py) whose
expected outputs are computed in numpy."""

import base64
import json
import os
import shutil
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    model_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving_testbed.grpc_service import start_grpc_server
from serving_testbed.model_store import ModelStore, complete_versions
from serving_testbed.rest_service import start_rest_server
from serving_testbed.servable import ServingError, SessionServable
from tests.serving_testbed import handmade

TEXTS = ["a", "héllo", "", "four"]


@pytest.fixture(scope="module")
def model_src(tmp_path_factory):
    root = tmp_path_factory.mktemp("handmade")
    return {
        "v1": handmade.write_model(str(root / "v1"), scale=1.0),
        "v2": handmade.write_model(str(root / "v2"), scale=2.0),
    }


@pytest.fixture(scope="module")
def served(model_src, tmp_path_factory):
    base = tmp_path_factory.mktemp("served") / "m"
    shutil.copytree(model_src["v1"], base / "1")
    shutil.copytree(model_src["v2"], base / "2")
    handmade.write_warmup(
        str(base / "2"),
        [
            ("serving_default", {"text": ["x", "yz"]}),
            ("pair", {"x": np.ones((1, 4), np.float32), "n": np.array([3], np.int32)}),
        ],
    )
    store = ModelStore("m", str(base))
    grpc_server, grpc_port = start_grpc_server(store, 0)
    rest_server, rest_port = start_rest_server(store, 0)
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    yield {
        "store": store,
        "stub": prediction_service_pb2_grpc.PredictionServiceStub(channel),
        "rest": f"http://127.0.0.1:{rest_port}",
        "base": str(base),
    }
    channel.close()
    grpc_server.stop(0)
    rest_server.shutdown()
    store.close()


# ---- loading --------------------------------------------------------------------------


def test_versions_highest_complete_wins_and_temp_or_half_written_are_ignored(model_src, tmp_path):
    base = tmp_path / "m"
    for name in ("1", "3", ".export-abc123", "5a"):
        shutil.copytree(model_src["v1"], base / name)
    (base / "7" / "variables").mkdir(parents=True)  # half-written: no saved_model.pb
    (base / "9").write_text("a file, not a version")
    assert complete_versions(str(base)) == [1, 3]
    store = ModelStore("m", str(base), warmup=False)
    assert store.current.version == 3
    shutil.copytree(model_src["v2"], base / "4")
    assert store.poll() == 4  # a new version replaces it
    out = store.servable("m").run("", {"text": np.array([b"ab"], object)})[1]
    np.testing.assert_allclose(out["score"], 2 * handmade.expected_score(["ab"]), atol=1e-6)
    store.close()


def test_session_path_refuses_the_tf_module_defect_that_the_python_loader_hides(tmp_path):
    path = handmade.write_module_saved_model(str(tmp_path / "1"))
    x = np.ones((1, 4), np.float32)
    assert tf.saved_model.load(path).signatures["serving_default"](x=tf.constant(x))["y"].shape == (
        1,
        2,
    )  # the Python TF2 loader is fine
    servable = SessionServable(path, 1)  # loading succeeds, as in C++
    with pytest.raises(ServingError, match="(Could not find variable|uninitialized)") as e:
        servable.run("serving_default", {"x": x})
    assert e.value.code == "FAILED_PRECONDITION"
    servable.close()


def test_warmup_is_replayed_and_a_failing_record_keeps_the_previous_version(
    served, model_src, tmp_path
):
    assert served["store"].current.version == 2
    assert served["store"].current.replay_warmup() == 2  # both records run cleanly
    base = tmp_path / "m"
    shutil.copytree(model_src["v1"], base / "1")
    store = ModelStore("m", str(base))
    shutil.copytree(model_src["v2"], base / "2")
    handmade.write_warmup(
        str(base / "2"), [("serving_default", {"text": ["x"]}), ("serving_default", {"txt": ["x"]})]
    )
    assert store.poll() == 1  # version 2 failed its warm-up
    status = store.status("m")
    assert [(s["version"], s["state"]) for s in status] == [("2", "END"), ("1", "AVAILABLE")]
    assert "warm-up record 2" in status[0]["status"]["error_message"]
    assert status[0]["status"]["error_code"] == "INVALID_ARGUMENT"
    out = store.servable("m").run("", {"text": np.array([b"ab"], object)})[1]
    np.testing.assert_allclose(out["score"], handmade.expected_score(["ab"]), atol=1e-6)
    store.close()


# ---- gRPC ---------------------------------------------------------------------------


def _request(signature="", version=None, name="m", **inputs):
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=name, signature_name=signature)
    )
    if version is not None:
        request.model_spec.version.value = version
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def test_grpc_predict_runs_the_signature_by_name(served):
    stub = served["stub"]
    response = stub.Predict(_request(text=TEXTS), timeout=30)
    assert response.model_spec.version.value == 2
    assert response.model_spec.signature_name == "serving_default"
    np.testing.assert_allclose(
        tf.make_ndarray(response.outputs["score"]), 2 * handmade.expected_score(TEXTS), atol=1e-6
    )
    assert tf.make_ndarray(response.outputs["upper_bytes"]).tolist() == [
        b"A",
        b"H\xc3\xa9LLO",
        b"",
        b"FOUR",
    ]  # ASCII-only upper-casing
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    response = stub.Predict(_request("pair", 2, x=x, n=np.array([1, -1], np.int32)))
    expected = (x @ (2 * handmade.KERNEL) + 2 * handmade.BIAS).sum(-1) + [1, -1]
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["total"]), expected, rtol=1e-6)
    request = _request(text=TEXTS)
    request.output_filter.append("score")
    assert list(stub.Predict(request).outputs) == ["score"]


@pytest.mark.parametrize(
    "request_args,code,message",
    [
        (
            dict(name="nope", text=["a"]),
            "NOT_FOUND",
            "Servable not found for request: Latest(nope)",
        ),
        (dict(version=1, text=["a"]), "NOT_FOUND", "Specific(m, 1)"),
        (
            dict(signature="nope", text=["a"]),
            "FAILED_PRECONDITION",
            'Serving signature key "nope" not found.',
        ),
        (dict(txt=["a"]), "INVALID_ARGUMENT", "Sent extra: {txt}. Missing but required: {text}."),
        (
            dict(text=np.array([1], np.int32)),
            "INVALID_ARGUMENT",
            "input text: expected DT_STRING, got DT_INT32",
        ),
        (
            dict(signature="pair", x=np.ones((1, 3), np.float32), n=np.array([1], np.int32)),
            "INVALID_ARGUMENT",
            "input x: expected shape (None, 4), got (1, 3)",
        ),
    ],
)
def test_grpc_errors_are_statuses_and_the_server_survives(served, request_args, code, message):
    with pytest.raises(grpc.RpcError) as e:
        served["stub"].Predict(_request(**request_args), timeout=30)
    assert e.value.code() == getattr(grpc.StatusCode, code)
    assert message in e.value.details()
    assert len(e.value.details().splitlines()) == 1
    ok = served["stub"].Predict(_request(text=["ok"])).outputs["score"]
    assert tf.make_ndarray(ok).shape == (1, 2)


def test_grpc_model_metadata_lists_the_signatures(served):
    request = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=model_pb2.ModelSpec(name="m"), metadata_field=["signature_def"]
    )
    response = served["stub"].GetModelMetadata(request)
    assert response.model_spec.version.value == 2
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    sig = signatures.signature_def["pair"]
    assert sorted(sig.inputs) == ["n", "x"] and list(sig.outputs) == ["total"]
    assert sig.inputs["n"].dtype == tf.int32.as_datatype_enum


# ---- REST ---------------------------------------------------------------------------


def _post(served, path, body):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(served["rest"] + path, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _get(served, path):
    try:
        with urllib.request.urlopen(served["rest"] + path, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_rest_row_format_with_plain_and_b64_strings(served):
    b64 = {"b64": base64.b64encode("héllo".encode()).decode()}
    code, body = _post(served, "/v1/models/m:predict", {"instances": ["a", b64, "", "four"]})
    assert code == 200
    preds = body["predictions"]
    assert [sorted(p) for p in preds] == [["score", "upper_bytes"]] * 4
    np.testing.assert_allclose(
        [p["score"] for p in preds], 2 * handmade.expected_score(TEXTS), atol=1e-6
    )
    assert base64.b64decode(preds[1]["upper_bytes"]["b64"]) == b"H\xc3\xa9LLO"  # *_bytes -> b64
    # one output: each prediction is the bare value
    code, body = _post(
        served, "/v1/models/m/versions/2:predict", {"signature_name": "lengths", "instances": TEXTS}
    )
    assert (code, body) == (200, {"predictions": [1, 6, 0, 4]})


def test_rest_named_rows_and_columnar_format(served):
    rows = [{"x": [1, 2, 3, 4], "n": 5}, {"x": [0, 0, 0, 0], "n": -5}]
    code, body = _post(
        served, "/v1/models/m:predict", {"signature_name": "pair", "instances": rows}
    )
    x = np.array([r["x"] for r in rows], np.float32)
    expected = (x @ (2 * handmade.KERNEL) + 2 * handmade.BIAS).sum(-1) + [5, -5]
    assert code == 200
    np.testing.assert_allclose(body["predictions"], expected, rtol=1e-6)
    code, body = _post(
        served,
        "/v1/models/m:predict",
        {"signature_name": "pair", "inputs": {"x": x.tolist(), "n": [5, -5]}},
    )
    assert code == 200
    np.testing.assert_allclose(body["outputs"], expected, rtol=1e-6)  # one output: bare
    code, body = _post(served, "/v1/models/m:predict", {"inputs": TEXTS})
    assert code == 200 and sorted(body["outputs"]) == ["score", "upper_bytes"]
    np.testing.assert_allclose(
        body["outputs"]["score"], 2 * handmade.expected_score(TEXTS), atol=1e-6
    )


@pytest.mark.parametrize(
    "path,body,code,message",
    [
        ("/v1/models/m:predict", b"{not json", 400, "JSON Parse error"),
        ("/v1/models/m:predict", b"", 400, "The document is empty"),
        (
            "/v1/models/m:predict",
            {"instances": ["a"], "inputs": ["a"]},
            400,
            "expecting only one of 'inputs' or 'instances'",
        ),
        ("/v1/models/m:predict", {"instance": ["a"]}, 400, "Missing 'inputs' or 'instances' key"),
        ("/v1/models/m:predict", {"instances": []}, 400, "No values in 'instances' array"),
        (
            "/v1/models/m:predict",
            {"signature_name": "nope", "instances": ["a"]},
            400,
            'Serving signature name: "nope" not found in signature def',
        ),
        (
            "/v1/models/m:predict",
            {"instances": [{"question": "q", "context": "c"}]},
            400,
            "keys must be equal to: text",
        ),
        (
            "/v1/models/m:predict",
            {"signature_name": "pair", "instances": ["a"]},
            400,
            "instances is a plain list",
        ),
        (
            "/v1/models/m:predict",
            {"signature_name": "pair", "inputs": {"x": [[1, 2, 3, 4]]}},
            400,
            "Missing named input: n in 'inputs' object.",
        ),
        (
            "/v1/models/m:predict",
            {"signature_name": "pair", "inputs": {"x": [[1, 2, 3, 4]], "n": [1.5]}},
            400,
            "Is not of expected type: int32",
        ),
        (
            "/v1/models/m:predict",
            {"signature_name": "pair", "inputs": {"x": [[1, 2], [3]], "n": [1, 2]}},
            400,
            "Expecting a dense list",
        ),
        ("/v1/models/m:predict", {"instances": [{"b64": "!!"}]}, 400, "Unable to base64 decode"),
        ("/v1/models/nope:predict", {"instances": ["a"]}, 404, "Latest(nope)"),
        ("/v1/models/m/versions/9:predict", {"instances": ["a"]}, 404, "Specific(m, 9)"),
        ("/v1/models/m:classify", {"examples": []}, 501, ":classify"),
        ("/v1/nothing", {}, 404, "Malformed request"),
    ],
)
def test_rest_errors_have_the_error_body_and_code(served, path, body, code, message):
    got_code, got = _post(served, path, body)
    assert got_code == code and list(got) == ["error"], got
    assert message in got["error"]
    assert len(got["error"].splitlines()) == 1
    assert _post(served, "/v1/models/m:predict", {"instances": ["ok"]})[0] == 200


def test_rest_status_and_metadata(served):
    code, body = _get(served, "/v1/models/m")
    assert code == 200
    assert body["model_version_status"][0] == {
        "version": "2",
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }
    code, body = _get(served, "/v1/models/m/versions/2/metadata")
    assert code == 200 and body["model_spec"]["version"] == "2"
    sig = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["text"]["dtype"] == "DT_STRING"
    assert sorted(sig["outputs"]) == ["score", "upper_bytes"]
    assert _get(served, "/v1/models/other")[0] == 404


@pytest.mark.slow  # a fresh process importing tensorflow
def test_cli_serves_until_stopped(model_src, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    shutil.copytree(model_src["v1"], tmp_path / "m" / "1")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving_testbed.model_server",
            f"--model_base_path={tmp_path / 'm'}",
            "--model_name=m",
            "--port=0",
            "--rest_api_port=0",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        ports = json.loads(proc.stdout.readline())
        assert ports["version"] == 1
        code, body = _post(
            {"rest": f"http://127.0.0.1:{ports['rest_port']}"},
            "/v1/models/m:predict",
            {"signature_name": "lengths", "instances": ["abc"]},
        )
        assert (code, body) == (200, {"predictions": [3]})
    finally:
        proc.kill()
        proc.wait()


# ---- request bodies, reloads under load, retried loads ---------------------------------


def _raw_post(served, length):
    """A POST with Content-Length `length` and no body -> (status code, JSON body)."""
    import socket

    port = int(served["rest"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST /v1/models/m:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: {length}\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):  # the server closes after answering
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize(
    "length,code,message",
    [
        ("abc", 400, "Content-Length 'abc' is not a non-negative integer"),
        ("-5", 400, "Content-Length '-5' is not a non-negative integer"),
        ("1e3", 400, "Content-Length '1e3' is not a non-negative integer"),
        ("999999999999", 413, "Request body of 999999999999 bytes is over the 268435456 bytes"),
    ],
)
def test_rest_bad_content_length_is_a_client_error(served, length, code, message):
    got_code, body = _raw_post(served, length)
    assert got_code == code and message in body["error"], body
    assert _post(served, "/v1/models/m:predict", {"instances": ["ok"]})[0] == 200


def test_a_reload_waits_for_the_requests_using_the_old_version(model_src, tmp_path):
    import threading

    base = tmp_path / "m"
    shutil.copytree(model_src["v1"], base / "1")
    store = ModelStore("m", str(base), warmup=False)
    shutil.copytree(model_src["v2"], base / "2")
    with store.use("m") as old:
        reload = threading.Thread(target=store.poll)
        reload.start()
        for _ in range(600):  # bounded: v2 loads within 60 s
            if store.servable("m").version == 2:  # new requests get v2 ...
                break
            time.sleep(0.1)
        reload.join(0.5)
        assert store.servable("m").version == 2
        assert reload.is_alive()  # ... closing v1 waits for this one
        out = old.run("", {"text": np.array([b"ab"], object)})[1]
        np.testing.assert_allclose(out["score"], handmade.expected_score(["ab"]), atol=1e-6)
    reload.join(30)
    assert not reload.is_alive()
    with pytest.raises(ServingError, match="version 1 is being unloaded") as e:
        old.acquire()
    assert e.value.code == "UNAVAILABLE"
    store.close()


def test_concurrent_clients_see_no_error_during_reloads(tmp_path):
    """3 REST clients x 12 slow requests each while versions 2..5 are loaded one after the
    other: every request is answered by one version or another (before: 'Session has been
    closed' / 'Run call was cancelled' for some)."""
    import threading

    base = tmp_path / "m"
    src = [handmade.write_slow_model(str(tmp_path / f"src{s}"), s) for s in (1.0, 2.0)]
    shutil.copytree(src[0], base / "1")
    store = ModelStore("m", str(base), warmup=False)
    server, port = start_rest_server(store, 0)
    results, done = [], threading.Event()

    def client():
        for _ in range(12):
            results.append(
                _post(
                    {"rest": f"http://127.0.0.1:{port}"},
                    "/v1/models/m:predict",
                    {"instances": ["x"]},
                )
            )

    clients = [threading.Thread(target=client) for _ in range(3)]
    for c in clients:
        c.start()
    for version in range(2, 6):
        shutil.copytree(src[version % 2], base / str(version))
        assert store.poll() == version
    for c in clients:
        c.join(120)
    done.set()
    server.shutdown()
    store.close()
    assert len(results) == 36
    assert all(code == 200 for code, _ in results), [b for c, b in results if c != 200][:3]
    assert {body["predictions"][0] for _, body in results} <= {1.0, 2.0}


def test_a_version_that_failed_half_written_is_retried_with_back_off(model_src, tmp_path):
    base = tmp_path / "m"
    shutil.copytree(model_src["v1"], base / "1")
    now = [0.0]
    store = ModelStore(
        "m", str(base), warmup=False, max_load_retries=2, retry_interval=10, clock=lambda: now[0]
    )
    shutil.copytree(model_src["v2"], base / "2", ignore=shutil.ignore_patterns("variables*"))
    assert store.poll() == 1  # half-written: its load fails
    assert store.status("m", 2)[0]["state"] == "END"
    shutil.copytree(os.path.join(model_src["v2"], "variables"), base / "2" / "variables")
    now[0] = 9.9
    assert store.poll() == 1  # back-off: not before 10 s
    now[0] = 10.0
    assert store.poll() == 2  # complete now: served
    assert [s["state"] for s in store.status("m")] == ["AVAILABLE"]
    out = store.servable("m").run("", {"text": np.array([b"ab"], object)})[1]
    np.testing.assert_allclose(out["score"], 2 * handmade.expected_score(["ab"]), atol=1e-6)
    # retries double their wait and stop after max_load_retries
    (base / "3" / "variables").mkdir(parents=True)
    (base / "3" / "saved_model.pb").write_bytes(b"half")
    tries = []
    for t in (10.0, 19.9, 20.0, 39.9, 40.0, 1000.0):
        now[0] = t
        store.poll()
        tries.append(store._retries[3][0])  # failed attempts so far
    assert tries == [1, 1, 2, 2, 3, 3]  # at 10, 20 (+10), 40 (+20), no more
    assert store.current.version == 2
    store.close()
