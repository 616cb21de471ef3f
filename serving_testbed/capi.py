"""Loads a SavedModel the way TF Serving does, through TensorFlow's C API (test tooling).

`tensorflow_model_server` loads with the C++ `LoadSavedModel`: import the MetaGraph, run the
saver's restore op and the init op, then `Session::Run` the signature's tensors. The pip wheel
exports the same path as the C API in `libtensorflow_cc.so.2` (`TF_LoadSessionFromSavedModel`,
`TF_SessionRun`); this module drives it with ctypes. It never calls `tf.saved_model.load`.

`tensorflow_text` is imported first so its ops are registered in the process (TF Serving builds
link them in). This file imports no project code: run it in a fresh process.

    python serving_testbed/capi.py show DIR              signatures, inputs and outputs (JSON)
    python serving_testbed/capi.py run JOBS.pkl OUT.pkl  JOBS: [(dir, signature, {name: array})]
                                                         OUT: results + project_modules
    python serving_testbed/capi.py warmup DIR            replays assets.extra warm-up requests

Shape legend: N = number of elements of a tensor.
"""

import ctypes
import json
import os
import pickle
import sys

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the tf.text ops, as TF Serving builds do
from tensorflow.core.protobuf import meta_graph_pb2

_TF_STRING = 7
_TSTRING_SIZE = 24  # sizeof(TF_TString)
_DTYPES = {
    1: np.float32,
    2: np.float64,
    3: np.int32,
    4: np.uint8,
    5: np.int16,
    6: np.int8,
    9: np.int64,
    10: np.bool_,
    17: np.uint16,
    19: np.float16,
    22: np.uint32,
    23: np.uint64,
}
_TF_OF_NP = {np.dtype(v): k for k, v in _DTYPES.items()}


class CApiError(RuntimeError):
    """A TF_Status that is not OK: 'code N: message'."""


class _Output(ctypes.Structure):
    _fields_ = [("oper", ctypes.c_void_p), ("index", ctypes.c_int)]


class _Buffer(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("length", ctypes.c_size_t),
        ("data_deallocator", ctypes.c_void_p),
    ]


def _load_libraries():
    here = os.path.dirname(tf.__file__)
    mode = ctypes.RTLD_GLOBAL
    fw = ctypes.CDLL(os.path.join(here, "libtensorflow_framework.so.2"), mode=mode)
    cc = ctypes.CDLL(os.path.join(here, "libtensorflow_cc.so.2"), mode=mode)
    p, i, i64, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_size_t
    sigs = {
        (cc, "TF_NewStatus"): ([], p),
        (cc, "TF_DeleteStatus"): ([p], None),
        (cc, "TF_GetCode"): ([p], i),
        (cc, "TF_Message"): ([p], ctypes.c_char_p),
        (cc, "TF_NewGraph"): ([], p),
        (cc, "TF_DeleteGraph"): ([p], None),
        (cc, "TF_NewSessionOptions"): ([], p),
        (cc, "TF_DeleteSessionOptions"): ([p], None),
        (cc, "TF_NewBuffer"): ([], ctypes.POINTER(_Buffer)),
        (cc, "TF_DeleteBuffer"): ([ctypes.POINTER(_Buffer)], None),
        (cc, "TF_LoadSessionFromSavedModel"): (
            [
                p,
                p,
                ctypes.c_char_p,
                ctypes.POINTER(ctypes.c_char_p),
                i,
                p,
                ctypes.POINTER(_Buffer),
                p,
            ],
            p,
        ),
        (cc, "TF_GraphOperationByName"): ([p, ctypes.c_char_p], p),
        (cc, "TF_SessionRun"): (
            [
                p,
                p,
                ctypes.POINTER(_Output),
                ctypes.POINTER(p),
                i,
                ctypes.POINTER(_Output),
                ctypes.POINTER(p),
                i,
                p,
                i,
                p,
                p,
            ],
            None,
        ),
        (cc, "TF_CloseSession"): ([p, p], None),
        (cc, "TF_DeleteSession"): ([p, p], None),
        (cc, "TF_StringInit"): ([p], None),
        (cc, "TF_StringCopy"): ([p, ctypes.c_char_p, sz], None),
        (cc, "TF_StringGetDataPointer"): ([p], p),
        (cc, "TF_StringGetSize"): ([p], sz),
        (fw, "TF_AllocateTensor"): ([i, ctypes.POINTER(i64), i, sz], p),
        (fw, "TF_DeleteTensor"): ([p], None),
        (fw, "TF_TensorData"): ([p], p),
        (fw, "TF_TensorByteSize"): ([p], sz),
        (fw, "TF_TensorType"): ([p], i),
        (fw, "TF_NumDims"): ([p], i),
        (fw, "TF_Dim"): ([p, i], i64),
        (fw, "TF_TensorElementCount"): ([p], i64),
    }
    for (lib, name), (argtypes, restype) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = argtypes, restype
    return fw, cc


