"""Uncertainty and significance: cluster bootstrap CIs, paired sign-flip permutation test, paired t-test.

Symbols: ``N`` rows (items), ``G`` clusters (e.g. queries, prompts, sessions, databases), ``B`` bootstrap resamples,
``θ`` the statistic, ``θ*_b`` its value on resample ``b``, ``d_n = a_n - b_n`` the paired differences.

Rows that share a cluster are not independent (several judgments of one query, several responses to one prompt), so
the bootstrap resamples whole clusters: it draws ``G`` clusters with replacement and computes ``θ`` on the
concatenated rows of the drawn clusters. Without clusters every row is its own cluster (the ordinary bootstrap).

References:
    Efron, Tibshirani. "An Introduction to the Bootstrap", 1993 (percentile interval, ch. 13).
    Field, Welsh. "Bootstrapping clustered data", JRSS-B 2007.
    Phipson, Smyth. "Permutation p-values should never be zero", 2010 (the ``(1 + count)/(1 + B)`` estimate).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from siftkit.core.errors import InputError

_EXACT_MAX_N = 16  # 2^16 = 65,536 sign vectors: exact enumeration is cheap up to here
_TIE_EPS = 1e-12  # relative tolerance so flips equal to the observed statistic up to rounding count as extreme


@dataclass(frozen=True)
class BootstrapCI:
    """A percentile bootstrap confidence interval."""

    estimate: float
    """θ on the full data (not the bootstrap mean)."""
    low: float
    """The ``alpha/2`` percentile of ``θ*``."""
    high: float
    """The ``1 - alpha/2`` percentile of ``θ*``."""
    n_resamples: int
    """Resamples the percentiles are taken over (those where ``θ*`` was finite)."""


@dataclass(frozen=True)
class PermutationResult:
    """A paired sign-flip permutation test."""

    diff: float
    """Observed statistic of ``d = a - b`` (default: mean difference)."""
    p_value: float
    """Two-sided p-value."""
    n_resamples: int
    """Sign vectors used: ``2^N`` when exact, else the Monte Carlo draws."""
    exact: bool
    """True when all ``2^N`` sign vectors were enumerated."""


@dataclass(frozen=True)
class TTestResult:
    """A paired t-test."""

    diff: float
    """Mean difference ``mean(a - b)``."""
    statistic: float
    """t statistic."""
    p_value: float
    """Two-sided p-value."""
    df: int
    """Degrees of freedom, ``N - 1``."""


@dataclass(frozen=True)
class ChiSquareResult:
    """A chi-square goodness-of-fit test."""

    statistic: float
    """``χ² = Σ_c (O_c - E_c)² / E_c``."""
    p_value: float
    """``P(χ²_dof >= statistic)``."""
    dof: int
    """``C - 1 - ddof`` over the ``C`` categories kept."""
    n: int
    """Total observed count ``Σ O_c``."""


Data = Sequence[float] | np.ndarray | tuple[Any, ...] | pd.DataFrame

# ----------------------------------------------------------------------------------------------------------------
# method
# ----------------------------------------------------------------------------------------------------------------


def bootstrap_ci(data: Data, statistic: Callable[..., float] = np.mean, clusters: Sequence[Any] | str | None = None,
                 n_resamples: int = 2000, alpha: float = 0.05, seed: int = 0) -> BootstrapCI:
    """Percentile bootstrap CI of a statistic, resampling whole clusters when ``clusters`` is given.

    For ``b = 1..B``: draw ``G`` cluster ids uniformly with replacement, gather all rows of each drawn cluster
    (a cluster drawn twice contributes its rows twice), ``θ*_b = θ(rows)``. The interval is
    ``[q_{α/2}(θ*), q_{1-α/2}(θ*)]``; resamples with a non-finite ``θ*`` (e.g. kappa on a one-class resample) are
    dropped.

    Args:
        data: the rows, one of: a 1-D array (``θ(values)``); a tuple of equal-length arrays (``θ(*arrays)``, e.g.
            ``(y_true, y_pred)`` with ``statistic=cohen_kappa``); a DataFrame (``θ(frame)``).
        statistic: ``θ``; default the mean.
        clusters: a cluster label per row, or for a DataFrame the name of a column holding it; ``None`` resamples
            rows.
        n_resamples: ``B``.
        alpha: the interval covers ``1 - alpha``.
        seed: seed of the resampling generator.

    Returns:
        A :class:`BootstrapCI`.

    Example:
        >>> ci = bootstrap_ci([1.0, 2.0, 3.0, 4.0], clusters=["q1", "q1", "q2", "q2"], n_resamples=200)
        >>> ci.estimate, ci.low <= ci.estimate <= ci.high
        (2.5, True)
    """
    if n_resamples < 1:
        raise InputError("n_resamples must be >= 1", field="n_resamples")
    if not 0 < alpha < 1:
        raise InputError("alpha must be in (0, 1)", field="alpha")
    n_rows, take = _rows(data)
    theta = _apply(statistic, data, take, np.arange(n_rows))
    if isinstance(clusters, str):
        if not isinstance(data, pd.DataFrame):
            raise InputError("clusters as a column name needs a DataFrame", field="clusters")
        clusters = data[clusters].to_numpy()
    order, starts, sizes = _cluster_index(clusters, n_rows)
    rng = np.random.default_rng(seed)
    thetas = np.empty(n_resamples)  # (B,)
    for b in range(n_resamples):
        drawn = rng.integers(0, len(sizes), size=len(sizes))  # (G,) cluster ids
        thetas[b] = _apply(statistic, data, take, _gather(order, starts[drawn], sizes[drawn]))
    ok = thetas[np.isfinite(thetas)]
    if len(ok) == 0:
        return BootstrapCI(theta, float("nan"), float("nan"), 0)
    low, high = np.quantile(ok, [alpha / 2, 1 - alpha / 2])
    return BootstrapCI(theta, float(low), float(high), int(len(ok)))


def paired_permutation_test(a: Sequence[float], b: Sequence[float], n_resamples: int = 10000, seed: int = 0,
                            statistic: Callable[[np.ndarray], float] | None = None) -> PermutationResult:
    """Two-sided paired permutation test by sign flips of the differences.

    Under H0 (``a`` and ``b`` exchangeable within each pair) each ``d_n = a_n - b_n`` is as likely as ``-d_n``.
    With ``T(d)`` the statistic (default ``mean(d)``) and ``ε`` a random sign vector,
    ``p = P(|T(ε ⊙ d)| >= |T(d)|)``:

    * ``N <= 16``: exact, ``p = #{ε ∈ {±1}^N : |T(ε ⊙ d)| >= |T(d)|} / 2^N``;
    * otherwise Monte Carlo with ``B`` random ``ε``: ``p = (1 + count) / (1 + B)``.

    Args:
        a: scores of system A per item (e.g. per-query nDCG).
        b: scores of system B on the same items.
        n_resamples: ``B`` for the Monte Carlo case.
        seed: seed of the sign generator (Monte Carlo case).
        statistic: ``T`` on a 1-D array of (signed) differences; default the mean.

    Returns:
        A :class:`PermutationResult`; identical samples give ``p = 1``.

    Example:
        >>> paired_permutation_test([1.0, 2.0, 3.0], [0.0, 0.0, 0.0]).p_value  # 2 of 8 sign vectors reach |6|/3
        0.25
    """
    d = _diffs(a, b)  # (N,)
    n = len(d)
    t_obs = float(np.mean(d)) if statistic is None else float(statistic(d))
    exact = n <= _EXACT_MAX_N
    if exact:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1  # (2^N, N)
        signs = 1 - 2 * bits  # (2^N, N) in {+1, -1}; row 0 is the identity
    else:
        if n_resamples < 1:
            raise InputError("n_resamples must be >= 1", field="n_resamples")
        signs = np.random.default_rng(seed).choice([-1, 1], size=(n_resamples, n))  # (B, N)
    if statistic is None:
        t_perm = (signs * d).mean(axis=1)  # (R,)
    else:
        t_perm = np.array([statistic(s * d) for s in signs])  # (R,)
    extreme = int(np.sum(np.abs(t_perm) >= abs(t_obs) - _TIE_EPS * max(1.0, abs(t_obs))))
    p = extreme / len(signs) if exact else (1 + extreme) / (1 + len(signs))
    return PermutationResult(t_obs, float(min(p, 1.0)), int(len(signs)), exact)


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> TTestResult:
    """Two-sided paired t-test (scipy ``ttest_rel``).

    ``t = mean(d) / (sd(d) / sqrt(N))`` with ``sd`` the sample standard deviation (``N - 1``), ``df = N - 1``.

    Args:
        a: scores of system A per item.
        b: scores of system B on the same items.

    Returns:
        A :class:`TTestResult`; ``statistic`` and ``p_value`` are NaN when all differences are equal.
    """
    d = _diffs(a, b)
    if len(d) < 2:
        raise InputError("a paired t-test needs at least 2 pairs")
    if np.all(d == d[0]):
        return TTestResult(float(d[0]), float("nan"), float("nan"), len(d) - 1)
    res = stats.ttest_rel(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    return TTestResult(float(np.mean(d)), float(res.statistic), float(res.pvalue), len(d) - 1)


def chi_square_gof(observed: Mapping[str, float] | Sequence[float], expected: Mapping[str, float] | Sequence[float],
                   ddof: int = 0) -> ChiSquareResult:
    """Pearson chi-square goodness of fit of observed counts against an expected distribution (scipy ``chisquare``).

    ``E_c = n · p_c / Σ p`` with ``n = Σ O_c`` (so ``expected`` may be shares, weights or counts),
    ``χ² = Σ_c (O_c - E_c)² / E_c``, ``dof = C - 1 - ddof``.

    Categories with ``p_c = 0`` and ``O_c = 0`` are dropped; ``p_c = 0`` with ``O_c > 0`` is an error (the
    statistic would be infinite: the observation is impossible under the reference).

    Args:
        observed: counts ``O_c``, as ``{category: count}`` or an array.
        expected: the reference ``p_c``, as ``{category: weight}`` (every observed category must be a key; keys absent
            from ``observed`` count ``O_c = 0``) or an array of the same length as ``observed``.
        ddof: parameters estimated from the data (lowers ``dof``).

    Returns:
        A :class:`ChiSquareResult`.

    Example:
        >>> r = chi_square_gof([10, 30], [0.5, 0.5])  # E = (20, 20): χ² = 100/20 + 100/20
        >>> r.statistic, r.dof
        (10.0, 1)
    """
    if isinstance(expected, Mapping):
        if not isinstance(observed, Mapping):
            raise InputError("expected is a mapping, so observed must be a {category: count} mapping too",
                             field="observed")
        unknown = sorted(set(observed) - set(expected))
        if unknown:
            raise InputError(f"observed categories missing from expected: {unknown[:5]}", field="expected")
        keys = list(expected)
        o = np.array([float(observed.get(c, 0.0)) for c in keys])  # (C,)
        p = np.array([float(expected[c]) for c in keys])  # (C,)
    else:
        o = np.asarray(list(observed.values()) if isinstance(observed, Mapping) else observed, dtype=float)
        p = np.asarray(expected, dtype=float)
        if o.shape != p.shape or o.ndim != 1:
            raise InputError(f"observed and expected need equal 1-D shapes, got {o.shape} and {p.shape}")
    if np.any(o < 0) or np.any(p < 0) or not np.all(np.isfinite(o)) or not np.all(np.isfinite(p)):
        raise InputError("counts and expected weights must be finite and non-negative")
    if np.any((p == 0) & (o > 0)):
        raise InputError("a category with expected weight 0 was observed", field="expected")
    keep = p > 0
    o, p = o[keep], p[keep]
    n = o.sum()
    if n == 0 or len(o) - 1 - ddof < 1:
        raise InputError(f"need observations and at least {2 + ddof} categories with expected weight > 0")
    e = n * p / p.sum()  # (C,)
    res = stats.chisquare(o, e, ddof=ddof)
    return ChiSquareResult(float(res.statistic), float(res.pvalue), int(len(o) - 1 - ddof), int(round(n)))


# ----------------------------------------------------------------------------------------------------------------
# plumbing
# ----------------------------------------------------------------------------------------------------------------


def _rows(data: Data) -> tuple[int, str]:
    """Row count and how to index the data: ``"frame"``, ``"tuple"`` or ``"array"``."""
    if isinstance(data, pd.DataFrame):
        n, take = len(data), "frame"
    elif isinstance(data, tuple):
        lengths = {len(x) for x in data}
        if len(data) == 0 or len(lengths) != 1:
            raise InputError(f"a tuple of data needs equal-length arrays, got lengths {sorted(lengths)}")
        n, take = lengths.pop(), "tuple"
    else:
        n, take = len(np.asarray(data)), "array"
    if n == 0:
        raise InputError("need at least one row")
    return n, take


def _apply(statistic: Callable[..., float], data: Data, take: str, idx: np.ndarray) -> float:
    """θ on the rows ``idx`` of the data."""
    if take == "frame":
        return float(statistic(data.iloc[idx]))
    if take == "tuple":
        return float(statistic(*(np.asarray(x)[idx] for x in data)))
    return float(statistic(np.asarray(data)[idx]))


def _cluster_index(clusters: Sequence[Any] | np.ndarray | None, n_rows: int) -> tuple[np.ndarray, ...]:
    """Rows sorted by cluster (N,), each cluster's start in that order (G,) and its size (G,)."""
    if clusters is None:
        return np.arange(n_rows), np.arange(n_rows), np.ones(n_rows, dtype=int)
    labels = np.asarray(clusters)
    if labels.shape != (n_rows,):
        raise InputError(f"clusters has shape {labels.shape}, data has {n_rows} rows", field="clusters")
    _, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")  # (N,) rows grouped by cluster
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])  # (G,)
    return order, starts, sizes


def _gather(order: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Concatenated row ids of the clusters ``(starts, sizes)``, (Σ sizes,)."""
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)  # (Σ sizes,)
    return order[np.arange(sizes.sum()) + offsets]


def _diffs(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """``a - b`` as a finite 1-D float array."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or len(x) == 0:
        raise InputError(f"need two non-empty 1-D arrays of equal length, got shapes {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError("scores must be finite")
    return x - y
