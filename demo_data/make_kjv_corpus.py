"""Makes demo_data/corpus/kjv.tsv.xz, the default job's embedded corpus. Run once by a
maintainer, never at job time (the job only reads the embedded file, see kjv_corpus.py).

Source: the King James Bible (1611, public domain) as Debian's `bible` reader prints it from
Debian bookworm's bible-kjv-text 4.38 (data) and bible-kjv 4.38 (the reader):

    apt-get download bible-kjv bible-kjv-text          # no root; `apt-get update` first if needed
    dpkg-deb -x bible-kjv_4.38_amd64.deb x && dpkg-deb -x bible-kjv-text_4.38_all.deb x
    x/usr/bin/bible -p x/usr/lib gen1:1-rev22:21 > kjv.txt
    python -m demo_data.make_kjv_corpus kjv.txt        # -> demo_data/corpus/kjv.tsv.xz

(`python -m demo_data.make_kjv_corpus --fetch` does the three Debian steps in a temp dir.)
The reader prints a blank line, a "Book N" heading and a blank line per chapter, then the
verses as "  N text" wrapped at ~80 columns. This script keeps only the text, one verse per
line, `Book<TAB>chapter<TAB>verse<TAB>text` (UTF-8, LF, no header), in canonical order, and
compresses it with the stdlib's xz (preset 9e). It prints the size and sha256 to put into
kjv_corpus.KJV_SHA256.
"""

import argparse
import glob
import hashlib
import lzma
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, "corpus", "kjv.tsv.xz")
DEBIAN_PACKAGES = ("bible-kjv", "bible-kjv-text")
EXPECTED = {"books": 66, "chapters": 1189, "verses": 31102}

_HEADING = re.compile(r"^(\S.*?) (\d+)$")
_VERSE = re.compile(r"^\s+(\d+) (.*)$")


def parse_reader_output(path):
    """Yields (book, chapter, verse, text) from the `bible` reader's output."""
    book = chapter = None
    verse = None
    previous_blank = True
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line.strip():
                previous_blank = True
                continue
            heading = _HEADING.match(line) if previous_blank else None
            previous_blank = False
            if heading:
                if verse:
                    yield verse
                book, chapter, verse = heading.group(1), int(heading.group(2)), None
                continue
            match = _VERSE.match(line)
            if match:
                if verse:
                    yield verse
                verse = (book, chapter, int(match.group(1)), match.group(2).strip())
            elif verse:
                verse = verse[:3] + (verse[3] + " " + line.strip(),)
    if verse:
        yield verse


def fetch_reader_output(workdir):
    """The three Debian steps of the module doc, in `workdir`; returns the text's path."""

    def run(cmd, **kwargs):
        subprocess.run(cmd, check=True, cwd=workdir, **kwargs)

    result = subprocess.run(["apt-get", "download", *DEBIAN_PACKAGES], cwd=workdir)
    if result.returncode:
        run(["apt-get", "update", "-qq"])
        run(["apt-get", "download", *DEBIAN_PACKAGES])
    for deb in sorted(glob.glob(os.path.join(workdir, "*.deb"))):
        run(["dpkg-deb", "-x", deb, "x"])
    out = os.path.join(workdir, "kjv.txt")
    with open(out, "w", encoding="utf-8") as f:
        run(
            [
                os.path.join(workdir, "x", "usr", "bin", "bible"),
                "-p",
                os.path.join(workdir, "x", "usr", "lib"),
                "gen1:1-rev22:21",
            ],
            stdout=f,
        )
    return out


def to_tsv(verses):
    """The TSV text; checks the counts and that no field holds a tab or a line break."""
    lines, books, chapters = [], [], set()
    for book, chapter, number, text in verses:
        if any(c in field for field in (book, text) for c in "\t\n\r") or not text:
            raise ValueError(f"{book} {chapter}:{number}: unexpected text {text!r}")
        if not books or books[-1] != book:
            books.append(book)
        chapters.add((book, chapter))
        lines.append(f"{book}\t{chapter}\t{number}\t{text}\n")
    got = {"books": len(books), "chapters": len(chapters), "verses": len(lines)}
    if got != EXPECTED or len(set(books)) != len(books):
        raise ValueError(f"unexpected reader output: {got}, expected {EXPECTED}")
    return "".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "reader_output",
        nargs="?",
        help="kjv.txt printed by the `bible` reader (see the module doc)",
    )
    parser.add_argument("--fetch", action="store_true", help="run the Debian steps first")
    parser.add_argument("--output", default=OUTPUT)
    args = parser.parse_args(argv)
    if bool(args.fetch) == bool(args.reader_output):
        parser.error("give the reader's output file, or --fetch")
    with tempfile.TemporaryDirectory() as tmp:
        source = fetch_reader_output(tmp) if args.fetch else args.reader_output
        tsv = to_tsv(parse_reader_output(source)).encode("utf-8")
    data = lzma.compress(
        tsv, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=9 | lzma.PRESET_EXTREME
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output + ".tmp", "wb") as f:
        f.write(data)
    os.replace(args.output + ".tmp", args.output)
    print(
        f"{args.output}: {len(data)} bytes ({len(tsv)} uncompressed), "
        f"sha256 {hashlib.sha256(data).hexdigest()}"
    )


if __name__ == "__main__":
    sys.exit(main())
