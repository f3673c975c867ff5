"""Report of a product-bias audit: a table per asset class and model, bar charts of top products, Lorenz curves."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from siftkit.bias.measures import delta_gini, lorenz, mention_counts, sector_shares, summary_table
from siftkit.bias.universe import Universe
from siftkit.core.report import Section

TABLE_COLUMNS = ["model", "debias", "responses", "rate_valid", "rate_hedged", "rate_refusal", "rate_unparseable",
                 "unknown_share", "gini_own", "n_own", "gini_universe", "gini_universe_lo", "gini_universe_hi",
                 "n_universe", "hhi", "entropy", "top1_share", "top5_share", "p_chi2_uniform", "p_gini_uniform",
                 "p_chi2_market_cap", "p_gini_market_cap", "top_products"]


def top_products_figure(parsed: pd.DataFrame, asset_class: str, top: int = 10):
    """Horizontal bars: each (model, variant)'s ``top`` products by share of its mentions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(parsed[parsed.asset_class == asset_class].groupby(["model", "debias"], sort=True))
    fig, axes = plt.subplots(1, max(len(groups), 1), figsize=(3.2 * max(len(groups), 1), 3.4), squeeze=False)
    for ax, ((model, debias), g) in zip(axes[0], groups):
        counts = mention_counts(g["products"])
        total = sum(counts.values()) or 1
        items = counts.most_common(top)[::-1]
        ax.barh([p for p, _ in items], [c / total for _, c in items], color="#3b6ea5")
        ax.set_title(f"{model}\n{debias}", fontsize=8)
        ax.set_xlabel("share of mentions", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def lorenz_figure(parsed: pd.DataFrame, universe: Universe):
    """Lorenz curves over the universe (zero-filled), one per (model, variant), with the equality line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="equality")
    for (model, debias), g in parsed[parsed.asset_class == universe.asset_class].groupby(["model", "debias"]):
        counts = mention_counts(g["products"])
        x = np.array([counts.get(i, 0) for i in universe.ids], dtype=float)
        if x.sum() == 0:
            continue
        px, py = lorenz(x)
        ax.plot(px, py, lw=1.2, label=f"{model} / {debias}")
    ax.set_xlabel(f"share of the {len(universe.ids)} products (ascending)")
    ax.set_ylabel("share of mentions")
    ax.set_title(f"Lorenz curves: {universe.asset_class}", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def sector_table(parsed: pd.DataFrame, universe: Universe) -> pd.DataFrame:
    """Share of known mentions per sector for each (model, variant), beside the reference (market cap or equal)."""
    out = None
    for (model, debias), g in parsed[parsed.asset_class == universe.asset_class].groupby(["model", "debias"]):
        sec = sector_shares(mention_counts(g["products"]), universe).set_index("sector")
        if out is None:
            out = sec[["reference"]].copy()
        out[f"{model} / {debias}"] = sec["share"]
    return out.reset_index() if out is not None else pd.DataFrame()


def delta_table(parsed: pd.DataFrame, universes: Mapping[str, Universe], plain: str = "none",
                n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Δ-Gini (each de-biasing variant − ``plain``) per model and asset class, with paired permutation p-values."""
    rows = []
    for (model, asset), g in parsed.groupby(["model", "asset_class"], sort=True):
        for variant in sorted(set(g.debias) - {plain}):
            if plain in set(g.debias):
                rows.append({"model": model, "asset_class": asset, "debias": variant,
                             **delta_gini(g, universes[asset], plain, variant, n_resamples, seed)})
    return pd.DataFrame(rows)


def build_sections(parsed: pd.DataFrame, universes: Mapping[str, Universe], n_resamples: int = 1000,
                   seed: int = 0) -> tuple[list[Section], pd.DataFrame, pd.DataFrame]:
    """One :class:`Section` per asset class (table, bars, Lorenz curves) plus the Δ-Gini section."""
    summary = summary_table(parsed, dict(universes), n_resamples, seed)
    deltas = delta_table(parsed, universes, n_resamples=n_resamples, seed=seed)
    sections = []
    for asset in sorted(summary.asset_class.unique()):
        u = universes[asset]
        table = summary[summary.asset_class == asset][[c for c in TABLE_COLUMNS if c in summary.columns]]
        text = (f"Universe: {len(u.ids)} {asset} products as of {u.as_of} ({u.source}). Gini over the model's own "
                f"products (n_own) and over the fixed universe (n_universe); CI: basic bootstrap over prompts; "
                f"p-values: chi-square and Monte Carlo Gini tests against uniform and market-cap shares.")
        tables = [(f"{asset} per model", table), (f"{asset}: share of mentions per sector", sector_table(parsed, u))]
        sections.append(Section(f"Product bias: {asset}", text=text, tables=tables,
                                figures=[(f"top products ({asset})", top_products_figure(parsed, asset)),
                                         (f"Lorenz curves ({asset})", lorenz_figure(parsed, u))]))
    if len(deltas):
        sections.append(Section("De-biasing: change in Gini", text="Δ = G(de-biased) − G(plain) over the universe, "
                                "paired permutation over prompts.", tables=[("Δ-Gini", deltas)]))
    return sections, summary, deltas
