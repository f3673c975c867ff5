"""Concentration of recommendations over products: Gini (product-bias spec Eq. 1), HHI, Shannon entropy.

Symbols: ``x_p`` the count (or allocated amount) of product ``p``, ``x_(i)`` the ``i``-th smallest, ``n`` the number
of products in the support, ``s_p = x_p / Σ x`` the share of ``p``.

Support (spec §2 "Support"): which products make up the ``n``.

* ``"own"``: only the products with ``x_p > 0`` (the paper's default per the replication). A model that always
  names one product gets ``n = 1`` and ``G = 0``; report ``n`` (:func:`support_size`) next to ``G``.
* ``"universe"``: a fixed list of products (a product universe, or the union of all models' products), zero-filled.
  For a plain array, ``"universe"`` keeps every entry (zeros included) as given.

References:
    Zhi et al. "Exposing Product Bias in LLM Investment Recommendation", 2025. https://arxiv.org/abs/2503.08750
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np

from siftkit.core.errors import InputError

Counts = Mapping[str, float] | Sequence[float] | np.ndarray
"""``{product: count}`` or a plain array of counts."""
Support = Literal["own", "universe"]

# ----------------------------------------------------------------------------------------------------------------
# method
# ----------------------------------------------------------------------------------------------------------------


def gini(counts: Counts, support: Support | None = None, universe: Iterable[str] | None = None) -> float:
    """Gini index of the counts, exactly as the product-bias spec Eq. 1.

    ``G = Σ_{i=1..n} (2i - n - 1) x_(i) / (n Σ_i x_i)``, ``x`` sorted ascending.

    ``G = 0`` for equal counts; ``G = (n - 1)/n`` when one product of ``n`` takes all the mass.

    Args:
        counts: ``{product: count}`` or an array of non-negative counts.
        support: ``"own"`` or ``"universe"``; default ``"universe"`` when ``universe`` is given, else ``"own"``.
        universe: the products to zero-fill to (required for ``"universe"`` with a mapping).

    Returns:
        G in ``[0, (n - 1)/n]``; NaN when the support is empty or all counts are 0.

    Example:
        >>> gini({"AAPL": 10, "MSFT": 0}, universe=["AAPL", "MSFT", "NVDA", "AMZN"])  # one of 4 takes all: 3/4
        0.75
        >>> gini({"AAPL": 10, "MSFT": 0})  # own support: n = 1
        0.0
    """
    x = np.sort(_support_vector(counts, support, universe))  # (n,) ascending
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return float("nan")
    i = np.arange(1, n + 1)  # (n,) 1-based ranks
    return float(np.sum((2 * i - n - 1) * x) / (n * total))


def hhi(counts: Counts) -> float:
    """Herfindahl-Hirschman index: ``HHI = Σ_p s_p^2`` (on shares in [0, 1], not the 0-10,000 scale).

    Zero counts add nothing, so HHI does not depend on the support. ``1/n <= HHI <= 1``.

    Args:
        counts: ``{product: count}`` or an array of non-negative counts.

    Returns:
        HHI; NaN when all counts are 0.

    Example:
        >>> hhi({"AAPL": 3, "MSFT": 1})  # (3/4)^2 + (1/4)^2
        0.625
    """
    s = _shares(_support_vector(counts, "own", None))
    return float(np.sum(s**2)) if s is not None else float("nan")


def entropy(counts: Counts, normalise: bool = False, support: Support | None = None,
            universe: Iterable[str] | None = None) -> float:
    """Shannon entropy of the shares, in nats: ``H = -Σ_p s_p ln s_p`` (``0 ln 0 = 0``).

    Normalised: ``H / ln n`` in [0, 1], where ``n`` depends on the support (see the module docstring); the support
    does not change ``H`` itself.

    Args:
        counts: ``{product: count}`` or an array of non-negative counts.
        normalise: divide by ``ln n``.
        support: ``"own"`` or ``"universe"``; default ``"universe"`` when ``universe`` is given, else ``"own"``.
        universe: the products to zero-fill to.

    Returns:
        H (nats) or H / ln n; NaN when all counts are 0, or when normalising with ``n <= 1``.

    Example:
        >>> round(entropy([1, 1, 1, 1]), 6) == round(float(np.log(4)), 6)
        True
    """
    x = _support_vector(counts, support, universe)
    s = _shares(x)
    if s is None:
        return float("nan")
    nz = s[s > 0]
    h = float(-np.sum(nz * np.log(nz)))
    if not normalise:
        return h
    return h / float(np.log(len(x))) if len(x) > 1 else float("nan")


def top_k_share(counts: Counts, k: int = 1) -> float:
    """Share of the mass held by the ``k`` largest products: ``Σ_{i > n-k} x_(i) / Σ x``.

    Args:
        counts: ``{product: count}`` or an array of non-negative counts.
        k: number of top products (spec: top-1 and top-5).

    Returns:
        The share in [0, 1]; NaN when all counts are 0.
    """
    s = _shares(_support_vector(counts, "own", None))
    return float(np.sort(s)[::-1][:k].sum()) if s is not None else float("nan")


def support_size(counts: Counts, support: Support | None = None, universe: Iterable[str] | None = None) -> int:
    """The ``n`` that :func:`gini` and normalised :func:`entropy` use for this support; report it next to G."""
    return len(_support_vector(counts, support, universe))


def concentration_report(counts: Counts, universe: Iterable[str] | None = None) -> dict[str, float]:
    """Gini, n, HHI, entropy and top-1/top-5 shares in one dict, on own support and, if given, on ``universe``.

    Args:
        counts: ``{product: count}`` or an array of non-negative counts.
        universe: optional fixed/union universe; adds ``gini_universe``, ``n_universe`` and
            ``entropy_norm_universe``.

    Returns:
        ``{measure: value}``.
    """
    report = {
        "gini_own": gini(counts, "own"),
        "n_own": float(support_size(counts, "own")),
        "hhi": hhi(counts),
        "entropy": entropy(counts),
        "entropy_norm_own": entropy(counts, True, "own"),
        "top1_share": top_k_share(counts, 1),
        "top5_share": top_k_share(counts, 5),
    }
    if universe is not None:
        universe = list(universe)
        report["gini_universe"] = gini(counts, "universe", universe)
        report["n_universe"] = float(support_size(counts, "universe", universe))
        report["entropy_norm_universe"] = entropy(counts, True, "universe", universe)
    return report


# ----------------------------------------------------------------------------------------------------------------
# plumbing
# ----------------------------------------------------------------------------------------------------------------


def _support_vector(counts: Counts, support: Support | None, universe: Iterable[str] | None) -> np.ndarray:
    """The count vector over the chosen support, (n,) float; checks for negatives and mass outside the universe."""
    if support is None:
        support = "universe" if universe is not None else "own"
    if support not in ("own", "universe"):
        raise InputError(f'support must be "own" or "universe", not {support!r}', field="support")
    if support == "own" and universe is not None:
        raise InputError('support "own" ignores the universe; drop universe or use support="universe"',
                         field="support")
    if isinstance(counts, Mapping):
        if support == "universe":
            if universe is None:
                raise InputError('support "universe" with a mapping needs a universe', field="universe")
            universe = list(dict.fromkeys(universe))  # keep order, drop duplicates
            members = set(universe)
            outside = sorted(str(p) for p, v in counts.items() if v > 0 and p not in members)
            if outside:
                raise InputError(f"products with counts outside the universe: {outside[:5]}", field="universe")
            x = np.array([counts.get(p, 0) for p in universe], dtype=float)
        else:
            x = np.array(list(counts.values()), dtype=float)
    else:
        if universe is not None:
            raise InputError("a universe needs counts as a {product: count} mapping", field="universe")
        x = np.asarray(counts, dtype=float).ravel()
    if np.any(x < 0) or not np.all(np.isfinite(x)):
        raise InputError("counts must be finite and non-negative", field="counts")
    return x[x > 0] if support == "own" else x


def _shares(x: np.ndarray) -> np.ndarray | None:
    """``x / Σ x``, or None when the total is 0."""
    total = x.sum()
    return x / total if total > 0 else None
