"""Creating BERT pre-training records: masked LM + next-sentence prediction, streamed.

The recipe is google-research/bert's create_pretraining_data.py (re-implemented): documents are
split into segment pairs up to `max_seq_length` (shorter targets with `short_seq_prob`), half of
the B segments are random segments from another document (the A-side segments not used are put
back), pairs are truncated longest-first from a random end, 15% of the tokens are masked
(80/10/10), and every document is processed `dupe_factor` times with different masks.

Unlike the original, nothing is loaded whole. Documents stream from the files into windows
of about `chunk_sentences` sentences: the documents starting in the same block of
`chunk_sentences` corpus sentences (blocks joined so a window has at least two documents; see
`pretraining_windows`). A window is where random next-segments are drawn from. Each window is
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
"""

import collections
import dataclasses
import glob
import hashlib
import json
import multiprocessing
import os
import time

from bert_tf.data import pretraining_example
from bert_tf.data import pretraining_windows as windows_lib
from bert_tf.data import sentences as sentences_lib
from bert_tf.data.text_files import looks_binary
from bert_tf.text import masking
from bert_tf.text import vocab as vocab_lib
from bert_tf.errors import BertTfError

SPECIAL_TOKENS = vocab_lib.SPECIAL_TOKENS
SHARD_SUFFIX = ".tfrecord"
METADATA_SUFFIX = ".metadata.json"
METADATA_FORMAT = "bert_tf.pretraining_records"


class PretrainingDataError(BertTfError, ValueError):
    """Bad input for pre-training data creation; the message is one line."""


@dataclasses.dataclass(frozen=True)
class CreationConfig:
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20  # 0 = unmasked records (for dynamic masking)
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    dupe_factor: int = 10
    random_seed: int = 12345
    whole_word_masking: bool = False
    input_format: str = "auto"
    chunk_sentences: int = 10000
    max_document_sentences: int = 10000

    def validate(self):
        if self.max_seq_length < 5:
            raise PretrainingDataError(
                f"max_seq_length must be at least 5 ([CLS] a [SEP] b [SEP]), got "
                f"{self.max_seq_length}")
        if not 0.0 < self.masked_lm_prob < 1.0:
            raise PretrainingDataError(
                f"masked_lm_prob must be in (0, 1), got {self.masked_lm_prob}")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise PretrainingDataError(
                f"short_seq_prob must be in [0, 1], got {self.short_seq_prob}")
        if self.dupe_factor < 1:
            raise PretrainingDataError(f"dupe_factor must be >= 1, got {self.dupe_factor}")
        if self.max_predictions_per_seq < 0:
            raise PretrainingDataError(
                f"max_predictions_per_seq must be >= 0, got {self.max_predictions_per_seq}")
        if self.max_predictions_per_seq:
            needed = int(round(self.max_seq_length * self.masked_lm_prob))
            if self.max_predictions_per_seq < needed:
                raise PretrainingDataError(
                    f"max_predictions_per_seq={self.max_predictions_per_seq} is too small for "
                    f"masked_lm_prob={self.masked_lm_prob} * max_seq_length="
                    f"{self.max_seq_length}: needs at least {needed} (or 0 for unmasked "
                    "records and dynamic masking)")
        if self.input_format not in sentences_lib.FORMATS:
            raise PretrainingDataError(
                f"input_format must be one of {sentences_lib.FORMATS}, got "
                f"{self.input_format!r}")


# ----------------------------------------------------------------------------- vocab / tokenizer

def read_vocab(vocab_file):
    """The vocab as a list of tokens (line i = id i), with a one-line error if unusable
    (missing file, no special tokens, duplicates)."""
    try:
        return vocab_lib.load_vocab(vocab_file)
    except vocab_lib.VocabError as e:
        raise PretrainingDataError(str(e)) from None


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_TOKENIZER_CACHE = {}


