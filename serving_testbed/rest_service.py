"""TF Serving's REST API on 127.0.0.1 (http.server; one thread per request).

    GET  /v1/models/NAME[/versions/N]            model status {"model_version_status": [...]}
    GET  /v1/models/NAME[/versions/N]/metadata   {"model_spec": ..., "metadata":
                                                  {"signature_def": <SignatureDefMap JSON>}}
    POST /v1/models/NAME[/versions/N]:predict    row ("instances") or columnar ("inputs")

Bodies follow serving_testbed.rest_json. A failure answers {"error": "<message>"} with the HTTP
code TF Serving maps its status to (INVALID_ARGUMENT / FAILED_PRECONDITION 400, NOT_FOUND 404,
UNIMPLEMENTED 501, ...); the server keeps running. A POST whose Content-Length is not a
non-negative integer is 400, one over `max_body_bytes` (default 256 MiB) is 413; neither body
is read (the connection is closed after the answer).
"""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from serving_testbed import rest_json
from serving_testbed.servable import ServingError

MAX_BODY_BYTES = 256 << 20  # the largest POST body read (413 above)

# TF Serving's ToHTTPStatusCode (model_servers/http_server.cc)
HTTP_CODES = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}

_PATH = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+))?(?:(/metadata)|:(\w+))?")


class BodyError(ServingError):
    """A POST body that is not read: `http_status` 400 (bad Content-Length) or 413."""

    def __init__(self, http_status, message):
        super().__init__("INVALID_ARGUMENT", message)
        self.http_status = http_status


def content_length(header, max_body_bytes):
    """The Content-Length header's value -> bytes to read (0 if absent); BodyError 400 if it
    is not a non-negative decimal integer, 413 if it is over max_body_bytes."""
    if header is None:
        return 0
    text = header.strip()
    if not text.isdigit() or not text.isascii():
        raise BodyError(
            400, f"Malformed request: Content-Length {header!r} is not a non-negative integer"
        )
    length = int(text)
    if length > max_body_bytes:
        raise BodyError(
            413,
            f"Request body of {length} bytes is over the {max_body_bytes} bytes this server reads",
        )
    return length


def _route(path):
    """-> (name, version or None, "status" | "metadata" | verb)."""
    m = _PATH.fullmatch(path.split("?", 1)[0])
    if not m:
        raise ServingError("NOT_FOUND", f"Malformed request: {path}")
    name, version, metadata, verb = m.groups()
    return name, (int(version) if version else None), ("metadata" if metadata else verb or "status")


def predict(store, name, version, body):
    """REST predict: body bytes -> response object (raises ServingError)."""
    doc = rest_json.parse_body(body)
    with store.use(name, version) as servable:  # the version stays open until answered
        signature = doc.get("signature_name") or ""
        if (signature or "serving_default") not in servable.signature_def:
            raise ServingError(
                "INVALID_ARGUMENT",
                f'Serving signature name: "'
                f'{signature or "serving_default"}" not found in signature def',
            )
        infos = servable.signature_def[signature or "serving_default"].inputs
        if not infos:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Failed to get input map for signature: {signature or 'DEFAULT'}",
            )
        inputs, fmt = rest_json.request_inputs(doc, dict(infos))
        _, outputs = servable.run(signature, inputs)
    return rest_json.response_body(outputs, fmt)


def metadata(store, name, version):
    servable = store.servable(name, version)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for key, value in servable.signature_def.items():
        signatures.signature_def[key].CopyFrom(value)
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
        "metadata": {
            "signature_def": json_format.MessageToDict(signatures, preserving_proto_field_name=True)
        },
    }


def make_handler(store, max_body_bytes=MAX_BODY_BYTES):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet: tests read stdout
            pass

        def _send(self, code, body):
            data = json.dumps(body, indent=1).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _answer(self, work):
            try:
                return self._send(200, work())
            except BodyError as e:
                self.close_connection = True  # its body was not read
                return self._send(e.http_status, rest_json.error_body(str(e)))
            except ServingError as e:
                return self._send(HTTP_CODES.get(e.code, 500), rest_json.error_body(str(e)))
            except Exception as e:  # noqa: BLE001  a bug here must not kill the server
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                return self._send(500, rest_json.error_body(f"Internal: {first}"))

        def do_GET(self):  # noqa: N802
            def work():
                name, version, what = _route(self.path)
                if what == "metadata":
                    return metadata(store, name, version)
                if what != "status":
                    raise ServingError("INVALID_ARGUMENT", f"Malformed request: GET {self.path}")
                return {"model_version_status": store.status(name, version)}

            self._answer(work)

        def do_POST(self):  # noqa: N802
            def work():
                name, version, what = _route(self.path)
                body = self.rfile.read(
                    content_length(self.headers.get("Content-Length"), max_body_bytes)
                )
                if what in ("classify", "regress"):
                    raise ServingError(
                        "UNIMPLEMENTED", f"the testbed serves :predict only, not :{what}"
                    )
                if what != "predict":
                    raise ServingError("INVALID_ARGUMENT", f"Malformed request: POST {self.path}")
                return predict(store, name, version, body)

            self._answer(work)

    return Handler


def start_rest_server(store, port, host="127.0.0.1", max_body_bytes=MAX_BODY_BYTES):
    """Starts the REST API in a daemon thread; returns (server, bound port)."""
    server = ThreadingHTTPServer((host, port), make_handler(store, max_body_bytes))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]
