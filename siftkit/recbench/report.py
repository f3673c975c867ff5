"""Tables and the per-category plot of a RecBench+ evaluation."""

from __future__ import annotations

import pandas as pd

from siftkit.core.report import Section

COLS = ["model", "mode", "parser", "qtype", "conditions", "n", "recall", "recall_lo", "recall_hi", "precision",
        "ndcg", "ndcg_lo", "ndcg_hi", "ftr", "existence", "satisfied"]


def category_plot(summary: pd.DataFrame, metric: str = "recall", mode: str = "corrected", parser: str = "sep"):
    """Grouped bars: ``metric`` (with its CI) per query category (type / #conditions), one bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    d = summary[(summary["mode"] == mode) & (summary["parser"] == parser)].copy()
    d["category"] = d["qtype"] + d["conditions"].map(lambda c: "" if c == "-" else f"/{c}")
    cats = list(dict.fromkeys(d["category"]))
    models = list(dict.fromkeys(d["model"]))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(cats) + 2), 3.6))
    w = 0.8 / max(1, len(models))
    x = np.arange(len(cats))
    for j, m in enumerate(models):
        sub = d[d["model"] == m].set_index("category").reindex(cats)
        err = np.vstack([sub[metric] - sub[f"{metric}_lo"], sub[f"{metric}_hi"] - sub[metric]])
        ax.bar(x + j * w - 0.4 + w / 2, sub[metric], w, yerr=np.nan_to_num(err), label=m, capsize=2)
    ax.set_xticks(x)
    ax.set_xticklabels(cats, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"{metric} ({mode} scoring)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, ncol=min(4, len(models)))
    fig.tight_layout()
    return fig


def build_section(summary: pd.DataFrame, text: str, title: str = "RecBench+ recommendation assistants") -> Section:
    cols = [c for c in COLS if c in summary.columns]
    main = summary[summary["parser"] == "sep"][cols].round(3)
    lenient = summary[summary["parser"] == "lenient"][cols].round(3)
    metrics = {f"{r.model}/{r.mode}/{r.qtype}/{r.conditions}/recall": float(r.recall)
               for r in summary[summary["parser"] == "sep"].itertuples()}
    tables = [("[SEP] parser (the paper's)", main)]
    if len(lenient):
        tables.append(("lenient parser [ours]: numbered / line lists accepted (FTR unchanged)", lenient))
    figs = [("recall per category, corrected scoring, 95% CI clustered by source user",
             category_plot(summary, "recall", "corrected")),
            ("recall per category, reference (upstream) scoring", category_plot(summary, "recall", "reference"))]
    return Section(title, text=text, tables=tables, figures=figs, metrics=metrics)
