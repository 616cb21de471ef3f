"""Learning a WordPiece vocab from plain-text files.

    tokens, stats = build_vocab(["corpus/*.txt"], vocab_size=8000, lower_case=True)
    build_vocab_file(["corpus/*.txt"], "vocab.txt", vocab_size=8000, lower_case=True)

1. Count words, streaming: lines are read a batch at a time and split into words by the very
   pre-tokenizer BertTokenizer uses (same cleaning, casing, accent stripping, punctuation and
   CJK splitting), so the vocab is learnt on exactly the words WordPiece will later see.
   Memory grows with the number of distinct words, not with the corpus.
2. Learn the pieces with tf.text's top-down WordPiece learner (the BERT recipe: count every
   substring / "##"-suffix of the words, keep those above a frequency threshold, re-split and
   repeat); the threshold is searched so the result is just over vocab_size, then the least
   frequent learnt pieces are dropped to hit vocab_size exactly.
   Every character that occurs (up to max_unique_chars) is kept both word-initial and as
   "##"-suffix, so the corpus tokenizes with almost no [UNK].
3. Output order: [PAD] [UNK] [CLS] [SEP] [MASK] (+ extra reserved tokens), the single
   characters, then the learnt pieces by decreasing count.
"""

import collections
import os
import time

import tensorflow as tf
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

from bert_tf import input_files
from bert_tf.errors import BertTfError
from bert_tf.text import vocab as vocab_lib
from bert_tf.text.tokenizer import BertTokenizer


class VocabBuildError(BertTfError, ValueError):
    """Bad inputs for vocab building (one-line message)."""


def expand_inputs(patterns):
    """Comma-separated globs / list of globs -> sorted unique file paths (directories that a
    pattern matches are passed over)."""
    files = input_files.expand_patterns(
        patterns, lambda pattern: VocabBuildError(f"{pattern}: no input file matches")
    )
    return sorted(f for f in files if os.path.isfile(f))


def iter_lines(files, max_lines=None):
    """Non-empty lines of the files, streamed (UTF-8; undecodable bytes replaced)."""
    n = 0
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if max_lines is not None and n >= max_lines:
                    return
                line = line.strip()
                if line:
                    n += 1
                    yield line


def _batches(lines, batch_size):
    batch = []
    for line in lines:
        batch.append(line)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def count_words(lines, lower_case, batch_size=4096):
    """Iterable of text lines -> Counter of normalized words (str -> count)."""
    splitter = BertTokenizer(vocab=list(vocab_lib.SPECIAL_TOKENS), lower_case=lower_case)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def split(batch):
        return splitter.split_words(batch).flat_values

    counts = collections.Counter()
    for batch in _batches(lines, batch_size):
        counts.update(split(tf.constant(batch)).numpy().tolist())
    return collections.Counter({w.decode("utf-8"): c for w, c in counts.items()})


def _is_char_token(token):
    suffix = vocab_lib.SUFFIX_INDICATOR
    return len(token) == 1 or (token.startswith(suffix) and len(token) == len(suffix) + 1)


def learn_vocab(
    word_counts,
    vocab_size,
    min_frequency=2,
    reserved_tokens=(),
    max_unique_chars=1000,
    max_token_length=50,
    num_iterations=4,
    log=None,
):
    """Word counts -> token list of exactly vocab_size tokens when the corpus allows (fewer
    for a tiny corpus): reserved, single characters, "##" characters, then learnt pieces.

    The learner keeps the pieces whose count reaches a threshold t; we pick t so the result is
    a little over vocab_size (starting from the count of the vocab_size-th most frequent word,
    then bisecting), and drop the least frequent learnt pieces."""
    reserved = list(vocab_lib.SPECIAL_TOKENS) + [
        t for t in reserved_tokens if t not in vocab_lib.SPECIAL_TOKENS
    ]
    if vocab_size <= len(reserved):
        raise VocabBuildError(
            f"vocab_size {vocab_size} leaves no room after the {len(reserved)} reserved tokens"
        )
    if not word_counts:
        raise VocabBuildError("no words to learn from (empty input?)")
    min_frequency = max(1, int(min_frequency))
    params = learner.Params(
        upper_thresh=None,
        lower_thresh=None,
        num_iterations=num_iterations,
        max_input_tokens=-1,
        max_token_length=max_token_length,
        max_unique_chars=max_unique_chars,
        vocab_size=vocab_size,
        slack_ratio=0.0,
        include_joiner_token=True,
        joiner=vocab_lib.SUFFIX_INDICATOR,
        reserved_tokens=reserved,
    )
    counts = learner.get_input_words(list(word_counts.items()), reserved, max_token_length)
    allowed = learner.get_allowed_chars(counts, max_unique_chars)
    counts = learner.filter_input_words(counts, allowed, -1)  # sorted by count
    if not counts:
        raise VocabBuildError("no usable words to learn from")
    best = _search_threshold(counts, params, vocab_size, min_frequency, log)
    return _assemble(best, reserved, vocab_size)


