"""The embedded default pre-training job: a complete small run on real public-domain prose.

    King James Bible, embedded (demo_data/corpus/kjv.tsv.xz, sha256-checked: kjv_corpus.py)
      -> documents = chapters, sentences = verses; a few whole books held out for evaluation
      -> an uncased WordPiece vocab (~8k) learnt from the training books
      -> unmasked pre-training records at seq 64 and 128, masked dynamically at training time
      -> a tiny BERT (2 layers, hidden 128), in two phases as in the BERT paper: most steps
         at seq 64 (`<model_dir>/phase1_seq64/`), then a few at seq 128 starting from those
         weights (`<model_dir>` itself), a few minutes on CPU in all
      -> eval on the held-out books at seq 128: masked_lm_accuracy / next_sentence_accuracy

Only the Python packages of bert-tf are needed (no system tools, no network, no root).
The data steps write into `<model_dir>/data.partial/`, each skipped when its output is already
there, and the directory becomes `<model_dir>/data/` by one rename when all are done; so a
failure never leaves a half-written `data/`, and rerunning the same command reuses the data and
resumes training from the latest checkpoint of the phase it was in. `data/recipe.json` records
what made the data; a `data/` made by another recipe is refused in one line.
"""

import dataclasses
import json
import os
import time

from bert_tf import model_dir as md
from bert_tf import ownership
from bert_tf.atomic_io import atomic_write_json
from bert_tf.data.pretraining import create as pd
from bert_tf.recipes import pretraining
from bert_tf.recipes.pretrain_config import PretrainConfig, PretrainingJobError
from bert_tf.text import vocab_builder
from demo_data import kjv_corpus

DEFAULT_MODEL_DIR = os.path.join("runs", "pretrain_default")
DATA_DIR = "data"
PARTIAL_SUFFIX = ".partial"
RECIPE_FILE = "recipe.json"

# Held-out books (~3.5% of the verses): whole books, so no chapter is seen in training.
EVAL_BOOKS = ("Ruth", "Esther", "Jonah", "Mark", "Titus", "Philemon", "Jude")

VOCAB_SIZE = 8000
SEQ_LENGTH = 128  # the final phase, the evaluation and the model dir's seq_length
MAX_PREDICTIONS = 20
DUPE_FACTOR = 1  # the final phase reads ~3k of the ~10k sequences once
PHASE1_SEQ_LENGTH = 64
PHASE1_MAX_PREDICTIONS = 10
PHASE1_DUPE_FACTOR = 3  # ~50k sequences, ~40k of them read
PHASE1_DIR = "phase1_seq64"
PHASE1_STEPS = 2600
FINAL_STEPS = 200
RECORD_WORKERS = 1  # in-process: spawning a worker costs more (importing TF) than it saves


def recipe():
    """What decides the data's content (compared with a `data/` made before)."""
    return {
        "corpus_sha256": kjv_corpus.KJV_SHA256,
        "eval_books": list(EVAL_BOOKS),
        "vocab_size": VOCAB_SIZE,
        "seq_length": SEQ_LENGTH,
        "dupe_factor": DUPE_FACTOR,
        "phase1_seq_length": PHASE1_SEQ_LENGTH,
        "phase1_dupe_factor": PHASE1_DUPE_FACTOR,
    }


def split_corpus(
    chapter_list, train_path, eval_path, eval_books=EVAL_BOOKS, min_train_verses=20000
):
    """Writes the original BERT input format (one sentence per line, a blank line between
    documents): a chapter is a document, a verse a sentence. Returns verse counts."""
    train, held_out = [], []
    counts = {"train": 0, "eval": 0, "books": set()}
    for book, _, verses in chapter_list:
        counts["books"].add(book)
        out, key = (held_out, "eval") if book in eval_books else (train, "train")
        out.extend(verses + [""])
        counts[key] += len(verses)
    missing = sorted(set(eval_books) - counts["books"])
    if missing or counts["train"] < min_train_verses:
        raise PretrainingJobError(
            f"default job corpus: {len(counts['books'])} books, {counts['train']} training "
            f"verses; held-out books missing: {missing or 'none'}"
        )
    kjv_corpus.write_lines(eval_path, held_out)
    kjv_corpus.write_lines(train_path, train)
    return {
        "train_verses": counts["train"],
        "eval_verses": counts["eval"],
        "books": len(counts["books"]),
    }


