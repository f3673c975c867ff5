"""Gini (product-bias spec Eq. 1), HHI, entropy and the support rules."""

import math

import numpy as np
import pytest

from siftkit.core.errors import InputError
from siftkit.metrics.concentration import concentration_report, entropy, gini, hhi, support_size, top_k_share


def _gini_mean_abs_diff(x):
    """Reference form: G = Σ_i Σ_j |x_i - x_j| / (2 n^2 mean(x))."""
    x = np.asarray(x, dtype=float)
    return np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())


def _gini_lorenz(x):
    """Reference form: 1 - (1/n) Σ_i (L_{i-1} + L_i), L the Lorenz curve of the ascending counts."""
    x = np.sort(np.asarray(x, dtype=float))
    lorenz = np.concatenate([[0], np.cumsum(x) / x.sum()])
    return 1 - np.sum(lorenz[:-1] + lorenz[1:]) / len(x)


def test_equal_counts_give_zero():
    assert gini([5, 5, 5, 5]) == 0
    assert gini({"AAPL": 3, "MSFT": 3, "NVDA": 3}) == 0


def test_one_product_takes_all():
    assert gini(np.eye(10)[0], support="universe") == pytest.approx((10 - 1) / 10)
    universe = ["AAPL", "MSFT", "NVDA", "AMZN"]
    assert gini({"AAPL": 7}, universe=universe) == pytest.approx((4 - 1) / 4)


def test_eq1_hand_case():
    # ascending x = (1, 2, 3, 4), n = 4: Σ (2i - 5) x_(i) = -3*1 - 1*2 + 1*3 + 3*4 = 10; n Σ x = 40
    assert gini([4, 1, 3, 2]) == pytest.approx(10 / 40)


def test_matches_reference_forms_on_random_vectors():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(1, 50, size=int(rng.integers(2, 30)))
        assert gini(x) == pytest.approx(_gini_mean_abs_diff(x))
        assert gini(x) == pytest.approx(_gini_lorenz(x))


def test_own_vs_universe_support():
    counts = {"AAPL": 6, "MSFT": 2, "NVDA": 0}
    universe = ["AAPL", "MSFT", "NVDA", "AMZN"]
    # own: x = (2, 6), n = 2: (-1*2 + 1*6) / (2*8); universe: x = (0, 0, 2, 6): (1*2 + 3*6) / (4*8)
    assert gini(counts) == pytest.approx(4 / 16)
    assert gini(counts, universe=universe) == pytest.approx(20 / 32)
    assert support_size(counts) == 2 and support_size(counts, universe=universe) == 4
    # own support is degenerate for a model that always names one product
    assert gini({"AAPL": 100}) == 0 and gini({"AAPL": 100}, universe=universe) == pytest.approx(3 / 4)
    # arrays: own drops zeros, universe keeps them
    assert gini([0, 0, 2, 6]) == pytest.approx(4 / 16)
    assert gini([0, 0, 2, 6], support="universe") == pytest.approx(20 / 32)


def test_support_errors():
    with pytest.raises(InputError, match="outside the universe"):
        gini({"AAPL": 1, "TSLA": 2}, universe=["AAPL"])
    with pytest.raises(InputError):
        gini({"AAPL": 1}, support="universe")
    with pytest.raises(InputError):
        gini({"AAPL": 1}, support="own", universe=["AAPL"])
    with pytest.raises(InputError):
        gini([1, -1])
    assert math.isnan(gini({})) and math.isnan(gini([0, 0]))


def test_hhi():
    assert hhi({"AAPL": 3, "MSFT": 1}) == pytest.approx((3 / 4) ** 2 + (1 / 4) ** 2)
    assert hhi([1, 1, 1, 1, 0]) == pytest.approx(4 * (1 / 4) ** 2)
    assert hhi([9]) == 1
    assert math.isnan(hhi([0, 0]))


def test_entropy():
    assert entropy([1, 1, 1, 1]) == pytest.approx(math.log(4))
    assert entropy([3, 1, 0]) == pytest.approx(-(3 / 4) * math.log(3 / 4) - (1 / 4) * math.log(1 / 4))
    assert entropy([5, 0]) == 0
    assert entropy([1, 1], normalise=True) == pytest.approx(1.0)
    # same H, different n: own n = 2, universe n = 4
    counts = {"AAPL": 1, "MSFT": 1}
    universe = ["AAPL", "MSFT", "NVDA", "AMZN"]
    assert entropy(counts, universe=universe) == entropy(counts)
    assert entropy(counts, normalise=True, universe=universe) == pytest.approx(math.log(2) / math.log(4))
    assert math.isnan(entropy([3], normalise=True))


def test_top_k_share_and_report():
    counts = {"AAPL": 5, "MSFT": 3, "NVDA": 1, "AMZN": 1}
    assert top_k_share(counts, 1) == 5 / 10 and top_k_share(counts, 2) == 8 / 10 and top_k_share(counts, 5) == 1
    r = concentration_report(counts, universe=[*counts, "GOOG"])
    assert r["n_own"] == 4 and r["n_universe"] == 5
    assert r["gini_own"] == gini(counts) and r["gini_universe"] > r["gini_own"]
    assert r["hhi"] == pytest.approx((0.5**2 + 0.3**2 + 0.1**2 + 0.1**2))
    assert "gini_universe" not in concentration_report(counts)
