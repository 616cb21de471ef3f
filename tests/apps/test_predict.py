"""apps.predict against the TF Serving stand-in (serving_testbed: real gRPC PredictionService
and REST API on 127.0.0.1, loading through TF Serving's session path) serving an exported tiny
classifier. The expected answers come from the Python TF2 loader, so these tests also check
that both loaders agree on the export."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, TINY_VOCAB
from tests.export.tiny_dirs import CLASS_LABELS, make_task_dir

TEXTS = ["the quick brown fox", "hello world", "", "a bad movie"]


def _config():
    from bert_tf import BertConfig

    return BertConfig.preset(
        "tiny",
        vocab_size=len(TINY_VOCAB),
        num_layers=2,
        hidden_size=32,
        num_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import tensorflow as tf

    from export.saved_model import export_serving
    from serving_testbed.grpc_service import start_grpc_server
    from serving_testbed.model_store import ModelStore
    from serving_testbed.rest_service import start_rest_server

    root = tmp_path_factory.mktemp("predict")
    model_dir = str(root / "cls_dir")
    make_task_dir(
        model_dir,
        _config(),
        TINY_VOCAB,
        {"type": "classify", "label_names": CLASS_LABELS},
        seq_length=16,
    )
    base = str(root / "serving" / "sentiment")
    export_serving(model_dir, base)  # with warm-up records: the testbed replays them
    store = ModelStore("sentiment", base)
    assert store.current is not None, store.status("sentiment")  # loaded and warmed up
    grpc_server, grpc_port = start_grpc_server(store, 0)
    rest_server, rest_port = start_rest_server(store, 0)
    fn = tf.saved_model.load(os.path.join(base, "1")).signatures["serving_default"]
    expected = {k: v.numpy() for k, v in fn(text=tf.constant(TEXTS)).items()}
    yield {
        "grpc": f"127.0.0.1:{grpc_port}",
        "rest": f"127.0.0.1:{rest_port}",
        "expected": expected,
        "base": base,
    }
    grpc_server.stop(0)
    rest_server.shutdown()
    store.close()


def _run(argv, stdin_text=None):
    """Runs the client in-process: --name=value args -> Options, the rest are texts."""
    from apps import predict

    kwargs, texts = {}, []
    for arg in argv:
        if arg.startswith("--"):
            name, value = arg[2:].split("=", 1)
            kwargs[name] = int(value) if name in ("model_version", "batch_size") else value
        else:
            texts.append(arg)
    opts = predict.Options(**kwargs)
    out = io.StringIO()
    predict.run(predict.collect_inputs(texts, opts, io.StringIO(stdin_text or "")), opts, out)
    return out.getvalue()


@pytest.mark.parametrize(
    "protocol,extra",
    [("grpc", []), ("rest", ["--rest_format=instances"]), ("rest", ["--rest_format=inputs"])],
)
def test_predict_json_matches_the_model(served, protocol, extra):
    out = _run(
        [
            f"--protocol={protocol}",
            f"--server={served[protocol]}",
            "--model_name=sentiment",
            "--format=json",
            "--batch_size=3",
        ]
        + extra
        + TEXTS
    )
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["input"]["text"] for r in lines] == TEXTS
    probs = np.array([r["output"]["probabilities"] for r in lines])
    np.testing.assert_allclose(probs, served["expected"]["probabilities"], atol=1e-6)
    assert [r["output"]["label"] for r in lines] == [
        b.decode() for b in served["expected"]["label"]
    ]


def test_predict_text_format_from_file_and_version(served, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("the quick brown fox\n\nhello world\n")
    out = _run(
        [
            "--server=" + served["grpc"],
            "--model_name=sentiment",
            "--model_version=1",
            f"--input_file={path}",
        ]
    )
    lines = out.strip().splitlines()
    assert len(lines) == 2
    label, prob, text = lines[0].split("\t")
    assert text == "the quick brown fox" and label == served["expected"]["label"][0].decode()
    assert abs(float(prob) - served["expected"]["probabilities"][0].max()) < 1e-4


def test_errors_are_one_line(served):
    from apps.predict import PredictError

    with pytest.raises(PredictError, match="NOT_FOUND"):
        _run(["--server=" + served["grpc"], "--model_name=nope", "x"])
    with pytest.raises(PredictError, match="HTTP 404"):
        _run(
            [
                "--protocol=rest",
                "--server=" + served["rest"],
                "--model_name=sentiment",
                "--model_version=9",
                "x",
            ]
        )
    with pytest.raises(PredictError, match="INVALID_ARGUMENT"):  # wrong input name
        _run(
            ["--server=" + served["grpc"], "--model_name=sentiment"],
            '{"question": "q", "context": "c"}\n',
        )
    with pytest.raises(PredictError, match="HTTP 400"):
        _run(
            ["--protocol=rest", "--server=" + served["rest"], "--model_name=sentiment"],
            '{"question": "q", "context": "c"}\n',
        )
    # the servers survived the bad requests
    out = _run(["--server=" + served["grpc"], "--model_name=sentiment", "hello"])
    assert out.count("\n") == 1


@pytest.mark.slow  # two fresh python processes importing tensorflow
def test_cli_reads_stdin(served):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "apps.predict",
            "--server=" + served["grpc"],
            "--model_name=sentiment",
            "--format=json",
        ],
        input="hello world\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["output"]["label"] == served["expected"]["label"][1].decode()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "apps.predict",
            "--model_name=x",
            "--server=127.0.0.1:1",
            "--timeout=2",
            "hi",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("apps.predict: gRPC")


def test_format_row_for_entities_and_answers():
    from apps.predict import format_row, split_rows

    ents = split_rows(
        {
            "entity_text": np.array([[b"John", b""]], object),
            "entity_type": np.array([[b"PER", b""]], object),
            "entity_start": np.array([[0, -1]]),
            "entity_end": np.array([[4, -1]]),
            "entity_score": np.array([[0.91, 0.0]]),
            "num_entities": np.array([1]),
        },
        1,
    )[0]
    assert format_row({"text": "John lives"}, ents) == "John lives\tPER:'John'[0:4](0.91)"
    ans = split_rows(
        {
            "answer": np.array([b"Paris"], object),
            "score": np.array([0.5]),
            "answer_start": np.array([13]),
            "answer_end": np.array([18]),
        },
        1,
    )[0]
    assert (
        format_row({"question": "where?", "context": "x"}, ans)
        == "'Paris'\t0.5000\t[13:18]\twhere?"
    )


def test_multiple_choice_rows_and_format():
    from apps.predict import format_row, parse_lines, split_rows

    rows = parse_lines(['{"context": "john lives in", "choices": ["paris", "a dog"]}'], "x")
    assert rows == [{"context": "john lives in", "choices": ["paris", "a dog"]}]
    out = split_rows(
        {"probabilities": np.array([[0.8, 0.2]], np.float32), "choice": np.array([0], np.int32)}, 1
    )[0]
    assert format_row(rows[0], out) == "0\t0.8000\tparis\tjohn lives in"
    with pytest.raises(Exception, match=r"x: line 1: expected an object of strings"):
        parse_lines(['{"context": "a", "choices": [1, 2]}'], "x")
