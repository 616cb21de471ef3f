"""apps.benchmark: a --quick run on a tiny config writes the documented JSON; FLOP counts."""

import json
import os
import subprocess
import sys

import pytest

from benchmarks import system, torch_cases

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_encoder_flops_by_hand():
    from benchmarks import encoder_flops, mlm_head_flops
    from bert_tf import BertConfig

    c = BertConfig(vocab_size=10, hidden_size=4, num_layers=2, num_heads=2, intermediate_size=8)
    # per layer: 2*B*T*(4*16 + 2*4*8) + 4*B*T^2*H with B=3, T=5 -> 30*128 + 4*3*25*4 = 5040
    # pooler 2*B*H*H = 96; two layers -> 10176
    assert encoder_flops(c, 3, 5) == 10176
    assert encoder_flops(c, 3, 5, training=True) == 3 * 10176
    # MLM: 2*B*P*(H*H + H*V) with P=2 -> 12*(16+40) = 672; NSP 2*B*H*2 = 48
    assert mlm_head_flops(c, 3, 2) == 720


def test_interleaved_timing_alternates_and_counts():
    from benchmarks import run_interleaved

    calls = []
    results = run_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        rounds=3,
        warmup=1,
        steps=2,
    )
    assert calls == ["a", "b"] + ["a", "a", "b", "b", "b", "b", "a", "a", "a", "a", "b", "b"]
    assert len(results["a"].seconds_per_step) == 3 and results["b"].median_seconds > 0


