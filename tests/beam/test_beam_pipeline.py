"""The Apache Beam pipeline writes the same instances as the single-host path (DirectRunner,
embedded and multi-process), readable by the training input pipeline; one-line errors.

Beam lives in its own environment (requirements-beam.txt; see .ci/run): these tests are skipped
where apache_beam is not installed, unless BERT_TF_REQUIRE_BEAM=1 (CI's Beam step) makes a
missing Beam an error.
"""

import collections
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

if os.environ.get("BERT_TF_REQUIRE_BEAM") == "1":
    import apache_beam  # noqa: F401
else:
    pytest.importorskip("apache_beam")

from bert_tf.data.pretraining import beam_pipeline as bp  # noqa: E402
from bert_tf.data.pretraining import create as pd  # noqa: E402
from bert_tf.data.pretraining import dataset as pretraining_dataset  # noqa: E402
from tests.data.test_pretraining_data import _vocab_tokens, _write_corpus  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = dict(
    max_seq_length=32,
    max_predictions_per_seq=5,
    dupe_factor=2,
    random_seed=7,
    input_format="sentences",
    chunk_sentences=100,
)


@pytest.fixture
def corpus(tmp_path):
    """Three files (documents numbered across files) and the vocab of the synthetic corpus."""
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(_vocab_tokens()) + "\n")
    for i, docs in enumerate((25, 5, 30)):
        _write_corpus(tmp_path / f"part{i}.txt", seed=i, num_docs=docs)
    return str(tmp_path / "part*.txt"), str(vocab)


def _records(prefix):
    files = sorted(tf.io.gfile.glob(prefix + "-*-of-*.tfrecord"))
    return collections.Counter(tf.data.TFRecordDataset(files).as_numpy_iterator()), files


def _both(text, vocab, tmp_path, num_workers=1, beam_text=None, **overrides):
    config = pd.CreationConfig(**{**CONFIG, **overrides})
    factory = pd.PretokenizedFactory(vocab)
    local = pd.create_pretraining_data(
        text,
        str(tmp_path / "local" / "x"),
        vocab,
        config=config,
        num_shards=2,
        tokenizer_factory=factory,
    )
    beam = bp.create_pretraining_data_beam(
        beam_text or text,
        str(tmp_path / "beam" / "x"),
        vocab,
        config=config,
        num_shards=3,
        num_workers=num_workers,
        tokenizer_factory=factory,
    )
    return local, beam


def test_direct_runner_writes_the_same_instances_as_the_single_host_path(corpus, tmp_path):
    """Beam reads the corpus as a URI glob (file://, the tf.io.gfile path gs:// takes too)."""
    text, vocab = corpus
    local, beam = _both(text, vocab, tmp_path, beam_text="file://" + text)
    assert beam["input_files"] == ["file://" + f for f in local["input_files"]]
    want, _ = _records(str(tmp_path / "local" / "x"))
    got, files = _records(str(tmp_path / "beam" / "x"))
    assert (
        [os.path.basename(f) for f in files]
        == [f"x-{i:05d}-of-00003.tfrecord" for i in range(3)]
        == beam["shards"]
    )
    assert sum(want.values()) == local["counts"]["instances"] > 300
    assert got == want  # the same records, byte for byte, as a multiset
    assert beam["counts"] == local["counts"] and beam["counts"]["chunks"] >= 5
    assert beam["engine"] == "beam:DirectRunner" and local["engine"] == "local"
    assert beam["shard_instances"] is None and local["shard_instances"] is not None
    same = {
        k: v
        for k, v in local.items()
        if k
        not in (
            "engine",
            "shards",
            "num_shards",
            "shard_instances",
            "elapsed_seconds",
            "input_files",
        )
    }
    with open(str(tmp_path / "beam" / "x") + ".metadata.json") as f:
        on_disk = json.load(f)
    assert {k: on_disk[k] for k in same} == same
    # The training input pipeline reads the Beam shards (and checks their metadata).
    ds = pretraining_dataset.pretraining_dataset(
        str(tmp_path / "beam" / "x-*.tfrecord"),
        batch_size=4,
        seq_length=32,
        max_predictions_per_seq=5,
        is_training=False,
        vocab_file=vocab,
    )
    features, labels = next(iter(ds))
    assert features["input_word_ids"].shape == (4, 32) and labels["masked_lm_ids"].shape == (4, 5)


@pytest.mark.slow
def test_multi_process_direct_runner_writes_the_same_instances(corpus, tmp_path):
    text, vocab = corpus
    local, beam = _both(
        text,
        vocab,
        tmp_path,
        num_workers=2,
        max_predictions_per_seq=0,
        dupe_factor=3,
        chunk_sentences=70,
    )
    assert _records(str(tmp_path / "beam" / "x"))[0] == _records(str(tmp_path / "local" / "x"))[0]
    assert beam["counts"] == local["counts"] and beam["counts"]["instances"] > 500


