"""Runs serving_testbed/capi.py (TF Serving's C++ load path via the TF C API) in a FRESH
process that imports only tensorflow + tensorflow_text (+ tensorflow_serving's protos), never
project code, and returns its answers.

    run_capi([(saved_model_dir, signature, {input: numpy})]) -> [{output: numpy}]

A failed call is returned as {"__error__": "<one line>"}; signature "__warmup__" replays the
directory's assets.extra warm-up requests ({"replayed": n}).
"""

import os
import pickle
import subprocess
import sys
import tempfile

CAPI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "capi.py")


class CApiProcessError(RuntimeError):
    """The child process itself failed (not one of its calls)."""


def run_capi(jobs, timeout=600):
    jobs = [(os.path.abspath(d), sig, inputs) for d, sig, inputs in jobs]
    with tempfile.TemporaryDirectory() as tmp:
        jobs_file, out_file = os.path.join(tmp, "jobs.pkl"), os.path.join(tmp, "out.pkl")
        with open(jobs_file, "wb") as f:
            pickle.dump(jobs, f)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        proc = subprocess.run(
            [sys.executable, CAPI, "run", jobs_file, out_file],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode:
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            raise CApiProcessError(f"capi.py failed ({proc.returncode}): {tail}")
        with open(out_file, "rb") as f:
            out = pickle.load(f)
    if out["project_modules"]:
        raise CApiProcessError(
            f"the C API process imported project code: {out['project_modules'][:3]}"
        )
    return out["results"]
