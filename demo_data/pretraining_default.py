"""The embedded default pre-training job: a complete small run on real public-domain prose.

    King James Bible (Debian, `assets.kjv_text()`)
      -> documents = chapters, sentences = verses; a few whole books held out for evaluation
      -> an uncased WordPiece vocab (~8k) learnt from the training books
      -> unmasked pre-training records (seq 128), masked dynamically at training time
      -> a tiny BERT (2 layers, hidden 128) for a few minutes on CPU
      -> eval on the held-out books: masked_lm_accuracy / next_sentence_accuracy

Every data step writes into `<model_dir>/data/` and is skipped when its output is already
there (outputs are published atomically), so rerunning the same command reuses the data and
resumes training from the latest checkpoint.
"""

import os
import re
import time

from bert_tf import model_dir as md
from bert_tf import ownership
from bert_tf.data import pretraining_data as pd
from bert_tf.recipes import pretraining_guard as guard
from bert_tf.recipes.pretrain_config import PretrainConfig, PretrainingJobError
from bert_tf.text import vocab_builder
from demo_data import assets

DEFAULT_MODEL_DIR = os.path.join("runs", "pretrain_default")
DATA_DIR = "data"

# Held-out books (~3.5% of the verses): whole books, so no chapter is seen in training.
EVAL_BOOKS = ("Ruth", "Esther", "Jonah", "Mark", "Titus", "Philemon", "Jude")

VOCAB_SIZE = 8000
SEQ_LENGTH = 128
MAX_PREDICTIONS = 20
DUPE_FACTOR = 3

_HEADING = re.compile(r"^(\S.*?) (\d+)$")
_VERSE = re.compile(r"^\s+\d+ (.*)$")


def parse_kjv(path):
    """Yields (book, chapter, [verse strings]) from the `bible` reader's output: a blank line,
    a "Book N" heading, a blank line, then verses "  N text" wrapped over several lines."""
    book = chapter = None
    verses = []
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
                if verses:
                    yield book, chapter, verses
                book, chapter, verses = heading.group(1), int(heading.group(2)), []
                continue
            verse = _VERSE.match(line)
            if verse:
                verses.append(verse.group(1).strip())
            elif verses:
                verses[-1] += " " + line.strip()
    if verses:
        yield book, chapter, verses


def _atomic_lines(path, lines):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
    os.replace(tmp, path)


def split_corpus(kjv_path, train_path, eval_path, eval_books=EVAL_BOOKS,
                 min_train_verses=20000):
    """Writes the original BERT input format (one sentence per line, a blank line between
    documents): a chapter is a document, a verse a sentence. Returns verse counts."""
    train, held_out = [], []
    counts = {"train": 0, "eval": 0, "books": set()}
    for book, _, verses in parse_kjv(kjv_path):
        counts["books"].add(book)
        out, key = (held_out, "eval") if book in eval_books else (train, "train")
        out.extend(verses + [""])
        counts[key] += len(verses)
    missing = sorted(set(eval_books) - counts["books"])
    if missing or counts["train"] < min_train_verses:
        raise ValueError(f"{kjv_path}: unexpected text ({len(counts['books'])} books, "
                         f"{counts['train']} training verses; missing {missing})")
    _atomic_lines(eval_path, held_out)
    _atomic_lines(train_path, train)
    return {"train_verses": counts["train"], "eval_verses": counts["eval"],
            "books": len(counts["books"])}


def build_vocab(train_path, vocab_path, vocab_size=VOCAB_SIZE):
    """An uncased WordPiece vocab learnt from the training text."""
    try:
        vocab_builder.build_vocab_file([train_path], vocab_path, vocab_size=vocab_size,
                                       lower_case=True)
    except vocab_builder.VocabBuildError as e:
        raise PretrainingJobError(f"default job vocab: {e}") from None


def make_records(text_path, prefix, vocab_path, dupe_factor, seed, num_shards=2,
                 num_workers=2):
    config = pd.CreationConfig(max_seq_length=SEQ_LENGTH, max_predictions_per_seq=0,
                               dupe_factor=dupe_factor, random_seed=seed,
                               input_format="sentences")
    return pd.create_pretraining_data(text_path, prefix, vocab_path, config=config,
                                      lower_case=True, num_shards=num_shards,
                                      num_workers=min(num_workers, os.cpu_count() or 1),
                                      overwrite=True)


