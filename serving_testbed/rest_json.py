"""TF Serving's REST JSON rules for Predict (tensorflow_serving/util/json_tensor.cc).

Request body: a JSON object with an optional "signature_name" and exactly one of
  "instances": a non-empty list of rows (row format). With one signature input a row is that
               input's value; with several, each row is an object {input: value} with exactly
               the signature's inputs. Rows are stacked: every row of an input has one shape.
  "inputs":    columnar format: the value of the only input, or an object {input: value} that
               names every input of the signature.
Strings are JSON strings (UTF-8) or {"b64": "<base64>"} for binary data. JSON numbers take the
signature's dtype (an integer dtype refuses 1.5).

Response: row format -> {"predictions": [...]} (one entry per row: the value when the signature
has one output, else an object {output: value}; every output must share the batch size);
columnar -> {"outputs": value} or {"outputs": {output: value}}. String outputs whose name ends
in "_bytes" are written as {"b64": ...}; other strings as JSON strings (bytes that are not UTF-8
become U+FFFD here; the real server would emit them raw). Errors: {"error": "<message>"}.
"""

import base64
import binascii
import json

import numpy as np
import tensorflow as tf

from serving_testbed.servable import ServingError

ROW, COLUMNAR = "row", "columnar"


def _bad(message):
    return ServingError("INVALID_ARGUMENT", message)


