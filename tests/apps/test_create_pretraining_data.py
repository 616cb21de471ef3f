"""apps.create_pretraining_data end to end: real tokenizer, one-line errors, documented flags."""

import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGS = (
    "input_files",
    "output_dir",
    "output_prefix",
    "vocab_file",
    "lower_case",
    "max_seq_length",
    "max_predictions_per_seq",
    "masked_lm_prob",
    "short_seq_prob",
    "dupe_factor",
    "random_seed",
    "num_shards",
    "num_workers",
    "whole_word_masking",
    "input_format",
    "overwrite",
    "runner",
    "beam_pipeline_options",
    "pack",
    "max_sequences_per_row",
    "max_predictions_per_row",
    "pack_buffer_size",
)


def _run(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "apps.create_pretraining_data", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


def test_helpfull_documents_every_flag():
    out = _run("--helpfull")  # absl exits 1 after printing help
    assert "create_pretraining_data" in out.stdout
    for flag in FLAGS:
        assert f"--{flag}" in out.stdout or f"--[no]{flag}" in out.stdout, flag


def test_creates_records_with_the_bert_tokenizer_then_refuses_to_overwrite(
    tmp_path, tiny_vocab_file
):
    text = tmp_path / "prose.txt"
    text.write_text(
        "The quick brown fox jumps over the lazy dog. The dog is lazy.\nHello world.\n\n"
        "John lives in London. London is the capital. Paris is in France.\n\n"
        "What a great movie! A terrible movie is bad. Who is good?\n"
    )
    out_dir = tmp_path / "records"
    args = [
        f"--input_files={text}",
        f"--output_dir={out_dir}",
        f"--vocab_file={tiny_vocab_file}",
        "--max_seq_length=24",
        "--max_predictions_per_seq=4",
        "--dupe_factor=3",
        "--num_shards=2",
    ]
    result = _run(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "wrote" in result.stdout and "instances" in result.stdout
    assert "documents" in result.stderr and "instances written" in result.stderr  # progress
    files = sorted(tf.io.gfile.glob(str(out_dir / "pretraining-*-of-00002.tfrecord")))
    assert len(files) == 2 and os.path.exists(out_dir / "pretraining.metadata.json")
    vocab = open(tiny_vocab_file).read().split("\n")
    ex = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(files))).numpy())
    ids = list(ex.features.feature["input_ids"].int64_list.value)
    positions = ex.features.feature["masked_lm_positions"].int64_list.value
    labels = ex.features.feature["masked_lm_ids"].int64_list.value
    weights = ex.features.feature["masked_lm_weights"].float_list.value
    for p, t, w in zip(positions, labels, weights):
        if w:
            ids[p] = t
    tokens = [vocab[i] for i in ids if i]
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and tokens.count("[SEP]") == 2
    words = set(
        "the quick brown fox jumps over lazy dog is hello world john lives in london "
        "capital paris france what a great movie terrible bad who good . ! ?".split()
    )
    assert set(tokens) - {"[CLS]", "[SEP]"} <= words  # lower-cased, punctuation split
    assert np.sum(weights) >= 1
    again = _run(*args)
    assert again.returncode == 1
    err = again.stderr.strip().splitlines()
    assert err[-1].startswith("create_pretraining_data: ") and "already exists" in err[-1]
    assert "Traceback" not in again.stderr


def test_bad_flags_are_one_line_errors(tmp_path, tiny_vocab_file):
    result = _run(
        f"--input_files={tmp_path}/missing.txt",
        f"--output_dir={tmp_path}/o",
        f"--vocab_file={tiny_vocab_file}",
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"create_pretraining_data: {tmp_path}/missing.txt: no such input file"
    )
    # packing settings are checked before any input is read (the input is missing here):
    # 0 is refused, not taken as the default
    result = _run(
        f"--input_files={tmp_path}/missing.txt",
        f"--output_dir={tmp_path}/o",
        f"--vocab_file={tiny_vocab_file}",
        "--pack",
        "--max_predictions_per_row=0",
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "create_pretraining_data: --max_predictions_per_row: expected an integer in [20, 60] "
        "(at least one sequence's --max_predictions_per_seq=20, at most what 3 sequences or "
        "128 tokens can carry); leave it unset for the default 23, got 0"
    )


def test_beam_flags_misused_are_one_line_errors(tmp_path, tiny_vocab_file):
    text = tmp_path / "t.txt"
    text.write_text("Hello world. The dog is lazy.\n\nParis is in France.\n")
    common = [
        f"--input_files={text}",
        f"--output_dir={tmp_path}/o",
        f"--vocab_file={tiny_vocab_file}",
    ]
    result = _run(*common, "--beam_pipeline_options=--project=p")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "create_pretraining_data: --beam_pipeline_options needs a Beam --runner (e.g. "
        "DirectRunner), got --runner=local"
    )
    try:
        import apache_beam  # noqa: F401
    except ImportError:  # the main environment: Beam lives in its own (requirements-beam.txt)
        result = _run(*common, "--runner=DirectRunner")
        assert result.returncode == 1 and "Traceback" not in result.stderr
        last = result.stderr.strip().splitlines()[-1]
        # the docs' advice, word for word: a separate venv (Beam moves protobuf)
        assert last.startswith(
            "create_pretraining_data: --runner=DirectRunner needs Apache Beam"
        ) and last.endswith(
            "which lives in its own environment (it moves protobuf and pyarrow under the "
            "pinned stack): python -m venv --system-site-packages venv-beam && "
            "venv-beam/bin/pip install -r requirements-beam.txt, then run "
            "venv-beam/bin/python -m apps.create_pretraining_data with the same flags"
        )
        with open(os.path.join(ROOT, "docs", "distributed.md")) as f:
            assert (
                "python -m venv --system-site-packages venv-beam && venv-beam/bin/pip "
                "install -r requirements-beam.txt"
            ) in f.read()


def test_binary_input_file_is_refused(tmp_path, tiny_vocab_file):
    binary = tmp_path / "corpus.txt"
    binary.write_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 8)
    result = _run(
        f"--input_files={binary}", f"--output_dir={tmp_path}/o", f"--vocab_file={tiny_vocab_file}"
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"create_pretraining_data: {binary}: not a text file (NUL byte at offset 5); expected "
        "UTF-8 text (decompress archives first)"
    )
    assert not os.path.exists(tmp_path / "o") or not os.listdir(tmp_path / "o")