_FW, _CC = _load_libraries()


def _check(status, what):
    code = _CC.TF_GetCode(status)
    if code:
        msg = (_CC.TF_Message(status) or b"").decode("utf-8", "replace")
        raise CApiError(f"{what}: code {code}: {msg}")


def _tensor_from_numpy(array):
    """numpy array -> a new TF_Tensor* (caller deletes). Strings become TF_TStrings."""
    array = np.asarray(array)
    dims = (ctypes.c_int64 * max(array.ndim, 1))(*array.shape)
    if array.dtype.kind in "OSU":
        flat = [x if isinstance(x, bytes) else str(x).encode("utf-8") for x in array.ravel()]
        t = _FW.TF_AllocateTensor(_TF_STRING, dims, array.ndim, _TSTRING_SIZE * len(flat))
        base = _FW.TF_TensorData(t)
        for n, value in enumerate(flat):  # N TF_TStrings, in place
            slot = base + n * _TSTRING_SIZE
            _CC.TF_StringInit(slot)
            _CC.TF_StringCopy(slot, value, len(value))
        return t
    if array.dtype not in _TF_OF_NP:
        raise CApiError(f"unsupported input dtype {array.dtype}")
    array = np.ascontiguousarray(array)
    t = _FW.TF_AllocateTensor(_TF_OF_NP[array.dtype], dims, array.ndim, array.nbytes)
    ctypes.memmove(_FW.TF_TensorData(t), array.ctypes.data, array.nbytes)
    return t


def _tensor_to_numpy(t):
    shape = tuple(_FW.TF_Dim(t, d) for d in range(_FW.TF_NumDims(t)))
    dtype = _FW.TF_TensorType(t)
    base = _FW.TF_TensorData(t)
    if dtype == _TF_STRING:
        n = _FW.TF_TensorElementCount(t)
        out = np.empty(n, dtype=object)
        for k in range(n):
            slot = base + k * _TSTRING_SIZE
            out[k] = ctypes.string_at(_CC.TF_StringGetDataPointer(slot), _CC.TF_StringGetSize(slot))
        return out.reshape(shape)
    if dtype not in _DTYPES:
        raise CApiError(f"unsupported output dtype enum {dtype}")
    size = _FW.TF_TensorByteSize(t)
    return np.frombuffer(ctypes.string_at(base, size), _DTYPES[dtype]).reshape(shape).copy()


