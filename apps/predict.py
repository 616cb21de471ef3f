r"""Client for a running TF Serving (gRPC or REST) that serves an export.saved_model export.

    python -m apps.predict --server=localhost:8500 --model_name=NAME "a text" "another"
    python -m apps.predict --protocol=rest --server=localhost:8501 --model_name=NAME \
        --input_file=texts.txt --format=json
    echo "some text" | python -m apps.predict --server=localhost:8500 --model_name=NAME
    python -m apps.predict --model_name=qa --question="who?" --context="John lives here."

Inputs: positional arguments (or --text), --input_file (one text per line; `.jsonl` files hold
one JSON object of signature inputs per line, e.g. {"question": ..., "context": ...} or, for
multiple choice, {"context": ..., "choices": [...]}), or
stdin. --text_b gives the second segment of pair tasks. Results are printed one line per input
(--format=text) or as one JSON object per input (--format=json).
"""

import base64
import json
import sys
import urllib.error
import urllib.request

from absl import app, flags

from bert_tf.errors import BertTfError

FLAGS = flags.FLAGS


def define_flags():
    """Defines this command's flags (once); called by main, not at import, so the
    library functions here can be imported next to other apps."""
    if "server" in FLAGS:
        return
    flags.DEFINE_string(
        "server",
        None,
        "host:port of TF Serving (default localhost:8500 for gRPC, localhost:8501 for REST).",
    )
    flags.DEFINE_enum(
        "protocol", "grpc", ["grpc", "rest"], "Transport: gRPC PredictionService or the REST API."
    )
    flags.DEFINE_string("model_name", None, "Model name as served (MODEL_NAME / --model_name).")
    flags.DEFINE_integer("model_version", None, "Specific version (default: the latest).")
    flags.DEFINE_string("signature_name", "serving_default", "Signature to call.")
    flags.DEFINE_multi_string("text", [], "A text to send (repeatable; positional args too).")
    flags.DEFINE_multi_string("text_b", [], "Second segments for pair tasks, one per --text.")
    flags.DEFINE_multi_string("question", [], "SQuAD: questions (one per --context).")
    flags.DEFINE_multi_string("context", [], "SQuAD: contexts (one per --question).")
    flags.DEFINE_string(
        "input_file",
        None,
        "File with one text per line, or .jsonl with one "
        "JSON object of inputs per line; '-' reads stdin.",
    )
    flags.DEFINE_enum("format", "text", ["text", "json"], "Output format.")
    flags.DEFINE_enum(
        "rest_format",
        "instances",
        ["instances", "inputs"],
        'REST request body: row format ("instances") or columnar format ("inputs").',
    )
    flags.DEFINE_integer("batch_size", 32, "Inputs per request.")
    flags.DEFINE_float("timeout", 30.0, "Seconds per request.")


class PredictError(BertTfError, RuntimeError):
    """A failed request, reported in one line."""


# ---- inputs ----------------------------------------------------------------------------


def parse_lines(lines, source):
    """Lines -> list of {input name: str}. JSON objects pass through; other lines are texts."""
    rows = []
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\n").rstrip("\r")
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise PredictError(f"{source}: line {n}: invalid JSON ({e.msg})") from None
            if not isinstance(row, dict) or not all(
                isinstance(v, str)
                or (isinstance(v, list) and v and all(isinstance(x, str) for x in v))
                for v in row.values()
            ):
                raise PredictError(
                    f"{source}: line {n}: expected an object of strings (or "
                    f'lists of strings, e.g. multiple-choice "choices")'
                )
            rows.append(row)
        else:
            rows.append({"text": line})
    return rows


class Options:
    """The settings of one run (main builds it from the flags; tests build it directly)."""

    def __init__(
        self,
        model_name,
        server=None,
        protocol="grpc",
        model_version=None,
        signature_name="serving_default",
        format="text",
        rest_format="instances",
        batch_size=32,
        timeout=30.0,
        text=(),
        text_b=(),
        question=(),
        context=(),
        input_file=None,
    ):
        self.__dict__.update(locals())
        del self.__dict__["self"]
        if not self.server:
            self.server = "localhost:8500" if protocol == "grpc" else "localhost:8501"

    @classmethod
    def from_flags(cls):
        names = (
            "model_name",
            "server",
            "protocol",
            "model_version",
            "signature_name",
            "format",
            "rest_format",
            "batch_size",
            "timeout",
            "text",
            "text_b",
            "question",
            "context",
            "input_file",
        )
        return cls(**{n: getattr(FLAGS, n) for n in names})


def collect_inputs(args, opts, stdin=None):
    texts = list(opts.text) + list(args)
    rows = [{"text": t} for t in texts]
    if opts.text_b:
        if len(opts.text_b) != len(rows):
            raise PredictError(
                f"--text_b: expected one per text ({len(rows)}), got {len(opts.text_b)}"
            )
        for row, b in zip(rows, opts.text_b):
            row["text_b"] = b
    if opts.question or opts.context:
        if len(opts.question) != len(opts.context):
            raise PredictError(
                f"--question/--context: expected the same count, got "
                f"{len(opts.question)} and {len(opts.context)}"
            )
        rows += [{"question": q, "context": c} for q, c in zip(opts.question, opts.context)]
    if opts.input_file:
        if opts.input_file == "-":
            rows += parse_lines(stdin or sys.stdin, "<stdin>")
        else:
            try:
                with open(opts.input_file, encoding="utf-8") as f:
                    rows += parse_lines(f, opts.input_file)
            except OSError as e:
                raise PredictError(f"--input_file={opts.input_file}: {e.strerror}") from None
    elif not rows:
        rows = parse_lines(stdin or sys.stdin, "<stdin>")
    if not rows:
        raise PredictError("no input: pass texts as arguments, --input_file, or on stdin")
    keys = set(rows[0])
    for i, row in enumerate(rows):
        if set(row) != keys:
            raise PredictError(
                f"input {i + 1}: fields {sorted(row)} differ from the first input's {sorted(keys)}"
            )
    return rows


