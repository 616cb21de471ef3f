"""Turning timed cases into result rows, the table `apps.benchmark` prints, and the machine
description printed with every figure (CPU model + its vector/bf16 flags, load average)."""

import os
import platform
import sys

import keras
import keras_hub
import tensorflow as tf

from benchmarks import system
from benchmarks.cases import KERAS_HUB, OURS, TRANSFORMERS
from benchmarks.packing_case import PACKED, UNPACKED


def machine_info(peak_size):
    """CPU, versions, load average, and (peak_size > 0) the n^3 matmul FLOP/s peak."""
    info = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": system.cpu_info(),
        "cpu_count": os.cpu_count(),
        "load_average_start": list(os.getloadavg()),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
    }
    if peak_size:
        info["peak_matmul_size"] = peak_size
        info["peak_flops"] = {
            "float32": system.matmul_peak("float32", peak_size),
            "mixed_bfloat16": system.matmul_peak("bfloat16", peak_size),
        }
    return info


def load_text(values):
    return " / ".join(f"{v:.1f}" for v in values) + " (1 / 5 / 15 min)"


def _row(case, impl_name, m, precision, peak):
    impl = case.impls[impl_name]
    sec = m.median_seconds
    row = {
        "case": case.name,
        "precision": precision,
        "impl": impl_name,
        "unit": case.unit,
        "examples_per_sec": impl.examples_per_step / sec,
        "examples_per_sec_rounds": [impl.examples_per_step / s for s in m.seconds_per_step],
        "seconds_per_step": sec,
        "cpu_seconds_per_step": m.median_cpu_seconds,
        "tokens_per_sec": impl.tokens_per_step / sec if impl.tokens_per_step else None,
        "flops_per_step": impl.flops_per_step,
        "achieved_flops": impl.flops_per_step / sec if impl.flops_per_step else None,
        "fraction_of_peak": None,
        "peak_rss_mb": m.peak_rss_mb,
        "peak_rss_delta_mb": m.peak_rss_delta_mb,
        "ratio_vs_keras_hub": None,
        "ratio_vs_transformers": None,
        "notes": case.notes,
    }
    if row["achieved_flops"] and peak:
        row["fraction_of_peak"] = row["achieved_flops"] / peak
    return row


def _median(values):
    values = sorted(values)
    return values[len(values) // 2]


def _packing_ratios(case, results, by_impl):
    packed, unpacked = by_impl[PACKED], by_impl[UNPACKED]
    # per CPU-second too: on a loaded shared machine wall time swings, CPU time less
    per_cpu = (
        packed["tokens_per_sec"] * packed["seconds_per_step"] / packed["cpu_seconds_per_step"]
    ) / (
        unpacked["tokens_per_sec"] * unpacked["seconds_per_step"] / unpacked["cpu_seconds_per_step"]
    )
    # rounds of packed and unpacked are adjacent in time: their ratios share the load
    per_round = [
        (case.impls[PACKED].tokens_per_step / p) / (case.impls[UNPACKED].tokens_per_step / u)
        for p, u in zip(results[PACKED].seconds_per_step, results[UNPACKED].seconds_per_step)
    ]
    return {
        "packed_vs_unpacked_paired_round_median": _median(per_round),
        "padding": case.padding,
        "packed_vs_unpacked_real_tokens_per_sec": packed["tokens_per_sec"]
        / unpacked["tokens_per_sec"],
        "packed_vs_unpacked_real_tokens_per_cpu_sec": per_cpu,
    }


def _peer_ratios(results, by_impl, peer, key):
    """ours / peer: examples/s, the median of adjacent rounds' ratios (rounds are adjacent
    in time, so it is robust to load) and the CPU-time ratio; keys named after `key`."""
    ours, theirs = by_impl[OURS], by_impl[peer]
    paired = [
        a / b for a, b in zip(ours["examples_per_sec_rounds"], theirs["examples_per_sec_rounds"])
    ]
    prefix = "" if peer == KERAS_HUB else f"{key}_"  # keras-hub keeps its original names
    return {
        f"ratio_vs_{key}": ours["examples_per_sec"] / theirs["examples_per_sec"],
        f"{prefix}paired_round_ratio_median": _median(paired),
        f"cpu_time_ratio_vs_{key}": (
            results[peer].median_cpu_seconds / results[OURS].median_cpu_seconds
        ),
    }


def result_rows(case, precision, results, peak):
    """One row per implementation of `case` ({impl: timing.Measurement}), with the
    packed/unpacked, ours/keras-hub and ours/transformers ratios of the run added to every
    row."""
    rows = [_row(case, name, m, precision, peak) for name, m in results.items()]
    by_impl = {r["impl"]: r for r in rows}
    extra = {}
    if PACKED in by_impl and UNPACKED in by_impl:
        extra.update(_packing_ratios(case, results, by_impl))
    for peer, key in ((KERAS_HUB, "keras_hub"), (TRANSFORMERS, "transformers")):
        if OURS in by_impl and peer in by_impl:
            extra.update(_peer_ratios(results, by_impl, peer, key))
    for r in rows:
        r.update(extra)
    return rows


def _fmt(value, scale=1.0, digits=1):
    return "-" if value is None else f"{value / scale:.{digits}f}"


def print_table(rows):
    header = (
        f"{'case':17s} {'precision':15s} {'impl':12s} {'ex/s':>9s} {'tok/s':>9s} "
        f"{'GFLOP/s':>8s} {'%peak':>6s} {'RSS MB':>7s} {'ours/kh':>8s} {'cpu o/kh':>8s} "
        f"{'ours/hf':>8s}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        pct = None if r["fraction_of_peak"] is None else 100 * r["fraction_of_peak"]
        print(
            f"{r['case']:17s} {r['precision']:15s} {r['impl']:12s} "
            f"{_fmt(r['examples_per_sec'], digits=2):>9s} {_fmt(r['tokens_per_sec'], 1, 0):>9s} "
            f"{_fmt(r['achieved_flops'], 1e9):>8s} {_fmt(pct):>6s} "
            f"{_fmt(r['peak_rss_mb'], digits=0):>7s} "
            f"{_fmt(r['ratio_vs_keras_hub'], digits=2):>8s} "
            f"{_fmt(r.get('cpu_time_ratio_vs_keras_hub'), digits=2):>8s} "
            f"{_fmt(r.get('ratio_vs_transformers'), digits=2):>8s}"
        )
    sys.stdout.flush()


def print_packing_summary(case, row):
    print(
        f"packing: {case.notes}; real tokens/s packed / unpacked = "
        f"{row['packed_vs_unpacked_real_tokens_per_sec']:.2f}x (per CPU second: "
        f"{row['packed_vs_unpacked_real_tokens_per_cpu_sec']:.2f}x; median of adjacent "
        f"rounds: {row['packed_vs_unpacked_paired_round_median']:.2f}x)"
    )
