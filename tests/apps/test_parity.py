"""benchmarks.parity: both sides' predictions scored by bert-tf's metric code; the transformers
side's labelling of pieces and answer spans; the harness end to end on a tiny real slice."""

import csv
import json
import os
import subprocess
import sys

import pytest

from benchmarks import parity_data

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def test_scores_use_bert_tf_metrics():
    data = parity_data.TaskData("classify", [], [{}] * 4, [0, 1, 1, 0], ["ham", "spam"])
    assert parity_data.score(data, [0, 1, 0, 0])["accuracy"] == 0.75
    tags = parity_data.TaskData(
        "tag", [], [], [["B-PER", "I-PER", "O", "B-LOC"]], ["O", "B-PER", "I-PER", "B-LOC"]
    )
    got = parity_data.score(tags, [[1, 2, 0, 0]])  # PER right, LOC missed
    assert (got["precision"], got["recall"]) == (1.0, 0.5)
    choice = parity_data.TaskData("multiple_choice", [], [{}] * 2, [1, 3])
    assert parity_data.score(choice, [1, 0])["accuracy"] == 0.5
    qa = parity_data.TaskData(
        "squad", [], [{"qid": "a"}, {"qid": "b"}], {"a": ["the cat"], "b": []}, version_2=True
    )
    # "b" is unanswerable: its null score beats the span (diff > 0) -> "" -> right
    got = parity_data.score(qa, {"text": ["cat", "dog"], "score_diff": [-1.0, 2.0]})
    assert got["exact_match"] == 100.0 and got["NoAns_total"] == 1


def test_reads_the_task_files_as_bert_tf_does():
    data = parity_data.examples(
        "tag", os.path.join(FIXTURES, "conll_iob2.txt"), os.path.join(FIXTURES, "conll_iob2.txt")
    )
    assert data.label_names[0] == "O" and data.main_metric == "f1"
    first = data.train[0]
    assert len(first["words"]) == len(first["tags"]) == len(data.gold[0])
    assert [data.label_names[i] for i in first["tags"]] == data.gold[0]
    squad = parity_data.examples(
        "squad", os.path.join(FIXTURES, "squad_v2.json"), os.path.join(FIXTURES, "squad_v2.json")
    )
    assert squad.version_2 and any(r["answer_start"] < 0 for r in squad.train)
    for r in squad.train:
        if r["answer_start"] >= 0:
            start = r["answer_start"]
            assert r["context"][start : start + len(r["answer_text"])] == r["answer_text"]


def test_transformers_side_labels_first_pieces_and_spans(minilm_dir):
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from benchmarks import parity_torch

    tok = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    spec = {
        "max_seq_length": 32,
        "train": [{"words": ["Kowalczyk", "visited", "Paris"], "tags": [1, 0, 2]}],
    }
    labels = parity_torch._Tag(spec, tok).train_features()[0]["labels"]
    pieces = tok(["Kowalczyk", "visited", "Paris"], is_split_into_words=True).word_ids()
    assert pieces.count(0) > 1  # the name splits into several pieces
    expected = [
        -100 if w is None or (t and pieces[t - 1] == w) else [1, 0, 2][w]
        for t, w in enumerate(pieces)
    ]
    assert labels == expected and labels.count(1) == 1
    row = {
        "question": "where?",
        "context": "He went to Paris today.",
        "answer_start": 11,
        "answer_text": "Paris",
    }
    task = parity_torch._Squad(dict(spec, doc_stride=8), tok)
    enc = task._windows(row)
    start, end = task._positions(row, enc.sequence_ids(0), enc["offset_mapping"][0])
    assert tok.decode(enc["input_ids"][0][start : end + 1]) == "paris"
    assert task._positions(
        dict(row, answer_start=-1), enc.sequence_ids(0), enc["offset_mapping"][0]
    ) == (0, 0)


def _sms_slice(tmp_path, train, held):
    from demo_data import assets

    with open(assets.sms_spam_csv(), encoding="utf-8", errors="replace") as f:
        rows = list(csv.DictReader(f))
    paths = []
    for name, part in (("train", rows[:train]), ("eval", rows[train : train + held])):
        path = tmp_path / f"{name}.tsv"
        path.write_text(
            "sentence\tlabel\n"
            + "".join(
                f"{' '.join(r['text'].split())}\t{'spam' if r['spam'] == '1' else 'ham'}\n"
                for r in part
            ),
            encoding="utf-8",
        )
        paths.append(str(path))
    return paths


def _run_parity(args, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    out = tmp_path / "parity.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.parity",
            *args,
            f"--work_dir={tmp_path / 'runs'}",
            f"--output_json={out}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text()), result.stdout


@pytest.mark.slow  # two fine-tuning jobs in fresh processes (~1.5 min on quiet cores)
def test_harness_end_to_end_on_a_tiny_real_slice(minilm_dir, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    train, held = _sms_slice(tmp_path, 32, 16)
    summary, stdout = _run_parity(
        [
            "--task=classify",
            f"--init_checkpoint={minilm_dir}",
            f"--train_file={train}",
            f"--eval_file={held}",
            "--seeds=0",
            "--epochs=1",
            "--batch_size=16",
            "--max_seq_length=32",
        ],
        tmp_path,
    )
    assert summary["train_examples"] == 32 and summary["eval_examples"] == 16
    assert summary["recipe"]["learning_rate"] == 5e-5 and summary["recipe"]["clip_norm"] == 1.0
    for side in ("bert_tf", "transformers"):
        r = summary["sides"][side]
        metric = r["per_seed"]["0"][0]["metric"]
        assert 0.0 <= metric <= 1.0 and r["final_mean"] == metric and r["final_std"] == 0.0
        assert r["wall_seconds"] > r["train_seconds"] > 0 and r["eval_seconds"] > 0
        assert r["examples_per_second"] == pytest.approx(32 / r["wall_seconds"])
    assert summary["speed_ratio_bert_tf_vs_transformers"] > 0
    assert summary["machine"]["cpu"]["model"] is not None
    for text in ("bert_tf accuracy", "transformers accuracy", "ex/s job", "machine:"):
        assert text in stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "task,train,held",
    [
        ("tag", "conll_iob2.txt", "conll_iob2.txt"),
        ("squad", "squad_v2.json", "squad_v2.json"),
        ("multiple_choice", "swag_train.csv", "swag_train.csv"),
    ],
)
def test_harness_every_task(task, train, held, minilm_dir, tmp_path):
    pytest.importorskip("transformers")
    summary, _ = _run_parity(
        [
            f"--task={task}",
            f"--init_checkpoint={minilm_dir}",
            f"--train_file={os.path.join(FIXTURES, train)}",
            f"--eval_file={os.path.join(FIXTURES, held)}",
            "--seeds=0",
            "--epochs=2",
            "--batch_size=4",
            "--max_seq_length=64",
            "--doc_stride=32",
        ],
        tmp_path,
    )
    for side in ("bert_tf", "transformers"):
        rows = summary["sides"][side]["per_seed"]["0"]
        assert [r["epoch"] for r in rows] == [1, 2]
        assert all(r["metric"] is not None and r["metric"] >= 0 for r in rows)


def test_missing_flags_are_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.parity", "--task=classify"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0 and "--init_checkpoint is required" in result.stderr
