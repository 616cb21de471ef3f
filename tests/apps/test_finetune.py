"""apps.finetune end to end on a tiny random model dir: every task, resume, bad input."""

import json
import os
import time

import numpy as np
import pytest

from tests.conftest import TINY_VOCAB

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    import keras

    from bert_tf import BertConfig, BertEncoder, BertPretrainer
    from bert_tf.model_dir.task_model import write_model_dir

    keras.utils.set_random_seed(7)
    root = tmp_path_factory.mktemp("tiny")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(TINY_VOCAB) + "\n")
    config = BertConfig.preset(
        "tiny",
        vocab_size=len(TINY_VOCAB),
        num_layers=2,
        hidden_size=32,
        num_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    out = str(root / "pretrained")
    write_model_dir(out, BertPretrainer(BertEncoder(config)), str(vocab), True, seq_length=64)
    return out


def run_app(args):
    from absl import flags

    from apps import finetune

    flags.FLAGS.unparse_flags()
    flags.FLAGS(["finetune"] + args)
    start = time.time()
    finetune.main(["finetune"])
    return time.time() - start


def common(init, out, train, eval_=None, **extra):
    args = [
        f"--init_checkpoint={init}",
        f"--train_file={os.path.join(FIXTURES, train)}",
        f"--model_dir={out}",
        "--precision=float32",
        "--seed=1",
        "--log_every_steps=1000",
    ]
    if eval_:
        args.append(f"--eval_file={os.path.join(FIXTURES, eval_)}")
    return args + [f"--{k}={v}" for k, v in extra.items()]


def read(path):
    with open(path) as f:
        return json.load(f)


def test_classify_end_to_end_best_epoch_model_dir(tiny_model_dir, tmp_path):
    import bert_tf

    out = str(tmp_path / "cls")
    seconds = run_app(
        ["--task=classify"]
        + common(
            tiny_model_dir,
            out,
            "classify_train.tsv",
            "classify_eval.tsv",
            epochs=3,
            batch_size=2,
            learning_rate=2e-3,
            warmup_proportion=0,
            max_seq_length=64,
        )
    )
    print(f"classify fixture run: {seconds:.1f} s")
    results = read(os.path.join(out, "eval_results.json"))
    for key in ("accuracy", "f1", "matthews_corrcoef", "best_epoch", "history"):
        assert key in results
    assert len(results["history"]) == 3
    best = max(h["accuracy"] for h in results["history"])
    assert results["accuracy"] == best
    config = read(os.path.join(out, "config.json"))
    assert (
        config["task"]["label_names"] == ["neg", "pos"]
        and config["task"]["type"] == "classify"
        and config["preprocessing"]["seq_length"] == 64
    )
    # DIR rebuilds: the saved (best) weights reproduce the written predictions
    model = bert_tf.load_task_model(out)
    rows = [json.loads(line) for line in open(os.path.join(out, "predictions.jsonl"))]
    assert [r["text_a"] for r in rows] == ["a good movie", "a terrible movie", "great", "bad"]
    pre = bert_tf.load_preprocessor(out, seq_length=16)
    import tensorflow as tf

    probs = tf.nn.softmax(
        model(pre(tf.constant([r["text_a"] for r in rows])), training=False)["logits"]
    ).numpy()
    assert np.allclose(probs[:, 1], [r["probabilities"]["pos"] for r in rows], atol=1e-4)
    accuracy = np.mean([r["prediction"] == r["label"] for r in rows])
    assert accuracy == pytest.approx(results["accuracy"])


def test_tag_end_to_end_split_sentences_and_conll_output(tiny_model_dir, tmp_path):
    from bert_tf.data import conll
    from bert_tf.evaluation import tagging

    out = str(tmp_path / "tag")
    seconds = run_app(
        ["--task=tag"]
        + common(
            tiny_model_dir,
            out,
            "conll_iob2.txt",
            "conll_iob2.txt",
            epochs=2,
            batch_size=2,
            learning_rate=1e-3,
            max_seq_length=6,
        )
    )  # 4 pieces per window: sentences split
    print(f"tag fixture run: {seconds:.1f} s")
    results = read(os.path.join(out, "eval_results.json"))
    predicted = conll.read_sentences(os.path.join(out, "predictions.txt"))
    gold = conll.read_sentences(os.path.join(FIXTURES, "conll_iob2.txt"))
    assert [p.words for p in predicted] == [g.words for g in gold]
    assert all(len(c) == 5 for p in predicted for c in p.columns)  # 4 input cols + pred
    scores = tagging.entity_scores([g.tags for g in gold], [p.tags for p in predicted])
    for key in ("f1", "precision", "recall"):
        assert results[key] == pytest.approx(scores[key])
    config = read(os.path.join(out, "config.json"))
    assert config["task"] == {
        "type": "tag",
        "label_names": ["O", "B-LOC", "B-PER"],
        "scheme": "iob2",
        "dropout": 0.1,
        "long_inputs": "windows",
        "doc_stride": 2,
    }


def test_squad_v2_end_to_end_and_threshold(tiny_model_dir, tmp_path):
    from bert_tf.evaluation import squad as squad_eval

    out = str(tmp_path / "squad")
    seconds = run_app(
        ["--task=squad"]
        + common(
            tiny_model_dir,
            out,
            "squad_v2.json",
            "squad_v2.json",
            epochs=1,
            batch_size=4,
            learning_rate=1e-3,
            max_seq_length=32,
            doc_stride=8,
            max_query_length=12,
        )
    )
    print(f"squad fixture run: {seconds:.1f} s")
    results = read(os.path.join(out, "eval_results.json"))
    predictions = read(os.path.join(out, "predictions.json"))
    assert sorted(predictions) == ["q1", "q2", "q3", "q4", "q5"]
    data = read(os.path.join(FIXTURES, "squad_v2.json"))
    gold = {
        qa["id"]: [a["text"] for a in qa["answers"]]
        for p in data["data"][0]["paragraphs"]
        for qa in p["qas"]
    }
    again = squad_eval.evaluate(gold, predictions)
    assert results["exact_match"] == pytest.approx(again["exact_match"])
    assert results["f1"] == pytest.approx(again["f1"])
    assert results["NoAns_total"] == 2 and "best_f1_thresh" in results
    context = data["data"][0]["paragraphs"][1]["context"]
    for row in map(json.loads, open(os.path.join(out, "predictions.jsonl"))):
        for span in row["n_best"]:
            if row["id"] in ("q3", "q5"):
                assert context[span["start_char"] : span["end_char"]] == span["text"]
    assert read(os.path.join(out, "config.json"))["task"]["version_2_with_negative"] is True
    # every prediction file the task writes is bert-tf's (--overwrite_model_dir may remove it)
    from bert_tf.ownership import owned_entries

    assert {n: w for n, w in owned_entries(out).items() if "pred" in n or "null" in n} == {
        "predictions.json": "finetune",
        "predictions.jsonl": "finetune",
        "null_odds.json": "finetune",
    }


@pytest.mark.slow
def test_resume_after_interruption(tiny_model_dir, tmp_path, monkeypatch):
    from bert_tf.tasks.classify import ClassifyTask

    out = str(tmp_path / "resume")
    args = ["--task=classify"] + common(
        tiny_model_dir,
        out,
        "classify_train.tsv",
        "classify_eval.tsv",
        epochs=2,
        batch_size=3,
        max_seq_length=64,
    )
    real = ClassifyTask.evaluate

    def killed(self, outputs):
        raise KeyboardInterrupt("killed after the epoch-1 checkpoint")

    monkeypatch.setattr(ClassifyTask, "evaluate", killed)
    with pytest.raises(KeyboardInterrupt):
        run_app(args)
    assert os.path.isfile(os.path.join(out, "checkpoints", "ckpt-2.index"))
    monkeypatch.setattr(ClassifyTask, "evaluate", real)
    run_app(args)
    results = read(os.path.join(out, "eval_results.json"))
    assert results["global_step"] == 4
    assert [h["epoch"] for h in results["history"]] == [1, 2]


@pytest.mark.parametrize(
    "extra, files, message",
    [
        (
            ["--text_a_column=text"],
            ("classify_train.tsv", "classify_eval.tsv"),
            r"classify_train.tsv:1: no column 'text' \(--text_a_column\) in the header; found: "
            r"'sentence', 'label'",
        ),
        (
            [],
            ("classify_train.tsv", "unseen_label.tsv"),
            r"unseen_label.tsv:3: label: label 'neutral' does not occur in the training data",
        ),
        ([], ("missing.tsv", None), r"missing.tsv: no such file"),
    ],
)
def test_bad_input_is_one_line(tiny_model_dir, tmp_path, extra, files, message):
    (tmp_path / "unseen_label.tsv").write_text("sentence\tlabel\ngood\tpos\nfine\tneutral\n")
    train, eval_ = files
    args = [
        f"--init_checkpoint={tiny_model_dir}",
        f"--model_dir={tmp_path / 'out'}",
        "--task=classify",
        f"--train_file={os.path.join(FIXTURES, train)}",
        "--max_seq_length=64",
    ]
    if eval_:
        path = tmp_path / eval_ if eval_ == "unseen_label.tsv" else os.path.join(FIXTURES, eval_)
        args.append(f"--eval_file={path}")
    with pytest.raises(SystemExit) as e:
        run_app(args + extra)
    text = str(e.value)
    assert text.startswith("finetune: ") and "\n" not in text
    import re

    assert re.search(message, text), text
    assert not os.path.exists(tmp_path / "out" / "model.weights.h5")


def test_model_dir_of_another_task_is_refused(tiny_model_dir, tmp_path):
    import shutil

    other = str(tmp_path / "pretraining_run")  # (--model_dir apart from the init)
    shutil.copytree(tiny_model_dir, other)
    with pytest.raises(SystemExit, match="holds a different model"):
        run_app(
            [
                "--task=tag",
                f"--init_checkpoint={tiny_model_dir}",
                f"--train_file={os.path.join(FIXTURES, 'conll_iob2.txt')}",
                f"--model_dir={other}",
                "--max_seq_length=64",
            ]
        )


def _bad_files(tmp_path):
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "plain_file").write_text("x")
    (tmp_path / "reg.tsv").write_text("sentence\tlabel\ngood\t1.5\nbad\tnan\n")
    (tmp_path / "mixed.tsv").write_text("sentence\tlabel\na\t1\nb\tneg\nc\t0\nd\tpos\ne\tneg\n")
    (tmp_path / "bare.conll").write_text("John PER\nlives O\n")
    (tmp_path / "bom.tsv").write_bytes(b"\xef\xbb\xbfsentence\tlabel\r\ngood\tpos\r\nbad\tneg\r\n")
    (tmp_path / "latin1.tsv").write_bytes(b"sentence\tlabel\ngood\tpos\ncaf\xe9\tneg\n")


