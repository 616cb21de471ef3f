"""SQuAD v1.1 / v2.0 reader, offset checks, doc_stride windows, exact character decoding."""

import json
import os

import numpy as np
import pytest

from bert_tf.data import squad
from bert_tf.data.errors import DataError
from bert_tf.evaluation.span_decoding import decode_example

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")


def test_reads_v1_and_v2():
    v1 = squad.read_examples(os.path.join(FIXTURES, "squad_v1.json"))
    assert [e.qid for e in v1] == ["q1", "q2", "q3"]
    assert v1[1].answers == ["Paris", "in Paris"] and v1[1].answer_start == 37
    stats = squad.SquadStats()
    v2 = squad.read_examples(os.path.join(FIXTURES, "squad_v2.json"), stats=stats)
    assert stats.version_2 and stats.impossible == 2
    q4 = [e for e in v2 if e.qid == "q4"][0]
    assert q4.is_impossible and q4.answers == [] and q4.answer_start == -1


def _write(tmp_path, start, text="London"):
    context = "John lives in London."
    data = {
        "version": "1.1",
        "data": [
            {
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": "bad1",
                                "question": "Where?",
                                "answers": [{"text": text, "answer_start": start}],
                            }
                        ],
                    }
                ]
            }
        ],
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_offset_mismatch_warns_fixes_or_fails(tmp_path):
    stats = squad.SquadStats()
    ex = squad.read_examples(_write(tmp_path, 3), stats=stats)
    assert ex[0].answer_start == 14 and stats.offsets_fixed == 1
    stats = squad.SquadStats()
    ex = squad.read_examples(_write(tmp_path, 3, "Berlin"), stats=stats)
    assert ex[0].answer_start == -1 and stats.answers_dropped == 1
    assert ex[0].answers == ["Berlin"]  # still gold for evaluation
    with pytest.raises(
        DataError,
        match=r"s.json: question id bad1: answer 'London' at "
        r"answer_start=3 does not match the context",
    ):
        squad.read_examples(_write(tmp_path, 3), offset_errors="fail")


def test_bad_json(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"data": [')
    with pytest.raises(DataError, match=r"s.json:1: invalid JSON"):
        squad.read_examples(str(path))
    path.write_text(
        '{"data": [{"paragraphs": [{"context": "x", "qas": [{"id": "z", '
        '"question": "q", "answers": []}]}]}]}'
    )
    with pytest.raises(DataError, match="question id z: no answers and not is_impossible"):
        squad.read_examples(str(path))


def test_window_starts_and_max_context():
    assert squad.window_starts(10, 4, 3) == [0, 3, 6]
    assert squad.window_starts(3, 4, 3) == [0]
    best = squad.max_context_windows(10, [0, 3, 6], 4)
    # token 3: window 0 score min(3,0)+.04, window 1 min(0,3)+.04 -> first wins
    # token 4: window 1 min(1,2) = 1 beats window 0 (not inside)
    assert best.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]


def tokenizer(tiny_vocab_file):
    from bert_tf.text.tokenizer import BertTokenizer

    return BertTokenizer(vocab_file=tiny_vocab_file, lower_case=True)


def test_long_context_windows_and_positions(tiny_vocab_file):
    tok = tokenizer(tiny_vocab_file)
    ex = [
        e
        for e in squad.read_examples(os.path.join(FIXTURES, "squad_v2.json"))
        if e.qid in ("q3", "q5")
    ]
    stats = squad.SquadFeatureStats()
    f, spans = squad.build_features(
        ex, tok, max_seq_length=32, doc_stride=8, training=True, stats=stats
    )
    assert stats.multi_window_examples == 2 and len(f) > 4
    q3 = [i for i, s in enumerate(spans) if s.example == 0]
    starts = f.labels["start_positions"]
    answered = [i for i in q3 if starts[i] > 0]
    assert answered, "the answer must be inside at least one window"
    for i in answered:
        s = spans[i]
        assert f.labels["end_positions"][i] == starts[i]  # "london" is one piece
        assert ex[0].context[s.char_start[starts[i]] : s.char_end[starts[i]]] == "London"
    assert all(starts[i] == 0 for i, s in enumerate(spans) if s.example == 1)  # impossible
    # every context token is max-context in exactly one window
    counts = {}
    for s in spans:
        if s.example == 0:
            for a, m in zip(s.char_start, s.is_max_context):
                if a >= 0 and m:
                    counts[a] = counts.get(a, 0) + 1
    assert set(counts.values()) == {1}


def test_decoding_maps_back_to_exact_original_characters(tiny_vocab_file):
    """Logits that point at "café is in Paris" return the original accented characters."""
    tok = tokenizer(tiny_vocab_file)
    ex = squad.read_examples(os.path.join(FIXTURES, "squad_v1.json"))[:1]
    f, spans = squad.build_features(ex, tok, max_seq_length=64)
    pieces = [tok.id_to_token(i) for i in f.row(0)]
    start, end = pieces.index("cafe"), pieces.index("paris")
    logits_s = np.zeros(len(pieces))
    logits_e = np.zeros(len(pieces))
    logits_s[start], logits_e[end] = 5.0, 5.0
    feature = {
        "start_logits": logits_s,
        "end_logits": logits_e,
        "char_start": spans[0].char_start,
        "char_end": spans[0].char_end,
        "is_max_context": spans[0].is_max_context,
    }
    best = decode_example(ex[0].context, [feature], max_answer_length=10).n_best[0]
    assert best.text == "café is in Paris"
    assert ex[0].context[best.start_char : best.end_char] == best.text
