"""CoNLL-2003 style column files for tagging (NER): read sentences, write predictions back.

Format: one token per line, whitespace-separated columns, the word first and the tag last
(CoNLL-2003: `word POS chunk NER`); a blank line ends a sentence; `-DOCSTART-` lines are
document separators and skipped. Columns may be separated by
tabs or spaces; a line of only whitespace (e.g. a single tab) ends a sentence like an empty
one; CRLF line ends and a leading BOM are fine.

Tag schemes (`tag_scheme`):
  iob    (default) IOB1 (CoNLL-2003 original: I- starts a chunk, B- only between adjacent
         chunks of one type) or IOB2/BIO (B- starts every chunk); kept as written (scoring
         treats them alike, see bert_tf.evaluation.tagging). Every tag is `O`, `B-TYPE` or
         `I-TYPE` with upper-case O/B/I.
  bioes  BIOES/IOBES (`S-TYPE` single-word and `E-TYPE` last-word chunks too): converted to
         IOB2 on reading (same chunks), so the model, the metrics and the predictions use IOB2.
A tag outside the scheme (a bare `PER`, `S-PER` under iob, lower-case `o` or `b-per`) fails
naming the file, line and tag: it would otherwise be scored as an entity type of its own.
Other errors name the file and line too: a line with a different column count than its
sentence, a missing tag column, a byte that is not UTF-8, a file without sentences.
"""

import dataclasses
import re

import numpy as np
import tensorflow as tf

from bert_tf.atomic_io import atomic_write_text
from bert_tf.data.batching import RaggedFeatures
from bert_tf.data.errors import DataError
from bert_tf.data.text_files import iter_lines
from bert_tf.data.windows import default_stride, max_context_windows, window_starts
from bert_tf.evaluation.tagging import convert_scheme
from bert_tf.settings import ConfigError

DOCSTART = "-DOCSTART-"
TAG_SCHEMES = ("iob", "bioes")
_TAG_PATTERN = {"iob": re.compile(r"O|[BI]-\S+"), "bioes": re.compile(r"O|[BIES]-\S+")}


@dataclasses.dataclass
class Sentence:
    words: list
    tags: list | None = None  # None when the file has no tag column (prediction input)
    lines: list | None = None  # source line number of each word
    columns: list | None = None  # the full column list of each line (written back with predictions)
    source: str = ""  # "file:first_line"


def _tag_problem(tag, scheme):
    """Why `tag` is not a tag of `scheme` (None if it is)."""
    if _TAG_PATTERN[scheme].fullmatch(tag):
        return None
    if _TAG_PATTERN[scheme].fullmatch(tag[:1].upper() + tag[1:]):
        return "the O/B-/I- prefix must be upper-case"
    if scheme == "iob" and _TAG_PATTERN["bioes"].fullmatch(tag):
        return "S-/E- tags are BIOES: pass --tag_scheme=bioes"
    if "-" not in tag:
        return "no B-/I- prefix (a bare type is not an IOB tag)"
    return "not a tag of the scheme"


def check_tag(path, line, tag, scheme):
    problem = _tag_problem(tag, scheme)
    if problem:
        expected = (
            "O, B-TYPE or I-TYPE" if scheme == "iob" else "O, B-TYPE, I-TYPE, E-TYPE or S-TYPE"
        )
        raise DataError(
            path,
            f"tag {tag!r}: {problem} (--tag_scheme={scheme}: expected {expected})",
            line=line,
            field="tag",
        )


def _to_iob2(sentence):
    sentence.tags = convert_scheme(sentence.tags, "iob2")


def read_sentences(path, need_tags=True, tag_scheme="iob"):
    """Returns the file's sentences. With need_tags, every token line needs >= 2 columns and
    its last column must be a tag of `tag_scheme` (bioes tags are returned as IOB2)."""
    if tag_scheme not in TAG_SCHEMES:
        raise DataError(
            path,
            f"expected one of {', '.join(TAG_SCHEMES)}, got {tag_scheme!r}",
            field="tag_scheme",
        )
    sentences = []
    words, tags, lines, columns = [], [], [], []
    width = None

    def flush():
        nonlocal words, tags, lines, columns, width
        if words:
            sentences.append(
                Sentence(words, tags if need_tags else None, lines, columns, f"{path}:{lines[0]}")
            )
        words, tags, lines, columns, width = [], [], [], [], None

    for line_number, line in enumerate(iter_lines(path), 1):
        fields = line.split()
        if not fields:
            flush()
            continue
        if fields[0] == DOCSTART:
            flush()
            continue
        if need_tags and len(fields) < 2:
            raise DataError(
                path,
                f"expected at least 2 columns (word ... tag), got {len(fields)}: {line.strip()!r}",
                line=line_number,
                field="tag",
            )
        if width is not None and len(fields) != width:
            raise DataError(
                path,
                f"expected {width} columns (as the sentence's first line), got {len(fields)}",
                line=line_number,
            )
        if need_tags:
            check_tag(path, line_number, fields[-1], tag_scheme)
        width = len(fields)
        words.append(fields[0])
        tags.append(fields[-1])
        lines.append(line_number)
        columns.append(fields)
    flush()
    if not sentences:
        raise DataError(path, "no sentences")
    if need_tags and tag_scheme == "bioes":
        for sentence in sentences:
            _to_iob2(sentence)
    return sentences


def tag_names(sentences):
    """The tag vocabulary: "O" first, then the others sorted by entity type, B before I."""
    tags = {t for s in sentences for t in s.tags}
    tags.discard("O")
    return ["O"] + sorted(tags, key=lambda t: (t[2:], t[:2]))


