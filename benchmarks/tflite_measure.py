"""TFLite parity/size/latency per task on real text with the real MiniLM encoder (README table).

    python -m benchmarks.tflite_measure --work_dir=/tmp/bert_tf_tflite [--texts=200]

For classify (the benchmarks.export_measure spam classifier), tag, squad and multiple_choice
(MiniLM encoder + seeded random heads with a large scale, so the decoded entities / answers /
choices vary with the text): converts each
to float32, dynamic-range int8 and float16 .tflite and compares with the SavedModel's
serving_default graph (export.serving.module, same weights) on real SMS: same labels /
entities / answers / choices, max |probability/score difference|, file size, batch-1 latency
(median), with the CPU model, its SIMD flags and the load average. Prints JSON.
"""

import argparse
import json
import os
import re
import time

import keras
import numpy as np
import tensorflow as tf

import bert_tf
from benchmarks.export_measure import build_classifier, load_sms
from bert_tf.model_dir import ModelDir
from demo_data import assets
from export.saved_model import read_model_dir
from export.serving.module import ServingModule
from export.tflite import TFLiteModel, export_tflite

TAG_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
QUESTIONS = ["what should i do ?", "when is it ?", "who is calling ?", "where are you ?"]
NUM_CHOICES = 4
HEADS = {
    "tag": lambda encoder, task: bert_tf.BertTagger(encoder, len(task["label_names"])),
    "squad": lambda encoder, task: bert_tf.BertSpanQA(encoder),
    "multiple_choice": lambda encoder, task: bert_tf.BertMultipleChoice(encoder),
}


