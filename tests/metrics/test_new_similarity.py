"""Top-k accuracy, P@k and two-way retrieval over a similarity matrix, ties resolved in expectation."""

import doctest
import itertools

import numpy as np
import pytest

import siftkit.metrics.similarity
from siftkit.core.errors import InputError
from siftkit.metrics import precision_at_k, retrieval_report, top_k_accuracy


def _brute(s, r, k):
    """Reference: average over every order of the candidates consistent with the scores (all tie-breaks)."""
    hits, precs, n = 0.0, 0.0, 0
    for perm in itertools.permutations(range(len(s))):
        order = sorted(perm, key=lambda j: -s[j])  # stable sort: ties broken by the permutation
        top = order[:k]
        hits += float(any(r[j] for j in top))
        precs += sum(r[j] for j in top) / k
        n += 1
    return hits / n, precs / n


def test_constant_embeddings_give_k_over_n():
    sim = np.zeros((10, 10))
    for k in (1, 3, 10):
        assert np.allclose(top_k_accuracy(sim, k=k), k / 10)
        assert np.allclose(precision_at_k(sim, k=k), (k / 10) / k)


def test_perfect_and_worst():
    sim = np.eye(4)
    assert np.all(top_k_accuracy(sim, k=1) == 1.0)
    assert np.all(top_k_accuracy(-np.eye(4), k=3) == 0.0)  # gold is strictly last of 4
    assert np.all(top_k_accuracy(-np.eye(4), k=4) == 1.0)


def test_hand_computed_ties():
    # gold (col 0) ties with 2 others, 1 candidate strictly above: rank in {2, 3, 4} uniformly
    sim = np.array([[0.5, 0.9, 0.5, 0.5, 0.1]])
    assert top_k_accuracy(sim, gold=[0], k=1)[0] == 0.0
    assert top_k_accuracy(sim, gold=[0], k=2)[0] == pytest.approx(1 / 3)
    assert top_k_accuracy(sim, gold=[0], k=3)[0] == pytest.approx(2 / 3)
    assert top_k_accuracy(sim, gold=[0], k=4)[0] == 1.0
    # two golds in a 4-way tie, one slot left: P(hit) = 1 - C(2,1)/C(4,1) = 1/2; E[gold in top 2] = 1 + 2 * 1/4
    sim = np.array([[0.9, 0.5, 0.5, 0.5, 0.5]])
    rel = np.array([[True, True, True, False, False]])
    assert top_k_accuracy(sim, gold=rel, k=2)[0] == 1.0  # col 0 is gold and strictly first
    rel = np.array([[False, True, True, False, False]])
    assert top_k_accuracy(sim, gold=rel, k=2)[0] == pytest.approx(1 - 2 / 4)
    assert precision_at_k(sim, gold=rel, k=2)[0] == pytest.approx((2 * 1 / 4) / 2)
    assert top_k_accuracy(sim, gold=rel, k=3)[0] == pytest.approx(1 - 1 / 6)  # C(2,2)/C(4,2) = 1/6


@pytest.mark.parametrize("seed", range(5))
def test_matches_all_tie_breaks(seed):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 3, size=6).astype(float)  # many ties
    r = rng.random(6) < 0.4
    r[0] = True
    for k in (1, 2, 4):
        hit, prec = _brute(s, r, k)
        assert top_k_accuracy(s[None], gold=r[None], k=k)[0] == pytest.approx(hit)
        assert precision_at_k(s[None], gold=r[None], k=k)[0] == pytest.approx(prec)


def test_both_directions():
    # x0 -> y0 (gold), x1 -> y0 wrongly; column-wise y0 ties x0 and x1, y1 picks x1
    sim = np.array([[1.0, 0.0], [1.0, 0.5]])
    assert retrieval_report(sim, ks=[1, 2]) == {"x2y@1": 0.5, "y2x@1": 0.75, "x2y@2": 1.0, "y2x@2": 1.0}
    # rectangular: 2 queries, 3 candidates; y2 has no gold x and is left out of y->x
    sim = np.array([[0.2, 0.9, 0.1], [0.3, 0.1, 0.8]])
    out = retrieval_report(sim, gold=[1, 2], ks=[1])
    assert out == {"x2y@1": 1.0, "y2x@1": 1.0}


def test_bad_input():
    with pytest.raises(InputError):
        top_k_accuracy(np.ones((3, 2)))  # diagonal needs Nq <= Nc
    with pytest.raises(InputError):
        top_k_accuracy(np.ones((2, 2)), k=0)
    with pytest.raises(InputError):
        top_k_accuracy(np.array([[np.nan, 1.0]]), gold=[0])
    with pytest.raises(InputError):
        top_k_accuracy(np.ones((2, 2)), gold=[0, 5])


def test_docstring_examples():
    result = doctest.testmod(siftkit.metrics.similarity, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