def prepare_data(data_dir, progress=print):
    """All data steps, each skipped when its output exists. Returns the file names."""
    os.makedirs(data_dir, exist_ok=True)
    train_txt = os.path.join(data_dir, "kjv_train.txt")
    eval_txt = os.path.join(data_dir, "kjv_eval.txt")
    vocab = os.path.join(data_dir, md.VOCAB_FILE)
    train_prefix = os.path.join(data_dir, "train")
    eval_prefix = os.path.join(data_dir, "eval")

    def stage(name, done, fn):
        if done():
            progress(f"[default job] {name}: cached")
            return
        start = time.time()
        info = fn()
        progress(f"[default job] {name}: done in {time.time() - start:.0f} s"
                 + (f" {info}" if info else ""))

    start = time.time()
    kjv = assets.kjv_text()
    progress(f"[default job] King James Bible (Debian bible-kjv): {kjv} "
             f"({time.time() - start:.0f} s)")
    stage(f"split corpus (held-out books: {', '.join(EVAL_BOOKS)})",
          lambda: os.path.isfile(train_txt) and os.path.isfile(eval_txt),
          lambda: split_corpus(kjv, train_txt, eval_txt))
    stage(f"learn an uncased WordPiece vocab of {VOCAB_SIZE}",
          lambda: os.path.isfile(vocab), lambda: build_vocab(train_txt, vocab))

    def records(text, prefix, dupe, seed, workers):
        meta = make_records(text, prefix, vocab, dupe, seed, num_workers=workers)
        c = meta["counts"]
        return f"({c['instances']} instances of {SEQ_LENGTH} tokens from {c['documents']} " \
               f"chapters)"

    stage(f"training records (seq {SEQ_LENGTH}, dupe {DUPE_FACTOR})",
          lambda: os.path.isfile(pd.metadata_path(train_prefix)),
          lambda: records(train_txt, train_prefix, DUPE_FACTOR, 12345, 2))
    stage("held-out records", lambda: os.path.isfile(pd.metadata_path(eval_prefix)),
          lambda: records(eval_txt, eval_prefix, 1, 54321, 1))
    return {"vocab_file": vocab,
            "input_files": train_prefix + "-*.tfrecord",
            "eval_files": eval_prefix + "-*.tfrecord"}


def claim_data_dir(model_dir):
    """Refuses (one line, nothing written) a model dir whose data/ or run files bert-tf did
    not write; else records data/ as the default job's (kept by --overwrite_model_dir)."""
    try:
        ownership.plan_model_dir(model_dir, "pretrain", guard.WRITES)
        ownership.plan_model_dir(model_dir, "default_job", (DATA_DIR,)).apply()
    except ownership.OwnershipError as e:
        raise PretrainingJobError(f"default job: {e}") from None


def default_settings(model_dir=None, progress=print):
    """Prepares (or reuses) the data and returns the default job's PretrainConfig."""
    model_dir = model_dir or DEFAULT_MODEL_DIR
    progress(f"[default job] King James Bible -> tiny BERT in {model_dir} "
             "(pass --input_files to pre-train on your own records)")
    claim_data_dir(model_dir)
    data = prepare_data(os.path.join(model_dir, DATA_DIR), progress)
    return PretrainConfig(
        model_dir=model_dir, vocab_file=data["vocab_file"], lower_case=True,
        input_files=data["input_files"], eval_files=data["eval_files"],
        # A short run underfits: no dropout; 4 heads of 32 learn attention patterns sooner.
        config="tiny", config_overrides={"max_position_embeddings": SEQ_LENGTH,
                                         "num_heads": 4, "hidden_dropout": 0.0,
                                         "attention_dropout": 0.0},
        global_batch_size=32, max_seq_length=SEQ_LENGTH,
        max_predictions_per_seq=MAX_PREDICTIONS, num_train_steps=1500,
        num_warmup_steps=50, learning_rate=2e-3, optimizer="adamw", weight_decay=0.01,
        dynamic_masking=True, checkpoint_every_steps=250, log_every_steps=50, seed=12345)
