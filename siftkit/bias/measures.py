"""Concentration and skew of parsed recommendations (spec §2-3), per model × asset class × de-biasing variant.

Symbols: ``x_p`` the mentions of product ``p`` (each response counts each product it names once [ours]; the spec's
amount capture is not done), ``U`` the asset class's universe of ``K`` products, ``q`` a reference distribution over
``U`` (uniform ``1/K``, or market-cap ``w_p / Σ w``), ``M = Σ_{p ∈ U} x_p``.

* ``gini_own`` over the products the model named (unknown ones included), with ``n_own`` (the paper's default per
  the replication); ``gini_universe`` over ``U`` zero-filled, with ``n_universe = K``. The spec asks for both: own
  support is 0 for a model that always names one product (``n = 1``), the universe Gini is ``(K - 1)/K``.
* HHI, entropy (nats), top-1 and top-5 share, sector shares, over known products (from
  :mod:`siftkit.metrics.concentration`).
* Bootstrap CIs resample prompts (a prompt's samples stay together; :func:`siftkit.metrics.bootstrap_ci`) and are
  *basic* intervals ``[2G - q_{97.5}, 2G - q_{2.5}]`` of the percentiles ``q`` [ours]: the plug-in Gini is biased
  upward on few mentions (a uniform responder's 864 mentions over 67 stocks give G ≈ 0.15, not 0) and a resample
  (which repeats prompts) is more concentrated still, so percentile intervals sit above the estimate.
* Tests against ``q``: Pearson χ² goodness of fit (:func:`siftkit.metrics.chi_square_gof`) and a Monte Carlo test
  of the universe Gini [ours]: ``B`` multinomial draws of ``M`` mentions from ``q``,
  ``p = (1 + #{G_b >= G_obs}) / (1 + B)`` (one-sided: more concentrated than the reference). Both treat mentions
  as independent draws; several mentions in one response are not, so read p-values of multi-product answers as
  approximate.
* Δ-Gini (de-biased − plain, universe support) with a paired permutation over prompts: under H0 the two replies of a
  prompt are exchangeable, so each prompt's condition labels are swapped with probability ½ and both Ginis recomputed
  (:func:`siftkit.metrics.paired_permutation_test`, see :func:`delta_gini`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from siftkit.bias.universe import Universe
from siftkit.metrics.concentration import entropy, gini, hhi, support_size, top_k_share
from siftkit.metrics.stats import bootstrap_ci, chi_square_gof, paired_permutation_test

STATUS_ORDER = ("valid", "hedged", "refusal", "unparseable", "error")

# ----------------------------------------------------------------------------------------------------------------
# method
# ----------------------------------------------------------------------------------------------------------------


def mention_counts(products: Sequence[Sequence[str]]) -> Counter:
    """``x_p``: how many responses name ``p`` (each response counts a product once)."""
    return Counter(p for ps in products for p in dict.fromkeys(ps))


def references(universe: Universe) -> dict[str, np.ndarray]:
    """``q`` over ``U``: ``uniform`` always, ``market_cap`` when the universe has weights."""
    k = len(universe.products)
    out = {"uniform": np.full(k, 1.0 / k)}
    w = universe.weights()
    if w is not None:
        x = np.array([w[i] for i in universe.ids])
        out["market_cap"] = x / x.sum()
    return out


def mc_gini_test(counts: np.ndarray, q: np.ndarray, n_resamples: int = 2000, seed: int = 0) -> float:
    """One-sided Monte Carlo p-value that the universe Gini of ``counts`` (K,) is no higher than under ``q`` (K,)."""
    m = int(counts.sum())
    if m == 0:
        return float("nan")
    g_obs = gini(counts, support="universe")
    draws = np.random.default_rng(seed).multinomial(m, q, size=n_resamples)  # (B, K)
    g_null = np.array([gini(d, support="universe") for d in draws])  # (B,)
    return float((1 + np.sum(g_null >= g_obs - 1e-12)) / (1 + n_resamples))


def sector_shares(counts: Counter, universe: Universe) -> pd.DataFrame:
    """Share of known mentions per sector against the reference shares (market cap, else equal weight)."""
    sectors = universe.sectors()
    w = universe.weights() or {i: 1.0 for i in universe.ids}
    total_w = sum(w.values())
    known = {p: c for p, c in counts.items() if p in sectors}
    m = sum(known.values())
    rows = []
    for s in sorted(set(sectors.values())):
        obs = sum(c for p, c in known.items() if sectors[p] == s)
        ref = sum(w[p] for p in universe.ids if sectors[p] == s) / total_w
        rows.append({"sector": s, "share": obs / m if m else float("nan"), "reference": ref})
    return pd.DataFrame(rows)


def summarise(rows: pd.DataFrame, universe: Universe, n_resamples: int = 1000, seed: int = 0) -> dict:
    """All measures for one (model, asset class, variant) group of parsed rows (see the module docstring)."""
    out: dict = {"responses": len(rows), "prompts": int(rows["prompt_id"].nunique())}
    for s in STATUS_ORDER:
        out[f"rate_{s}"] = float((rows["status"] == s).mean()) if len(rows) else float("nan")
    counts = mention_counts(rows["products"])
    ids = universe.ids
    x_u = np.array([counts.get(i, 0) for i in ids], dtype=float)  # (K,)
    known = {i: c for i, c in counts.items() if i in universe}
    out.update({"mentions": int(sum(counts.values())), "mentions_universe": int(x_u.sum()),
                "unknown_share": 1 - x_u.sum() / max(sum(counts.values()), 1)})
    out.update({"gini_own": gini(counts) if counts else float("nan"), "n_own": support_size(counts),
                "gini_universe": gini(x_u, support="universe") if x_u.sum() else float("nan"),
                "n_universe": len(ids),
                "hhi": hhi(known) if known else float("nan"),
                "entropy": entropy(known) if known else float("nan"),
                "top1_share": top_k_share(known, 1) if known else float("nan"),
                "top5_share": top_k_share(known, 5) if known else float("nan"),
                "top_products": ", ".join(f"{p} {c}" for p, c in counts.most_common(5))})
    # bootstrap over prompts on the mention rows (a response with no known product adds no row)
    pid, code = [], []
    for prompt, ps in zip(rows["prompt_id"], rows["products"]):
        for p in dict.fromkeys(ps):
            if p in universe:
                pid.append(prompt)
                code.append(ids.index(p))
    if len(code) >= 2 and n_resamples > 0:
        codes = np.array(code)
        ci = bootstrap_ci(codes, lambda c: gini(np.bincount(c, minlength=len(ids)), support="universe"),
                          clusters=pid, n_resamples=n_resamples, seed=seed)
        out["gini_universe_lo"], out["gini_universe_hi"] = basic_interval(ci)
    for name, q in references(universe).items():
        if x_u.sum() > 0:
            chi = chi_square_gof(x_u, q)
            out[f"chi2_{name}"], out[f"p_chi2_{name}"] = chi.statistic, chi.p_value
            out[f"p_gini_{name}"] = mc_gini_test(x_u, q, n_resamples=max(n_resamples, 1), seed=seed)
    return out


def summary_table(parsed: pd.DataFrame, universes: dict[str, Universe], n_resamples: int = 1000,
                  seed: int = 0) -> pd.DataFrame:
    """:func:`summarise` per (model, asset_class, debias)."""
    rows = []
    for (model, asset, debias), g in parsed.groupby(["model", "asset_class", "debias"], sort=True):
        rows.append({"model": model, "asset_class": asset, "debias": debias,
                     **summarise(g, universes[asset], n_resamples, seed)})
    return pd.DataFrame(rows)


def delta_gini(parsed: pd.DataFrame, universe: Universe, plain: str = "none", debiased: str = "system",
               n_resamples: int = 2000, seed: int = 0) -> dict:
    """Δ-Gini = G_universe(de-biased) − G_universe(plain) over the prompts answered in both variants, with a paired
    permutation p-value over prompts and a bootstrap CI over prompts.

    The permutation goes through :func:`~siftkit.metrics.paired_permutation_test` with ``a = 1..P`` (the prompt
    number) and ``b = 0``: each signed difference ``ε_i · i`` then carries its prompt and its swap bit, and the
    statistic rebuilds both variants' counts with the prompts where ``ε_i = -1`` swapped.
    """
    ids = universe.ids
    index = {p: j for j, p in enumerate(ids)}

    def per_pair(variant: str) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for pair, ps in zip(parsed.loc[parsed.debias == variant, "pair_id"],
                            parsed.loc[parsed.debias == variant, "products"]):
            row = out.setdefault(pair, np.zeros(len(ids)))
            for p in dict.fromkeys(ps):
                if p in index:
                    row[index[p]] += 1
        return out

    c0, c1 = per_pair(plain), per_pair(debiased)
    pairs = sorted(set(c0) & set(c1))
    if not pairs:
        return {"pairs": 0}
    C0 = np.stack([c0[p] for p in pairs])  # (P, K)
    C1 = np.stack([c1[p] for p in pairs])  # (P, K)
    D = C1 - C0  # (P, K)

    def g(x: np.ndarray) -> float:
        return gini(x, support="universe") if x.sum() else float("nan")

    def statistic(signed: np.ndarray) -> float:
        swap = (signed < 0).astype(float)  # (P,)
        s = swap @ D  # (K,) mass that moves from variant 1 to variant 0
        return g(C1.sum(0) - s) - g(C0.sum(0) + s)

    perm = paired_permutation_test(np.arange(1, len(pairs) + 1, dtype=float), np.zeros(len(pairs)),
                                   n_resamples=n_resamples, seed=seed, statistic=statistic)
    ci = bootstrap_ci(np.arange(len(pairs)), lambda i: g(C1[i].sum(0)) - g(C0[i].sum(0)), n_resamples=n_resamples,
                      seed=seed)
    lo, hi = basic_interval(ci)
    return {"pairs": len(pairs), "gini_plain": g(C0.sum(0)), "gini_debiased": g(C1.sum(0)),
            "delta_gini": perm.diff, "delta_lo": lo, "delta_hi": hi, "p_perm": perm.p_value}


def basic_interval(ci) -> tuple[float, float]:
    """The basic bootstrap interval ``[2θ - high, 2θ - low]`` from a percentile :class:`BootstrapCI`."""
    return 2 * ci.estimate - ci.high, 2 * ci.estimate - ci.low


def per_attribute(parsed: pd.DataFrame, universe: Universe, attribute: str) -> pd.DataFrame:
    """Universe Gini and top product per value of a profile attribute (spec §2 "per-attribute Gini")."""
    rows = []
    for value, g in parsed.groupby(attribute, dropna=False, sort=True):
        counts = mention_counts(g["products"])
        x = np.array([counts.get(i, 0) for i in universe.ids], dtype=float)
        top = max(((c, p) for p, c in counts.items() if p in universe), default=(0, "–"))
        rows.append({attribute: value, "responses": len(g), "mentions": int(x.sum()),
                     "gini_universe": gini(x, support="universe") if x.sum() else float("nan"),
                     "top": f"{top[1]} {top[0]}"})
    return pd.DataFrame(rows)


def lorenz(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lorenz curve: population share ``i/n`` and cumulative mass share of the ``i`` smallest, from (0, 0)."""
    x = np.sort(np.asarray(counts, dtype=float))  # (n,)
    return np.linspace(0, 1, len(x) + 1), np.concatenate([[0.0], np.cumsum(x) / x.sum()])
