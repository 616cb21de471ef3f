"""Strategy helpers: per-replica batch sizes, precision selection, chief detection."""

import keras
import pytest
import tensorflow as tf

from bert_tf.training import distribute


class _FakeStrategy:
    num_replicas_in_sync = 2


def test_per_replica_batch_size():
    assert distribute.per_replica_batch_size(8, _FakeStrategy()) == 4
    assert distribute.per_replica_batch_size(5) == 5  # default strategy: 1 replica
    with pytest.raises(ValueError) as e:
        distribute.per_replica_batch_size(5, _FakeStrategy())
    message = str(e.value)
    assert "\n" not in message
    assert "global batch size 5 is not divisible by the 2 replicas" in message


def test_default_precision_follows_cpu_flags(monkeypatch):
    monkeypatch.setattr(distribute, "_gpus_support_bf16", lambda: None)
    monkeypatch.setattr(distribute, "_cpu_has_bf16", lambda: True)
    assert distribute.default_precision() == "mixed_bfloat16"
    monkeypatch.setattr(distribute, "_cpu_has_bf16", lambda: False)
    assert distribute.default_precision() == "float32"
    monkeypatch.setattr(distribute, "_gpus_support_bf16", lambda: False)  # e.g. a T4 (7.5)
    assert distribute.default_precision() == "float32"


def test_cpu_flag_detection_matches_proc_cpuinfo():
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    assert distribute._cpu_has_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_set_precision():
    try:
        assert distribute.set_precision("mixed_bfloat16") == "mixed_bfloat16"
        assert keras.mixed_precision.global_policy().compute_dtype == "bfloat16"
        with pytest.raises(ValueError, match="unknown precision policy 'fp16'"):
            distribute.set_precision("fp16")
    finally:
        distribute.set_precision("float32")


def test_strategies_and_chief():
    strategy = distribute.create_strategy("default")
    assert strategy.num_replicas_in_sync == 1
    assert distribute.is_chief(strategy)
    assert distribute.write_dir("/x", strategy) == "/x"
    with pytest.raises(ValueError, match="unknown distribution strategy"):
        distribute.create_strategy("horovod")
    assert isinstance(distribute.create_strategy("mirrored"), tf.distribute.MirroredStrategy)