CLASSIFY_TSV = os.path.join(FIXTURES, "classify_train.tsv")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--learning_rate=nan"], "--learning_rate: expected a finite number > 0, got nan"),
        (["--learning_rate=inf"], "--learning_rate: expected a finite number > 0, got inf"),
        (["--learning_rate=0"], "--learning_rate: expected a finite number > 0, got 0.0"),
        (
            ["--max_seq_length=100000"],
            "--max_seq_length=100000 exceeds the encoder's max_position_embeddings=64 ({init})",
        ),
        (
            ["--model_dir={tmp}/plain_file"],
            "--model_dir={tmp}/plain_file: exists and is not a directory",
        ),
        (["--train_file={tmp}/a_dir"], "--train_file={tmp}/a_dir: is a directory, expected a file"),
        (["--eval_file={tmp}/missing.tsv"], "--eval_file={tmp}/missing.tsv: no such file"),
        (
            ["--init_checkpoint={tmp}/plain_file"],
            "--init_checkpoint={tmp}/plain_file: is a file, not a checkpoint directory (expected a "
            "bert-tf model dir with config.json, a Hugging Face dir with config.json + "
            "model.safetensors, or a Google dir with bert_config.json + bert_model.ckpt.index)",
        ),
        (
            ["--train_file={tmp}/reg.tsv", "--regression"],
            "{tmp}/reg.tsv:3: label: expected a finite number for regression, got 'nan'",
        ),
        (
            ["--train_file={tmp}/mixed.tsv"],
            "{tmp}/mixed.tsv:2: label: '1' is a class id (number) but the other labels are class "
            "names ('neg', 'pos'); use one kind in the whole file",
        ),
        (
            ["--train_file={tmp}/latin1.tsv"],
            "{tmp}/latin1.tsv:3: not UTF-8: byte 0xe9 at column 4 (expected UTF-8 text; re-encode "
            "the file, e.g. `iconv -f latin1 -t utf-8`)",
        ),
        (
            ["--task=tag", "--train_file={tmp}/bare.conll"],
            "{tmp}/bare.conll:1: tag: tag 'PER': no B-/I- prefix (a bare type is not an IOB tag) "
            "(--tag_scheme=iob: expected O, B-TYPE or I-TYPE)",
        ),
        (
            [
                "--task=squad",
                f"--train_file={os.path.join(FIXTURES, 'squad_v2.json')}",
                "--noversion_2_with_negative",
            ],
            f"{os.path.join(FIXTURES, 'squad_v2.json')}: "
            "data[0].paragraphs[0].qas[2].is_impossible: "
            "question id 'q4' has is_impossible=true (a SQuAD v2.0 file) but SQuAD v2.0 is off "
            "(--noversion_2_with_negative)",
        ),
        # a flag of another task than --task; settings that cannot work together
        (["--n_best_size=3"], "--n_best_size is a squad setting; --task=classify"),
        (
            [
                "--task=squad",
                f"--train_file={os.path.join(FIXTURES, 'squad_v2.json')}",
                "--tag_scheme=bioes",
            ],
            "--tag_scheme is a tag setting; --task=squad",
        ),
        (["--label_names=neg,neg"], "--label_names: duplicate names in ['neg', 'neg']"),
        (["--label_names=pos"], "--label_names: need at least 2 classes, got ['pos']"),
        (
            ["--max_seq_length=2"],
            "--max_seq_length=2: --task=classify needs at least 3 ([CLS], one piece, [SEP])",
        ),
    ],
)
def test_up_front_checks_are_one_line(tiny_model_dir, tmp_path, args, message):
    _bad_files(tmp_path)
    base = {
        "--task": "classify",
        "--init_checkpoint": tiny_model_dir,
        "--train_file": CLASSIFY_TSV,
        "--model_dir": str(tmp_path / "out"),
        "--max_seq_length": "64",
    }
    extra = [a.format(tmp=tmp_path) for a in args]
    for a in extra:
        base.pop(a.split("=")[0], None)
    with pytest.raises(SystemExit) as e:
        run_app([f"{k}={v}" for k, v in base.items()] + extra)
    assert str(e.value) == "finetune: " + message.format(tmp=tmp_path, init=tiny_model_dir)
    assert not os.path.exists(tmp_path / "out" / "model.weights.h5")


