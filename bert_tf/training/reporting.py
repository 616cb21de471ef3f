"""Progress lines (with an ETA) and TensorBoard scalars of a training run.

    step 200/1000 (20.0%) loss=2.3456 lr=9e-05 grad_norm=1.23 ex/s=120.5 eta=0:06:40

Scalars go to `log_dir/train` and `log_dir/eval`. In a multi-worker cluster only the chief
prints and writes.
"""

import datetime
import os

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

# What the trainer reports besides the objective's own metrics, shown at the end of a line.
_RUN_STATS = ("learning_rate", "grad_norm", "examples_per_second")


def fmt_duration(seconds):
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


def fmt_metrics(metrics):
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items())


def train_line(step, total_steps, metrics, eta_seconds):
    """One progress line for `metrics` (the objective's plus the run statistics)."""
    own = {k: v for k, v in metrics.items() if k not in _RUN_STATS}
    return (
        f"step {step}/{total_steps} ({100.0 * step / total_steps:.1f}%) "
        + fmt_metrics(own)
        + f" lr={metrics['learning_rate']:.3g} grad_norm={metrics['grad_norm']:.3g}"
        f" ex/s={metrics['examples_per_second']:.1f} eta={fmt_duration(eta_seconds)}"
    )


def ratios(acc, names):
    """{name: numerator / denominator} of the Trainer's accumulators [loss, examples, nums,
    dens, ...] (nan where a denominator is 0)."""
    m = len(names)
    return {
        name: float(acc[2 + i] / acc[2 + m + i]) if acc[2 + m + i] else float("nan")
        for i, name in enumerate(names)
    }


def train_metrics(acc, names, seconds, learning_rate):
    """The training line's metrics from the accumulators [loss sum, examples, nums, dens,
    grad-norm sum, steps] over `seconds`: mean loss and grad norm per step, ratios, examples/s."""
    count = acc[-1] or 1.0
    metrics = {"loss": float(acc[0] / count)}
    metrics.update(ratios(acc, names))
    metrics["learning_rate"] = learning_rate
    metrics["grad_norm"] = float(acc[2 + 2 * len(names)] / count)
    metrics["examples_per_second"] = float(acc[1] / seconds) if seconds > 0 else 0.0
    return metrics


def _scalar_metadata():
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"  # what TensorBoard's scalar dashboard reads
    return metadata.SerializeToString()


def write_scalar(name, value):
    """tf.summary.scalar without needing the tensorboard package installed."""
    tf.summary.write(name, tf.constant(float(value), tf.float32), metadata=_scalar_metadata())


class Reporter:
    """Prints progress lines with `progress_fn` and writes TensorBoard scalars under
    `log_dir` (None: no summaries), on the chief only."""

    def __init__(self, progress_fn, log_dir, is_chief):
        self.progress_fn = progress_fn
        self.log_dir = log_dir
        self.is_chief = is_chief
        self._writers = {}

    def progress(self, line):
        if self.progress_fn is not None and self.is_chief:
            self.progress_fn(line)

    def write(self, split, step, values):
        if self.log_dir is None or not self.is_chief:
            return
        if split not in self._writers:
            self._writers[split] = tf.summary.create_file_writer(os.path.join(self.log_dir, split))
        with self._writers[split].as_default(step=step):
            for name, value in values.items():
                write_scalar(name, value)

    def flush(self):
        for writer in self._writers.values():
            writer.flush()
