"""Agreement measures: hand-computed cases and cross-checks against scikit-learn and scipy."""

import math

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from siftkit.core.errors import InputError
from siftkit.metrics.agreement import (
    accuracy,
    agreement_report,
    cohen_kappa,
    confusion,
    kendall_tau,
    macro_f1,
    spearman_rho,
    weighted_f1,
)

# 2x2 table: (y=1, ŷ=1) 20, (1, 0) 5, (0, 1) 10, (0, 0) 15; N = 50
Y_2X2 = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
P_2X2 = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15


def test_accuracy_hand():
    assert accuracy([0, 1, 1, 0], [0, 1, 0, 0]) == 3 / 4
    assert accuracy(Y_2X2, P_2X2) == (20 + 15) / 50


def test_kappa_2x2_hand():
    p_o = (20 + 15) / 50
    p_e = (25 / 50) * (30 / 50) + (25 / 50) * (20 / 50)  # P(y=1)P(ŷ=1) + P(y=0)P(ŷ=0)
    assert cohen_kappa(Y_2X2, P_2X2) == pytest.approx((p_o - p_e) / (1 - p_e))


def test_weighted_kappa_3_class_hand():
    # C has 1 at (0,0), (1,2), (2,2); row sums (1,1,1), column sums (1,0,2); E = r c^T / 3
    y, y_hat = [0, 1, 2], [0, 2, 2]
    assert cohen_kappa(y, y_hat) == pytest.approx((2 / 3 - 3 / 9) / (1 - 3 / 9))
    assert cohen_kappa(y, y_hat, "linear") == pytest.approx(1 - 1 / ((4 + 3 + 2) / 3))
    assert cohen_kappa(y, y_hat, "quadratic") == pytest.approx(1 - 1 / ((8 + 3 + 4) / 3))
    with pytest.raises(InputError):
        cohen_kappa(y, y_hat, "cubic")


def test_kappa_uses_label_order_for_weights():
    y, y_hat = ["low", "mid", "high"], ["low", "high", "high"]
    ordered = ["low", "mid", "high"]
    expected = cohen_kappa([0, 1, 2], [0, 2, 2], "linear")
    assert cohen_kappa(y, y_hat, "linear", labels=ordered) == pytest.approx(expected)


def test_f1_hand():
    y, y_hat = [0, 0, 1, 2], [0, 1, 1, 2]
    f1 = {0: 2 * 1 * (1 / 2) / (1 + 1 / 2), 1: 2 * (1 / 2) * 1 / (1 / 2 + 1), 2: 1.0}
    assert macro_f1(y, y_hat) == pytest.approx((f1[0] + f1[1] + f1[2]) / 3)
    assert weighted_f1(y, y_hat) == pytest.approx((2 * f1[0] + 1 * f1[1] + 1 * f1[2]) / 4)
    assert macro_f1([0, 1, 2], [0, 2, 2]) == pytest.approx((1 + 0 + 2 * (1 / 2) * 1 / (1 / 2 + 1)) / 3)


def test_correlations_hand():
    a, b = [1, 2, 3, 4, 5], [2, 1, 4, 3, 5]
    assert spearman_rho(a, b) == pytest.approx(1 - 6 * 4 / (5 * (5**2 - 1)))  # Σ d^2 = 4
    assert kendall_tau(a, b) == pytest.approx((8 - 2) / 10)  # 8 concordant, 2 discordant pairs
    assert math.isnan(spearman_rho([1, 1, 1], [1, 2, 3]))
    assert math.isnan(kendall_tau([1, 2, 3], [0, 0, 0]))


def test_against_sklearn_and_scipy():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    y_hat = np.clip(y + rng.integers(-1, 2, 200), 0, 3)
    assert accuracy(y, y_hat) == pytest.approx(skm.accuracy_score(y, y_hat))
    assert macro_f1(y, y_hat) == pytest.approx(skm.f1_score(y, y_hat, average="macro"))
    assert weighted_f1(y, y_hat) == pytest.approx(skm.f1_score(y, y_hat, average="weighted"))
    for w in (None, "linear", "quadratic"):
        assert cohen_kappa(y, y_hat, w) == pytest.approx(skm.cohen_kappa_score(y, y_hat, weights=w))
    assert spearman_rho(y, y_hat) == pytest.approx(stats.spearmanr(y, y_hat).statistic)
    assert kendall_tau(y, y_hat) == pytest.approx(stats.kendalltau(y, y_hat).statistic)


def test_confusion_frame():
    c = confusion(["a", "b", "b", "c"], ["a", "b", "c", "c"])
    assert list(c.index) == ["a", "b", "c"] and list(c.columns) == ["a", "b", "c"]
    assert c.index.name == "y_true" and c.columns.name == "y_pred"
    assert c.loc["b", "c"] == 1 and c.loc["b", "b"] == 1 and c.loc["c", "b"] == 0
    assert int(c.to_numpy().sum()) == 4
    c2 = confusion([1, 0], [1, 1], labels=[1, 0])
    assert c2.loc[0, 1] == 1 and list(c2.index) == [1, 0]


def test_agreement_report():
    r = agreement_report(Y_2X2, P_2X2)
    assert r["n"] == 50 and r["accuracy"] == (20 + 15) / 50
    assert r["kappa"] == pytest.approx(cohen_kappa(Y_2X2, P_2X2))
    assert {"kappa_linear", "kappa_quadratic", "macro_f1", "weighted_f1", "spearman_rho", "kendall_tau"} <= set(r)
    r_str = agreement_report(["x", "y"], ["x", "x"])
    assert "spearman_rho" not in r_str and r_str["accuracy"] == 1 / 2


def test_bad_shapes():
    with pytest.raises(InputError):
        accuracy([0, 1], [0])
    with pytest.raises(InputError):
        accuracy([], [])
