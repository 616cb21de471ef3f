"""Benchmarking helpers: interleaved A/B timing, analytic FLOP counts, peak RSS, matmul peak,
and the benchmark cases (bert-tf vs keras-hub) that `apps.benchmark` runs."""

from benchmarks.flops import encoder_flops, mlm_head_flops
from benchmarks.system import matmul_peak, peak_rss_mb, reset_peak_rss
from benchmarks.timing import Measurement, run_interleaved

__all__ = [
    "Measurement",
    "encoder_flops",
    "matmul_peak",
    "mlm_head_flops",
    "peak_rss_mb",
    "reset_peak_rss",
    "run_interleaved",
]
