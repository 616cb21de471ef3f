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

from bert_tf.data.errors import DataError
from bert_tf.data.text_files import iter_lines
from bert_tf.evaluation.tagging import convert_scheme

DOCSTART = "-DOCSTART-"
TAG_SCHEMES = ("iob", "bioes")
_TAG_PATTERN = {"iob": re.compile(r"O|[BI]-\S+"), "bioes": re.compile(r"O|[BIES]-\S+")}


@dataclasses.dataclass
class Sentence:
    words: list
    tags: list = None        # None when the file has no tag column (prediction input)
    lines: list = None       # source line number of each word
    columns: list = None     # the full column list of each line (written back with predictions)
    source: str = ""         # "file:first_line"


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
        expected = "O, B-TYPE or I-TYPE" if scheme == "iob" else \
            "O, B-TYPE, I-TYPE, E-TYPE or S-TYPE"
        raise DataError(path, f"tag {tag!r}: {problem} (--tag_scheme={scheme}: expected "
                        f"{expected})", line=line, field="tag")


def _to_iob2(sentence):
    sentence.tags = convert_scheme(sentence.tags, "iob2")


def read_sentences(path, need_tags=True, tag_scheme="iob"):
    """Returns the file's sentences. With need_tags, every token line needs >= 2 columns and
    its last column must be a tag of `tag_scheme` (bioes tags are returned as IOB2)."""
    if tag_scheme not in TAG_SCHEMES:
        raise DataError(path, f"expected one of {', '.join(TAG_SCHEMES)}, got {tag_scheme!r}",
                        field="tag_scheme")
    sentences = []
    words, tags, lines, columns = [], [], [], []
    width = None

    def flush():
        nonlocal words, tags, lines, columns, width
        if words:
            sentences.append(Sentence(words, tags if need_tags else None, lines, columns,
                                      f"{path}:{lines[0]}"))
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
            raise DataError(path, f"expected at least 2 columns (word ... tag), got "
                            f"{len(fields)}: {line.strip()!r}", line=line_number,
                            field="tag")
        if width is not None and len(fields) != width:
            raise DataError(path, f"expected {width} columns (as the sentence's first "
                            f"line), got {len(fields)}", line=line_number)
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
    from bert_tf.model_dir import atomic_write_text
    out = []
    for sentence, predicted in zip(sentences, predicted_tags):
        for fields, tag in zip(sentence.columns, predicted):
            out.append(" ".join(list(fields) + [tag]))
        out.append("")
    atomic_write_text(path, "\n".join(out) + "\n")


@dataclasses.dataclass
class Window:
    """One feature: words [word_start, word_start + len(positions)) of sentence `sentence`;
    positions[i] = token position of that word's first piece (its label / prediction)."""
    sentence: int
    word_start: int
    positions: list


@dataclasses.dataclass
class TagFeatureStats:
    sentences_split: int = 0     # sentences longer than max_seq_length, split into windows
    words_truncated: int = 0     # single words with more pieces than fit (pieces dropped)
    unseen_tags: int = 0         # eval tags not in the training tag set (allowed mode)


def tokenize_words(tokenizer, words, chunk_size=4096):
    """{word: [piece ids]} for the distinct words; a word the tokenizer drops entirely
    (e.g. only control characters) gets [UNK], so every word keeps a position."""
    import tensorflow as tf
    distinct = sorted(set(words))
    pieces = {}
    for start in range(0, len(distinct), chunk_size):
        part = distinct[start:start + chunk_size]
        for word, ids in zip(part, tokenizer.tokenize(tf.constant(part)).to_list()):
            pieces[word] = ids or [tokenizer.unk_id]
    return pieces


def build_features(sentences, tokenizer, max_seq_length, tag_ids=None, allow_unseen=False,
                   stats=None):
    """Word-piece features, the label on each word's first piece and -1 (ignored in the
    loss) elsewhere. Sentences longer than max_seq_length are split at word boundaries into
    several windows (counted); predictions are stitched back per word.
    Returns (RaggedFeatures with ragged label "tags" when tag_ids is given, [Window])."""
    from bert_tf.data.batching import RaggedFeatures
    stats = stats if stats is not None else TagFeatureStats()
    budget = max_seq_length - 2
    if budget < 1:
        raise ValueError(f"max_seq_length {max_seq_length} is too short for tagging")
    pieces = tokenize_words(tokenizer, [w for s in sentences for w in s.words])
    word_ids, type_ids, labels, windows = [], [], [], []

    def emit(sentence_index, word_start, ids, positions, tags):
        word_ids.append([tokenizer.cls_id] + ids + [tokenizer.sep_id])
        type_ids.append([0] * (len(ids) + 2))
        labels.append([-1] + tags + [-1])
        windows.append(Window(sentence_index, word_start, positions))

    for si, sentence in enumerate(sentences):
        ids, positions, tags, word_start = [], [], [], 0
        split = False
        for wi, word in enumerate(sentence.words):
            word_pieces = pieces[word]
            if len(word_pieces) > budget:
                word_pieces = word_pieces[:budget]
                stats.words_truncated += 1
            if len(ids) + len(word_pieces) > budget:
                emit(si, word_start, ids, positions, tags)
                ids, positions, tags, word_start, split = [], [], [], wi, True
            tag = -1
            if tag_ids is not None:
                gold = sentence.tags[wi]
                if gold in tag_ids:
                    tag = tag_ids[gold]
                elif allow_unseen:
                    stats.unseen_tags += 1
                else:
                    path, _, _ = sentence.source.rpartition(":")
                    raise DataError(path, f"tag {gold!r} does not occur in the training data "
                                    f"(known: {', '.join(tag_ids)})", line=sentence.lines[wi],
                                    field="tag")
            positions.append(len(ids) + 1)
            tags += [tag] + [-1] * (len(word_pieces) - 1)
            ids += word_pieces
        emit(si, word_start, ids, positions, tags)
        stats.sentences_split += int(split)
    label_dict = {"tags": labels} if tag_ids is not None else {}
    features = RaggedFeatures.from_lists(word_ids, type_ids, label_dict,
                                         ragged_labels=("tags",) if tag_ids is not None else ())
    return features, windows


def stitch_predictions(sentences, windows, window_tags):
    """Per-window predicted tag lists (one per word in the window) -> one per sentence."""
    out = [[None] * len(s.words) for s in sentences]
    for window, tags in zip(windows, window_tags):
        for i, tag in enumerate(tags):
            out[window.sentence][window.word_start + i] = tag
    return [[t if t is not None else "O" for t in tags] for tags in out]
