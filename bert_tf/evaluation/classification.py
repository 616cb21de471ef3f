"""Classification and regression metrics (numpy only), as scikit-learn / scipy define them.

accuracy           fraction of exact matches
f1                 binary F1 of class 1 for 2 classes, macro F1 (unweighted mean) otherwise
matthews_corrcoef  multi-class MCC (Gorodkin's R_K, = the binary phi coefficient for 2 classes)
pearson, spearman  correlation of predictions with gold scores (STS-B style regression);
                   Spearman uses average ranks for ties
"""

import numpy as np


def _as_int_arrays(labels, predictions):
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    p = np.asarray(predictions).astype(np.int64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"labels and predictions differ in length: {y.shape[0]} vs {p.shape[0]}")
    return y, p


def accuracy(labels, predictions):
    y, p = _as_int_arrays(labels, predictions)
    return float(np.mean(y == p)) if y.size else 0.0


def confusion_matrix(labels, predictions, num_classes):
    """[C, C] counts: rows = gold class, columns = predicted class."""
    y, p = _as_int_arrays(labels, predictions)
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (y, p), 1)
    return matrix


def per_class_f1(labels, predictions, num_classes):
    """F1 of each class; 0 where a class has neither gold nor predicted examples."""
    m = confusion_matrix(labels, predictions, num_classes).astype(np.float64)
    tp = np.diag(m)
    predicted = m.sum(axis=0)
    gold = m.sum(axis=1)
    denominator = predicted + gold
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def f1(labels, predictions, num_classes):
    """Binary F1 of the positive class (index 1) for 2 classes, macro F1 for more."""
    scores = per_class_f1(labels, predictions, num_classes)
    if num_classes == 2:
        return float(scores[1])
    return float(np.mean(scores))


def macro_f1(labels, predictions, num_classes):
    return float(np.mean(per_class_f1(labels, predictions, num_classes)))


def matthews_corrcoef(labels, predictions, num_classes):
    """Multi-class Matthews correlation coefficient; 0 when undefined (a constant column)."""
    m = confusion_matrix(labels, predictions, num_classes).astype(np.float64)
    t = m.sum(axis=1)  # gold counts per class
    p = m.sum(axis=0)  # predicted counts per class
    c = np.trace(m)
    s = m.sum()
    numerator = c * s - np.dot(t, p)
    denominator = np.sqrt(s * s - np.dot(p, p)) * np.sqrt(s * s - np.dot(t, t))
    return float(numerator / denominator) if denominator > 0 else 0.0


def pearson(gold, predicted):
    x = np.asarray(gold, np.float64).reshape(-1)
    y = np.asarray(predicted, np.float64).reshape(-1)
    x = x - x.mean()
    y = y - y.mean()
    denominator = np.sqrt(np.dot(x, x) * np.dot(y, y))
    return float(np.dot(x, y) / denominator) if denominator > 0 else 0.0


def rank_average(values):
    """Ranks 1..n, tied values share the mean of their ranks (scipy.stats.rankdata default)."""
    values = np.asarray(values, np.float64).reshape(-1)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), np.float64)
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(gold, predicted):
    return pearson(rank_average(gold), rank_average(predicted))


def classification_metrics(labels, predictions, num_classes):
    """The classify task's eval_results: accuracy (main), f1, macro_f1, matthews_corrcoef."""
    return {
        "accuracy": accuracy(labels, predictions),
        "f1": f1(labels, predictions, num_classes),
        "macro_f1": macro_f1(labels, predictions, num_classes),
        "matthews_corrcoef": matthews_corrcoef(labels, predictions, num_classes),
        "num_examples": int(np.asarray(labels).size),
    }


def regression_metrics(gold, predicted):
    """The regression task's eval_results: pearson, spearman (their mean is the main metric)."""
    p, s = pearson(gold, predicted), spearman(gold, predicted)
    err = np.asarray(predicted, np.float64).reshape(-1) - np.asarray(gold, np.float64).reshape(-1)
    return {
        "pearson": p,
        "spearman": s,
        "corr": (p + s) / 2.0,
        "mse": float(np.mean(err**2)) if err.size else 0.0,
        "num_examples": int(err.size),
    }
