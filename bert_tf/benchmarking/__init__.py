"""Benchmarking helpers: interleaved A/B timing, analytic FLOP counts, peak RSS, matmul peak,
and the benchmark cases (bert-tf vs keras-hub) that `apps.benchmark` runs."""

from bert_tf.benchmarking.flops import encoder_flops, mlm_head_flops
from bert_tf.benchmarking.system import matmul_peak, peak_rss_mb, reset_peak_rss
from bert_tf.benchmarking.timing import Measurement, run_interleaved
