"""Evaluation: metrics against hand arithmetic and scikit-learn/scipy; invalid policies; groups; known answers."""

import math

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from siftkit.usefulness.evaluate import align, evaluate_labels, published_table

from .conftest import make_click


def hand_case():
    # gold 0,1,2,3 vs predicted 0,1,3,3; groups by query relevance 0,3,1,2 -> LR-LU, HR-LU, LR-HU, HR-HU
    clicks = [make_click(i, usefulness=u, query_relevance=q, query_position=i + 1)
              for i, (u, q) in enumerate([(0, 0.0), (1, 3.0), (2, 1.0), (3, 2.0)])]
    return clicks, {"c0": 0, "c1": 1, "c2": 3, "c3": 3}


def test_hand_case_arithmetic():
    clicks, pred = hand_case()
    m = evaluate_labels(clicks, pred, n_resamples=0)
    assert m["n"] == 4 and m["coverage"] == 1.0
    assert m["accuracy"] == pytest.approx(3 / 4)
    # ranks of gold 1,2,3,4 and of predictions 1,2,3.5,3.5: rho = 4.5 / sqrt(5 * 4.5)
    assert m["spearman"] == pytest.approx(4.5 / math.sqrt(5 * 4.5))
    # p_o = 3/4, p_e = 1/4 (1/4 + 1/4 + 0 + 2/4) = 1/4
    assert m["kappa"] == pytest.approx((3 / 4 - 1 / 4) / (1 - 1 / 4))
    # observed weighted disagreement 1/4 * 1; expected 1/4 * (14/4 + 6/4 + 0 * 6 + 14/2) = 3
    assert m["qwk"] == pytest.approx(1 - (1 / 4) / 3)
    assert (m["acc_LR-LU"], m["acc_HR-LU"], m["acc_LR-HU"], m["acc_HR-HU"]) == (1.0, 1.0, 0.0, 1.0)
    assert m["confusion"][3] == {0: 0, 1: 0, 2: 1, 3: 1}  # column ŷ = 3: one gold 2, one gold 3


def test_against_sklearn_and_scipy():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    y_hat = np.clip(y + rng.integers(-2, 3, 200), 0, 3)
    clicks = [make_click(i, usefulness=int(u), query_position=i % 17 + 1) for i, u in enumerate(y)]
    m = evaluate_labels(clicks, {f"c{i}": int(v) for i, v in enumerate(y_hat)}, n_resamples=0)
    assert m["spearman"] == pytest.approx(stats.spearmanr(y, y_hat).statistic)
    assert m["kendall"] == pytest.approx(stats.kendalltau(y, y_hat).statistic)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, y_hat))
    assert m["kappa"] == pytest.approx(skm.cohen_kappa_score(y, y_hat))
    assert m["qwk"] == pytest.approx(skm.cohen_kappa_score(y, y_hat, weights="quadratic"))


def test_invalid_policies():
    clicks, _ = hand_case()
    pred = {"c0": 0, "c1": 7, "c2": "two", "c3": 3}
    ex = evaluate_labels(clicks, pred, "exclude", n_resamples=0)
    assert (ex["n"], ex["n_invalid"], ex["accuracy"]) == (2, 2, 1.0)
    keep = evaluate_labels(clicks, pred, "keep", n_resamples=0)
    assert (keep["n"], keep["accuracy"]) == (3, 2 / 3)  # 7 is kept and counts as a miss; "two" is not a number
    clamp = evaluate_labels(clicks, pred, "clamp", n_resamples=0)
    assert (clamp["n"], clamp["accuracy"]) == (3, 2 / 3)  # 7 -> 3 against gold 1
    assert evaluate_labels(clicks, {"c0": 0}, n_resamples=0)["coverage"] == 1 / 4


def test_clusters_for_the_bootstrap(clicks):
    by_query = align(clicks, {"c1": 1, "c2": 1, "c3": 1}, cluster="query")["cluster"].tolist()
    assert by_query[0] == by_query[1] != by_query[2]
    assert len(set(align(clicks, {"c1": 1, "c2": 1, "c3": 1}, cluster="session")["cluster"])) == 1


def test_bootstrap_ci_brackets_the_estimate():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 120)
    clicks = [make_click(i, usefulness=int(u), query_position=i // 3 + 1) for i, u in enumerate(y)]
    pred = {f"c{i}": int(min(3, u + (i % 2))) for i, u in enumerate(y)}
    a = evaluate_labels(clicks, pred, n_resamples=200, seed=3)
    b = evaluate_labels(clicks, pred, n_resamples=200, seed=3)
    for k in ("spearman", "accuracy", "kappa", "qwk"):
        assert a[f"{k}_lo"] <= a[k] <= a[f"{k}_hi"]
        assert a[f"{k}_lo"] == b[f"{k}_lo"]  # seeded


@pytest.mark.needs_shared
def test_published_outputs_reproduce_the_spec_table(shared_data):
    df = published_table(shared_data, n_resamples=0)
    assert set(df["status"]) == {"OK", "n/a"}, df[df["status"] == "FAIL"][["model", "prompt", "expected"]]
    assert (df["status"] == "OK").sum() == 9
    row = df[(df["model"] == "Llama-3.3-70B") & (df["prompt"] == "session")].iloc[0]
    assert (round(row["spearman"], 3), round(row["kappa"], 3), round(row["qwk"], 3)) == (0.481, 0.240, 0.482)


def test_paired_difference_hand_case():
    from siftkit.usefulness.evaluate import paired_difference

    clicks, pred = hand_case()
    perfect = {"c0": 0, "c1": 1, "c2": 2, "c3": 3}
    d = paired_difference(clicks, perfect, pred, "spearman", n_resamples=200)
    # rho(perfect) = 1, rho(hand) = 4.5 / sqrt(5 * 4.5)
    assert d["delta"] == pytest.approx(1 - 4.5 / math.sqrt(5 * 4.5))
    assert (d["n"], d["clusters"]) == (4, 4)
    back = paired_difference(clicks, pred, perfect, "accuracy", n_resamples=200)
    assert back["delta"] == pytest.approx(3 / 4 - 1)
    # a click only one system labels is left out of both
    assert paired_difference(clicks, perfect, {k: v for k, v in pred.items() if k != "c2"}, "accuracy",
                             n_resamples=1)["n"] == 3
