"""One side of `benchmarks.parity`, run in its own process so that its time is the whole job
as a user waits for it (interpreter start, imports, data, model load, tracing, training,
evaluation):

    python -m benchmarks.parity_side {bert_tf,transformers} SPEC.json OUT.json

bert_tf: `bert_tf.finetune(FinetuneConfig(**spec["finetune"]))`, the per-epoch history of its
eval results out. transformers: benchmarks/parity_torch.py, the per-epoch predictions out.
"""

import json
import os
import sys
import time

from apps import process_exit

STARTED = time.perf_counter()  # before the heavy imports, which are part of the job


def run_bert_tf(spec):
    import bert_tf
    from apps import compile_cache  # noqa: F401  (before TF loads, as apps.finetune)
    from bert_tf.recipes.finetuning import STATE_FILE

    config = bert_tf.FinetuneConfig(**spec["finetune"])
    results = bert_tf.finetune(config, progress=lambda m: print(m, file=sys.stderr))
    with open(os.path.join(config.model_dir, STATE_FILE), encoding="utf-8") as f:
        state = json.load(f)
    return {
        "history": results["history"],
        "train_seconds": state.get("train_seconds"),
        "eval_seconds": sum(h.get("eval_seconds", 0.0) for h in state["history"]),
        "train_features": results["train_examples"],
    }


def run_transformers(spec):
    from benchmarks import parity_torch

    return parity_torch.run(spec, progress=lambda m: print(m, file=sys.stderr))


def main(argv):
    if len(argv) != 4 or argv[1] not in ("bert_tf", "transformers"):
        print(
            "usage: python -m benchmarks.parity_side {bert_tf,transformers} SPEC OUT",
            file=sys.stderr,
        )
        return 2
    with open(argv[2], encoding="utf-8") as f:
        spec = json.load(f)
    out = run_bert_tf(spec) if argv[1] == "bert_tf" else run_transformers(spec)
    out["process_seconds"] = time.perf_counter() - STARTED
    with open(argv[3], "w", encoding="utf-8") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["bert_tf"]:
        main = process_exit.skip_final_collection(main)  # the process ends as apps.finetune's
    sys.exit(main(sys.argv))
