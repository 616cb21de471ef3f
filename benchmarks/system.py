"""Machine measurements: peak resident memory of this process and the matmul FLOP/s peak."""

import resource
import time


def _status_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_mb():
    """Peak resident set size of this process in MB (since start, or since `reset_peak_rss`)."""
    kb = _status_kb("VmHWM")
    if kb is None:  # not Linux: ru_maxrss is KB on Linux, bytes on macOS; a best effort
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0


def current_rss_mb():
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024.0


def reset_peak_rss():
    """Resets the kernel's peak-RSS counter (Linux >= 4.0). Returns False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def matmul_peak(dtype="float32", n=4096, repeats=3):
    """Best observed FLOP/s of an n x n x n `tf.matmul` in `dtype` (2*n^3 FLOPs per call)."""
    import tensorflow as tf

    a = tf.cast(tf.random.stateless_normal((n, n), seed=(1, 2)), dtype)
    b = tf.cast(tf.random.stateless_normal((n, n), seed=(3, 4)), dtype)

    @tf.function
    def step(a, b):
        return tf.reduce_sum(tf.cast(tf.matmul(a, b)[0, :1], tf.float32))  # scalar sync

    step(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best


# CPU flags that decide the speed of this stack's kernels (matmul ISA, bf16/fp16 support).
_SPEED_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512_bf16",
    "avx512_fp16",
    "avx512_vnni",
    "avx_vnni",
    "amx_bf16",
    "amx_tile",
)


def cpu_info():
    """{"model": CPU model name, "flags": the speed-relevant flags it has} from /proc/cpuinfo
    (empty values where unavailable)."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "flags": [f for f in _SPEED_FLAGS if f in flags]}
