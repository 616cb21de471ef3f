"""Creating BERT pre-training records: masked LM + next-sentence prediction, streamed.

The recipe is google-research/bert's create_pretraining_data.py (re-implemented): documents are
split into segment pairs up to `max_seq_length` (shorter targets with `short_seq_prob`), half of
the B segments are random segments from another document (the A-side segments not used are put
back), pairs are truncated longest-first from a random end, 15% of the tokens are masked
(80/10/10), and every document is processed `dupe_factor` times with different masks.

Unlike the original, nothing is loaded whole. Documents stream from the files into windows
of about `chunk_sentences` sentences: the documents starting in the same block of
`chunk_sentences` corpus sentences (blocks joined so a window has at least two documents; see
`windows`). A window is where random next-segments are drawn from. Each window is
processed independently (tokenize, make instances, shuffle, serialize) on as many worker
processes as asked; every random decision about a document comes from a generator seeded by
(random_seed, document index in the corpus, duplication pass), the window's shuffle from one
seeded by (random_seed, window id). Results are written back in window order, round-robin
over the shards. So the output is identical byte-for-byte for the same inputs, seed and shard
count, whatever the worker count; memory is bounded by a few windows per worker; and the
Apache Beam pipeline (`beam_pipeline`) writes the same instances (as a multiset) on a cluster.

Records carry the original feature names and types (int64 input_ids, input_mask, segment_ids
[max_seq_length]; masked_lm_positions, masked_lm_ids [max_predictions_per_seq]; float
masked_lm_weights; int64 next_sentence_labels [1], 0 = B follows A, 1 = B is random), so
files written by the original script and by this module are interchangeable. With
max_predictions_per_seq=0 the records are left unmasked (no masked_lm_* features) for dynamic
masking at training time.

Next to the shards, `<prefix>.metadata.json` records the settings and counts.

    config.py      CreationConfig, PretrainingDataError
    tokenizers.py  tokenizer factories for the worker processes
    instances.py   instances from documents (the original's recipe), serialization
    outputs.py     input file patterns, shard names, metadata
    create.py      windows -> records on worker processes, written to the shards
"""

import collections
import contextlib
import multiprocessing
import os
import time

from bert_tf.atomic_io import atomic_write_json
from bert_tf.data.pretraining import windows as windows_lib
from bert_tf.data.pretraining.config import CreationConfig, PretrainingDataError
from bert_tf.data.pretraining.instances import (
    Instance,
    InstanceVocab,
    create_instances_from_document,
    serialize_instance,
)
from bert_tf.data.pretraining.outputs import (
    METADATA_FORMAT,
    METADATA_SUFFIX,
    SHARD_SUFFIX,
    ShardWriter,
    build_metadata,
    check_outputs,
    existing_outputs,
    expand_input_files,
    metadata_path,
    shard_paths,
)
from bert_tf.data.pretraining.tokenizers import (
    BertTokenizerFactory,
    PretokenizedFactory,
    read_vocab,
)
from bert_tf.input_files import file_sha256
from bert_tf.text import vocab as vocab_lib

# The names this module has always offered (their code moved to the modules listed above).
SPECIAL_TOKENS = vocab_lib.SPECIAL_TOKENS
_Vocab = InstanceVocab
__all__ = [
    "BertTokenizerFactory",
    "ChunkResult",
    "CreationConfig",
    "Instance",
    "METADATA_FORMAT",
    "METADATA_SUFFIX",
    "PretokenizedFactory",
    "PretrainingDataError",
    "SHARD_SUFFIX",
    "build_metadata",
    "create_instances_from_document",
    "create_pretraining_data",
    "existing_outputs",
    "expand_input_files",
    "file_sha256",
    "iter_chunks",
    "metadata_path",
    "process_chunk",
    "read_vocab",
    "serialize_instance",
    "shard_paths",
]


# ----------------------------------------------------------------------------- windows

ChunkResult = collections.namedtuple(
    "ChunkResult", "index records documents sentences tokens masked random_next"
)

_WORKER: dict = {}


def _init_worker(tokenizer_factory, vocab, config):
    _WORKER["tokenize"] = tokenizer_factory()
    _WORKER["vocab"] = vocab
    _WORKER["config"] = config


