"""Pre-training data creation as an Apache Beam pipeline: the single-host recipe on a cluster.

The pipeline makes the same instances as `create.create_pretraining_data` for the
same inputs and seed (as a multiset: which shard a record lands in, and its place there, are
up to the runner). It reuses the single-host code for everything but the plumbing:

  files --read (one worker per file)--> documents with per-file positions
        --file offsets (side input)---> documents with corpus doc_id and sentence offset
        --block counts -> windows (side input, `windows.window_of_blocks`)
        --GroupByKey(window)----------> `create.process_chunk` (tokenize, instances,
                                        masks, shuffle, serialize)
        --WriteToTFRecord-------------> <prefix>-SSSSS-of-NNNNN.tfrecord
  counts --> <prefix>.metadata.json (written by the pipeline once the shards are final)

Windows, doc ids and random generators are defined in `windows`; they depend only
on the corpus and the seed, never on the worker or the processing order.

Runners: "DirectRunner" runs embedded in this process (Beam's FnApiRunner; with num_workers > 1
in its multi-processing mode); any other runner name (DataflowRunner, FlinkRunner, SparkRunner,
PortableRunner, PrismRunner) is passed to Beam with the caller's pipeline options. Workers
must be able to import bert_tf and TensorFlow (e.g. a custom SDK container, see the README);
the vocab travels inside the pipeline, so it need not be readable by the workers.
"""

import collections
import contextlib
import copy
import hashlib
import json
import logging
import os
import posixpath
import shlex
import tempfile
import time

# apache_beam is imported here and nowhere else in bert_tf: it is optional (requirements-beam.txt,
# installed in its own environment because it moves protobuf and pyarrow), so only this module,
# which the app loads for --runner other than "local", may need it.
import apache_beam as beam
from apache_beam.io import filesystems
from apache_beam.options import pipeline_options
from apache_beam.runners.portability.fn_api_runner import fn_runner

from bert_tf.data.pretraining import create as pd
from bert_tf.data.pretraining import sentences as sentences_lib
from bert_tf.data.pretraining import windows as windows_lib

DIRECT_RUNNER = "DirectRunner"
_LOG = logging.getLogger(__name__)
_FILE_STATS = "file_stats"
_COUNTS = "counts"
_COUNTER = "bert_tf_pretraining"


class _ShippedVocab:
    """Wraps a tokenizer factory whose vocab file may not exist on a worker: the vocab's tokens
    travel with the pipeline and are written to a worker-local file on first use."""

    def __init__(self, factory, tokens):
        self.factory = factory
        self.tokens = list(tokens)

    def __call__(self):
        factory = self.factory
        vocab_file = getattr(factory, "vocab_file", None)
        if vocab_file is not None and not os.path.exists(vocab_file):
            text = "\n".join(self.tokens) + "\n"
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
            path = os.path.join(tempfile.gettempdir(), f"bert_tf_vocab_{digest}.txt")
            if not os.path.exists(path):
                tmp = f"{path}.{os.getpid()}.tmp"
                with open(tmp, "w", encoding="utf-8") as f:
                    f.write(text)
                os.replace(tmp, path)
            factory = copy.copy(factory)
            factory.vocab_file = path
        return factory()


class _ReadDocuments(beam.DoFn):
    """(file_index, path) -> (file_index, index in file, sentence offset in file, sentences)
    per document, and one (file_index, lines, documents, sentences) on `file_stats`."""

    def __init__(self, config):
        self._config = config

    def process(self, element):
        file_index, path = element
        stats, count, offset = {}, 0, 0
        for document in sentences_lib.iter_documents(
            path, self._config.input_format, self._config.max_document_sentences, stats=stats
        ):
            yield file_index, count, offset, document
            count += 1
            offset += len(document)
        yield beam.pvalue.TaggedOutput(
            _FILE_STATS, (file_index, stats.get("lines", 0), count, offset)
        )


def _file_offsets(file_stats):
    """{file_index: (doc_id of its first document, corpus sentence offset)} from the stats."""
    offsets, docs, sentences = {}, 0, 0
    for file_index, _, num_docs, num_sentences in sorted(file_stats):
        offsets[file_index] = (docs, sentences)
        docs += num_docs
        sentences += num_sentences
    return offsets


def _locate(document, offsets):
    file_index, index, offset, sentences = document
    first_doc, first_sentence = offsets[file_index]
    return first_doc + index, first_sentence + offset, sentences


def _block_key(located, chunk_sentences):
    return windows_lib.block_of(located[1], chunk_sentences)


def _window_key(located, chunk_sentences, block_windows):
    doc_id, offset, sentences = located
    return block_windows[windows_lib.block_of(offset, chunk_sentences)], (doc_id, sentences)