def build_vocab(train_path, vocab_path, vocab_size=None):
    """An uncased WordPiece vocab learnt from the training text."""
    try:
        vocab_builder.build_vocab_file(
            [train_path], vocab_path, vocab_size=vocab_size or VOCAB_SIZE, lower_case=True
        )
    except vocab_builder.VocabBuildError as e:
        raise PretrainingJobError(f"default job vocab: {e}") from None


def make_records(
    text_path, prefix, vocab_path, dupe_factor, seed, seq_length=None, num_shards=2, num_workers=1
):
    config = pd.CreationConfig(
        max_seq_length=seq_length or SEQ_LENGTH,
        max_predictions_per_seq=0,
        dupe_factor=dupe_factor,
        random_seed=seed,
        input_format="sentences",
    )
    return pd.create_pretraining_data(
        text_path,
        prefix,
        vocab_path,
        config=config,
        lower_case=True,
        num_shards=num_shards,
        num_workers=min(num_workers, os.cpu_count() or 1),
        overwrite=True,
    )


def data_files(data_dir):
    """The job's inputs inside a (complete) data dir."""

    def records(name):
        return os.path.join(data_dir, name) + "-*.tfrecord"

    return {
        "vocab_file": os.path.join(data_dir, md.VOCAB_FILE),
        "phase1_input_files": records(f"train_seq{PHASE1_SEQ_LENGTH}"),
        "input_files": records("train"),
        "eval_files": records("eval"),
    }


