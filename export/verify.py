"""Checks that an exported SavedModel is self-contained, in a FRESH Python process.

    python -m export.verify --saved_model=BASE/NAME/1 [--text="some text" ...]

The child process imports only `tensorflow` and `tensorflow_text` (plus the standard library),
never project code: it lists every op of the SavedModel (graph + function library), proves each
is a TF core op (registered before tf.text is imported) or a tf.text op (registered by importing
tensorflow_text), rejects py_function ops, then runs the given requests and writes the outputs
to a .npz file. This is what a TF Serving build with the tf.text ops does.
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
jobs_file, out_file = sys.argv[1:3]
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

with open(jobs_file) as f:
    jobs = json.load(f)
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
                inputs[k] = tf.constant([s.encode("latin-1") for s in v], tf.string) if v \
                    else tf.zeros([0], tf.string)
            else:
                inputs[k] = tf.constant(v, tf.int32) if v else tf.zeros([0, 2], tf.int32)
        try:
            for k, v in fn(**inputs).items():
                results[f"{j}/{i}/{k}"] = v.numpy()
        except Exception as e:  # reported, not raised: the caller decides what is an error
            results[f"{j}/{i}/__error__"] = str(e).strip().splitlines()[0]
    reports.append({"core_ops": core[j], "text_ops": text_ops,
                    "unknown_ops": sorted(ops - set(core[j]) - set(text_ops)),
                    "signatures": sorted(loaded.signatures.keys())})
project = sorted(m for m in sys.modules if m.split(".")[0] in ("bert_tf", "export", "apps"))
for r in reports:
    r["project_modules"] = project
import numpy as np
np.savez(out_file, **{k: (np.asarray(v, dtype=object) if isinstance(v, str) else v)
                      for k, v in results.items()})
print(json.dumps(reports))
'''


def encode_strings(values):
    """bytes/str -> latin-1 str, so arbitrary bytes (invalid UTF-8 too) survive JSON."""
    return [(v if isinstance(v, bytes) else v.encode("utf-8")).decode("latin-1")
            for v in values]


def _encode_requests(requests):
    reqs = []
    for r in requests:
        inputs, dtypes = {}, {}
        for k, v in r["inputs"].items():
            if (isinstance(v, np.ndarray) and v.dtype.kind in "iu") or (
                    len(v) and not isinstance(v[0], (str, bytes))):
                inputs[k] = np.asarray(v).tolist()
                dtypes[k] = "int32"
            else:
                inputs[k] = encode_strings(v)
        reqs.append({"signature": r.get("signature", "serving_default"), "inputs": inputs,
                     "dtypes": dtypes})
    return reqs


def run_fresh_many(jobs, timeout=600):
    """Like run_fresh for several SavedModels in ONE fresh process.

    jobs: {key: (saved_model_dir, requests)} -> {key: (report, outputs)}."""
    keys = list(jobs)
    payload = [{"path": os.path.abspath(jobs[k][0]), "requests": _encode_requests(jobs[k][1])}
               for k in keys]
    with tempfile.TemporaryDirectory() as tmp:
        jobs_file = os.path.join(tmp, "jobs.json")
        out_file = os.path.join(tmp, "outputs.npz")
        with open(jobs_file, "w") as f:
            json.dump(payload, f)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        proc = subprocess.run([sys.executable, "-c", _CHILD, jobs_file, out_file],
                              capture_output=True, text=True, cwd=tmp, env=env,
                              timeout=timeout)
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

    String inputs may be str or bytes. Returns (report dict, [outputs dict per request])."""
    return run_fresh_many({0: (saved_model_dir, requests)}, timeout)[0]


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saved_model", required=True, help="a version dir BASE/NAME/<N>")
    parser.add_argument("--text", action="append", default=[], help="a text to classify/tag")
    args = parser.parse_args(argv)
    requests = [{"inputs": {"text": args.text}}] if args.text else []
    report, outputs = run_fresh(args.saved_model, requests)
    report["outputs"] = [{k: v.tolist() for k, v in o.items()} for o in outputs]
    ok = not report["unknown_ops"] and not report["project_modules"] and not (
        set(PY_FUNC_OPS) & set(report["core_ops"]))
    print(json.dumps(report, indent=1, default=lambda b: b.decode("utf-8", "replace")))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