def machine():
    """CPU model, its SIMD flags (avx*, fma, amx*) and the 1/5/15-minute load averages."""
    model, flags, ids = "?", set(), {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key = line.split(":", 1)[0].strip()
            if key == "model name" and model == "?":
                model = line.split(":", 1)[1].strip()
            elif key in ("cpu family", "model") and key not in ids:
                ids[key] = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags |= {
                    x
                    for x in line.split(":", 1)[1].split()
                    if re.match(r"(avx|fma|amx|f16c|sse4)", x)
                }
    return {
        "cpu": model,
        **ids,
        "cores": os.cpu_count(),
        "flags": sorted(flags),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _task_dir(path, task, seed=0, head_scale=30.0):
    keras.utils.set_random_seed(seed)
    src = assets.minilm_dir()
    encoder = bert_tf.load_encoder(src)
    model = HEADS[task["type"]](encoder, task)
    for w in model.trainable_weights:  # decisive heads: scale the random head weights
        if "encoder" not in w.path and len(w.shape) == 2:
            w.assign(w * head_scale)
    d = ModelDir(path)
    os.makedirs(path, exist_ok=True)
    d.copy_vocab(os.path.join(src, "vocab.txt"))
    d.save_weights(model)
    d.write_config(
        encoder.config,
        {"vocab_file": "vocab.txt", "lower_case": True, "seq_length": 128},
        task,
        {"head": "random (measure)"},
    )
    return model


def _reference(model_dir, model):
    config, vocab_file = read_model_dir(model_dir)
    module = ServingModule(model, config["task"], vocab_file, True, 128)
    module.max_request_tokens = 10_000 * 128  # long texts: many windows in one request
    return module.signatures()["serving_default"]


def _compare(kind, ref, got):
    """-> (same decoded answer?, max abs diff of probabilities/scores)."""
    if kind == "classify":
        return (
            int(np.argmax(ref["probabilities"])) == int(got["label_id"][0]),
            float(np.abs(ref["probabilities"] - got["probabilities"][0]).max()),
        )
    if kind == "multiple_choice":
        return (
            int(ref["choice"]) == int(got["choice"][0]),
            float(np.abs(ref["probabilities"] - got["probabilities"]).max()),
        )
    if kind == "tag":
        n = int(ref["num_entities"])
        same = (
            int(got["num_entities"][0]) == n
            and got["entity_start"][:n].tolist() == ref["entity_start"][:n].tolist()
            and got["entity_end"][:n].tolist() == ref["entity_end"][:n].tolist()
            and got["entity_type"][:n].tolist() == ref["entity_type"][:n].tolist()
            and got["entity_text"][:n].tolist() == ref["entity_text"][:n].tolist()
        )
        diff = (
            float(np.abs(got["entity_score"][:n] - ref["entity_score"][:n]).max())
            if same and n
            else 0.0
        )
        return same, diff
    same = (
        int(got["answer_start"][0]) == int(ref["answer_start"])
        and int(got["answer_end"][0]) == int(ref["answer_end"])
        and got["answer"][0] == ref["answer"]
    )
    return same, float(abs(got["score"][0] - ref["score"])) if same else 0.0


def measure_task(name, model_dir, model, inputs, work_dir, variants=("none", "dynamic", "float16")):
    """inputs: dict of equal-length lists (of strings, or of choice lists)."""
    kind = name
    ref_fn = _reference(model_dir, model)
    refs = []
    keys = list(inputs)
    n = len(inputs[keys[0]])
    for i in range(n):  # batch 1, as the TFLite graph (no padding in either)
        out = ref_fn(**{k: tf.constant(v[i : i + 1]) for k, v in inputs.items()})
        out = {k: v.numpy() for k, v in out.items()}
        for j in range(len(next(iter(out.values())))):
            refs.append({k: v[j] for k, v in out.items()})
    report = {}
    for q in variants:
        path = os.path.join(work_dir, f"{name}_{q}.tflite")
        size = export_tflite(model_dir, path, q, model=model)
        run = TFLiteModel(path)
        same, diffs = [], []
        for i in range(n):
            s, d = _compare(kind, refs[i], run.row({k: v[i] for k, v in inputs.items()}))
            same.append(s)
            diffs.append(d)
        one = {k: v[0] for k, v in inputs.items()}
        run.row(one)
        times = []
        for _ in range(20):
            t = time.perf_counter()
            run.row(one)
            times.append(time.perf_counter() - t)
        report[q] = {
            "bytes": size,
            "same_answers": f"{sum(same)}/{n}",
            "max_abs_diff_same": float(max(diffs)),
            "batch1_ms": 1000 * float(np.median(times)),
        }
        print(name, q, report[q], flush=True)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work_dir", default="/tmp/bert_tf_tflite")
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--tasks", default="classify,tag,squad,multiple_choice")
    parser.add_argument("--variants", default="none,dynamic,float16")
    parser.add_argument(
        "--join",
        type=int,
        default=1,
        help="classify/tag: join this many consecutive SMS into one text "
        "(long inputs, read in windows; --texts SMS give texts / join)",
    )
    parser.add_argument(
        "--head_scale", type=float, default=30.0, help="factor on the random tag/squad head weights"
    )
    args = parser.parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    texts, labels = load_sms()
    test = texts[1000 : 1000 + args.texts]
    long_test = [" ".join(test[i : i + args.join]) for i in range(0, len(test), args.join)]
    report = {"machine_before": machine()}
    print(report, flush=True)
    for name in args.tasks.split(","):
        model_dir = os.path.join(args.work_dir, name)
        if name == "classify":
            model = build_classifier(model_dir, texts[:600], labels[:600])[0]
            inputs = {"text": long_test}
        elif name == "tag":
            model = _task_dir(
                model_dir, {"type": "tag", "label_names": TAG_LABELS}, head_scale=args.head_scale
            )
            inputs = {"text": long_test}
        elif name == "multiple_choice":
            # context: an SMS; choices: the next NUM_CHOICES held-out SMS after it
            model = _task_dir(
                model_dir,
                {"type": "multiple_choice", "num_choices": NUM_CHOICES},
                head_scale=args.head_scale,
            )
            pool = texts[1000 : 1000 + args.texts + NUM_CHOICES]
            inputs = {
                "context": test,
                "choices": [pool[i + 1 : i + 1 + NUM_CHOICES] for i in range(len(test))],
            }
        else:
            model = _task_dir(
                model_dir,
                {"type": "squad", "max_answer_length": 30, "doc_stride": 64},
                head_scale=args.head_scale,
            )
            inputs = {"question": [QUESTIONS[i % 4] for i in range(len(test))], "context": test}
        report[name] = measure_task(
            name, model_dir, model, inputs, args.work_dir, args.variants.split(",")
        )
    report["machine_after"] = machine()
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
