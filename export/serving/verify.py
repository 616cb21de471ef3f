"""Runs exported SavedModels in a FRESH Python process that imports only `tensorflow` and
`tensorflow_text` (what the check is: export/verify.py, `python -m export.verify`).

run_fresh_many / run_fresh hand the jobs to the child script `_CHILD` (op inventory, Python
loader, TF Serving's session loader) and read back its report and the outputs (.npz).
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

PY_FUNC_OPS = ("PyFunc", "PyFuncStateless", "EagerPyFunc")

_CHILD = r'''
import json, os, sys
import numpy as np
jobs_file, out_file = sys.argv[1:3]
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

with open(jobs_file) as f:
    jobs = json.load(f)


def to_bytes(v):   # latin-1 str (nested lists for [B, C] inputs) -> bytes
    return [to_bytes(x) if isinstance(x, list) else x.encode("latin-1") for x in v]


def feed_value(req, k, v):
    if req.get("dtypes", {}).get(k, "string") == "string":
        return (to_bytes(v) if v else
                np.zeros(req.get("empty_shapes", {}).get(k, [0]), dtype=object))
    return np.asarray(v, np.int32) if v else np.zeros([0, 2], np.int32)


def session_loader_check(job, results, j):
    """TF Serving's load path (restore op + init op, then Session.run of the signature's
    tensors): errors, and the max |difference| to the Python loader's outputs."""
    errors, diff = [], 0.0
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], job["path"])
        for i, req in enumerate(job["requests"]):
            sig = meta.signature_def[req["signature"]]
            feed = {sig.inputs[k].name: feed_value(req, k, v) for k, v in req["inputs"].items()}
            try:
                out = sess.run({k: v.name for k, v in sig.outputs.items()}, feed)
            except Exception as e:  # reported: compared with the Python loader's answer
                if f"{j}/{i}/__error__" not in results:
                    errors.append(str(e).strip().splitlines()[0])
                continue
            for k, v in out.items():
                ref = results.get(f"{j}/{i}/{k}")
                if ref is None or getattr(ref, "dtype", None) is None:
                    errors.append(f"{req['signature']}: output {k} only under the session")
                elif ref.dtype.kind in "fc":
                    diff = max(diff, float(np.max(np.abs(v - ref), initial=0.0)))
                elif not np.array_equal(v, ref):
                    errors.append(f"{req['signature']}: output {k} differs from the Python loader")
    return {"errors": errors, "max_abs_diff": diff}
ops_per_job = []
for job in jobs:
    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(job["path"], "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    ops = set()
    for mg in sm.meta_graphs:
        ops.update(n.op for n in mg.graph_def.node)
        for fn in mg.graph_def.library.function:
            ops.update(n.op for n in fn.node_def)
    ops_per_job.append(ops)
core = [sorted(o for o in ops if op_def_registry.get(o) is not None) for ops in ops_per_job]
import tensorflow_text  # registers the tf.text ops
reports, results = [], {}
for j, job in enumerate(jobs):
    ops = ops_per_job[j]
    text_ops = sorted(o for o in ops if o not in core[j] and op_def_registry.get(o) is not None)
    loaded = tf.saved_model.load(job["path"])
    for i, req in enumerate(job["requests"]):
        fn = loaded.signatures[req["signature"]]
        inputs = {}
        for k, v in req["inputs"].items():
            if req.get("dtypes", {}).get(k, "string") == "string":
                inputs[k] = tf.constant(to_bytes(v), tf.string) if v \
                    else tf.zeros(req.get("empty_shapes", {}).get(k, [0]), tf.string)
            else:
                inputs[k] = tf.constant(v, tf.int32) if v else tf.zeros([0, 2], tf.int32)
        try:
            for k, v in fn(**inputs).items():
                results[f"{j}/{i}/{k}"] = v.numpy()
        except Exception as e:  # reported, not raised: the caller decides what is an error
            results[f"{j}/{i}/__error__"] = str(e).strip().splitlines()[0]
    session = session_loader_check(job, results, j)
    reports.append({"core_ops": core[j], "text_ops": text_ops, "session_loader": session,
                    "unknown_ops": sorted(ops - set(core[j]) - set(text_ops)),
                    "signatures": sorted(loaded.signatures.keys())})
project = sorted(m for m in sys.modules if m.split(".")[0] in ("bert_tf", "export", "apps"))
for r in reports:
    r["project_modules"] = project
np.savez(out_file, **{k: (np.asarray(v, dtype=object) if isinstance(v, str) else v)
                      for k, v in results.items()})
print(json.dumps(reports))
'''


def encode_strings(values):
    """bytes/str (nested lists too) -> latin-1 str, so arbitrary bytes (invalid UTF-8 too)
    survive JSON."""
    return [
        encode_strings(v)
        if isinstance(v, (list, tuple))
        else (v if isinstance(v, bytes) else v.encode("utf-8")).decode("latin-1")
        for v in values
    ]


def _is_strings(v):
    while isinstance(v, (list, tuple)) and len(v):
        v = v[0]
    return isinstance(v, (str, bytes))


def _encode_requests(requests):
    reqs = []
    for r in requests:
        inputs, dtypes = {}, {}
        for k, v in r["inputs"].items():
            if not isinstance(v, np.ndarray):  # rows of a [B, C] input may be arrays
                v = [x.tolist() if isinstance(x, np.ndarray) else x for x in v]
            if (isinstance(v, np.ndarray) and v.dtype.kind in "iu") or (
                len(v) and not _is_strings(v)
            ):
                inputs[k] = np.asarray(v).tolist()
                dtypes[k] = "int32"
            else:
                inputs[k] = encode_strings(v)
        reqs.append(
            {
                "signature": r.get("signature", "serving_default"),
                "inputs": inputs,
                "dtypes": dtypes,
                "empty_shapes": r.get("empty_shapes", {}),
            }
        )
    return reqs


def run_fresh_many(jobs, timeout=600):
    """Like run_fresh for several SavedModels in ONE fresh process.

    jobs: {key: (saved_model_dir, requests)} -> {key: (report, outputs)}."""
    keys = list(jobs)
    payload = [
        {"path": os.path.abspath(jobs[k][0]), "requests": _encode_requests(jobs[k][1])}
        for k in keys
    ]
    with tempfile.TemporaryDirectory() as tmp:
        jobs_file = os.path.join(tmp, "jobs.json")
        out_file = os.path.join(tmp, "outputs.npz")
        with open(jobs_file, "w") as f:
            json.dump(payload, f)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, jobs_file, out_file],
            capture_output=True,
            text=True,
            cwd=tmp,
            env=env,
            timeout=timeout,
        )
        if proc.returncode:
            tail = proc.stderr.strip().splitlines()[-3:]
            raise RuntimeError(f"fresh process failed ({proc.returncode}): {' | '.join(tail)}")
        reports = json.loads(proc.stdout.strip().splitlines()[-1])
        data = np.load(out_file, allow_pickle=True)
        outputs = [[{} for _ in job["requests"]] for job in payload]
        for name in data.files:
            j, i, out_name = name.split("/", 2)
            outputs[int(j)][int(i)][out_name] = data[name]
    return {k: (reports[n], outputs[n]) for n, k in enumerate(keys)}


def run_fresh(saved_model_dir, requests, timeout=600):
    """Runs `requests` ([{"signature": name, "inputs": {name: list}}]) in a fresh process.
    An empty string input is [0]-shaped unless the request's "empty_shapes" gives its shape.

    String inputs may be str or bytes. Returns (report dict, [outputs dict per request])."""
    return run_fresh_many({0: (saved_model_dir, requests)}, timeout)[0]