class _ProcessWindow(beam.DoFn):
    """(window_id, [(doc_id, sentences)]) -> serialized records, and the window's counts."""

    def __init__(self, tokenizer_factory, tokens, config):
        self._factory = tokenizer_factory
        self._tokens = tokens
        self._config = config
        self._instances = beam.metrics.Metrics.counter(_COUNTER, "instances")
        self._windows = beam.metrics.Metrics.counter(_COUNTER, "windows")

    def setup(self):
        self._tokenize = self._factory()
        self._vocab = pd._Vocab(self._tokens)

    def process(self, element):
        window_id, documents = element
        documents = sorted(documents, key=lambda d: d[0])  # grouping order is arbitrary
        result = pd.process_chunk(window_id, documents, self._tokenize, self._vocab, self._config)
        yield from result.records
        self._instances.inc(len(result.records))
        self._windows.inc()
        yield beam.pvalue.TaggedOutput(
            _COUNTS,
            {
                "documents": result.documents,
                "sentences": result.sentences,
                "tokens": result.tokens,
                "instances": len(result.records),
                "masked_tokens": result.masked,
                "random_next": result.random_next,
                "chunks": 1,
            },
        )


def _sum_counts(dicts):
    total = collections.Counter()
    for d in dicts:
        total.update(d)
    return dict(total)


