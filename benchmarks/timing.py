"""Interleaved A/B timing: rounds alternate between implementations so that load from other
processes on a shared machine hits all of them alike; medians and ratios are what to quote."""

import dataclasses
import resource
import statistics
import time

from benchmarks import system


@dataclasses.dataclass
class Measurement:
    """Per-implementation results of one case: seconds per step of each round, peak RSS."""

    name: str
    seconds_per_step: list = dataclasses.field(default_factory=list)
    cpu_seconds_per_step: list = dataclasses.field(default_factory=list)
    peak_rss_mb: float = 0.0
    peak_rss_delta_mb: float = 0.0

    @property
    def median_seconds(self):
        return statistics.median(self.seconds_per_step)

    @property
    def median_cpu_seconds(self):
        """Process CPU time (all threads) per step: less sensitive to other processes' load
        than wall time, but blind to how well a step spreads over the cores."""
        return statistics.median(self.cpu_seconds_per_step)


def cpu_time():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sync(value):
    """Waits for a step by fetching a scalar (never a large output)."""
    if hasattr(value, "numpy"):
        value.numpy()
    return value


def steps_for(step_fn, round_seconds):
    """How many steps fill about `round_seconds` (times one step after warm-up)."""
    start = time.perf_counter()
    _sync(step_fn())
    elapsed = max(time.perf_counter() - start, 1e-6)
    return max(1, int(round(round_seconds / elapsed)))


def run_interleaved(step_fns, rounds=5, warmup=2, steps=None, round_seconds=3.0):
    """Times `step_fns` (name -> zero-arg callable returning a scalar tensor), alternating
    implementations round by round. Each round runs the same number of steps per callable.

    Returns name -> Measurement."""
    for fn in step_fns.values():
        for _ in range(warmup):
            _sync(fn())
    if steps is None:
        steps = {name: steps_for(fn, round_seconds) for name, fn in step_fns.items()}
    elif isinstance(steps, int):
        steps = {name: steps for name in step_fns}
    results = {name: Measurement(name) for name in step_fns}
    for r in range(rounds):
        names = list(step_fns) if r % 2 == 0 else list(reversed(step_fns))
        for name in names:
            fn, m = step_fns[name], results[name]
            before = system.current_rss_mb() or 0.0
            system.reset_peak_rss()
            start, cpu_start = time.perf_counter(), cpu_time()
            value = None
            for _ in range(steps[name]):
                value = fn()
            _sync(value)
            m.seconds_per_step.append((time.perf_counter() - start) / steps[name])
            m.cpu_seconds_per_step.append((cpu_time() - cpu_start) / steps[name])
            peak = system.peak_rss_mb()
            m.peak_rss_mb = max(m.peak_rss_mb, peak)
            m.peak_rss_delta_mb = max(m.peak_rss_delta_mb, peak - before)
    return results