def _search_threshold(counts, params, vocab_size, min_frequency, log=None):
    """The learner's tokens for the highest count threshold that still gives at least
    vocab_size tokens (or, for a small corpus, the lowest threshold tried)."""
    lo, hi = None, None  # thresholds known to give >= / < vocab_size tokens
    t = max(min_frequency, counts[min(vocab_size, len(counts)) - 1][1])
    results = {}
    for _ in range(12):
        tokens = learner.learn_with_thresh(counts, t, params)
        results[t] = tokens
        if log:
            log(f"threshold {t}: {len(tokens)} tokens")
        if len(tokens) >= vocab_size:
            lo = t if lo is None else max(lo, t)
            if len(tokens) <= 1.2 * vocab_size:
                break
        else:
            hi = t if hi is None else min(hi, t)
        if lo is not None and hi is not None:
            if hi - lo <= 1:
                break
            t = (lo + hi) // 2
        elif lo is not None:
            t *= 2
        else:
            if t == min_frequency:
                break  # corpus too small for vocab_size
            t = max(min_frequency, t // 2)
    return results[lo] if lo is not None else results[min(results)]


def _assemble(tokens, reserved, vocab_size):
    """reserved + single characters + "##" characters + the most frequent learnt pieces."""
    protected = [t for t in tokens if t in reserved or _is_char_token(t)]
    if len(protected) > vocab_size:
        raise VocabBuildError(
            f"vocab_size {vocab_size} is smaller than the reserved tokens plus the "
            f"{len(protected) - len(reserved)} character tokens of this corpus (raise "
            "--vocab_size)"
        )
    learnt = [t for t in tokens if t not in reserved and not _is_char_token(t)]
    chars = sorted(t for t in protected if len(t) == 1 and t not in reserved)
    suffixes = sorted(t for t in protected if len(t) > 1 and t not in reserved)
    return reserved + chars + suffixes + learnt[: vocab_size - len(protected)]


def build_vocab(
    input_files,
    vocab_size=30522,
    lower_case=True,
    min_frequency=2,
    max_lines=None,
    reserved_tokens=(),
    max_unique_chars=1000,
    batch_size=4096,
    log=None,
):
    """Globs of text files -> (tokens, stats)."""
    files = expand_inputs(input_files)
    if not files:
        raise VocabBuildError(f"{input_files}: no input files")
    t0 = time.time()
    counts = count_words(iter_lines(files, max_lines), lower_case, batch_size)
    t1 = time.time()
    if log:
        log(f"counted {sum(counts.values())} words ({len(counts)} distinct) in {t1 - t0:.1f}s")
    tokens = learn_vocab(
        counts,
        vocab_size,
        min_frequency,
        reserved_tokens,
        max_unique_chars=max_unique_chars,
        log=log,
    )
    t2 = time.time()
    stats = {
        "files": len(files),
        "words": sum(counts.values()),
        "distinct_words": len(counts),
        "vocab_size": len(tokens),
        "count_seconds": round(t1 - t0, 2),
        "learn_seconds": round(t2 - t1, 2),
    }
    if log:
        log(f"learnt {len(tokens)} tokens in {t2 - t1:.1f}s")
    return tokens, stats


def build_vocab_file(input_files, output_path, vocab_size=30522, lower_case=True, **kwargs):
    """build_vocab + an atomic write of output_path. Returns the stats."""
    tokens, stats = build_vocab(input_files, vocab_size=vocab_size, lower_case=lower_case, **kwargs)
    vocab_lib.write_vocab(output_path, tokens)
    return stats