class BertTokenizerFactory:
    """Picklable recipe for the project's BertTokenizer; called once in each worker, it
    returns `tokenize_batch(list[str]) -> list[list[int]]`."""

    def __init__(self, vocab_file, lower_case=None):
        self.vocab_file = vocab_file
        self.lower_case = lower_case  # None: inferred from the vocab

    def __call__(self):
        key = (os.path.abspath(self.vocab_file), file_sha256(self.vocab_file), self.lower_case)
        if key not in _TOKENIZER_CACHE:  # building + tracing takes seconds: once per process
            _TOKENIZER_CACHE[key] = self._build()
        return _TOKENIZER_CACHE[key]

    def _build(self):
        import tensorflow as tf

        from bert_tf.text.tokenizer import BertTokenizer
        tokenizer = BertTokenizer(vocab_file=self.vocab_file, lower_case=self.lower_case)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def run(strings):
            return tokenizer.tokenize(strings)

        def tokenize_batch(lines):
            if not lines:
                return []
            ragged = run(tf.constant(lines))
            return [row.tolist() for row in _ragged_rows(ragged)]

        return tokenize_batch


def _ragged_rows(ragged):
    values = ragged.flat_values.numpy()
    splits = ragged.row_splits.numpy()
    return [values[splits[i]:splits[i + 1]] for i in range(len(splits) - 1)]


class PretokenizedFactory:
    """For text that is already WordPiece-tokenized (pieces separated by spaces): looks each
    piece up in the vocab, [UNK] if absent. Pure Python, also a handy test stand-in."""

    def __init__(self, vocab_file, lower_case=False):
        self.vocab_file = vocab_file
        self.lower_case = lower_case

    def __call__(self):
        vocab = {t: i for i, t in enumerate(read_vocab(self.vocab_file))}
        unk = vocab["[UNK]"]
        lower = self.lower_case

        def tokenize_batch(lines):
            return [[vocab.get(p, unk) for p in (line.lower() if lower else line).split()]
                    for line in lines]

        return tokenize_batch


# ----------------------------------------------------------------------------- instances

Instance = collections.namedtuple(
    "Instance", "input_ids segment_ids masked_positions masked_ids is_random_next")


def _truncate_pair(tokens_a, tokens_b, max_num_tokens, rng):
    """Longest-first truncation, each cut from the front or the back at random (original)."""
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


class _Vocab:
    """What instance creation needs to know about the vocab (small, picklable)."""

    def __init__(self, tokens):
        self.size = len(tokens)
        ids = {t: i for i, t in enumerate(tokens)}
        self.cls_id, self.sep_id, self.mask_id = ids["[CLS]"], ids["[SEP]"], ids["[MASK]"]
        self.pad_id, self.unk_id = ids["[PAD]"], ids["[UNK]"]
        self.special_ids = frozenset(ids[t] for t in SPECIAL_TOKENS)
        self.continuation = frozenset(i for i, t in enumerate(tokens) if t.startswith("##"))