def test_bom_and_crlf_train_file(tiny_model_dir, tmp_path):
    _bad_files(tmp_path)
    out = str(tmp_path / "out")
    run_app(
        [
            "--task=classify",
            f"--init_checkpoint={tiny_model_dir}",
            f"--model_dir={out}",
            f"--train_file={tmp_path}/bom.tsv",
            "--max_seq_length=16",
            "--epochs=1",
            "--batch_size=2",
            "--precision=float32",
        ]
    )
    assert read(os.path.join(out, "config.json"))["task"]["label_names"] == ["neg", "pos"]


def _bow_logistic_regression(train_texts, train_labels, test_texts, epochs=300, lr=0.5):
    """Bag-of-words (lower-cased word counts, log1p) logistic regression, numpy full-batch GD."""
    import re

    vocab = {}
    for t in train_texts:
        for w in set(re.findall(r"[a-z0-9']+", t.lower())):
            vocab.setdefault(w, len(vocab))

    def featurize(texts):
        x = np.zeros([len(texts), len(vocab)], np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"[a-z0-9']+", t.lower()):
                if w in vocab:
                    x[i, vocab[w]] += 1
        return np.log1p(x)

    x, y = featurize(train_texts), np.asarray(train_labels, np.float32)
    w, b = np.zeros(x.shape[1], np.float32), 0.0
    for _ in range(epochs):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        w -= lr * (x.T @ (p - y) / len(y) + 1e-4 * w)
        b -= lr * float(np.mean(p - y))
    return ((featurize(test_texts) @ w + b) > 0).astype(int)