def parse_body(body):
    """bytes -> the request object (dict); checks it is a JSON object with a string
    "signature_name" if any."""
    if not body:
        raise _bad("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise _bad(f"JSON Parse error: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise _bad("JSON Value: the request body is not an object")
    if not isinstance(doc.get("signature_name", ""), str):
        raise _bad("'signature_name' key must be a string value.")
    return doc


def _is_b64(value):
    return isinstance(value, dict) and set(value) == {"b64"}


def _shape(value):
    """Shape of a nested JSON list ([] for a scalar); raises on ragged lists."""
    if not isinstance(value, list):
        return []
    if not value:
        return [0]
    inner = [_shape(v) for v in value]
    if any(s != inner[0] for s in inner):
        raise _bad(
            f"Expecting a dense list: rows have shapes {inner[0]} and "
            f"{next(s for s in inner if s != inner[0])}"
        )
    return [len(value)] + inner[0]


def _scalar(value, dtype):
    if dtype == tf.string:
        if isinstance(value, str):
            return value.encode("utf-8")
        if _is_b64(value):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise _bad("Unable to base64 decode") from None
        raise _bad(f"JSON Value: {json.dumps(value)} not formatted correctly for base64 data")
    if isinstance(value, (dict, str)) or value is None:
        raise _bad(f"JSON Value: {json.dumps(value)} Is not of expected type: {dtype.name}")
    if dtype == tf.bool:
        if not isinstance(value, bool):
            raise _bad(f"JSON Value: {json.dumps(value)} Is not of expected type: bool")
        return value
    if dtype.is_integer and (isinstance(value, float) or isinstance(value, bool)):
        raise _bad(f"JSON Value: {json.dumps(value)} Is not of expected type: {dtype.name}")
    return value


def to_array(value, dtype_enum):
    """A JSON value -> np.ndarray of the TensorInfo dtype."""
    dtype = tf.dtypes.as_dtype(dtype_enum)
    shape = _shape(value)

    def walk(v):
        return [walk(x) for x in v] if isinstance(v, list) else _scalar(v, dtype)

    values = walk(value)
    if dtype == tf.string:
        out = np.empty(shape, dtype=object)
        flat = out.reshape(-1)
        flat[:] = np.array(values, dtype=object).reshape(-1) if shape else [values]
        return out
    try:
        return np.array(values, dtype=dtype.as_numpy_dtype).reshape(shape)
    except (OverflowError, ValueError) as e:
        raise _bad(f"JSON Value: {str(e).splitlines()[0]}") from None


def request_inputs(doc, input_infos):
    """(request object, {alias: TensorInfo}) -> ({alias: np.ndarray}, ROW or COLUMNAR)."""
    has_rows, has_cols = "instances" in doc, "inputs" in doc
    if has_rows and has_cols:
        raise _bad(
            "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist"
        )
    if not (has_rows or has_cols):
        raise _bad("Missing 'inputs' or 'instances' key")
    names = sorted(input_infos)
    if has_rows:
        return _rows(doc["instances"], input_infos, names), ROW
    value = doc["inputs"]
    if not isinstance(value, dict) or _is_b64(value):
        if len(names) > 1:
            raise _bad(
                "inputs is a plain value/list, but expecting an object as multiple "
                "input tensors required as per tensorinfo_map"
            )
        return {names[0]: to_array(value, input_infos[names[0]].dtype)}, COLUMNAR
    out = {}
    for name in names:
        if name not in value:
            raise _bad(f"Missing named input: {name} in 'inputs' object.")
        out[name] = to_array(value[name], input_infos[name].dtype)
    return out, COLUMNAR


def _rows(rows, input_infos, names):
    if not isinstance(rows, list):
        raise _bad("Excepting 'instances' to be an list/array")
    if not rows:
        raise _bad("No values in 'instances' array")
    objects = isinstance(rows[0], dict) and not _is_b64(rows[0])
    if not objects and len(names) > 1:
        raise _bad(
            "instances is a plain list, but expecting list of objects as multiple "
            "input tensors required as per tensorinfo_map"
        )
    columns = {name: [] for name in names}
    for i, row in enumerate(rows):
        is_object = isinstance(row, dict) and not _is_b64(row)
        if is_object != objects:
            raise _bad(
                f"Expecting {'object' if objects else 'value/list'} but got "
                f"{'object' if is_object else 'list'} at item {i} of input list"
            )
        if not objects:
            columns[names[0]].append(row)
        elif sorted(row) != names:
            raise _bad(
                f"Failed to process element: {i} of 'instances' list. JSON object: "
                f"{json.dumps(row)} keys must be equal to: {','.join(names)}"
            )
        else:
            for name in names:
                columns[name].append(row[name])
    out = {}
    for name, values in columns.items():
        try:
            out[name] = to_array(values, input_infos[name].dtype)
        except ServingError as e:
            raise _bad(f"Failed to process 'instances' list, input {name}: {e}") from None
    return out


def _json_value(array, as_bytes):
    """np.ndarray (or a row of one) -> nested JSON lists."""
    array = np.asarray(array)
    if array.dtype != object and array.dtype.kind != "S":
        return array.tolist()

    def text(b):
        if as_bytes:
            return {"b64": base64.b64encode(b).decode("ascii")}
        return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)

    def walk(v):
        return [walk(x) for x in v] if isinstance(v, list) else text(v)

    return walk(array.tolist())


def _is_bytes_output(name, array):
    return name.endswith("_bytes") and (array.dtype == object or array.dtype.kind == "S")


def response_body(outputs, fmt):
    """{alias: np.ndarray} -> the response object for the request's format."""
    if not outputs:
        raise _bad("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if fmt == COLUMNAR:
        values = {
            n: _json_value(np.asarray(outputs[n]), _is_bytes_output(n, outputs[n])) for n in names
        }
        return {"outputs": values if len(names) > 1 else values[names[0]]}
    batch = None
    for name in names:
        array = np.asarray(outputs[name])
        if array.ndim == 0:
            raise _bad(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise _bad(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                f"expecting: {batch}"
            )
        batch = array.shape[0]
    rows = []
    for i in range(batch):
        row = {
            n: _json_value(np.asarray(outputs[n])[i], _is_bytes_output(n, outputs[n]))
            for n in names
        }
        rows.append(row if len(names) > 1 else row[names[0]])
    return {"predictions": rows}


def error_body(message):
    return {"error": message}