def _tokenize_documents(documents, tokenize_batch, batch_size=512):
    """Tokenizes every sentence of [(doc_id, sentences)], in batches, dropping sentences that
    come out empty (and documents left with none): [(doc_id, token-id sentences)]."""
    flat = [s for _, doc in documents for s in doc]
    ids = []
    for start in range(0, len(flat), batch_size):
        ids.extend(tokenize_batch(flat[start : start + batch_size]))
    out, k = [], 0
    for doc_id, doc in documents:
        tokenized = [list(t) for t in ids[k : k + len(doc)] if len(t)]
        k += len(doc)
        if tokenized:
            out.append((doc_id, tokenized))
    return out


def process_chunk(index, documents, tokenize_batch, vocab, config):
    """Turns one window (`index` = window id; documents = [(doc_id, sentence strings)] in
    doc_id order) into serialized records. Depends on nothing but its arguments."""
    tokenized = _tokenize_documents(documents, tokenize_batch)
    docs = [d for _, d in tokenized]
    instances = []
    for dupe in range(config.dupe_factor):
        for position, (doc_id, _) in enumerate(tokenized):
            rng = windows_lib.document_rng(config.random_seed, doc_id, dupe)
            instances.extend(create_instances_from_document(docs, position, config, vocab, rng))
    windows_lib.window_rng(config.random_seed, index).shuffle(instances)
    records = [
        serialize_instance(x, config.max_seq_length, config.max_predictions_per_seq)
        for x in instances
    ]
    return ChunkResult(
        index=index,
        records=records,
        documents=len(docs),
        sentences=sum(len(d) for d in docs),
        tokens=sum(len(s) for d in docs for s in d),
        masked=sum(len(x.masked_positions) for x in instances),
        random_next=sum(1 for x in instances if x.is_random_next),
    )


def _worker_process_chunk(task):
    index, documents = task
    return process_chunk(index, documents, _WORKER["tokenize"], _WORKER["vocab"], _WORKER["config"])


def iter_chunks(files, config, stats):
    """Yields (window id, [(doc_id, sentences)]) in corpus order (see `windows`)."""
    located = windows_lib.iter_located_documents(files, config, stats)
    yield from windows_lib.iter_windows(located, config.chunk_sentences)


# ----------------------------------------------------------------------------- the run


def _submit_bounded(pool, tasks, max_pending):
    """Like pool.imap (ordered) but never reads more than `max_pending` tasks ahead, so the
    input streams instead of being slurped by the pool's feeder thread."""
    pending = collections.deque()
    for task in tasks:
        pending.append(pool.apply_async(_worker_process_chunk, (task,)))
        if len(pending) >= max_pending:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _check_arguments(config, num_shards, num_workers):
    config.validate()
    if num_shards < 1:
        raise PretrainingDataError(f"num_shards must be >= 1, got {num_shards}")
    if num_workers < 1:
        raise PretrainingDataError(f"num_workers must be >= 1, got {num_workers}")


def _refuse_existing(output_prefix, overwrite):
    existing = [] if overwrite else existing_outputs(output_prefix)
    if existing:
        raise PretrainingDataError(
            f"{existing[0]}: output already exists ({len(existing)} files under prefix "
            f"{output_prefix}); pass overwrite to replace them"
        )


def _clear_outputs(output_prefix):
    os.makedirs(os.path.dirname(os.path.abspath(output_prefix)), exist_ok=True)
    for old in existing_outputs(output_prefix):
        os.remove(old)


class _Progress:
    """Running totals and the progress callback (every `every_seconds` and at the end)."""

    def __init__(self, callback, every_seconds):
        self.callback, self.every_seconds = callback, every_seconds
        self.stats = {"lines": 0}  # filled by the document reader
        self.totals = collections.Counter()
        self.start = self.last = time.time()

    def add(self, result):
        self.totals.update(
            documents=result.documents,
            sentences=result.sentences,
            tokens=result.tokens,
            masked=result.masked,
            random_next=result.random_next,
            instances=len(result.records),
            chunks=1,
        )
        if self.callback and time.time() - self.last >= self.every_seconds:
            self.last = time.time()
            self.report()

    def report(self, final=False):
        elapsed = max(time.time() - self.start, 1e-9)
        lines, totals = self.stats.get("lines", 0), self.totals
        info = {
            "lines": lines,
            "documents": totals["documents"],
            "sentences": totals["sentences"],
            "instances": totals["instances"],
            "elapsed_seconds": elapsed,
            "lines_per_second": lines / elapsed,
            "sentences_per_second": totals["sentences"] / elapsed,
            "final": final,
        }
        if self.callback:
            self.callback(info)
        return info

    def counts(self):
        totals = self.totals
        return {
            "lines": self.stats.get("lines", 0),
            "documents": totals["documents"],
            "sentences": totals["sentences"],
            "tokens": totals["tokens"],
            "instances": totals["instances"],
            "masked_tokens": totals["masked"],
            "random_next": totals["random_next"],
            "chunks": totals["chunks"],
        }