# ---- transports --------------------------------------------------------------------------


def predict_grpc(server, model_name, rows, version=None, signature="serving_default", timeout=30.0):
    """rows: list of {name: str} -> {output name: np.ndarray} (batched)."""
    # gRPC + TensorFlow load only for --server=grpc://: a REST client stays light.
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for key in rows[0]:
        values = [
            [x.encode("utf-8") for x in r[key]]
            if isinstance(r[key], list)
            else r[key].encode("utf-8")
            for r in rows
        ]  # [B] or [B, C]
        request.inputs[key].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
    with grpc.insecure_channel(server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as e:
            raise PredictError(f"gRPC {server}: {e.code().name}: {e.details()}") from None
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def rest_url(server, model_name, version=None):
    host = server if server.startswith("http") else f"http://{server}"
    path = f"/v1/models/{model_name}" + (f"/versions/{version}" if version else "")
    return f"{host}{path}:predict"


def predict_rest(
    server,
    model_name,
    rows,
    version=None,
    signature="serving_default",
    timeout=30.0,
    body_format="instances",
):
    """Same as predict_grpc over the REST API; returns {output name: list per row}."""
    if body_format == "instances":
        body = {"instances": rows}
    else:
        body = {"inputs": {k: [r[k] for r in rows] for k in rows[0]}}
    if signature != "serving_default":
        body["signature_name"] = signature
    req = urllib.request.Request(
        rest_url(server, model_name, version),
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except ValueError:
            pass
        raise PredictError(f"REST {req.full_url}: HTTP {e.code}: {detail}") from None
    except urllib.error.URLError as e:
        raise PredictError(f"REST {req.full_url}: {e.reason}") from None
    if "outputs" in answer:
        outputs = answer["outputs"]
        return outputs if isinstance(outputs, dict) else {"output": outputs}
    preds = answer.get("predictions", [])
    if preds and not isinstance(preds[0], dict):
        return {"output": preds}
    return {k: [p[k] for p in preds] for k in (preds[0] if preds else {})}


# ---- output ------------------------------------------------------------------------------


def _plain(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, dict) and set(v) == {"b64"}:
        return base64.b64decode(v["b64"]).decode("utf-8", "replace")
    if hasattr(v, "tolist"):
        return _plain(v.tolist())
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def split_rows(outputs, n):
    """{name: batched values} -> list of n {name: plain python value}."""
    plain = {k: _plain(v) for k, v in outputs.items()}
    return [{k: v[i] for k, v in plain.items()} for i in range(n)]


def format_row(row, result):
    """One human-readable line."""
    if "label" in result:
        probs = result.get("probabilities") or [0.0]
        return f"{result['label']}\t{max(probs):.4f}\t{row.get('text', '')}"
    if "entity_text" in result:
        n = int(result.get("num_entities", len(result["entity_text"])))
        ents = [
            f"{result['entity_type'][e]}:{result['entity_text'][e]!r}"
            f"[{result['entity_start'][e]}:{result['entity_end'][e]}]"
            f"({result['entity_score'][e]:.2f})"
            for e in range(n)
        ]
        return f"{row.get('text', '')}\t{' '.join(ents) or '-'}"
    if "choice" in result:
        k = int(result["choice"])
        choices = row.get("choices") or []
        return (
            f"{k}\t{result['probabilities'][k]:.4f}\t"
            f"{choices[k] if k < len(choices) else ''}\t{row.get('context', '')}"
        )
    if "answer" in result:
        return (
            f"{result['answer']!r}\t{result['score']:.4f}\t"
            f"[{result['answer_start']}:{result['answer_end']}]\t{row.get('question', '')}"
        )
    return json.dumps(result)


def run(rows, opts, out=sys.stdout):
    for start in range(0, len(rows), opts.batch_size):
        batch = rows[start : start + opts.batch_size]
        if opts.protocol == "grpc":
            outputs = predict_grpc(
                opts.server,
                opts.model_name,
                batch,
                opts.model_version,
                opts.signature_name,
                opts.timeout,
            )
        else:
            outputs = predict_rest(
                opts.server,
                opts.model_name,
                batch,
                opts.model_version,
                opts.signature_name,
                opts.timeout,
                opts.rest_format,
            )
        for row, result in zip(batch, split_rows(outputs, len(batch))):
            if opts.format == "json":
                out.write(json.dumps({"input": row, "output": result}) + "\n")
            else:
                out.write(format_row(row, result) + "\n")
    out.flush()


def main(argv):
    if not FLAGS.model_name:
        sys.exit("apps.predict: --model_name is required")
    try:
        opts = Options.from_flags()
        run(collect_inputs(argv[1:], opts), opts)
    except PredictError as e:
        sys.exit(f"apps.predict: {e}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