def _run(args, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, "-m", "apps.benchmark", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_quick_run_writes_json(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "vocab_size": 50,
                "hidden_size": 16,
                "num_layers": 1,
                "num_heads": 2,
                "intermediate_size": 32,
                "max_position_embeddings": 32,
            }
        )
    )
    out = tmp_path / "bench.json"
    result = _run(
        [
            "--quick",
            f"--config_json={config}",
            "--batch_size=2",
            "--seq_length=8",
            "--cases=encoder_train,encoder_infer,pretrain",
            "--precision=float32",
            "--peak_matmul_size=64",
            f"--output_json={out}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["machine"]["peak_flops"]["float32"] > 0
    assert data["settings"]["config"]["hidden_size"] == 16
    rows = {(r["case"], r["impl"]): r for r in data["results"]}
    expected = {
        (case, impl)
        for case in ("encoder_train", "encoder_infer", "pretrain")
        for impl in ("bert_tf", "keras_hub")
    }
    if torch_cases.available():  # the transformers + PyTorch peer of the encoder cases
        expected |= {(case, "transformers") for case in ("encoder_train", "encoder_infer")}
        for case in ("encoder_train", "encoder_infer"):
            ours, theirs = rows[(case, "bert_tf")], rows[(case, "transformers")]
            assert ours["ratio_vs_transformers"] == pytest.approx(
                ours["examples_per_sec"] / theirs["examples_per_sec"]
            )
    assert set(rows) == expected
    for r in rows.values():
        assert r["examples_per_sec"] > 0 and len(r["examples_per_sec_rounds"]) == 2
        assert r["tokens_per_sec"] == pytest.approx(8 * r["examples_per_sec"])
        assert r["achieved_flops"] == pytest.approx(r["flops_per_step"] * r["examples_per_sec"] / 2)
        assert 0 < r["fraction_of_peak"] and r["peak_rss_mb"] > 100
        assert r["ratio_vs_keras_hub"] > 0 and r["cpu_time_ratio_vs_keras_hub"] > 0
        assert r["cpu_seconds_per_step"] > 0
    # 1 layer, B=2, T=8, H=16, I=32: 2*16*(4*256 + 2*512) + 4*2*64*16 + 2*2*256 = 74752
    assert rows[("encoder_infer", "bert_tf")]["flops_per_step"] == 74752
    assert rows[("encoder_train", "keras_hub")]["flops_per_step"] == 3 * 74752
    assert "encoder_train" in result.stdout and "ours/kh" in result.stdout
    cpu = data["machine"]["cpu"]  # the CPU model and its speed flags go with the figures
    assert cpu == system.cpu_info() and f"machine: {cpu['model']}" in result.stdout
    assert "load average" in result.stdout and len(data["machine"]["load_average_end"]) == 3


def test_unknown_case_is_a_usage_error(tmp_path):
    result = _run(["--cases=encoder_train,nope"], tmp_path)
    assert result.returncode != 0
    assert "nope" in result.stderr and "Traceback" not in result.stderr


def test_packing_case_on_a_small_corpus(monkeypatch, tiny_vocab_file):
    """The packing case: padding share falls and packed rows carry more real tokens per
    step; both step functions train (finite loss)."""
    import dataclasses

    import numpy as np

    from benchmarks import cases, packing_case
    from bert_tf import BertConfig
    from tests.conftest import TINY_VOCAB

    def write_corpus(name, path, max_documents):
        rng = np.random.default_rng(0)
        words = ["the", "quick", "brown", "fox", "dog", "is", "good", "movie", "paris"]
        with open(path, "w") as f:
            for _ in range(max_documents):
                sentences = [
                    " ".join(rng.choice(words, rng.integers(3, 8))) + "."
                    for _ in range(rng.integers(1, 4))
                ]
                f.write(" ".join(sentences) + "\n\n")

    monkeypatch.setattr(packing_case, "write_corpus", write_corpus)
    config = BertConfig.preset(
        "tiny",
        vocab_size=len(TINY_VOCAB),
        num_layers=1,
        hidden_size=16,
        num_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    setup = dataclasses.replace(
        cases.Setup(config=config, batch_size=4, seq_length=64), vocab_file=tiny_vocab_file
    )
    case = packing_case.packing_case(setup, "kjv", max_documents=60)
    assert case.padding["packed"] < case.padding["unpacked"] - 0.3
    assert case.padding["rows"] < case.padding["sequences"] / 2
    unpacked, packed = case.impls["unpacked"], case.impls["packed"]
    assert packed.tokens_per_step > 2 * unpacked.tokens_per_step
    assert packed.tokens_per_step <= 4 * 64
    for impl in (unpacked, packed):
        assert np.isfinite(float(impl.step()))


def test_cpu_info_reads_the_model_and_speed_flags(monkeypatch, tmp_path):
    fake = tmp_path / "cpuinfo"
    fake.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx "
        "avx2 fma avx512f avx512_bf16 nope\n\nprocessor\t: 1\nmodel name\t: other\n"
    )
    real_open = open
    monkeypatch.setattr(
        "builtins.open",
        lambda path, *a, **k: real_open(fake if path == "/proc/cpuinfo" else path, *a, **k),
    )
    assert system.cpu_info() == {
        "model": "AMD EPYC 7B13",
        "flags": ["avx", "avx2", "fma", "avx512f", "avx512_bf16"],
    }


def test_packing_ratios_pair_adjacent_rounds():
    """Per-round ratios: a load spike that slows both implementations in one round cancels."""
    from benchmarks import cases, report, timing

    impls = {"unpacked": cases.Impl(None, 4, 400), "packed": cases.Impl(None, 4, 600)}
    case = cases.Case("packing", "rows", impls)
    case.padding = {"unpacked": 0.4, "packed": 0.1}
    results = {
        "unpacked": timing.Measurement("unpacked", [1.0, 3.0, 1.0], [1.0, 1.0, 1.0]),
        "packed": timing.Measurement("packed", [1.0, 3.0, 1.25], [1.0, 1.0, 1.0]),
    }
    rows = report.result_rows(case, "float32", results, None)
    r = rows[0]
    # per round: 1.5, 1.5, 1.2 -> median 1.5; medians of rates: (600/1.25) / (400/1) = 1.2
    assert r["packed_vs_unpacked_paired_round_median"] == pytest.approx(1.5)
    assert r["packed_vs_unpacked_real_tokens_per_sec"] == pytest.approx(1.2)
    assert r["padding"] == case.padding


def test_packing_quality_factor_of_real_records(tmp_path):
    """The packed run's step count comes from this factor: real tokens per sequence are the
    records' mean length; a packed row holds more, never more than a row; a buffer of one
    sequence cannot pack."""
    import numpy as np
    import tensorflow as tf

    from benchmarks.packing_quality import packing_factor
    from tests.data.test_packed_records import SEQ, _corpus

    prefix, _, meta, _ = _corpus(tmp_path, masked=False)
    spec = {"input_mask": tf.io.FixedLenFeature([SEQ], tf.int64)}
    lengths = np.concatenate(
        [
            tf.io.parse_example(r, spec)["input_mask"].numpy().sum(1)
            for r in tf.data.TFRecordDataset(
                sorted(tf.io.gfile.glob(prefix + "-*.tfrecord"))
            ).batch(64)
        ]
    )
    assert lengths.size == meta["counts"]["instances"]
    per_seq, per_row = packing_factor(prefix + "-*.tfrecord", SEQ, 3, 64)
    assert per_seq == pytest.approx(lengths.mean())
    assert 1.5 * per_seq < per_row <= SEQ
    assert packing_factor(prefix + "-*.tfrecord", SEQ, 3, 1) == pytest.approx((per_seq, per_seq))
    assert packing_factor(prefix + "-*.tfrecord", SEQ, 1, 64)[1] == pytest.approx(per_seq)