class CApiSavedModel:
    """A SavedModel loaded with TF_LoadSessionFromSavedModel (tags: serve)."""

    def __init__(self, export_dir, tags=("serve",)):
        self.export_dir = export_dir
        status = _CC.TF_NewStatus()
        opts = _CC.TF_NewSessionOptions()
        meta = _CC.TF_NewBuffer()
        self._graph = _CC.TF_NewGraph()
        try:
            tag_array = (ctypes.c_char_p * len(tags))(*[t.encode() for t in tags])
            self._session = _CC.TF_LoadSessionFromSavedModel(
                opts, None, export_dir.encode(), tag_array, len(tags), self._graph, meta, status
            )
            _check(status, f"{export_dir}: TF_LoadSessionFromSavedModel")
            self.meta_graph = meta_graph_pb2.MetaGraphDef.FromString(
                ctypes.string_at(meta.contents.data, meta.contents.length)
            )
        finally:
            _CC.TF_DeleteBuffer(meta)
            _CC.TF_DeleteSessionOptions(opts)
            _CC.TF_DeleteStatus(status)

    def signatures(self):
        """{signature: {"inputs": {name: [dtype, shape]}, "outputs": {...}}}."""

        def describe(infos):
            return {
                k: [
                    tf.dtypes.as_dtype(v.dtype).name if v.dtype else None,
                    None if v.tensor_shape.unknown_rank else [d.size for d in v.tensor_shape.dim],
                ]
                for k, v in infos.items()
            }

        return {
            name: {"inputs": describe(s.inputs), "outputs": describe(s.outputs)}
            for name, s in self.meta_graph.signature_def.items()
            if not name.startswith("__")
        }  # __saved_model_init_op: not callable

    def _output(self, tensor_name):
        op_name, _, index = tensor_name.partition(":")
        op = _CC.TF_GraphOperationByName(self._graph, op_name.encode())
        if not op:
            raise CApiError(f"{self.export_dir}: no operation {op_name!r} in the graph")
        return _Output(op, int(index or 0))

    def run(self, signature_name, inputs):
        """{input name: numpy array} -> {output name: numpy array} via TF_SessionRun."""
        if signature_name not in self.meta_graph.signature_def:
            raise CApiError(
                f"no signature {signature_name!r} (have {sorted(self.meta_graph.signature_def)})"
            )
        sig = self.meta_graph.signature_def[signature_name]
        if set(inputs) != set(sig.inputs):
            raise CApiError(
                f"{signature_name}: inputs {sorted(inputs)}, expected {sorted(sig.inputs)}"
            )
        in_names, out_names = sorted(inputs), sorted(sig.outputs)
        feeds = (_Output * len(in_names))(*[self._output(sig.inputs[k].name) for k in in_names])
        fetches = (_Output * len(out_names))(
            *[self._output(sig.outputs[k].name) for k in out_names]
        )
        values = [_tensor_from_numpy(inputs[k]) for k in in_names]
        in_values = (ctypes.c_void_p * len(values))(*values)
        out_values = (ctypes.c_void_p * len(out_names))()
        status = _CC.TF_NewStatus()
        try:
            _CC.TF_SessionRun(
                self._session,
                None,
                feeds,
                in_values,
                len(values),
                fetches,
                out_values,
                len(out_names),
                None,
                0,
                None,
                status,
            )
            _check(status, f"{signature_name}: TF_SessionRun")
            return {k: _tensor_to_numpy(out_values[n]) for n, k in enumerate(out_names)}
        finally:
            for t in values + [v for v in out_values if v]:
                _FW.TF_DeleteTensor(t)
            _CC.TF_DeleteStatus(status)

    def close(self):
        status = _CC.TF_NewStatus()
        _CC.TF_CloseSession(self._session, status)
        _CC.TF_DeleteSession(self._session, status)
        _CC.TF_DeleteGraph(self._graph)
        _CC.TF_DeleteStatus(status)


def warmup_requests(export_dir):
    """[(signature name, {input: numpy})] of assets.extra/tf_serving_warmup_requests
    (PredictLog records, as TF Serving replays them at load)."""
    from tensorflow_serving.apis import prediction_log_pb2  # optional: only for warm-up

    path = os.path.join(export_dir, "assets.extra", "tf_serving_warmup_requests")
    out = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(record)
        if log.WhichOneof("log_type") != "predict_log":
            raise CApiError(f"{path}: unsupported warm-up record {log.WhichOneof('log_type')}")
        req = log.predict_log.request
        out.append(
            (
                req.model_spec.signature_name or "serving_default",
                {k: tf.make_ndarray(v) for k, v in req.inputs.items()},
            )
        )
    return out


def run_jobs(jobs):
    """[(dir, signature, inputs)] -> [outputs dict or {"__error__": message}]; one load per
    dir; signature "__warmup__" replays the dir's warm-up requests (-> {"replayed": n})."""
    models, results = {}, []
    for export_dir, signature, inputs in jobs:
        try:
            if export_dir not in models:
                models[export_dir] = CApiSavedModel(export_dir)
            model = models[export_dir]
            if signature == "__warmup__":
                requests = warmup_requests(export_dir)
                for name, feed in requests:
                    model.run(name, feed)
                results.append({"replayed": np.int64(len(requests))})
            else:
                results.append(model.run(signature, inputs))
        except CApiError as e:
            results.append({"__error__": str(e).splitlines()[0]})
    return results


def main(argv):
    if len(argv) == 2 and argv[0] == "show":
        print(json.dumps(CApiSavedModel(argv[1]).signatures(), indent=1))
    elif len(argv) == 3 and argv[0] == "run":
        with open(argv[1], "rb") as f:
            jobs = pickle.load(f)
        results = run_jobs(jobs)
        project = sorted(m for m in sys.modules if m.split(".")[0] in ("bert_tf", "export", "apps"))
        with open(argv[2], "wb") as f:
            pickle.dump({"results": results, "project_modules": project}, f)
    elif len(argv) == 2 and argv[0] == "warmup":
        print(json.dumps(run_jobs([(argv[1], "__warmup__", None)])[0], default=int))
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
