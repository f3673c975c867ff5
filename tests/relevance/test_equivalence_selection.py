"""LREF's selection statistics and DPO-shift statistics on random inputs against scikit-learn and NumPy.

* ``selection_stats``: dropping a row is a prediction of "noisy", keeping it a prediction of "clean", so
  drop/keep precision and recall are scikit-learn's precision and recall with those positive classes.
* ``keep``: every combination of (label, IM, CI, MS) over the five grades against the rule as written in the spec,
  ``[IM ≠ L] ∧ [CI = L] ∧ [MS ≠ L]`` (``"eq"``: ``MS = L``), with each term switchable.
* ``prior_shift`` / ``shift_stats``: δ is the least-squares per-grade constant fitted to the centred changes
  (``numpy.linalg.lstsq`` on indicator columns), and ``explained`` is 1 − SSR/SST of that fit.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score

from siftkit.relevance.diagnostics import prior_shift, shift_stats
from siftkit.relevance.lref import GRADES, keep, selection_stats


@pytest.mark.parametrize("seed", range(4))
def test_selection_stats_equal_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n = 40
    kept = (rng.random(n) < 0.6).tolist()
    noisy = (rng.random(n) < 0.3).tolist()
    s = selection_stats(kept, noisy)
    dropped = [not k for k in kept]
    clean = [not x for x in noisy]
    assert s["drop_precision"] == pytest.approx(precision_score(noisy, dropped, zero_division=0), rel=1e-12)
    assert s["drop_recall"] == pytest.approx(recall_score(noisy, dropped, zero_division=0), rel=1e-12)
    assert s["keep_precision"] == pytest.approx(precision_score(clean, kept, zero_division=0), rel=1e-12)
    assert s["keep_recall"] == pytest.approx(recall_score(clean, kept, zero_division=0), rel=1e-12)
    assert s["kept_noise_rate"] == pytest.approx(1 - s["keep_precision"], abs=1e-12)
    assert s["kept_share"] == np.mean(kept) and s["noise_rate"] == np.mean(noisy)


def test_selection_stats_degenerate_sets_equal_scikit_learn_zero_division():
    for kept, noisy in [([True] * 4, [False, True, False, False]), ([False] * 3, [False] * 3)]:
        s = selection_stats(kept, noisy)
        dropped, clean = [not k for k in kept], [not x for x in noisy]
        assert s["drop_precision"] == precision_score(noisy, dropped, zero_division=0)
        assert s["drop_recall"] == recall_score(noisy, dropped, zero_division=0)
        assert s["keep_precision"] == precision_score(clean, kept, zero_division=0)


def test_keep_rule_over_every_combination():
    for label, im, ci, ms in itertools.product(GRADES, repeat=4):
        for rule in ("neq", "eq"):
            for use in itertools.product([True, False], repeat=3):
                terms = [im != label, ci == label, (ms != label) if rule == "neq" else (ms == label)]
                want = all(t for t, on in zip(terms, use) if on)
                assert keep(label, im, ci, ms, rule, *use) is want


def test_prior_shift_is_the_least_squares_constant_and_explained_is_its_r2():
    rng = np.random.default_rng(5)
    n, G = 30, len(GRADES)
    before = rng.normal(size=(n, G))
    after = before + rng.normal(size=(1, G)) * 2 + rng.normal(size=(n, G)) * 0.5 + rng.normal(size=(n, 1)) * 3
    rows = list(range(n))
    delta = prior_shift(before.tolist(), after.tolist(), rows)
    d = (after - after.mean(1, keepdims=True)) - (before - before.mean(1, keepdims=True))  # (n, G) centred change
    X = np.kron(np.ones((n, 1)), np.eye(G))  # (n·G, G) indicator of the grade
    fit, *_ = np.linalg.lstsq(X, d.reshape(-1), rcond=None)
    assert np.allclose(delta, fit, rtol=1e-10, atol=1e-12)
    resid = d.reshape(-1) - X @ fit
    r2 = 1 - resid @ resid / (d.reshape(-1) @ d.reshape(-1))  # uncentred: the "no change" baseline is 0
    assert shift_stats(before.tolist(), after.tolist(), delta)["explained"] == pytest.approx(r2, rel=1e-10)
