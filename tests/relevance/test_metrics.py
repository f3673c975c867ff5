"""Relevance metrics against scikit-learn, and over-recall by hand."""

import numpy as np
import pytest
from sklearn import metrics as skm

from siftkit.relevance.lref import GRADES, SCALES
from siftkit.relevance.metrics import over_recall, relevance_report

Y = ["Exact", "Significant", "Marginal", "Marginal", "Trivial", "Irrelevant", "Significant", "Marginal"]
P = ["Exact", "Exact", "Significant", "Marginal", "Marginal", "Irrelevant", "Marginal", "Trivial"]


def test_report_matches_scikit_learn():
    r = relevance_report(Y, P, GRADES)
    assert r["accuracy"] == pytest.approx(skm.accuracy_score(Y, P))
    assert r["macro_f1"] == pytest.approx(skm.f1_score(Y, P, labels=list(GRADES), average="macro", zero_division=0))
    assert r["weighted_f1"] == pytest.approx(skm.f1_score(Y, P, labels=list(GRADES), average="weighted",
                                                          zero_division=0))
    p, rec, _, _ = skm.precision_recall_fscore_support(Y, P, labels=list(GRADES), zero_division=0)
    assert r["recall_marginal"] == pytest.approx(rec[2]) == pytest.approx(1 / 3)
    assert r["precision_significant"] == pytest.approx(p[1]) == pytest.approx(0 / 1)
    assert np.array_equal(r["confusion"], skm.confusion_matrix(Y, P, labels=list(GRADES)))


def test_over_recall_per_error_and_per_prediction():
    # errors: rows 1 (S→E up), 2 (M→S up), 4 (T→M up), 6 (S→M down), 7 (M→T down)
    per_err, per_pred = over_recall(Y, P, GRADES)
    assert per_err == pytest.approx(3 / 5)
    assert per_pred == pytest.approx(3 / 8)
    assert over_recall(["Exact"], ["Exact"], GRADES) == (0.0, 0.0)


def test_binary_report_has_false_positive_rate():
    y = ["Relevant", "Not relevant", "Not relevant", "Not relevant"]
    p = ["Relevant", "Relevant", "Not relevant", "Relevant"]
    r = relevance_report(y, p, SCALES["binary"].labels)
    assert r["fpr"] == pytest.approx(2 / 3)
    assert r["over_recall_pred"] == pytest.approx(2 / 4)
    assert r["recall_not_relevant"] == pytest.approx(1 / 3)
