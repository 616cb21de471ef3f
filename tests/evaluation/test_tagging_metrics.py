"""conlleval entity scoring against hand-computed chunks and scores."""

import pytest

from bert_tf.evaluation import tagging as t


@pytest.mark.parametrize(
    "tags, chunks",
    [
        (
            ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"],
            [("PER", 0, 1), ("LOC", 3, 3), ("LOC", 4, 5)],
        ),
        # the same chunks in IOB1: I- starts a chunk after O, B- only between adjacent same types
        (
            ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-LOC"],
            [("PER", 0, 1), ("LOC", 3, 3), ("LOC", 4, 5)],
        ),
        (["B-PER", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 1)]),  # type change splits
        (["I-PER", "I-LOC", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 2)]),
        (["O", "I-PER"], [("PER", 1, 1)]),  # tolerated in IOB2 too
        (["B-PER", "B-PER"], [("PER", 0, 0), ("PER", 1, 1)]),
        (["I-MISC", "B-MISC", "I-MISC", "O"], [("MISC", 0, 0), ("MISC", 1, 2)]),
        (["B-X", "E-X", "S-Y", "O"], [("X", 0, 1), ("Y", 2, 2)]),  # IOBES
        (["O", "O"], []),
    ],
)
def test_chunks(tags, chunks):
    assert t.get_chunks(tags) == chunks


def test_scores_hand_computed():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-LOC"], ["B-ORG", "O"]]
    # gold chunks 4, predicted 3 (PER, LOC 3-5, ORG), correct 2 (PER, ORG)
    r = t.entity_scores(gold, pred)
    assert (r["num_correct"], r["num_predicted"], r["num_gold"]) == (2, 3, 4)
    assert r["precision"] == pytest.approx(2 / 3)
    assert r["recall"] == pytest.approx(0.5)
    assert r["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert r["accuracy"] == pytest.approx(7 / 8)
    assert r["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert r["per_type"]["PER"]["f1"] == 1.0


def test_iob1_and_iob2_spellings_score_the_same():
    iob1 = [["I-PER", "I-PER", "O", "I-LOC", "B-LOC"]]
    iob2 = [["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]]
    assert t.entity_scores(iob1, iob2)["f1"] == 1.0
    # a boundary error: wrong last position is a miss (no partial credit)
    assert t.entity_scores(iob2, [["B-PER", "O", "O", "B-LOC", "B-LOC"]])["f1"] == pytest.approx(
        2 * (2 / 3) * (2 / 3) / (4 / 3)
    )


def test_no_predictions_gives_zero_not_nan():
    r = t.entity_scores([["B-PER"]], [["O"]])
    assert (r["precision"], r["recall"], r["f1"]) == (0.0, 0.0, 0.0)


def test_scheme_detection_and_conversion():
    iob1 = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-LOC"]
    iob2 = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]
    assert t.detect_scheme([iob1]) == "iob1"
    assert t.detect_scheme([iob2]) == "iob2"
    assert t.convert_scheme(iob1, "iob2") == iob2
    assert t.convert_scheme(iob2, "iob1") == iob1


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="sentence 0: 2 gold tags but 1 predicted"):
        t.entity_scores([["O", "O"]], [["O"]])