def _check_existing(data_dir):
    """True when data_dir holds this recipe's complete data; raises when it holds other data."""
    if not os.path.isdir(data_dir):
        return False
    path = os.path.join(data_dir, RECIPE_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            made_by = json.load(f)
    except (OSError, ValueError):
        made_by = None
    if made_by != recipe():
        raise PretrainingJobError(
            f"{data_dir}: not the data of this default job ({RECIPE_FILE} "
            f"{'differs' if made_by else 'missing'}); use another --model_dir or delete it"
        )
    return True


def _build_stages(work, chapter_list, progress):
    """Runs the data steps into `work`, each skipped when its output is there."""
    train_txt = os.path.join(work, "kjv_train.txt")
    eval_txt = os.path.join(work, "kjv_eval.txt")
    vocab = os.path.join(work, md.VOCAB_FILE)

    def stage(name, output, fn):
        if os.path.isfile(output):
            progress(f"[default job] {name}: cached")
            return
        start = time.time()
        info = fn()
        progress(
            f"[default job] {name}: done in {time.time() - start:.0f} s"
            + (f" {info}" if info else "")
        )

    def records(what, text, name, dupe, seed, seq_length):
        prefix = os.path.join(work, name)

        def make():
            c = make_records(
                text, prefix, vocab, dupe, seed, seq_length, num_workers=RECORD_WORKERS
            )["counts"]
            return f"({c['instances']} sequences from {c['documents']} chapters)"

        stage(f"{what} records (seq {seq_length}, dupe {dupe})", pd.metadata_path(prefix), make)

    stage(
        f"split corpus (held-out books: {', '.join(EVAL_BOOKS)})",
        train_txt,
        lambda: split_corpus(chapter_list, train_txt, eval_txt),
    )
    stage(
        f"learn an uncased WordPiece vocab of {VOCAB_SIZE}",
        vocab,
        lambda: build_vocab(train_txt, vocab),
    )
    records(
        "phase-1 training",
        train_txt,
        f"train_seq{PHASE1_SEQ_LENGTH}",
        PHASE1_DUPE_FACTOR,
        12345,
        PHASE1_SEQ_LENGTH,
    )
    records("final-phase training", train_txt, "train", DUPE_FACTOR, 23456, SEQ_LENGTH)
    records("held-out", eval_txt, "eval", 1, 54321, SEQ_LENGTH)
    atomic_write_json(os.path.join(work, RECIPE_FILE), recipe())


def prepare_data(data_dir, progress=print):
    """All data steps (see the module doc). Returns data_files(data_dir)."""
    if _check_existing(data_dir):
        progress(f"[default job] data: cached in {data_dir}")
        return data_files(data_dir)
    start = time.time()
    chapter_list = kjv_corpus.chapters()  # checks the sha256 before anything is written
    progress(
        f"[default job] King James Bible: {len(chapter_list)} chapters from "
        f"{kjv_corpus.KJV_PATH} ({time.time() - start:.1f} s)"
    )
    work = data_dir + PARTIAL_SUFFIX
    os.makedirs(work, exist_ok=True)
    _build_stages(work, chapter_list, progress)
    os.replace(work, data_dir)
    return data_files(data_dir)


def claim_job_dirs(model_dir):
    """Refuses (one line, nothing written) a model dir whose data/, phase-1 dir or run files
    bert-tf did not write; else records data/ and phase1_seq64/ as the default job's (kept by
    --overwrite_model_dir; the final phase may read phase 1 from inside its model dir)."""
    try:
        ownership.plan_model_dir(model_dir, "pretrain", pretraining.WRITES)
        ownership.plan_model_dir(
            model_dir, "default_job", (DATA_DIR, DATA_DIR + PARTIAL_SUFFIX, PHASE1_DIR)
        ).apply()
    except ownership.OwnershipError as e:
        raise PretrainingJobError(f"default job: {e}") from None


def default_phases(model_dir=None, progress=print):
    """Prepares (or reuses) the data and returns the default job's two PretrainConfigs: phase 1
    (seq 64, `<model_dir>/phase1_seq64`, no evaluation), then the final phase (seq 128,
    `<model_dir>`, starting from phase 1's weights, evaluated on the held-out books)."""
    model_dir = model_dir or DEFAULT_MODEL_DIR
    progress(
        f"[default job] King James Bible -> tiny BERT in {model_dir} "
        "(pass --input_files to pre-train on your own records)"
    )
    claim_job_dirs(model_dir)
    data = prepare_data(os.path.join(model_dir, DATA_DIR), progress)
    common = dict(
        vocab_file=data["vocab_file"],
        lower_case=True,
        # A short run underfits: no dropout; 4 heads of 32 learn attention patterns sooner.
        encoder_config="tiny",
        config_overrides={
            "max_position_embeddings": SEQ_LENGTH,
            "num_heads": 4,
            "hidden_dropout": 0.0,
            "attention_dropout": 0.0,
        },
        # Batch 16: twice the steps of batch 32 for the same compute learn faster here
        # (held-out MLM accuracy 0.174 vs 0.160 after 2600 x 16 / 1300 x 32 at seq 64).
        global_batch_size=16,
        optimizer="adamw",
        weight_decay=0.01,
        dynamic_masking=True,
        log_every_steps=50,
        seed=12345,
    )
    phase1 = PretrainConfig(
        model_dir=os.path.join(model_dir, PHASE1_DIR),
        input_files=data["phase1_input_files"],
        mode="train",
        max_seq_length=PHASE1_SEQ_LENGTH,
        max_predictions_per_seq=PHASE1_MAX_PREDICTIONS,
        num_train_steps=PHASE1_STEPS,
        num_warmup_steps=100,
        learning_rate=2e-3,
        checkpoint_every_steps=500,
        **common,
    )
    final = PretrainConfig(
        model_dir=model_dir,
        input_files=data["input_files"],
        eval_files=data["eval_files"],
        init_checkpoint=phase1.model_dir,
        max_seq_length=SEQ_LENGTH,
        max_predictions_per_seq=MAX_PREDICTIONS,
        num_train_steps=FINAL_STEPS,
        num_warmup_steps=20,
        learning_rate=1e-3,
        checkpoint_every_steps=100,
        **common,
    )
    return [phase1, final]


def with_user_settings(phases, settings, config_overrides):
    """The phases with the user's settings ({PretrainConfig field: value}) applied to the
    final phase; `encoder_config` and `config_overrides` (the encoder's shape) to every phase."""
    shape = {"encoder_config": settings["encoder_config"]} if "encoder_config" in settings else {}
    phases = [
        dataclasses.replace(p, **shape, config_overrides={**p.config_overrides, **config_overrides})
        for p in phases
    ]
    final = {k: v for k, v in settings.items() if k != "encoder_config"}
    return phases[:-1] + [dataclasses.replace(phases[-1], **final)]
