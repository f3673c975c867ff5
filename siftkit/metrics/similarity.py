"""Retrieval over a similarity matrix: top-k accuracy and P@k with ties counted fairly, in both directions.

Symbols: ``S`` the ``(Nq, Nc)`` similarity matrix (row ``i`` a query, column ``j`` a candidate), ``R`` the
``(Nq, Nc)`` boolean relevance matrix (``R_ij`` true when candidate ``j`` is a gold answer for query ``i``), ``k``
the cutoff. For paired data (``x_i`` matches ``y_i``) ``R`` is the identity.

Ties [ours]: a candidate that ties with a gold candidate is not ranked below it. A ranker that scores ``m`` candidates
equally has no order among them, so every order is equally likely, and each metric is its expected value over those
orders (no random draw, so the value is exact and reproducible). With a group of ``m`` tied candidates of which ``r``
are gold, ``a`` candidates strictly above the group and ``s = clip(k - a, 0, m)`` slots of the top ``k`` left for it:

* expected gold in the top ``k`` from the group: ``r · s / m``;
* probability that no gold of the group reaches the top ``k``: ``C(m - r, s) / C(m, s)``.

So constant embeddings (every score equal, one gold of ``N``) give top-k accuracy ``k / N``, not 1 (which a
"gold ranks above every strictly higher score" rule would give) and not 0 (which the all-ties-above-gold rule gives).

References:
    Radford et al. "Learning Transferable Visual Models From Natural Language Supervision" (CLIP), 2021: image->text
    and text->image recall@k over a similarity matrix. https://arxiv.org/abs/2103.00020
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb

import numpy as np

from siftkit.core.errors import InputError

# ----------------------------------------------------------------------------------------------------------------
# method
# ----------------------------------------------------------------------------------------------------------------


def top_k_accuracy(sim: np.ndarray, gold: np.ndarray | Sequence[int] | None = None, k: int = 1) -> np.ndarray:
    """Per-query probability that a gold candidate is in the top ``k``, ties resolved in expectation.

    ``acc_i = 1 - Π_groups P(no gold of the group in the top k)``: 1 if a gold candidate lies strictly inside the top
    ``k``, ``1 - C(m - r, s)/C(m, s)`` when gold only sits in the tie group that straddles the cutoff.

    Args:
        sim: ``S``, shape ``(Nq, Nc)``.
        gold: ``None`` for the diagonal (paired data, needs ``Nq <= Nc``), a gold column index per query ``(Nq,)``,
            or a boolean relevance matrix ``(Nq, Nc)``.
        k: cutoff, ``>= 1``.

    Returns:
        ``(Nq,)`` floats in [0, 1]; the mean is the top-k accuracy (Recall@k for one gold per query).

    Example:
        >>> top_k_accuracy(np.ones((4, 4)), k=1)  # constant embeddings: k/N each
        array([0.25, 0.25, 0.25, 0.25])
        >>> top_k_accuracy(np.array([[0.9, 0.9, 0.1]]), gold=[0], k=1)  # tie with one other: 1/2
        array([0.5])
    """
    S, R = _check(sim, gold, k)
    return np.array([1.0 - _p_miss(S[i], R[i], k) for i in range(len(S))])


def precision_at_k(sim: np.ndarray, gold: np.ndarray | Sequence[int] | None = None, k: int = 1) -> np.ndarray:
    """Per-query P@k: expected number of gold candidates in the top ``k``, over ``k``; ties resolved in expectation.

    ``P@k_i = (1/k) Σ_groups r · s / m`` (a group wholly inside the top ``k`` has ``s = m``).

    Args:
        sim: ``S``, shape ``(Nq, Nc)``.
        gold: as in :func:`top_k_accuracy`.
        k: cutoff, ``>= 1``; when ``k > Nc`` the top ``k`` holds all ``Nc`` candidates and P@k still divides by ``k``.

    Returns:
        ``(Nq,)`` floats in [0, 1].

    Example:
        >>> precision_at_k(np.array([[0.9, 0.5, 0.5, 0.1]]), gold=np.array([[True, True, False, False]]), k=2)
        array([0.75])
    """
    S, R = _check(sim, gold, k)
    return np.array([_expected_hits(S[i], R[i], k) / k for i in range(len(S))])


def retrieval_report(sim: np.ndarray, gold: np.ndarray | Sequence[int] | None = None,
                     ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Mean top-k accuracy in both directions: x->y over the rows of ``S``, y->x over its columns (``S^T``, ``R^T``).

    Args:
        sim: ``S``, shape ``(Nx, Ny)``, ``S_ij = sim(x_i, y_j)``.
        gold: as in :func:`top_k_accuracy` (for x->y); y->x uses the transposed relevance matrix.
        ks: cutoffs; a cutoff above the number of candidates in a direction is still reported (value 1 when every
            query has a gold).

    Returns:
        ``{"x2y@k": ..., "y2x@k": ...}`` for each ``k``; a y with no gold x is left out of y->x.

    Example:
        >>> retrieval_report(np.array([[1.0, 0.0], [1.0, 0.5]]), ks=[1])  # x1's best is y0; y0 ties x0, x1
        {'x2y@1': 0.5, 'y2x@1': 0.75}
    """
    S, R = _check(sim, gold, 1)
    has_gold = R.any(axis=0)  # (Ny,) y's with a gold x
    out: dict[str, float] = {}
    for k in ks:
        out[f"x2y@{k}"] = float(np.mean(top_k_accuracy(S, R, k)))
        out[f"y2x@{k}"] = float(np.mean(top_k_accuracy(S.T[has_gold], R.T[has_gold], k)))
    return out


