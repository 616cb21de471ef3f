"""The default job's corpus, embedded in the repository: the King James Bible (public domain).

    demo_data/corpus/kjv.tsv.xz    986 KB (4.6 MB uncompressed), made by make_kjv_corpus.py

One line per verse, `Book<TAB>chapter<TAB>verse<TAB>text` (UTF-8, LF, no header), 66 books,
1,189 chapters, 31,102 verses in canonical order (Genesis 1:1 ... Revelation 22:21). The text
is exactly what Debian's `bible` reader prints (bible-kjv-text 4.38), unwrapped.

Reading needs nothing but the Python standard library: the file's sha256 is checked first
(`KjvCorpusError`, one line, on a mismatch), then it is decompressed in memory.

    chapters()         [(book, chapter, [verse texts])]
    write_text(path)   plain text in the original BERT input format (a verse per line, a blank
                       line between chapters), written atomically
"""

import hashlib
import lzma
import os

from bert_tf.errors import BertTfError

KJV_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "kjv.tsv.xz")
KJV_SHA256 = "5bab1554453228b9ae04032f4a075effd4a9c79c61c08e9f929ded7181e4c8fd"
KJV_VERSES = 31102


class KjvCorpusError(BertTfError, RuntimeError):
    """The embedded corpus is missing or damaged (one-line message)."""


def read_verses(path=None):
    """[(book, chapter, verse, text)] of the embedded corpus, after checking its sha256."""
    path = path or KJV_PATH
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise KjvCorpusError(
            f"{path}: cannot read the embedded corpus ({e.strerror}); "
            "reinstall bert-tf or restore the file from the repository"
        ) from None
    got = hashlib.sha256(data).hexdigest()
    if got != KJV_SHA256:
        raise KjvCorpusError(
            f"{path}: sha256 {got}, expected {KJV_SHA256} (damaged or "
            "changed file; restore it from the repository)"
        )
    try:
        lines = lzma.decompress(data).decode("utf-8").splitlines()
    except (lzma.LZMAError, UnicodeDecodeError) as e:  # only if KJV_SHA256 itself is wrong
        raise KjvCorpusError(f"{path}: not a UTF-8 xz file ({e})") from None
    verses = []
    for number, line in enumerate(lines, 1):
        fields = line.split("\t")
        if len(fields) != 4 or not fields[1].isdigit() or not fields[2].isdigit():
            raise KjvCorpusError(
                f"{path}: line {number}: expected book, chapter, verse, "
                f"text separated by tabs, got {line[:60]!r}"
            )
        verses.append((fields[0], int(fields[1]), int(fields[2]), fields[3]))
    return verses


def chapters(path=None):
    """[(book, chapter, [verse texts])] in canonical order."""
    out = []
    for book, chapter, _, text in read_verses(path):
        if not out or out[-1][:2] != (book, chapter):
            out.append((book, chapter, []))
        out[-1][2].append(text)
    return out


def write_lines(path, lines):
    """Writes the lines (each + "\\n") to path atomically (a temp file, then a rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
    os.replace(tmp, path)


def write_text(path, chapter_list=None):
    """The corpus as the original BERT input format: a verse per line, a blank line after
    each chapter (a chapter is a document)."""
    write_lines(
        path, (line for _, _, verses in (chapter_list or chapters()) for line in verses + [""])
    )
