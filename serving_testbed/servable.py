"""One SavedModel version loaded the way `tensorflow_model_server` loads it.

TF Serving's C++ `LoadSavedModel` imports the MetaGraph tagged "serve" into a fresh graph, runs
the saver's restore op (variables from `variables/`) and the init op (tables, assets), and then
answers every request with `Session::Run` on the tensor names of the requested SignatureDef.
`SessionServable` does exactly that through `tf.compat.v1.saved_model.loader.load` in a
`tf.compat.v1.Session` on its own `tf.Graph` - never `tf.saved_model.load`, which restores
Python objects and so hides SavedModels whose graph reads variables the restore op never fills.

Errors carry the gRPC status TF Serving would answer with (`ServingError.code`).

Requests hold the version open (`acquire` / `release`, TF Serving's servable handles): `close()`
first waits until no request uses it, so a reload never closes the session under a running
request.
"""

import os
import threading

import grpc
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tf.text ops, as TF Serving's build does)
from tensorflow.core.framework import types_pb2

from bert_tf.errors import BertTfError

DEFAULT_SIGNATURE = "serving_default"
SERVE_TAG = "serve"
WARMUP_PATH = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000  # TF Serving's limit on warm-up records per version
_STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}  # int -> gRPC name


class ServingError(BertTfError, RuntimeError):
    """A request or load failure; `code` is the gRPC status name (e.g. "INVALID_ARGUMENT")."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def dtype_name(enum):
    return types_pb2.DataType.Name(enum)


def _first_line(message):
    """The line of a TF error message that says what went wrong (not "Graph execution
    error:")."""
    lines = [x.strip() for x in message.splitlines() if x.strip()]
    lines = [x for x in lines if x != "Graph execution error:"] or lines
    return lines[0] if lines else "unknown error"


class SessionServable:
    """A loaded version: `signature_def`, `run(signature, inputs)`, `replay_warmup()`."""

    def __init__(self, path, version):
        self.path = path
        self.version = int(version)
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        try:
            with self.graph.as_default():
                meta_graph = tf.compat.v1.saved_model.loader.load(self.session, [SERVE_TAG], path)
        except Exception as e:  # noqa: BLE001  any load failure -> one line, version not served
            self.session.close()
            raise ServingError(
                "FAILED_PRECONDITION",
                f"{path}: cannot load the SavedModel "
                f"with tags {{{SERVE_TAG}}}: {_first_line(str(e))}",
            ) from None
        self.signature_def = dict(meta_graph.signature_def)
        self._users = 0
        self._closing = False
        self._idle = threading.Condition()

    def acquire(self):
        """One more request uses this version (UNAVAILABLE once it is closing)."""
        with self._idle:
            if self._closing:
                raise ServingError("UNAVAILABLE", f"version {self.version} is being unloaded")
            self._users += 1

    def release(self):
        with self._idle:
            self._users -= 1
            if self._users == 0:
                self._idle.notify_all()

    def close(self):
        """Refuses new requests, waits for the running ones, then closes the session."""
        with self._idle:
            self._closing = True
            self._idle.wait_for(lambda: self._users == 0)
        self.session.close()

    def signature(self, name):
        """The SignatureDef called `name` ("" = serving_default)."""
        name = name or DEFAULT_SIGNATURE
        if name not in self.signature_def:
            raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{name}" not found.')
        return name, self.signature_def[name]

    def run(self, signature_name, inputs, output_filter=()):
        """inputs: {alias: np.ndarray} -> (signature name, {alias: np.ndarray}).

        The aliases must be exactly the signature's inputs and the dtypes exactly theirs (TF
        Serving does not cast); the session runs the signature's tensor names."""
        name, signature = self.signature(signature_name)
        expected, sent = set(signature.inputs), set(inputs)
        if expected != sent:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"input size does not match signature: {len(sent)}!={len(expected)} "
                f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
                f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
                f"Missing but required: {{{','.join(sorted(expected - sent))}}}.",
            )
        feeds = {}
        for alias, info in signature.inputs.items():
            value = np.asarray(inputs[alias])
            want = tf.dtypes.as_dtype(info.dtype)
            got = tf.string if value.dtype.kind in "OSU" else tf.dtypes.as_dtype(value.dtype)
            if got != want:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"input {alias}: expected {dtype_name(info.dtype)}, got "
                    f"{dtype_name(got.as_datatype_enum)}",
                )
            want_shape = tf.TensorShape(info.tensor_shape)
            if not want_shape.is_compatible_with(value.shape):
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"input {alias}: expected shape {want_shape}, got "
                    f"{tf.TensorShape(value.shape)}",
                )
            if value.dtype.kind == "U":
                value = np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(value)
            feeds[info.name] = value
        fetch_names = [a for a in signature.outputs if not output_filter or a in output_filter]
        unknown = sorted(set(output_filter) - set(signature.outputs))
        if unknown:
            raise ServingError(
                "INVALID_ARGUMENT", f"output tensor alias not found in signature: {unknown[0]}"
            )
        fetches = {a: signature.outputs[a].name for a in fetch_names}
        try:
            return name, self.session.run(fetches, feeds)
        except tf.errors.OpError as e:
            raise ServingError(
                _STATUS_NAMES.get(e.error_code, "UNKNOWN"), _first_line(e.message)
            ) from None
        except (TypeError, ValueError) as e:  # the Python session's own feed checks
            raise ServingError("INVALID_ARGUMENT", _first_line(str(e))) from None

    def replay_warmup(self):
        """Runs every PredictLog of assets.extra/tf_serving_warmup_requests (if present) as
        TF Serving does before it marks a version AVAILABLE; returns the number replayed.
        A failing record fails the load of this version."""
        from tensorflow_serving.apis import prediction_log_pb2

        path = os.path.join(self.path, WARMUP_PATH)
        if not os.path.exists(path):
            return 0
        count = 0
        for record in tf.compat.v1.io.tf_record_iterator(path):
            count += 1
            if count > MAX_WARMUP_RECORDS:
                raise ServingError(
                    "INVALID_ARGUMENT", f"{path}: more than {MAX_WARMUP_RECORDS} warm-up records"
                )
            log = prediction_log_pb2.PredictionLog.FromString(record)
            if log.WhichOneof("log_type") != "predict_log":
                raise ServingError(
                    "UNIMPLEMENTED",
                    f"{path}: record {count}: only predict_log warm-up records are supported here",
                )
            request = log.predict_log.request
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            try:
                self.run(request.model_spec.signature_name, inputs, tuple(request.output_filter))
            except ServingError as e:
                raise ServingError(e.code, f"{path}: warm-up record {count}: {e}") from None
        return count
