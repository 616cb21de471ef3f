"""A small stand-in for tensorflow_model_server, for tests and local demos.

    python -m export.testing.fake_model_server --model_base_path=BASE/NAME --model_name=NAME \
        --port=8500 --rest_api_port=8501

Serves the highest numeric version under BASE/NAME (or all of them) over
  * gRPC: tensorflow.serving.PredictionService/Predict (real gRPC on 127.0.0.1), and
  * REST: POST /v1/models/NAME[/versions/N]:predict with {"instances": ...} (row format) or
    {"inputs": ...} (columnar format), answering {"predictions": ...} / {"outputs": ...} as
    TF Serving does; GET /v1/models/NAME reports the version status.
It loads the SavedModel with tf.saved_model.load in this process. Errors become gRPC status
INVALID_ARGUMENT / NOT_FOUND or HTTP 400 / 404 with {"error": "..."}, never a crash.
It is NOT a production server (no batching, no model reloading).
"""

import argparse
import base64
import json
import os
import re
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ModelStore:
    """Loaded versions of one model: {version: loaded SavedModel}."""

    def __init__(self, name, base_path):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tf.text ops)
        self.name = name
        versions = sorted(int(v) for v in os.listdir(base_path) if re.fullmatch(r"\d+", v))
        if not versions:
            raise ValueError(f"{base_path}: no numeric version directory")
        self.models = {v: tf.saved_model.load(os.path.join(base_path, str(v)))
                       for v in versions}
        self.lock = threading.Lock()

    def signature(self, name, version, signature_name):
        if name != self.name:
            raise LookupError(f"Servable not found for request: Latest({name})")
        version = version or max(self.models)
        if version not in self.models:
            raise LookupError(f"Servable not found for request: Specific({name}, {version})")
        signatures = self.models[version].signatures
        signature_name = signature_name or "serving_default"
        if signature_name not in signatures:
            raise ValueError(f"Serving signature name: \"{signature_name}\" not found in "
                             f"signature def")
        return version, signatures[signature_name]

    def run(self, fn, inputs):
        """inputs: {name: tf.Tensor} -> {name: np.ndarray}; checks names and dtypes."""
        import tensorflow as tf
        spec = fn.structured_input_signature[1]
        missing = sorted(set(spec) - set(inputs))
        extra = sorted(set(inputs) - set(spec))
        if missing or extra:
            raise ValueError(f"input names: expected {sorted(spec)}, got {sorted(inputs)}")
        args = {}
        for k, s in spec.items():
            t = tf.convert_to_tensor(inputs[k])
            if t.dtype != s.dtype:
                if t.dtype.is_integer and s.dtype.is_integer:
                    t = tf.cast(t, s.dtype)
                else:
                    raise ValueError(f"input {k}: expected {s.dtype.name}, got {t.dtype.name}")
            if not s.shape.is_compatible_with(t.shape):
                raise ValueError(f"input {k}: expected shape {s.shape}, got {t.shape}")
            args[k] = t
        with self.lock:
            out = fn(**args)
        return {k: v.numpy() for k, v in out.items()}


# ---- gRPC ------------------------------------------------------------------------------

def make_grpc_server(store, port, host="127.0.0.1"):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):  # noqa: N802 (gRPC method name)
            try:
                spec = request.model_spec
                version = spec.version.value if spec.HasField("version") else None
                version, fn = store.signature(spec.name, version, spec.signature_name)
                inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
                outputs = store.run(fn, inputs)
            except LookupError as e:
                context.abort(grpc.StatusCode.NOT_FOUND, str(e))
            except (ValueError, TypeError, tf.errors.OpError) as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              str(e).strip().splitlines()[0])
            response = predict_pb2.PredictResponse()
            response.model_spec.name = spec.name
            response.model_spec.version.value = version
            response.model_spec.signature_name = spec.signature_name or "serving_default"
            for k, v in outputs.items():
                if request.output_filter and k not in request.output_filter:
                    continue
                response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    return server, bound


# ---- REST ------------------------------------------------------------------------------

def _to_json(value):
    import numpy as np
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return [_to_json(v) for v in value.tolist()] if value.ndim else _to_json(
                value.item())
        return value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def _from_json(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


def _tensor(values, dtype):
    import numpy as np
    import tensorflow as tf
    if dtype == tf.string:
        return tf.constant(np.array(values, dtype=object).reshape(np.shape(values)), tf.string) \
            if len(values) else tf.zeros([0], tf.string)
    return tf.constant(values, dtype)


def make_rest_server(store, port, host="127.0.0.1"):
    pattern = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?(:predict)?$")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, code, body):
            data = json.dumps(body).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            m = pattern.match(self.path)
            if not m or m.group(3) or m.group(1) != store.name:
                return self._send(404, {"error": f"Could not find model {self.path}"})
            self._send(200, {"model_version_status": [
                {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK"}}
                for v in sorted(store.models)]})

        def do_POST(self):  # noqa: N802
            m = pattern.match(self.path)
            if not m or not m.group(3):
                return self._send(404, {"error": f"Malformed request: POST {self.path}"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                version = int(m.group(2)) if m.group(2) else None
                _, fn = store.signature(m.group(1), version, body.get("signature_name"))
                spec = fn.structured_input_signature[1]
                if ("instances" in body) == ("inputs" in body):
                    raise ValueError("JSON object: expected exactly one of \"instances\" "
                                     "or \"inputs\"")
                if "instances" in body:
                    rows = body["instances"]
                    if not isinstance(rows, list):
                        raise ValueError("\"instances\" must be a list")
                    if len(spec) == 1 and not all(isinstance(r, dict) for r in rows):
                        rows = [{next(iter(spec)): r} for r in rows]
                    cols = {k: [_from_json(r[k]) if k in r else None for r in rows]
                            for k in (rows[0] if rows else spec)}
                else:
                    inputs = body["inputs"]
                    if not isinstance(inputs, dict):
                        inputs = {next(iter(spec)): inputs}
                    cols = {k: _from_json(v) for k, v in inputs.items()}
                tensors = {k: _tensor(v, spec[k].dtype) if k in spec else v
                           for k, v in cols.items()}
                outputs = store.run(fn, tensors)
            except LookupError as e:
                return self._send(404, {"error": str(e)})
            except Exception as e:  # noqa: BLE001  any bad request -> 400, server survives
                return self._send(400, {"error": str(e).strip().splitlines()[0]})
            if "instances" in body:
                n = len(next(iter(outputs.values()))) if outputs else 0
                preds = [{k: _to_json(v[i]) for k, v in outputs.items()} for i in range(n)]
                if len(outputs) == 1:
                    preds = [next(iter(p.values())) for p in preds]
                return self._send(200, {"predictions": preds})
            return self._send(200, {"outputs": {k: _to_json(v) for k, v in outputs.items()}})

    server = ThreadingHTTPServer((host, port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, server.server_address[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_base_path", required=True, help="BASE/NAME with versions")
    parser.add_argument("--model_name", required=True, help="the NAME in requests")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (0 = any free)")
    parser.add_argument("--rest_api_port", type=int, default=8501, help="REST port (0 = any)")
    args = parser.parse_args(argv)
    store = ModelStore(args.model_name, args.model_base_path)
    grpc_server, grpc_port = make_grpc_server(store, args.port)
    _, rest_port = make_rest_server(store, args.rest_api_port)
    print(json.dumps({"grpc_port": grpc_port, "rest_port": rest_port}), flush=True)
    grpc_server.wait_for_termination()


if __name__ == "__main__":
    main()