@contextlib.contextmanager
def _chunk_results(chunks, factory, vocab, config, num_workers):
    """The windows' ChunkResults in window order: in this process, or on a pool of
    `num_workers` spawned processes (terminated on exit)."""
    if num_workers == 1:
        tokenize_batch = factory()
        yield (process_chunk(i, docs, tokenize_batch, vocab, config) for i, docs in chunks)
        return
    pool = multiprocessing.get_context("spawn").Pool(
        num_workers, initializer=_init_worker, initargs=(factory, vocab, config)
    )
    try:
        yield _submit_bounded(pool, chunks, max_pending=2 * num_workers)
    finally:
        pool.terminate()
        pool.join()


def _write_shards(results, paths, progress):
    """Writes the records round-robin over the shards (renamed into place only when every
    record is written and there was at least one). Returns the records per shard."""
    with ShardWriter(paths) as shards:
        for result in results:
            for record in result.records:
                shards.write(record)
            progress.add(result)
        if progress.totals["instances"] == 0:
            raise _NoInstances()
    return shards.counts


class _NoInstances(Exception):
    """Nothing was written (turned into a PretrainingDataError naming the input)."""


def create_pretraining_data(
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
    progress=None,
    progress_every_seconds=10.0,
):
    """Writes `<output_prefix>-NNNNN-of-MMMMM.tfrecord` shards and
    `<output_prefix>.metadata.json`. Returns the metadata dict.

    Args:
      input_files: comma-separated globs or a list of them.
      tokenizer_factory: picklable callable returning `tokenize_batch(list[str]) ->
        list[list[int]]`; default `BertTokenizerFactory(vocab_file, lower_case)`.
      num_workers: processes tokenizing and building instances (1 = in this process).
      progress: optional callable(dict) called every `progress_every_seconds` and at the end
        with lines, documents, sentences, instances, elapsed seconds, lines_per_second.
    """
    config = config or CreationConfig()
    _check_arguments(config, num_shards, num_workers)
    files = expand_input_files(input_files)
    tokens = read_vocab(vocab_file)
    vocab = InstanceVocab(tokens)
    _refuse_existing(output_prefix, overwrite)
    record_outputs = check_outputs(
        output_prefix,
        num_shards,
        overwrite,
        [("--input_files", f) for f in files] + [("--vocab_file", vocab_file)],
    )
    factory = tokenizer_factory or BertTokenizerFactory(vocab_file, lower_case)
    _clear_outputs(output_prefix)
    paths = shard_paths(output_prefix, num_shards)
    tracker = _Progress(progress, progress_every_seconds)
    chunks = iter_chunks(files, config, tracker.stats)
    try:
        with _chunk_results(chunks, factory, vocab, config, num_workers) as results:
            shard_counts = _write_shards(results, paths, tracker)
    except _NoInstances:
        raise PretrainingDataError(
            f"{files[0]}: no training instances could be made from the input "
            f"({tracker.stats.get('lines', 0)} lines, {tracker.totals['documents']} non-empty "
            "documents)"
        ) from None
    record_outputs()  # the shards are in place; the metadata comes next
    final = tracker.report(final=True)
    metadata = build_metadata(
        config,
        files,
        vocab_file,
        tokens,
        lower_case,
        [os.path.basename(p) for p in paths],
        shard_counts,
        tracker.counts(),
    )
    atomic_write_json(metadata_path(output_prefix), metadata)
    metadata["elapsed_seconds"] = final["elapsed_seconds"]
    return metadata
