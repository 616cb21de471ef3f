"""Streaming documents of sentences out of text files, for pre-training data.

Two input formats:
  sentences  the original google-research/bert format: one sentence per line, a blank line
             between documents.
  prose      ordinary running text: lines inside a blank-line-separated block are joined (so
             hard-wrapped text works), each block is one document, and a rule-based splitter
             cuts it into sentences. A heading (a block of one short line without terminal
             punctuation, e.g. "Chapter 3") starts the next block's document instead of
             being a one-sentence document of its own.
  auto       decides per file from its first lines (see `detect_format`).

Everything is a generator: a file far larger than memory streams through in one pass, and a
single enormous block is cut every `max_document_sentences` sentences, so memory stays bounded.
"""

import re

from bert_tf.input_files import gfile, is_remote

FORMATS = ("sentences", "prose", "auto")

# Abbreviations after which a full stop does not end a sentence (compared lower-cased).
_ABBREVIATIONS = frozenset(
    """
mr mrs ms dr prof sr jr st mt ft vs etc e.g i.e cf al fig figs no nos vol vols ch chap sec
p pp ed eds inc ltd co corp dept univ gen col lt sgt capt cmdr adm gov sen rep rev hon
jan feb mar apr jun jul aug sep sept oct nov dec approx est u.s u.k a.m p.m
""".split()
)

# A sentence end candidate: terminal punctuation, optional closing quotes/brackets, whitespace,
# then something that can start a sentence (capital letter, digit, opening quote or bracket).
_BOUNDARY = re.compile(r"""([.!?]+)(["'\u2019\u201d)\]]*)\s+(?=["'\u2018\u201c(\[]*[A-Z0-9])""")
_WORD_BEFORE = re.compile(r"(\S+)$")
_TERMINAL = re.compile(r"""[.!?]["'\u2019\u201d)\]]*$""")


def split_sentences(text):
    """Splits running text into sentences with simple, predictable rules.

    A sentence ends at `.`, `!` or `?` (plus any closing quotes/brackets) followed by whitespace
    and a capital letter, digit or opening quote. A full stop does not end a sentence after a
    known abbreviation ("Mr.", "e.g.") or a single capital initial ("J. R. R. Tolkien")."""
    text = " ".join(text.split())
    if not text:
        return []
    sentences = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        if m.group(1) == ".":
            before = _WORD_BEFORE.search(text, start, m.start())
            word = before.group(1).lower().lstrip("\"'(\u2018\u201c[") if before else ""
            if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
                continue
        end = m.end(2)
        sentences.append(text[start:end])
        start = m.end()
    if start < len(text):
        sentences.append(text[start:])
    return sentences


def detect_format(lines):
    """Guesses "sentences" or "prose" from a sample of a file's lines.

    One-sentence-per-line text has (almost) every non-blank line ending in terminal punctuation
    and holding a single sentence; hard-wrapped prose breaks lines mid-sentence, and
    paragraph-per-line prose holds several sentences per line."""
    sample = [line.strip() for line in lines if line.strip()]
    if not sample:
        return "sentences"
    ends = sum(1 for line in sample if _TERMINAL.search(line))
    single = sum(1 for line in sample if len(split_sentences(line)) <= 1)
    if ends >= 0.8 * len(sample) and single >= 0.8 * len(sample):
        return "sentences"
    return "prose"


def _is_heading(document):
    """A block that is one short line without terminal punctuation, e.g. "Genesis 1"."""
    return (
        len(document) == 1 and len(document[0].split()) <= 8 and not _TERMINAL.search(document[0])
    )


def _read_lines(path, encoding_errors="replace"):
    if is_remote(path):
        with gfile().GFile(path, "rb") as f:
            for raw in f:
                yield raw.decode("utf-8", errors=encoding_errors)
        return
    with open(path, "r", encoding="utf-8-sig", errors=encoding_errors) as f:  # BOM dropped
        for line in f:
            yield line


def iter_documents(
    path, input_format="auto", max_document_sentences=10000, detect_lines=200, stats=None
):
    """Yields the documents of one file, each a non-empty list of sentence strings.

    `stats` (a dict, optional) gets "lines" incremented as lines are read and "format" set to
    the format used for this file."""
    if input_format not in FORMATS:
        raise ValueError(f"input_format must be one of {FORMATS}, got {input_format!r}")
    if input_format == "auto":
        head = []
        for line in _read_lines(path):
            head.append(line)
            if len(head) >= detect_lines:
                break
        input_format = detect_format(head)
    if stats is not None:
        stats["format"] = input_format
    document = []
    block = []  # prose: lines of the current paragraph

    def flush_block():
        if block:
            document.extend(split_sentences(" ".join(block)))
            block.clear()

    for line in _read_lines(path):
        if stats is not None:
            stats["lines"] = stats.get("lines", 0) + 1
        line = line.strip()
        if not line:
            flush_block()
            if input_format == "prose" and _is_heading(document):
                continue  # a heading ("Chapter 3") opens the next block's document
            if document:
                yield list(document)
                document.clear()
            continue
        if input_format == "sentences":
            document.append(line)
        else:
            block.append(line)
            if len(block) >= 64:  # bound memory on huge paragraphs; split at a sentence end
                text = " ".join(block)
                parts = split_sentences(text)
                block.clear()
                if parts:
                    document.extend(parts[:-1])
                    block.append(parts[-1])
        if len(document) >= max_document_sentences:
            yield list(document[:max_document_sentences])
            del document[:max_document_sentences]
    flush_block()
    while document:
        yield list(document[:max_document_sentences])
        del document[:max_document_sentences]