def _write_metadata(counts, file_stats, shards, template, path):
    """Fills the launch-time metadata template with the counts and shard names; written to a
    temporary name, then renamed, so a reader never sees half a file."""
    metadata = dict(template)
    metadata["shards"] = sorted(posixpath.basename(s) for s in shards)
    metadata["num_shards"] = len(shards)
    counts = dict(counts)
    counts["lines"] = sum(s[1] for s in file_stats)
    metadata["counts"] = {
        k: counts.get(k, 0)
        for k in (
            "lines",
            "documents",
            "sentences",
            "tokens",
            "instances",
            "masked_tokens",
            "random_next",
            "chunks",
        )
    }
    tmp = path + ".tmp"
    with filesystems.FileSystems.create(tmp) as f:
        f.write((json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    if filesystems.FileSystems.exists(path):
        filesystems.FileSystems.delete([path])
    filesystems.FileSystems.rename([tmp], [path])


def build_pipeline(
    pipeline, files, output_prefix, tokenizer_factory, tokens, config, num_shards, metadata_template
):
    """Adds the data-creation transforms to `pipeline` (see the module docstring)."""
    chunk = config.chunk_sentences
    read = (
        pipeline
        | "Files" >> beam.Create(list(enumerate(files)))
        | "SpreadFiles" >> beam.Reshuffle()
        | "ReadDocuments"
        >> beam.ParDo(_ReadDocuments(config)).with_outputs(_FILE_STATS, main="documents")
    )
    file_stats = read[_FILE_STATS] | "AllFileStats" >> beam.combiners.ToList()
    offsets = file_stats | "FileOffsets" >> beam.Map(_file_offsets)
    located = read.documents | "Locate" >> beam.Map(_locate, beam.pvalue.AsSingleton(offsets))
    block_windows = (
        located
        | "BlockOf" >> beam.Map(_block_key, chunk)
        | "CountPerBlock" >> beam.combiners.Count.PerElement()
        | "AllBlocks" >> beam.combiners.ToList()
        | "Windows" >> beam.Map(windows_lib.window_of_blocks)
    )
    processed = (
        located
        | "WindowKey" >> beam.Map(_window_key, chunk, beam.pvalue.AsSingleton(block_windows))
        | "GroupWindows" >> beam.GroupByKey()
        | "MakeInstances"
        >> beam.ParDo(_ProcessWindow(tokenizer_factory, tokens, config)).with_outputs(
            _COUNTS, main="records"
        )
    )
    shards = processed.records | "WriteShards" >> beam.io.WriteToTFRecord(
        output_prefix,
        file_name_suffix=pd.SHARD_SUFFIX,
        num_shards=num_shards,
        shard_name_template="-SSSSS-of-NNNNN",
    )
    _ = (
        processed[_COUNTS]
        | "SumCounts" >> beam.CombineGlobally(_sum_counts)
        | "WriteMetadata"
        >> beam.Map(
            _write_metadata,
            beam.pvalue.AsSingleton(file_stats),
            beam.pvalue.AsList(shards),
            metadata_template,
            pd.metadata_path(output_prefix),
        )
    )


# ----------------------------------------------------------------------------- launching


def make_options(runner, num_workers=1, pipeline_args=None):
    """(PipelineOptions, runner object or None) for `runner`; `pipeline_args` (a string or a
    list) pass through to Beam and win over the defaults set here."""
    if isinstance(pipeline_args, str):
        args = shlex.split(pipeline_args)
    else:
        args = list(pipeline_args or [])
    if any(a == "--runner" or a.startswith("--runner=") for a in args):
        raise pd.PretrainingDataError(
            "pass the runner with --runner, not inside the Beam pipeline options"
        )
    if runner != DIRECT_RUNNER:
        return pipeline_options.PipelineOptions([f"--runner={runner}", *args]), None
    mode = "multi_processing" if num_workers > 1 else "in_memory"
    args = [f"--direct_num_workers={num_workers}", f"--direct_running_mode={mode}", *args]
    # Beam 2.77's DirectRunner first tries Prism, a Go job service it downloads from GitHub
    # and runs on local ports, and falls back to the embedded FnApiRunner when that fails. We
    # go straight to the embedded engine: no download, no service (ask for --runner=PrismRunner
    # to get Prism).
    return pipeline_options.PipelineOptions(args), fn_runner.FnApiRunner()


@contextlib.contextmanager
def _workers_find_bert_tf():
    """The multi-processing DirectRunner starts `python -m apache_beam...sdk_worker_main`
    worker processes, which unpickle the DoFns by module name: put this checkout on their
    PYTHONPATH whatever the caller's working directory is."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = root + (os.pathsep + old if old else "")
    try:
        yield
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old


def _existing_outputs(output_prefix):
    patterns = [output_prefix + "-*-of-*" + pd.SHARD_SUFFIX, pd.metadata_path(output_prefix)]
    found = []
    for pattern in patterns:
        try:
            results = filesystems.FileSystems.match([pattern])
        except (OSError, beam.io.filesystem.BeamIOError):
            continue
        found.extend(m.path for r in results for m in r.metadata_list)
    return sorted(found)


def _read_metadata(output_prefix):
    with filesystems.FileSystems.open(pd.metadata_path(output_prefix)) as f:
        return json.loads(f.read().decode("utf-8"))


def _run(pipeline, runner):
    try:
        if runner == DIRECT_RUNNER:
            with _workers_find_bert_tf():
                pipeline.run().wait_until_finish()
        else:
            pipeline.run().wait_until_finish()
    except pd.PretrainingDataError:
        raise
    except Exception as e:  # a worker's error arrives wrapped in runner-specific text
        _LOG.debug("Beam pipeline failed", exc_info=True)
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        detail = lines[-1] if lines else type(e).__name__
        raise pd.PretrainingDataError(f"the Beam pipeline failed on {runner}: {detail}") from None


def create_pretraining_data_beam(
    input_files,
    output_prefix,
    vocab_file,
    *,
    config=None,
    lower_case=None,
    num_shards=1,
    num_workers=1,
    tokenizer_factory=None,
    overwrite=False,
    runner=DIRECT_RUNNER,
    pipeline_args=None,
):
    """Runs the pipeline and waits for it. Same arguments and outputs as
    `create.create_pretraining_data` (except progress, which the runner reports:
    counters `bert_tf_pretraining/{instances,windows}`) plus `runner` and `pipeline_args`.
    `num_workers` is the DirectRunner's worker count (other runners scale by their options).
    Returns the metadata dict; `shard_instances` is None (the sink does not report them)."""
    config = config or pd.CreationConfig()
    config.validate()
    if num_shards < 1:
        raise pd.PretrainingDataError(f"num_shards must be >= 1, got {num_shards}")
    if num_workers < 1:
        raise pd.PretrainingDataError(f"num_workers must be >= 1, got {num_workers}")
    files = pd.expand_input_files(input_files)
    tokens = pd.read_vocab(vocab_file)
    if not sentences_lib.is_remote(output_prefix):
        output_prefix = os.path.abspath(os.path.expanduser(output_prefix))
        os.makedirs(os.path.dirname(output_prefix), exist_ok=True)
    existing = _existing_outputs(output_prefix)
    if existing and not overwrite:
        raise pd.PretrainingDataError(
            f"{existing[0]}: output already exists ({len(existing)} files under prefix "
            f"{output_prefix}); pass overwrite to replace them"
        )
    record_outputs = pd.check_outputs(
        output_prefix,
        num_shards,
        overwrite,
        [("--input_files", f) for f in files] + [("--vocab_file", vocab_file)],
    )
    options, runner_object = make_options(runner, num_workers, pipeline_args)
    factory = _ShippedVocab(
        tokenizer_factory or pd.BertTokenizerFactory(vocab_file, lower_case), tokens
    )
    template = pd.build_metadata(
        config, files, vocab_file, tokens, lower_case, [], None, {}, engine=f"beam:{runner}"
    )
    if existing:
        filesystems.FileSystems.delete(existing)
    start = time.time()
    pipeline = beam.Pipeline(runner=runner_object, options=options)
    build_pipeline(pipeline, files, output_prefix, factory, tokens, config, num_shards, template)
    _run(pipeline, runner)
    record_outputs()
    metadata = _read_metadata(output_prefix)
    if metadata["counts"]["instances"] == 0:
        filesystems.FileSystems.delete(_existing_outputs(output_prefix))
        raise pd.PretrainingDataError(
            f"{files[0]}: no training instances could be made from the input "
            f"({metadata['counts']['lines']} lines, {metadata['counts']['documents']} "
            "non-empty documents)"
        )
    metadata["elapsed_seconds"] = time.time() - start
    return metadata
