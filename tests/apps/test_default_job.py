"""The embedded default pre-training job (demo_data/): its corpus shipped in the repository and
checked by sha256, the data steps (no system tools; nothing half-written on failure; a rerun
reuses the data), and, in the slow suite, the whole job."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from bert_tf.recipes.pretrain_config import PretrainingJobError
from demo_data import kjv_corpus
from demo_data import pretraining_default as default
from tests.conftest import ROOT

HELD_OUT_CHAPTERS = 4 + 10 + 4 + 16 + 3 + 1 + 1  # Ruth Esther Jonah Mark Titus Philemon Jude


@pytest.fixture(scope="module")
def chapters():
    return kjv_corpus.chapters()


def test_embedded_corpus(chapters):
    """The whole King James Bible, in canonical order, one entry per chapter."""
    books = list(dict.fromkeys(book for book, _, _ in chapters))
    assert (len(books), len(chapters)) == (66, 1189)
    assert sum(len(verses) for _, _, verses in chapters) == kjv_corpus.KJV_VERSES == 31102
    assert books[0] == "Genesis" and books[-1] == "Revelation" and "Song of Solomon" in books
    assert sum(1 for book, _, _ in chapters if book == "Psalms") == 150
    assert chapters[0][2][0] == "In the beginning God created the heaven and the earth."
    # a verse the reader had wrapped over two lines comes back as one line
    assert chapters[0][2][1] == (
        "And the earth was without form, and void; and darkness was "
        "upon the face of the deep. And the Spirit of God moved upon "
        "the face of the waters."
    )
    assert chapters[-1][:2] == ("Revelation", 22)
    assert chapters[-1][2][-1] == "The grace of our Lord Jesus Christ be with you all. Amen."


def _damaged_copy(tmp_path):
    data = bytearray(open(kjv_corpus.KJV_PATH, "rb").read())
    data[len(data) // 2] ^= 0x01
    path = tmp_path / "kjv.tsv.xz"
    path.write_bytes(bytes(data))
    return str(path)


def test_embedded_corpus_checked(tmp_path):
    """A changed byte or a missing file: one line naming the file, before anything is read."""
    damaged = _damaged_copy(tmp_path)
    with pytest.raises(kjv_corpus.KjvCorpusError) as e:
        kjv_corpus.read_verses(damaged)
    assert str(e.value).startswith(f"{damaged}: sha256 ") and "\n" not in str(e.value)
    assert f"expected {kjv_corpus.KJV_SHA256}" in str(e.value)
    with pytest.raises(kjv_corpus.KjvCorpusError, match="cannot read the embedded corpus"):
        kjv_corpus.read_verses(str(tmp_path / "missing.tsv.xz"))


def test_corpus_split(tmp_path):
    """Chapters as documents, verses as sentences, held-out books only in the eval file."""
    chapter_list = [
        ("Genesis", 1, ["In the beginning.", "And the earth."]),
        ("Ruth", 1, ["Now it came to pass.", "And they went."]),
        ("1 John", 2, ["My little children."]),
    ]
    train, held_out = str(tmp_path / "t.txt"), str(tmp_path / "e.txt")
    with pytest.raises(PretrainingJobError, match="3 training verses"):
        default.split_corpus(chapter_list, train, held_out, eval_books=("Ruth",))
    with pytest.raises(PretrainingJobError, match=r"missing: \['Jonah'\]"):
        default.split_corpus(
            chapter_list, train, held_out, eval_books=("Ruth", "Jonah"), min_train_verses=1
        )
    assert not os.path.exists(train)
    counts = default.split_corpus(
        chapter_list, train, held_out, eval_books=("Ruth",), min_train_verses=1
    )
    assert counts == {"train_verses": 3, "eval_verses": 2, "books": 3}
    assert open(held_out).read() == "Now it came to pass.\nAnd they went.\n\n"
    assert open(train).read() == "In the beginning.\nAnd the earth.\n\nMy little children.\n\n"


def test_data_steps_without_system_tools(tmp_path, monkeypatch):
    """No apt-get, dpkg-deb or any other program on PATH: a damaged corpus stops before
    anything is written, a failing step leaves no data/, the next run finishes from the steps
    already done, a rerun reuses data/, and data/ from another recipe is refused."""
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))
    assert shutil.which("apt-get") is None and shutil.which("dpkg-deb") is None
    monkeypatch.setattr(default, "VOCAB_SIZE", 2000)  # a cheaper recipe, the same steps
    monkeypatch.setattr(default, "PHASE1_DUPE_FACTOR", 1)
    data_dir = str(tmp_path / "model" / "data")
    partial = data_dir + default.PARTIAL_SUFFIX

    with monkeypatch.context() as m:
        m.setattr(kjv_corpus, "KJV_PATH", _damaged_copy(tmp_path))
        with pytest.raises(kjv_corpus.KjvCorpusError, match="sha256"):
            default.prepare_data(data_dir, progress=lambda line: None)
    assert not os.path.exists(tmp_path / "model")

    def records_fail(*args, **kwargs):
        raise PretrainingJobError("records failed")

    with monkeypatch.context() as m:
        m.setattr(default, "make_records", records_fail)
        with pytest.raises(PretrainingJobError, match="records failed"):
            default.prepare_data(data_dir, progress=lambda line: None)
    assert not os.path.exists(data_dir)
    assert sorted(os.listdir(partial)) == ["kjv_eval.txt", "kjv_train.txt", "vocab.txt"]

    lines = []
    files = default.prepare_data(data_dir, progress=lines.append)
    assert not os.path.exists(partial)
    assert [line.split(": ")[-1] for line in lines[1:3]] == ["cached", "cached"]  # split, vocab
    assert len(open(files["vocab_file"]).read().splitlines()) == 2000
    meta = json.load(open(os.path.join(data_dir, "eval.metadata.json")))
    assert meta["counts"]["documents"] == HELD_OUT_CHAPTERS
    assert meta["max_seq_length"] == 128
    meta = json.load(open(os.path.join(data_dir, "train_seq64.metadata.json")))
    assert meta["max_seq_length"] == 64
    assert meta["counts"]["documents"] == 1189 - HELD_OUT_CHAPTERS
    assert json.load(open(os.path.join(data_dir, default.RECIPE_FILE))) == default.recipe()

    lines.clear()
    before = {f: os.path.getmtime(os.path.join(data_dir, f)) for f in os.listdir(data_dir)}
    assert default.prepare_data(data_dir, progress=lines.append) == files
    assert lines == [f"[default job] data: cached in {data_dir}"]
    assert before == {f: os.path.getmtime(os.path.join(data_dir, f)) for f in os.listdir(data_dir)}

    monkeypatch.setattr(default, "DUPE_FACTOR", 2)
    with pytest.raises(PretrainingJobError, match="recipe.json differs"):
        default.prepare_data(data_dir, progress=lines.append)


def test_phases_and_user_settings(tmp_path, monkeypatch):
    """Phase 1 (seq 64, train only) into <model_dir>/phase1_seq64, the final phase (seq 128,
    evaluated) into <model_dir> from phase 1's weights; the user's flags change the final
    phase, the encoder's shape every phase."""
    monkeypatch.setattr(
        default, "prepare_data", lambda data_dir, progress: default.data_files(data_dir)
    )
    model_dir = str(tmp_path / "m")
    phase1, final = default.default_phases(model_dir, progress=lambda line: None)
    assert (phase1.model_dir, phase1.mode, phase1.eval_files) == (
        os.path.join(model_dir, "phase1_seq64"),
        "train",
        None,
    )
    assert (phase1.max_seq_length, final.max_seq_length) == (64, 128)
    assert phase1.input_files == os.path.join(model_dir, "data", "train_seq64-*.tfrecord")
    assert final.init_checkpoint == phase1.model_dir and final.mode == "train_and_eval"
    assert final.eval_files == os.path.join(model_dir, "data", "eval-*.tfrecord")
    assert phase1.config_overrides["max_position_embeddings"] == 128  # phase 2 reuses them
    p1, fin = default.with_user_settings(
        [phase1, final],
        {"num_train_steps": 7, "learning_rate": 0.5, "encoder_config": "mini"},
        {"num_layers": 3},
    )
    assert (p1.num_train_steps, p1.learning_rate) == (phase1.num_train_steps, 2e-3)
    assert (fin.num_train_steps, fin.learning_rate) == (7, 0.5)
    assert p1.encoder_config == fin.encoder_config == "mini"
    assert p1.config_overrides["num_layers"] == fin.config_overrides["num_layers"] == 3
    assert fin.config_overrides["num_heads"] == 4


@pytest.mark.slow
def test_default_job(tmp_path):
    """`python -m apps.pretrain` with only --model_dir and no system tools on PATH: the King
    James Bible job, ending far above chance (1/8000) and with a model dir that load_encoder
    accepts."""
    model_dir = str(tmp_path / "default")
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))
    result = subprocess.run(
        [sys.executable, "-m", "apps.pretrain", f"--model_dir={model_dir}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.load(open(os.path.join(model_dir, "eval_results.json")))
    assert results["masked_lm_accuracy"] > 0.14, results  # chance: 1/8000
    assert results["next_sentence_accuracy"] > 0.5, results
    from bert_tf import load_encoder

    assert load_encoder(model_dir).config.num_layers == 2
