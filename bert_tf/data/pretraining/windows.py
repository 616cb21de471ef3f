"""Which documents share a window, and the random generators, for pre-training data creation.

Both engines (the single-host streaming path in `pretraining_data` and the Apache Beam pipeline
in `beam_pipeline`) go through this module, so they make the same instances for the same seed.
Every random decision depends only on the seed and on *where a document is in the corpus*,
never on which worker handles it or in what order:

- Corpus order: the input files in the order `expand_input_files` gives (each comma-separated
  pattern's matches sorted), then the documents of each file in order. A document's `doc_id` is
  its index in that order, its `sentence_offset` the number of sentences (as split from the
  text, before tokenization) before it in the corpus.
- Blocks: the document belongs to block `sentence_offset // chunk_sentences`, i.e. the block of
  `chunk_sentences` corpus sentences in which it starts.
- Windows: consecutive blocks are grouped so that every window holds at least two documents:
  going through the blocks in order, a block joins the open window while that window has fewer
  than two documents, else it opens a new one; a last window left with fewer than two
  documents joins the one before it. The window id is its first block's index.
  Random next-sentence segments for a document are drawn from the documents of its window.
- Generators: instances of document `doc_id` in duplication pass `dupe` (segment pairing,
  truncation, masks) use `random.Random(f"bert_tf-pretraining-{seed}-doc-{doc_id}-{dupe}")`;
  the shuffle of a window's instances uses one seeded by the window id.

Python's `random.Random(str)` hashes the string with SHA-512, so these generators are the same
in every process and on every machine (no PYTHONHASHSEED dependence).
"""

import random

from bert_tf.data.pretraining import sentences as sentences_lib


def document_rng(seed, doc_id, dupe):
    """The generator for every random decision about one document in one duplication pass."""
    return random.Random(f"bert_tf-pretraining-{seed}-doc-{doc_id}-{dupe}")


def window_rng(seed, window_id):
    """The generator that shuffles one window's instances before they are written."""
    return random.Random(f"bert_tf-pretraining-{seed}-window-{window_id}")


def block_of(sentence_offset, chunk_sentences):
    return sentence_offset // chunk_sentences


class BlockGrouper:
    """Groups consecutive blocks into windows of at least two documents (rule above).

    Feed blocks in order with `add(block_id, num_documents, payload)`; it returns the windows
    that are final, as (window_id, [payloads]); `finish()` returns the rest. At most two windows
    are held: the open one (fewer than two documents) and the last complete one (which the
    corpus' tail may still join)."""

    def __init__(self):
        self._held = None  # (window_id, payloads): complete, may still receive the tail
        self._open = []  # payloads of blocks with fewer than two documents in total so far
        self._open_id = None
        self._open_docs = 0

    def add(self, block_id, num_documents, payload):
        if self._open_id is None:
            self._open_id = block_id
        self._open.append(payload)
        self._open_docs += num_documents
        if self._open_docs < 2:
            return []
        done = [self._held] if self._held is not None else []
        self._held = (self._open_id, self._open)
        self._open, self._open_id, self._open_docs = [], None, 0
        return done

    def finish(self):
        held, tail, tail_id = self._held, self._open, self._open_id
        self.__init__()
        if held is None:
            return [(tail_id, tail)] if tail else []
        return [(held[0], held[1] + tail)]


def window_of_blocks(block_counts):
    """{block_id: window_id} from [(block_id, num_documents)] (any order): the same grouping
    as the streaming path, computed from the counts alone (the Beam pipeline's side input)."""
    grouper = BlockGrouper()
    windows = []
    for block_id, count in sorted(block_counts):
        windows.extend(grouper.add(block_id, count, block_id))
    windows.extend(grouper.finish())
    return {block: window_id for window_id, blocks in windows for block in blocks}


def iter_located_documents(files, config, stats=None):
    """Yields (doc_id, sentence_offset, sentences) for the corpus in order (streamed)."""
    doc_id = offset = 0
    for path in files:
        for document in sentences_lib.iter_documents(
            path, config.input_format, config.max_document_sentences, stats=stats
        ):
            yield doc_id, offset, document
            doc_id += 1
            offset += len(document)


def iter_windows(located_documents, chunk_sentences):
    """Streams windows: (window_id, [(doc_id, sentences)] in doc_id order) from documents in
    corpus order. Holds at most the current block and two windows in memory."""
    grouper = BlockGrouper()
    block_id, block = None, []
    for doc_id, offset, document in located_documents:
        b = block_of(offset, chunk_sentences)
        if b != block_id and block:
            for window_id, blocks in grouper.add(block_id, len(block), block):
                yield window_id, [d for blk in blocks for d in blk]
            block = []
        block_id = b
        block.append((doc_id, document))
    if block:
        for window_id, blocks in grouper.add(block_id, len(block), block):
            yield window_id, [d for blk in blocks for d in blk]
    for window_id, blocks in grouper.finish():
        yield window_id, [d for blk in blocks for d in blk]
