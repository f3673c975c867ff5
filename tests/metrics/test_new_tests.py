"""ROC-AUC and chi-square goodness of fit on hand-computed cases, ties included."""

import numpy as np
import pytest
from scipy import stats

from siftkit.core.errors import InputError
from siftkit.metrics import chi_square_gof, roc_auc


def test_roc_auc_pairs():
    # positives {0.35, 0.8}, negatives {0.1, 0.4}: pairs ordered right: (0.35>0.1), (0.8>0.1), (0.8>0.4) = 3/4
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    # a tie between a positive and a negative counts one half: (1 + 0.5 + 1 + 1) / 4
    assert roc_auc([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.8]) == pytest.approx(3.5 / 4)
    assert roc_auc([0, 1, 0, 1], [0.3] * 4) == 0.5
    assert roc_auc([True, False], [1.0, 0.0]) == 1.0


def test_roc_auc_bad_input():
    with pytest.raises(InputError):
        roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(InputError):
        roc_auc([0, 1, 2], [0.1, 0.2, 0.3])


def test_chi_square_by_hand():
    # O = (10, 30, 20), p = (0.25, 0.25, 0.5), n = 60: E = (15, 15, 30)
    r = chi_square_gof([10, 30, 20], [0.25, 0.25, 0.5])
    chi2 = (10 - 15) ** 2 / 15 + (30 - 15) ** 2 / 15 + (20 - 30) ** 2 / 30
    assert r.statistic == pytest.approx(chi2)
    assert r.dof == 2 and r.n == 60
    assert r.p_value == pytest.approx(stats.chi2.sf(chi2, 2))


def test_chi_square_mapping_zero_fill_and_weights():
    # expected given as market-cap weights (any scale); "C" never observed counts O = 0
    r = chi_square_gof({"A": 6, "B": 2}, {"A": 200.0, "B": 100.0, "C": 100.0})
    e = np.array([4.0, 2.0, 2.0])
    assert r.statistic == pytest.approx((6 - 4) ** 2 / 4 + 0 + (0 - 2) ** 2 / 2)
    assert r.dof == 2
    assert chi_square_gof([5, 5], [1, 1]).p_value == 1.0
    assert e.sum() == 8


def test_chi_square_bad_input():
    with pytest.raises(InputError):
        chi_square_gof({"A": 1, "Z": 1}, {"A": 1.0, "B": 1.0})  # Z not in the reference
    with pytest.raises(InputError):
        chi_square_gof([1, 1], [1.0, 0.0])  # observed where expected is 0
    with pytest.raises(InputError):
        chi_square_gof([1, 2], [1.0, 1.0, 1.0])
    assert chi_square_gof([3, 0, 1], [1.0, 0.0, 1.0]).dof == 1  # the (0, 0) category is dropped