@pytest.mark.slow
def test_app_with_the_bert_tokenizer_matches_the_local_runner(tmp_path, tiny_vocab_file):
    text = tmp_path / "prose.txt"
    text.write_text(
        "The quick brown fox jumps over the lazy dog. The dog is lazy.\nHello world.\n\n"
        "John lives in London. London is the capital. Paris is in France.\n\n"
        "What a great movie! A terrible movie is bad. Who is good?\n\n"
        "Hello world. Who lives in Paris? The fox is good. The dog is bad.\n"
    )
    args = [
        f"--input_files={text}",
        f"--vocab_file={tiny_vocab_file}",
        "--max_seq_length=24",
        "--max_predictions_per_seq=4",
        "--dupe_factor=5",
        "--num_shards=2",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "apps.create_pretraining_data",
            *args,
            "--runner=DirectRunner",
            f"--output_dir={tmp_path}/beam",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "wrote" in result.stdout
    config = pd.CreationConfig(max_seq_length=24, max_predictions_per_seq=4, dupe_factor=5)
    pd.create_pretraining_data(
        str(text),
        str(tmp_path / "local" / "pretraining"),
        tiny_vocab_file,
        config=config,
        num_shards=2,
    )
    want, _ = _records(str(tmp_path / "local" / "pretraining"))
    got, files = _records(str(tmp_path / "beam" / "pretraining"))
    assert len(files) == 2 and sum(got.values()) > 20 and got == want


def test_the_vocab_travels_with_the_pipeline(tmp_path):
    """A worker that cannot read the launcher's vocab path tokenizes with the shipped copy."""
    tokens = _vocab_tokens()
    missing = str(tmp_path / "not_on_this_worker" / "vocab.txt")
    shipped = bp._ShippedVocab(pd.PretokenizedFactory(missing), tokens)
    tokenize = shipped()
    assert tokenize(["d0_1 d3_2 nope"]) == [[tokens.index("d0_1"), tokens.index("d3_2"), 1]]


def test_bad_requests_are_one_line_errors(corpus, tmp_path):
    text, vocab = corpus
    prefix = str(tmp_path / "o" / "x")
    config = pd.CreationConfig(**CONFIG)
    run = lambda **kw: bp.create_pretraining_data_beam(  # noqa: E731
        text, prefix, vocab, config=config, tokenizer_factory=pd.PretokenizedFactory(vocab), **kw
    )
    with pytest.raises(pd.PretrainingDataError, match="not inside the Beam pipeline options"):
        run(pipeline_args="--runner=DataflowRunner --project=p")
    with pytest.raises(pd.PretrainingDataError, match="no such input file"):
        bp.create_pretraining_data_beam(str(tmp_path / "none*.txt"), prefix, vocab)
    run(num_shards=2)
    before = _records(prefix)[0]
    with pytest.raises(pd.PretrainingDataError) as e:
        run(num_shards=1)
    assert "output already exists" in str(e.value) and "\n" not in str(e.value)
    assert _records(prefix)[0] == before  # untouched
    meta = run(num_shards=1, overwrite=True)
    assert meta["shards"] == ["x-00000-of-00001.tfrecord"]
    assert len(_records(prefix)[1]) == 1 and _records(prefix)[0] == before  # replaced, not mixed


def test_runner_options_pass_through():
    from apache_beam.options import pipeline_options as po

    options, runner = bp.make_options(
        "DataflowRunner",
        num_workers=4,
        pipeline_args="--project=p --region=us-central1 --temp_location=gs://b/tmp "
        "--sdk_container_image='img:1 2'",
    )
    assert runner is None  # Beam builds the named runner itself
    assert options.view_as(po.StandardOptions).runner == "DataflowRunner"
    gcp = options.view_as(po.GoogleCloudOptions)
    assert (gcp.project, gcp.region, gcp.temp_location) == ("p", "us-central1", "gs://b/tmp")
    assert options.view_as(po.WorkerOptions).sdk_container_image == "img:1 2"
    options, runner = bp.make_options("FlinkRunner", pipeline_args=["--flink_master=h:8081"])
    assert options.view_as(po.FlinkRunnerOptions).flink_master == "h:8081"
    # DirectRunner: the embedded engine; the worker count picks its mode; user options win.
    options, runner = bp.make_options(bp.DIRECT_RUNNER, num_workers=2)
    direct = options.view_as(po.DirectOptions)
    assert type(runner).__name__ == "FnApiRunner"
    assert (direct.direct_num_workers, direct.direct_running_mode) == (2, "multi_processing")
    options, _ = bp.make_options(bp.DIRECT_RUNNER, 2, "--direct_running_mode=multi_threading")
    assert options.view_as(po.DirectOptions).direct_running_mode == "multi_threading"
    assert (
        bp.make_options(bp.DIRECT_RUNNER)[0].view_as(po.DirectOptions).direct_running_mode
        == "in_memory"
    )
