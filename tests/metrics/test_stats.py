"""Cluster bootstrap, paired permutation test and paired t-test."""

import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from siftkit.core.errors import InputError
from siftkit.metrics.agreement import cohen_kappa
from siftkit.metrics.stats import BootstrapCI, bootstrap_ci, paired_permutation_test, paired_t_test

# ---------------------------------------------------------------------------------------------------------------
# bootstrap
# ---------------------------------------------------------------------------------------------------------------


def test_resamples_are_unions_of_whole_clusters():
    sizes = {"a": 1, "b": 2, "c": 3, "d": 4}
    labels = np.array([c for c, s in sizes.items() for _ in range(s)])[::-1]  # rows of a cluster adjacent, any order
    rows = np.arange(len(labels))
    seen = []

    def record(x):
        seen.append(x.copy())
        return float(x.mean())

    bootstrap_ci(rows, record, clusters=labels, n_resamples=50, seed=1)
    assert len(seen) == 1 + 50 and sorted(seen[0]) == rows.tolist()  # first call: the full data
    for sample in seen[1:]:
        counts = Counter(sample.tolist())
        drawn = 0
        for c in sizes:
            multiplicity = {counts.get(int(r), 0) for r in rows[labels == c]}
            assert len(multiplicity) == 1  # every row of the cluster appears equally often
            drawn += multiplicity.pop()
        assert drawn == len(sizes)  # G clusters drawn with replacement


def test_constant_clusters_equal_bootstrap_of_cluster_values_and_widen_the_ci():
    rng = np.random.default_rng(0)
    cluster_values = rng.normal(size=8)  # (G,)
    values = np.repeat(cluster_values, 25)  # (G * 25,) every cluster constant
    labels = np.repeat(np.arange(8), 25)
    by_cluster = bootstrap_ci(values, clusters=labels, n_resamples=500, seed=3)
    on_cluster_values = bootstrap_ci(cluster_values, n_resamples=500, seed=3)
    by_row = bootstrap_ci(values, n_resamples=500, seed=3)
    assert (by_cluster.low, by_cluster.high) == pytest.approx((on_cluster_values.low, on_cluster_values.high))
    assert by_cluster.estimate == by_row.estimate == pytest.approx(cluster_values.mean())
    assert (by_cluster.high - by_cluster.low) > 3 * (by_row.high - by_row.low)


def test_ci_contains_estimate_and_is_deterministic():
    values = np.random.default_rng(1).exponential(size=60)
    ci = bootstrap_ci(values, np.median, n_resamples=300, seed=7)
    assert isinstance(ci, BootstrapCI) and ci.n_resamples == 300
    assert ci.low <= ci.estimate <= ci.high and ci.estimate == np.median(values)
    assert bootstrap_ci(values, np.median, n_resamples=300, seed=7) == ci
    assert bootstrap_ci(values, np.median, n_resamples=300, seed=8) != ci
    narrow = bootstrap_ci(values, np.median, n_resamples=300, alpha=0.5, seed=7)
    assert ci.low <= narrow.low <= narrow.high <= ci.high


def test_two_array_statistic_and_frame():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 120)
    y_hat = np.where(rng.random(120) < 0.7, y, rng.integers(0, 3, 120))
    prompts = np.repeat(np.arange(30), 4)
    ci = bootstrap_ci((y, y_hat), cohen_kappa, clusters=prompts, n_resamples=200)
    assert ci.estimate == pytest.approx(cohen_kappa(y, y_hat)) and ci.low <= ci.estimate <= ci.high

    frame = pd.DataFrame({"y": y, "y_hat": y_hat, "prompt": prompts})
    ci_frame = bootstrap_ci(frame, lambda f: cohen_kappa(f["y"], f["y_hat"]), clusters="prompt", n_resamples=200)
    assert ci_frame == ci


def test_bootstrap_bad_input():
    with pytest.raises(InputError):
        bootstrap_ci([1.0, 2.0], clusters=["a"])
    with pytest.raises(InputError):
        bootstrap_ci(([1, 2], [1]), cohen_kappa)
    with pytest.raises(InputError):
        bootstrap_ci([1.0, 2.0], clusters="q")
    with pytest.raises(InputError):
        bootstrap_ci([1.0], alpha=1.5)


def test_non_finite_resamples_are_dropped():
    ci = bootstrap_ci(([0, 0, 1, 1], [0, 0, 1, 1]), cohen_kappa, n_resamples=100, seed=0)
    assert ci.estimate == 1 and 0 < ci.n_resamples < 100  # one-class resamples give NaN kappa


# ---------------------------------------------------------------------------------------------------------------
# permutation and t-test
# ---------------------------------------------------------------------------------------------------------------


def test_permutation_exact_hand_cases():
    # d = (1, 2, 3): Σ ε d over the 8 sign vectors is ±6, ±4, ±2, 0, 0; |·| >= 6 for 2 of 8
    r = paired_permutation_test([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert r.exact and r.n_resamples == 2**3 and r.diff == pytest.approx(6 / 3) and r.p_value == 2 / 8
    # d = (1, -1, 2): sums 2, 0, 4, -2, 2, -4, 0, -2; |·| >= 2 for 6 of 8
    assert paired_permutation_test([1, 0, 2], [0, 1, 0]).p_value == pytest.approx(6 / 8)


def test_permutation_identical_samples_give_one():
    a = np.random.default_rng(0).random(10)
    assert paired_permutation_test(a, a).p_value == 1
    b = np.random.default_rng(0).random(40)
    r = paired_permutation_test(b, b, n_resamples=500)
    assert not r.exact and r.p_value == 1 and r.diff == 0


def test_permutation_clear_shift_gives_small_p():
    rng = np.random.default_rng(0)
    b = rng.random(12)
    assert paired_permutation_test(b + 1, b).p_value == 2 / 2**12  # only the all-+ and all-- vectors
    b = rng.random(50)
    a = b + 0.5 + 0.1 * rng.normal(size=50)
    r = paired_permutation_test(a, b, n_resamples=2000, seed=0)
    assert r.p_value == pytest.approx(1 / (1 + 2000)) and r.diff == pytest.approx(np.mean(a - b))


def test_permutation_seed_and_custom_statistic():
    rng = np.random.default_rng(4)
    a, b = rng.random(30), rng.random(30)
    r1 = paired_permutation_test(a, b, n_resamples=300, seed=1)
    assert r1 == paired_permutation_test(a, b, n_resamples=300, seed=1)
    assert 0 < r1.p_value <= 1
    med = paired_permutation_test([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], statistic=np.median)
    # medians of ε d over the 8 sign vectors: 2, 2, 1, 1, -1, -1, -2, -2 -> |·| >= 2 for 4 of 8
    assert med.diff == 2 and med.p_value == 4 / 8


def test_paired_t_test():
    r = paired_t_test([2.0, 3.0, 4.0], [1.0, 1.0, 1.0])  # d = (1, 2, 3): mean 2, sd 1
    t = 2 / (1 / math.sqrt(3))
    assert r.diff == 2 and r.df == 2 and r.statistic == pytest.approx(t)
    assert r.p_value == pytest.approx(2 * stats.t.sf(t, 2))
    rng = np.random.default_rng(5)
    a, b = rng.random(20), rng.random(20)
    ref = stats.ttest_rel(a, b)
    r = paired_t_test(a, b)
    assert (r.statistic, r.p_value) == pytest.approx((ref.statistic, ref.pvalue))
    assert math.isnan(paired_t_test([1, 2], [0, 1]).p_value)
    with pytest.raises(InputError):
        paired_t_test([1.0, 2.0], [1.0])
