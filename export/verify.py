"""Checks that an exported SavedModel is self-contained, in a FRESH Python process.

    python -m export.verify --saved_model=BASE/NAME/1 [--text="some text" ...]

The child process imports only `tensorflow` and `tensorflow_text` (plus the standard library),
never project code: it lists every op of the SavedModel (graph + function library), proves each
is a TF core op (registered before tf.text is imported) or a tf.text op (registered by importing
tensorflow_text), rejects py_function ops, then runs the given requests and writes the outputs
to a .npz file. It also loads the SavedModel the way TF Serving does (restore op + init op, then
Session.run of the signatures' tensors, via tf.compat.v1.saved_model.loader) and reports that
path's errors and its max |difference| to the Python loader ("session_loader").
"""

import argparse
import json
import sys

# the library names callers import from here (export/serving/verify.py holds them)
from export.serving.verify import PY_FUNC_OPS, encode_strings, run_fresh, run_fresh_many

__all__ = ["PY_FUNC_OPS", "encode_strings", "main", "run_fresh", "run_fresh_many"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saved_model", required=True, help="a version dir BASE/NAME/<N>")
    parser.add_argument("--text", action="append", default=[], help="a text to classify/tag")
    # the absl apps' full-help flag, so `--helpfull` works on every command (exit status 0)
    parser.add_argument("--helpfull", action="help", help="the same as --help")
    args = parser.parse_args(argv)
    requests = [{"inputs": {"text": args.text}}] if args.text else []
    report, outputs = run_fresh(args.saved_model, requests)
    report["outputs"] = [{k: v.tolist() for k, v in o.items()} for o in outputs]
    ok = (
        not report["unknown_ops"]
        and not report["project_modules"]
        and not (set(PY_FUNC_OPS) & set(report["core_ops"]))
        and not report["session_loader"]["errors"]
    )
    print(json.dumps(report, indent=1, default=lambda b: b.decode("utf-8", "replace")))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