# ----------------------------------------------------------------------------------------------------------------
# plumbing
# ----------------------------------------------------------------------------------------------------------------


def _groups(s: np.ndarray, r: np.ndarray, k: int):
    """Tie groups of one row, best first: yields ``(m, r_in_group, slots)`` with ``slots`` in the top ``k``."""
    values, inverse = np.unique(-s, return_inverse=True)  # ascending -s = descending s
    sizes = np.bincount(inverse, minlength=len(values))  # (G,)
    golds = np.bincount(inverse, weights=r.astype(float), minlength=len(values)).astype(int)  # (G,)
    above = 0
    for m, g in zip(sizes, golds):
        yield int(m), int(g), int(min(max(k - above, 0), m))
        above += m


def _p_miss(s: np.ndarray, r: np.ndarray, k: int) -> float:
    """Probability that no gold candidate reaches the top ``k``."""
    p = 1.0
    for m, g, slots in _groups(s, r, k):
        if g:
            p *= comb(m - g, slots) / comb(m, slots)
    return p


def _expected_hits(s: np.ndarray, r: np.ndarray, k: int) -> float:
    return sum(g * slots / m for m, g, slots in _groups(s, r, k))


def _check(sim, gold, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``S`` as a finite float matrix and ``R`` as a boolean matrix of the same shape."""
    S = np.asarray(sim, dtype=float)
    if S.ndim != 2 or S.size == 0:
        raise InputError(f"the similarity matrix must be 2-D and non-empty, got shape {S.shape}", field="sim")
    if not np.all(np.isfinite(S)):
        raise InputError("the similarity matrix has NaN or infinite entries", field="sim")
    if int(k) != k or k < 1:
        raise InputError(f"k must be an integer >= 1, got {k}", field="k")
    nq, nc = S.shape
    if gold is None:
        if nq > nc:
            raise InputError(f"diagonal gold needs Nq <= Nc, got {S.shape}", field="gold")
        return S, np.eye(nq, nc, dtype=bool)
    g = np.asarray(gold)
    if g.dtype == bool:
        if g.shape != S.shape:
            raise InputError(f"the relevance matrix has shape {g.shape}, the similarity matrix {S.shape}",
                             field="gold")
        return S, g
    if g.shape != (nq,) or not np.issubdtype(g.dtype, np.integer) or g.min() < 0 or g.max() >= nc:
        raise InputError(f"gold must be {nq} column indices in [0, {nc}) or a boolean matrix", field="gold")
    R = np.zeros(S.shape, dtype=bool)
    R[np.arange(nq), g] = True
    return S, R
