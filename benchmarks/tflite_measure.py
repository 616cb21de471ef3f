"""TFLite parity/size/latency per task on real text with the real MiniLM encoder (README table).

    python -m benchmarks.tflite_measure --work_dir=/tmp/bert_tf_tflite [--texts=200]

For classify (the benchmarks.export_measure spam classifier), tag and squad (MiniLM encoder + seeded random
heads with a large scale, so the decoded entities/answers vary with the text): converts each
to float32, dynamic-range int8 and float16 .tflite and compares with the SavedModel's
serving_default graph (export.serving_graph, same weights) on real SMS: same labels /
entities / answers, max |probability/score difference|, file size, batch-1 latency (median).
Prints JSON.
"""

import argparse
import json
import os
import time

import numpy as np

TAG_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
QUESTIONS = ["what should i do ?", "when is it ?", "who is calling ?", "where are you ?"]


def _task_dir(path, task, seed=0, head_scale=30.0):
    import keras
    import bert_tf
    from demo_data import assets
    from bert_tf.model_dir import ModelDir
    keras.utils.set_random_seed(seed)
    src = assets.minilm_dir()
    encoder = bert_tf.load_encoder(src)
    if task["type"] == "tag":
        model = bert_tf.BertTagger(encoder, len(task["label_names"]))
    else:
        model = bert_tf.BertSpanQA(encoder)
    for w in model.trainable_weights:      # decisive heads: scale the random head weights
        if "encoder" not in w.path and len(w.shape) == 2:
            w.assign(w * head_scale)
    d = ModelDir(path)
    os.makedirs(path, exist_ok=True)
    d.copy_vocab(os.path.join(src, "vocab.txt"))
    d.save_weights(model)
    d.write_config(encoder.config, {"vocab_file": "vocab.txt", "lower_case": True,
                                    "seq_length": 128}, task, {"head": "random (measure)"})
    return model


def _reference(model_dir, model):
    from export.saved_model import read_model_dir
    from export.serving_graph import ServingModule
    config, vocab_file = read_model_dir(model_dir)
    return ServingModule(model, config["task"], vocab_file, True, 128).signatures()[
        "serving_default"]


def _compare(kind, ref, got):
    """-> (same decoded answer?, max abs diff of probabilities/scores)."""
    if kind == "classify":
        return (int(np.argmax(ref["probabilities"])) == int(got["label_id"][0]),
                float(np.abs(ref["probabilities"] - got["probabilities"][0]).max()))
    if kind == "tag":
        n = int(ref["num_entities"])
        same = (int(got["num_entities"][0]) == n and
                got["entity_start"][:n].tolist() == ref["entity_start"][:n].tolist() and
                got["entity_end"][:n].tolist() == ref["entity_end"][:n].tolist() and
                got["entity_type"][:n].tolist() == ref["entity_type"][:n].tolist() and
                got["entity_text"][:n].tolist() == ref["entity_text"][:n].tolist())
        diff = float(np.abs(got["entity_score"][:n] - ref["entity_score"][:n]).max()) \
            if same and n else 0.0
        return same, diff
    same = (int(got["answer_start"][0]) == int(ref["answer_start"]) and
            int(got["answer_end"][0]) == int(ref["answer_end"]) and
            got["answer"][0] == ref["answer"])
    return same, float(abs(got["score"][0] - ref["score"])) if same else 0.0


def measure_task(name, model_dir, model, inputs, work_dir, variants=("none", "dynamic",
                                                                      "float16")):
    """inputs: dict of equal-length lists of strings."""
    import tensorflow as tf
    from export.tflite import TFLiteModel, export_tflite
    kind = name
    ref_fn = _reference(model_dir, model)
    refs = []
    keys = list(inputs)
    n = len(inputs[keys[0]])
    for i in range(n):   # batch 1, as the TFLite graph (no padding in either)
        out = ref_fn(**{k: tf.constant(v[i:i + 1]) for k, v in inputs.items()})
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
            s, d = _compare(kind, refs[i], run(**{k: v[i] for k, v in inputs.items()}))
            same.append(s)
            diffs.append(d)
        one = {k: v[0] for k, v in inputs.items()}
        run(**one)
        times = []
        for _ in range(20):
            t = time.perf_counter()
            run(**one)
            times.append(time.perf_counter() - t)
        report[q] = {"bytes": size, "same_answers": f"{sum(same)}/{n}",
                     "max_abs_diff_same": float(max(diffs)),
                     "batch1_ms": 1000 * float(np.median(times))}
        print(name, q, report[q], flush=True)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work_dir", default="/tmp/bert_tf_tflite")
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--tasks", default="classify,tag,squad")
    parser.add_argument("--variants", default="none,dynamic,float16")
    parser.add_argument("--head_scale", type=float, default=30.0,
                        help="factor on the random tag/squad head weights")
    args = parser.parse_args(argv)
    from benchmarks.export_measure import build_classifier, load_sms
    os.makedirs(args.work_dir, exist_ok=True)
    texts, labels = load_sms()
    test = texts[1000:1000 + args.texts]
    report = {}
    for name in args.tasks.split(","):
        model_dir = os.path.join(args.work_dir, name)
        if name == "classify":
            model = build_classifier(model_dir, texts[:600], labels[:600])[0]
            inputs = {"text": test}
        elif name == "tag":
            model = _task_dir(model_dir, {"type": "tag", "label_names": TAG_LABELS},
                              head_scale=args.head_scale)
            inputs = {"text": test}
        else:
            model = _task_dir(model_dir, {"type": "squad", "max_answer_length": 30,
                                          "doc_stride": 64}, head_scale=args.head_scale)
            inputs = {"question": [QUESTIONS[i % 4] for i in range(len(test))],
                      "context": test}
        report[name] = measure_task(name, model_dir, model, inputs, args.work_dir,
                                    args.variants.split(","))
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
