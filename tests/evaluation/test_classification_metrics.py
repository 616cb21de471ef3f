"""Classification / regression metrics against hand-computed values."""

import pytest

from bert_tf.evaluation import classification as m

LABELS = [0, 1, 1, 0, 1, 2]
PREDS = [0, 1, 0, 0, 2, 2]
# Confusion (rows gold): [[2,0,0],[1,1,1],[0,0,1]]


def test_accuracy():
    assert m.accuracy(LABELS, PREDS) == pytest.approx(4 / 6)


def test_macro_f1_three_classes():
    # class 0: 2*2/(3+2) = 0.8; class 1: 2*1/(1+3) = 0.5; class 2: 2*1/(2+1) = 2/3
    assert m.per_class_f1(LABELS, PREDS, 3) == pytest.approx([0.8, 0.5, 2 / 3])
    assert m.f1(LABELS, PREDS, 3) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_matthews_multiclass():
    # c=4, s=6, t=[2,3,1], p=[3,1,2]: (24 - 11) / sqrt((36 - 14) * (36 - 14)) = 13/22
    assert m.matthews_corrcoef(LABELS, PREDS, 3) == pytest.approx(13 / 22)


def test_binary_f1_and_mcc():
    labels, preds = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]  # tp=2 fp=1 fn=1 tn=1
    assert m.f1(labels, preds, 2) == pytest.approx(4 / 6)
    assert m.macro_f1(labels, preds, 2) == pytest.approx((4 / 6 + 0.5) / 2)
    assert m.matthews_corrcoef(labels, preds, 2) == pytest.approx(1 / 6)
    assert m.matthews_corrcoef([0, 0, 1], [0, 0, 0], 2) == 0.0  # undefined -> 0


def test_pearson_and_spearman():
    assert m.pearson([1, 2, 3, 4], [2, 4, 5, 9]) == pytest.approx(11 / 130**0.5)
    # ranks with ties: [1, 2.5, 2.5, 4] vs [1, 3, 2, 4] -> 4.5 / sqrt(4.5 * 5)
    assert m.rank_average([1, 2, 2, 3]) == pytest.approx([1, 2.5, 2.5, 4])
    assert m.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / 22.5**0.5)
    assert m.spearman([1, 2, 3], [10, 200, 3000]) == pytest.approx(1.0)


def test_metric_dicts():
    r = m.classification_metrics(LABELS, PREDS, 3)
    assert r["accuracy"] == pytest.approx(4 / 6) and r["num_examples"] == 6
    g = m.regression_metrics([1, 2, 3, 4], [2, 4, 5, 9])
    assert g["mse"] == pytest.approx((1 + 4 + 4 + 25) / 4)