def create_instances_from_document(documents, index, config, vocab, rng):
    """The original's create_instances_from_document, on token-id documents."""
    document = documents[index]
    max_num_tokens = config.max_seq_length - 3
    target_seq_length = max_num_tokens
    if rng.random() < config.short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)
    instances = []
    current_chunk, current_length = [], 0
    i = 0
    while i < len(document):
        segment = document[i]
        current_chunk.append(segment)
        current_length += len(segment)
        if i == len(document) - 1 or current_length >= target_seq_length:
            if current_chunk:
                a_end = 1
                if len(current_chunk) >= 2:
                    a_end = rng.randint(1, len(current_chunk) - 1)
                tokens_a = [t for seg in current_chunk[:a_end] for t in seg]
                tokens_b = []
                is_random_next = len(current_chunk) == 1 or rng.random() < 0.5
                if is_random_next:
                    target_b_length = target_seq_length - len(tokens_a)
                    random_index = index
                    if len(documents) > 1:
                        for _ in range(10):
                            random_index = rng.randint(0, len(documents) - 1)
                            if random_index != index:
                                break
                    random_document = documents[random_index]
                    start = rng.randint(0, len(random_document) - 1)
                    for j in range(start, len(random_document)):
                        tokens_b.extend(random_document[j])
                        if len(tokens_b) >= target_b_length:
                            break
                    # The A-side segments not used go back to be used again.
                    i -= len(current_chunk) - a_end
                else:
                    tokens_b = [t for seg in current_chunk[a_end:] for t in seg]
                _truncate_pair(tokens_a, tokens_b, max_num_tokens, rng)
                if tokens_a and tokens_b:
                    tokens = [vocab.cls_id, *tokens_a, vocab.sep_id, *tokens_b, vocab.sep_id]
                    segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
                    if config.max_predictions_per_seq:
                        tokens, positions, labels = masking.create_masked_lm_predictions(
                            tokens, rng, masked_lm_prob=config.masked_lm_prob,
                            max_predictions_per_seq=config.max_predictions_per_seq,
                            vocab_size=vocab.size, mask_id=vocab.mask_id,
                            special_ids=vocab.special_ids,
                            is_continuation=vocab.continuation.__contains__,
                            whole_word_masking=config.whole_word_masking)
                    else:
                        positions, labels = [], []
                    instances.append(Instance(tokens, segment_ids, positions, labels,
                                              is_random_next))
            current_chunk, current_length = [], 0
        i += 1
    return instances


# ----------------------------------------------------------------------------- serialization

def serialize_instance(instance, max_seq_length, max_predictions_per_seq):
    """One tf.train.Example with the original feature names, as bytes (the same bytes as
    tf.train.Example.SerializeToString(deterministic=True))."""
    n = len(instance.input_ids)
    pad = max_seq_length - n
    ints = {
        "input_ids": instance.input_ids + [0] * pad,
        "input_mask": [1] * n + [0] * pad,
        "segment_ids": instance.segment_ids + [0] * pad,
        "next_sentence_labels": [1 if instance.is_random_next else 0],
    }
    floats = {}
    if max_predictions_per_seq:
        m = len(instance.masked_positions)
        mpad = max_predictions_per_seq - m
        ints["masked_lm_positions"] = instance.masked_positions + [0] * mpad
        ints["masked_lm_ids"] = instance.masked_ids + [0] * mpad
        floats["masked_lm_weights"] = [1.0] * m + [0.0] * mpad
    return pretraining_example.encode_example(ints, floats)


# ----------------------------------------------------------------------------- chunks

ChunkResult = collections.namedtuple(
    "ChunkResult", "index records documents sentences tokens masked random_next")

_WORKER = {}


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
        ids.extend(tokenize_batch(flat[start:start + batch_size]))
    out, k = [], 0
    for doc_id, doc in documents:
        tokenized = [list(t) for t in ids[k:k + len(doc)] if len(t)]
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
    records = [serialize_instance(x, config.max_seq_length, config.max_predictions_per_seq)
               for x in instances]
    return ChunkResult(
        index=index, records=records, documents=len(docs),
        sentences=sum(len(d) for d in docs), tokens=sum(len(s) for d in docs for s in d),
        masked=sum(len(x.masked_positions) for x in instances),
        random_next=sum(1 for x in instances if x.is_random_next))


def _worker_process_chunk(task):
    index, documents = task
    return process_chunk(index, documents, _WORKER["tokenize"], _WORKER["vocab"],
                         _WORKER["config"])


def iter_chunks(files, config, stats):
    """Yields (window id, [(doc_id, sentences)]) in corpus order (see `pretraining_windows`)."""
    located = windows_lib.iter_located_documents(files, config, stats)
    yield from windows_lib.iter_windows(located, config.chunk_sentences)


# ----------------------------------------------------------------------------- files