@pytest.mark.slow
@pytest.mark.real_weights
@pytest.mark.real_data
def test_real_minilm_on_sms_spam_beats_baselines(minilm_dir, tmp_path):
    """all-MiniLM-L6-v2 fine-tuned on a 600-message subsample of SMS spam, evaluated on 500
    held-out messages (3 epochs, seq 48: a few minutes on 2 shared cores), next to majority-class
    and bag-of-words logistic regression."""
    import csv

    from demo_data import assets

    with open(assets.sms_spam_csv(), newline="", encoding="utf-8") as f:
        rows = [(r["text"], int(r["spam"])) for r in csv.DictReader(f)]
    order = np.random.default_rng(0).permutation(len(rows))
    test = [rows[i] for i in order[:500]]
    train = [rows[i] for i in order[500:1100]]
    for name, part in (("train.csv", train), ("test.csv", test)):
        with open(tmp_path / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "spam"])
            writer.writerows(part)
    out = str(tmp_path / "sms")
    seconds = run_app(
        [
            "--task=classify",
            f"--init_checkpoint={minilm_dir}",
            f"--train_file={tmp_path / 'train.csv'}",
            f"--eval_file={tmp_path / 'test.csv'}",
            f"--model_dir={out}",
            "--text_a_column=text",
            "--label_column=spam",
            "--epochs=3",
            "--batch_size=32",
            "--learning_rate=2e-4",
            "--max_seq_length=48",
            "--precision=float32",
            "--log_every_steps=10",
        ]
    )
    results = read(os.path.join(out, "eval_results.json"))
    gold = np.array([y for _, y in test])
    majority = max(np.mean(gold), 1 - np.mean(gold))
    bow = np.mean(
        _bow_logistic_regression([t for t, _ in train], [y for _, y in train], [t for t, _ in test])
        == gold
    )
    print(
        f"SMS spam (train 600, test 500): fine-tuned MiniLM accuracy "
        f"{results['accuracy']:.4f} f1 {results['f1']:.4f} mcc "
        f"{results['matthews_corrcoef']:.4f}; majority {majority:.4f}; bag-of-words LR "
        f"{bow:.4f}; run {seconds:.0f} s; train "
        f"{results['train_examples_per_second_last_window']:.1f} ex/s (last window), "
        f"{results['train_examples_per_second']:.1f} ex/s overall"
    )
    assert results["accuracy"] > majority + 0.05
    assert results["accuracy"] >= bow - 0.01