def write_predictions(path, sentences, predicted_tags):
    """CoNLL output, one word per line: the input columns then the predicted tag
    (`word ... gold predicted`, the layout conlleval reads); -DOCSTART- is not repeated."""
    out = []
    for sentence, predicted in zip(sentences, predicted_tags):
        for fields, tag in zip(sentence.columns, predicted):
            out.append(" ".join(list(fields) + [tag]))
        out.append("")
    atomic_write_text(path, "\n".join(out) + "\n")


@dataclasses.dataclass
class Window:
    """One feature: pieces [piece_start, piece_start + budget) of sentence `sentence`.
    words[i] = index (in the sentence) of a word whose first piece is in the window,
    positions[i] = token position of that first piece (its label / prediction),
    owns[i] = this is the window where that first piece has its maximum context (the one
    whose prediction the word gets)."""

    sentence: int
    piece_start: int
    words: list
    positions: list
    owns: list


@dataclasses.dataclass
class TagFeatureStats:
    sentences_split: int = 0  # sentences longer than max_seq_length, read in windows
    windows: int = 0  # features (windows) built
    unseen_tags: int = 0  # eval tags not in the training tag set (allowed mode)


def tokenize_words(tokenizer, words, chunk_size=4096):
    """{word: [piece ids]} for the distinct words; a word the tokenizer drops entirely
    (e.g. only control characters) gets [UNK], so every word keeps a position."""
    distinct = sorted(set(words))
    pieces = {}
    for start in range(0, len(distinct), chunk_size):
        part = distinct[start : start + chunk_size]
        for word, ids in zip(part, tokenizer.tokenize(tf.constant(part)).to_list()):
            pieces[word] = ids or [tokenizer.unk_id]
    return pieces


def _tag_id(sentence, wi, tag_ids, allow_unseen, stats):
    gold = sentence.tags[wi]
    if gold in tag_ids:
        return tag_ids[gold]
    if allow_unseen:
        stats.unseen_tags += 1
        return -1
    path, _, _ = sentence.source.rpartition(":")
    raise DataError(
        path,
        f"tag {gold!r} does not occur in the training data (known: {', '.join(tag_ids)})",
        line=sentence.lines[wi],
        field="tag",
    )


def build_features(
    sentences,
    tokenizer,
    max_seq_length,
    tag_ids=None,
    allow_unseen=False,
    stats=None,
    doc_stride=None,
    first_window_only=False,
):
    """Word-piece features `[CLS] pieces [SEP]`, the label on each word's first piece and -1
    (ignored in the loss) elsewhere.

    A sentence longer than max_seq_length - 2 pieces is read in windows of that many pieces,
    `doc_stride` apart (default half a window; bert_tf/data/windows.py); every word takes its
    prediction from the window where its first piece has the most context, and entities are
    decoded on the stitched sentence, so none is cut at a window border. With
    `first_window_only` (training with --long_inputs=truncate) only the first window of each
    sentence is kept. Returns (RaggedFeatures with ragged label "tags" when tag_ids is given,
    [Window])."""
    stats = stats if stats is not None else TagFeatureStats()
    budget = max_seq_length - 2
    if budget < 1:
        raise ConfigError(f"--max_seq_length={max_seq_length}: too short for tagging")
    stride = default_stride(budget, doc_stride)
    pieces = tokenize_words(tokenizer, [w for s in sentences for w in s.words])
    word_ids, type_ids, labels, windows = [], [], [], []
    for si, sentence in enumerate(sentences):
        ids, first, piece_tags = [], [], []
        for wi, word in enumerate(sentence.words):
            tag = _tag_id(sentence, wi, tag_ids, allow_unseen, stats) if tag_ids is not None else -1
            first.append(len(ids))
            piece_tags += [tag] + [-1] * (len(pieces[word]) - 1)
            ids += pieces[word]
        starts = window_starts(len(ids), budget, stride)
        stats.sentences_split += int(len(starts) > 1)
        best = max_context_windows(len(ids), starts, budget)
        first = np.asarray(first, np.int64)
        for w, start in enumerate(starts[:1] if first_window_only else starts):
            end = min(start + budget, len(ids))
            inside = np.nonzero((first >= start) & (first < end))[0]
            word_ids.append([tokenizer.cls_id] + ids[start:end] + [tokenizer.sep_id])
            type_ids.append([0] * (end - start + 2))
            labels.append([-1] + piece_tags[start:end] + [-1])
            windows.append(
                Window(
                    si,
                    start,
                    inside.tolist(),
                    (first[inside] - start + 1).tolist(),
                    (best[first[inside]] == w).tolist(),
                )
            )
    stats.windows += len(windows)
    label_dict = {"tags": labels} if tag_ids is not None else {}
    features = RaggedFeatures.from_lists(
        word_ids, type_ids, label_dict, ragged_labels=("tags",) if tag_ids is not None else ()
    )
    return features, windows


def stitch_predictions(sentences, windows, window_tags):
    """Per-window predicted tag lists (one per word of window.words) -> one list per sentence:
    each word's tag from the window that owns it (its max-context window)."""
    out = [[None] * len(s.words) for s in sentences]
    for window, tags in zip(windows, window_tags):
        for word, owns, tag in zip(window.words, window.owns, tags):
            if owns:
                out[window.sentence][word] = tag
    return [[t if t is not None else "O" for t in tags] for tags in out]