def expand_input_files(input_files):
    """Comma-separated globs (or a list of them) -> sorted unique paths; one-line errors for
    patterns matching nothing and for empty files. Remote globs (gs://...) go through TF's
    gfile."""
    patterns = input_files.split(",") if isinstance(input_files, str) else list(input_files)
    patterns = [p.strip() for p in patterns if p.strip()]
    if not patterns:
        raise PretrainingDataError("no input files given")
    files = []
    for pattern in patterns:
        if sentences_lib.is_remote(pattern):
            matched = sorted(sentences_lib.gfile().glob(pattern))
        else:
            matched = sorted(glob.glob(os.path.expanduser(pattern)))
        if not matched:
            raise PretrainingDataError(f"{pattern}: no such input file")
        for path in matched:
            if _is_dir(path):
                raise PretrainingDataError(f"{path}: is a directory, expected a text file")
            if path not in files:
                files.append(path)
    for path in files:
        if _file_size(path) == 0:
            raise PretrainingDataError(f"{path}: input file is empty")
        binary = looks_binary(path)
        if binary:
            raise PretrainingDataError(f"{path}: not a text file ({binary}); expected UTF-8 "
                                       "text (decompress archives first)")
    return files


def _is_dir(path):
    if sentences_lib.is_remote(path):
        return sentences_lib.gfile().isdir(path)
    return os.path.isdir(path)


def _file_size(path):
    if sentences_lib.is_remote(path):
        return sentences_lib.gfile().stat(path).length
    return os.path.getsize(path)


def shard_paths(output_prefix, num_shards):
    return [f"{output_prefix}-{i:05d}-of-{num_shards:05d}{SHARD_SUFFIX}"
            for i in range(num_shards)]


def metadata_path(output_prefix):
    return output_prefix + METADATA_SUFFIX


def existing_outputs(output_prefix):
    """Shards or metadata already present under this prefix."""
    found = glob.glob(glob.escape(output_prefix) + "-*-of-*" + SHARD_SUFFIX)
    if os.path.exists(metadata_path(output_prefix)):
        found.append(metadata_path(output_prefix))
    return sorted(found)


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