def test_multiple_choice_end_to_end_swag_csv(tiny_model_dir, tmp_path):
    """SWAG CSV in, accuracy + predictions.jsonl out; the saved model reproduces them."""
    import bert_tf
    from bert_tf.data import multiple_choice as mc
    from bert_tf.text.tokenizer import BertTokenizer

    out = str(tmp_path / "mc")
    seconds = run_app(
        ["--task=multiple_choice"]
        + common(
            tiny_model_dir,
            out,
            "swag_train.csv",
            "swag_train.csv",
            epochs=3,
            batch_size=2,
            learning_rate=2e-3,
            warmup_proportion=0,
            max_seq_length=24,
        )
    )
    print(f"multiple_choice fixture run: {seconds:.1f} s")
    results = read(os.path.join(out, "eval_results.json"))
    assert results["main_metric"] == "accuracy" and len(results["history"]) == 3
    assert results["accuracy"] == max(h["accuracy"] for h in results["history"])
    config = read(os.path.join(out, "config.json"))
    assert config["task"] == {"type": "multiple_choice", "num_choices": 4, "dropout": 0.1}
    rows = [json.loads(line) for line in open(os.path.join(out, "predictions.jsonl"))]
    assert [r["label"] for r in rows] == [0, 1, 2, 3]
    assert rows[1]["choices"][1] == "He loves the capital of france."
    assert np.mean([r["prediction"] == r["label"] for r in rows]) == pytest.approx(
        results["accuracy"]
    )
    model = bert_tf.load_task_model(out)
    tok = BertTokenizer(vocab_file=os.path.join(out, "vocab.txt"), lower_case=True)
    features = mc.build_features(
        mc.read_examples(os.path.join(FIXTURES, "swag_train.csv")), tok, 24
    )
    inputs = next(iter(mc.make_dataset(features, [np.arange(4)], with_labels=False)))
    probs = np.asarray(model(inputs, training=False)["logits"])
    probs = np.exp(probs - probs.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    np.testing.assert_allclose(probs, [r["probabilities"] for r in rows], atol=1e-4)


def test_multiple_choice_bad_row_is_one_line(tiny_model_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"context": "a", "choices": ["x", "y"], "label": 0}\n'
        '{"context": "b", "choices": ["x", "y", "z"], "label": 0}\n'
    )
    with pytest.raises(
        SystemExit,
        match=r"^finetune: .*bad.jsonl:2: choices: expected 2 "
        r"choices \(as line 1\), got 3$",
    ):
        run_app(
            [
                "--task=multiple_choice",
                f"--init_checkpoint={tiny_model_dir}",
                f"--train_file={bad}",
                f"--model_dir={tmp_path / 'out'}",
                "--max_seq_length=32",
            ]
        )