def create_pretraining_data(input_files, output_prefix, vocab_file, *, config=None,
                            lower_case=None, num_shards=1, num_workers=1,
                            tokenizer_factory=None, overwrite=False, progress=None,
                            progress_every_seconds=10.0):
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
    config.validate()
    if num_shards < 1:
        raise PretrainingDataError(f"num_shards must be >= 1, got {num_shards}")
    if num_workers < 1:
        raise PretrainingDataError(f"num_workers must be >= 1, got {num_workers}")
    files = expand_input_files(input_files)
    tokens = read_vocab(vocab_file)
    vocab = _Vocab(tokens)
    if not overwrite:
        existing = existing_outputs(output_prefix)
        if existing:
            raise PretrainingDataError(
                f"{existing[0]}: output already exists ({len(existing)} files under prefix "
                f"{output_prefix}); pass overwrite to replace them")
    factory = tokenizer_factory or BertTokenizerFactory(vocab_file, lower_case)
    import tensorflow as tf
    out_dir = os.path.dirname(os.path.abspath(output_prefix))
    os.makedirs(out_dir, exist_ok=True)
    for old in existing_outputs(output_prefix):
        os.remove(old)

    paths = shard_paths(output_prefix, num_shards)
    tmp_paths = [p + ".tmp" for p in paths]
    stats = {"lines": 0}
    totals = collections.Counter()
    shard_counts = [0] * num_shards
    start = time.time()
    last_report = start

    def report(final=False):
        elapsed = max(time.time() - start, 1e-9)
        info = {"lines": stats.get("lines", 0), "documents": totals["documents"],
                "sentences": totals["sentences"], "instances": totals["instances"],
                "elapsed_seconds": elapsed,
                "lines_per_second": stats.get("lines", 0) / elapsed,
                "sentences_per_second": totals["sentences"] / elapsed, "final": final}
        if progress:
            progress(info)
        return info

    chunks = iter_chunks(files, config, stats)
    pool = None
    writers = [tf.io.TFRecordWriter(p) for p in tmp_paths]
    try:
        if num_workers == 1:
            tokenize_batch = factory()
            results = (process_chunk(i, docs, tokenize_batch, vocab, config)
                       for i, docs in chunks)
        else:
            pool = multiprocessing.get_context("spawn").Pool(
                num_workers, initializer=_init_worker, initargs=(factory, vocab, config))
            results = _submit_bounded(pool, chunks, max_pending=2 * num_workers)
        next_shard = 0
        for result in results:
            for record in result.records:
                writers[next_shard].write(record)
                shard_counts[next_shard] += 1
                next_shard = (next_shard + 1) % num_shards
            totals.update(documents=result.documents, sentences=result.sentences,
                          tokens=result.tokens, masked=result.masked,
                          random_next=result.random_next, instances=len(result.records),
                          chunks=1)
            if progress and time.time() - last_report >= progress_every_seconds:
                last_report = time.time()
                report()
        for w in writers:
            w.close()
        writers = []
    except BaseException:
        for w in writers:
            w.close()
        for p in tmp_paths:
            if os.path.exists(p):
                os.remove(p)
        raise
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    if totals["instances"] == 0:
        for p in tmp_paths:
            os.remove(p)
        raise PretrainingDataError(
            f"{files[0]}: no training instances could be made from the input "
            f"({stats.get('lines', 0)} lines, {totals['documents']} non-empty documents)")
    for tmp, final in zip(tmp_paths, paths):
        os.replace(tmp, final)
    final = report(final=True)
    counts = {"lines": stats.get("lines", 0), "documents": totals["documents"],
              "sentences": totals["sentences"], "tokens": totals["tokens"],
              "instances": totals["instances"], "masked_tokens": totals["masked"],
              "random_next": totals["random_next"], "chunks": totals["chunks"]}
    metadata = build_metadata(config, files, vocab_file, tokens, lower_case,
                              [os.path.basename(p) for p in paths], shard_counts, counts)
    text = json.dumps(metadata, indent=2, sort_keys=True) + "\n"
    tmp_meta = metadata_path(output_prefix) + ".tmp"
    with open(tmp_meta, "w") as f:
        f.write(text)
    os.replace(tmp_meta, metadata_path(output_prefix))
    metadata["elapsed_seconds"] = final["elapsed_seconds"]
    return metadata


def build_metadata(config, files, vocab_file, tokens, lower_case, shard_names, shard_counts,
                   counts, engine="local"):
    """The `<prefix>.metadata.json` dict (settings, vocab hash, shards, counts).
    `shard_counts` may be None when the writer does not report per-shard counts (Beam)."""
    vocab = _Vocab(tokens)
    return {
        "format": METADATA_FORMAT,
        "format_version": 1,
        "engine": engine,
        "masked": config.max_predictions_per_seq > 0,
        "max_seq_length": config.max_seq_length,
        "max_predictions_per_seq": config.max_predictions_per_seq,
        "masked_lm_prob": config.masked_lm_prob,
        "short_seq_prob": config.short_seq_prob,
        "dupe_factor": config.dupe_factor,
        "random_seed": config.random_seed,
        "whole_word_masking": config.whole_word_masking,
        "input_format": config.input_format,
        "chunk_sentences": config.chunk_sentences,
        "lower_case": (vocab_lib.infer_lower_case(tokens) if lower_case is None
                       else bool(lower_case)),
        "vocab_size": vocab.size,
        "vocab_sha256": file_sha256(vocab_file),
        "special_ids": {"pad": vocab.pad_id, "unk": vocab.unk_id, "cls": vocab.cls_id,
                        "sep": vocab.sep_id, "mask": vocab.mask_id},
        "input_files": list(files),
        "num_shards": len(shard_names),
        "shards": list(shard_names),
        "shard_instances": shard_counts,
        "counts": counts,
    }
