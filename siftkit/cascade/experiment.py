"""Experiment grids for the LCRON tables: one cell = (config, stages, method, variant, τ, seed) → metrics.

Used by ``siftkit cascade run`` (one run directory) and ``benchmarks/lcron.py`` (resumable cells). Simulated data
is built once per (config, stages) and kept for the process.
"""

from __future__ import annotations

import functools
import math
from dataclasses import replace
from typing import Any

import numpy as np

from siftkit.cascade.loss import LcronConfig
from siftkit.cascade.simulator import preset, simulate
from siftkit.cascade.train import METHODS, ORACLES, QUOTAS, TrainConfig, run, run_oracle

BATCH = {"mid": 512, "small": 256, "tiny": 128}
"""Batch size per config: 1024 [code] on ``main``; smaller on the small configs so they take enough steps [ours]."""
VARIANTS = {"full": lambda n_stages: {}, "no_e2e": lambda n_stages: {"use_e2e": False},
            "no_single": lambda n_stages: {"use_single": False},
            "serving_q": lambda n_stages: {"q_per_stage": tuple(QUOTAS[n_stages])}}
"""LCRON variants, each a function of the number of stages giving ``LcronConfig`` fields: the paper's ablations
(Table 4) and training with the serving quotas ``train.QUOTAS`` (paper E.1)."""


def lcron_config(params: dict) -> LcronConfig:
    """The LCRON loss settings of a cell: its ``variant``, then ``tau`` and ``binarize_y`` when given."""
    lc = replace(LcronConfig(), **VARIANTS[params.get("variant", "full")](int(params["stages"])))
    if "tau" in params:
        lc = replace(lc, tau=float(params["tau"]))
    if "binarize_y" in params:
        lc = replace(lc, binarize_y=bool(params["binarize_y"]))
    return lc


@functools.lru_cache(maxsize=4)
def load_data(config: str, n_stages: int):
    """(train, test) simulated data of a named config (tiny, small, mid, main)."""
    return simulate(preset(config, n_stages=n_stages))


def run_cell(params: dict[str, Any], log=None, device: str = "cpu", data=None) -> dict[str, Any]:
    """Train and evaluate one cell; returns numeric metrics plus ``joint_per_request`` (per test request, the number
    of GT items kept, 0..10, as one hex digit each; see :func:`per_request_joint`).

    params: ``config``, ``stages`` (2 or 3), ``method`` (a method or an oracle), ``seed``, optional ``variant``
    (full / no_e2e / no_single / serving_q, LCRON only), ``tau`` (LCRON's NeuralSort temperature), ``binarize_y``
    (LCRON's label binarisation), ``icc_fix_k`` (ICC's last gate at the last quota), ``icc_detach_kappa``,
    ``rankflow_chain`` (siftkit's departures, off by default), ``ndcg`` (bool).
    ``data`` = (train, test) replaces the simulated config (e.g. RecFlow from :mod:`siftkit.cascade.recflow`).
    """
    train_data, test_data = data or load_data(params["config"], int(params["stages"]))
    method = params["method"]
    if method in ORACLES:
        res = run_oracle(method, test_data, int(params["stages"]))
        stats: dict[str, Any] = {}
    else:
        lc = lcron_config(params)
        cfg = TrainConfig(method=method, n_stages=int(params["stages"]), seed=int(params["seed"]), lcron=lc,
                          batch_size=BATCH.get(params["config"], 1024) if data is None else 1024, device=device,
                          icc_fix_k=bool(params.get("icc_fix_k", False)),
                          icc_detach_kappa=bool(params.get("icc_detach_kappa", False)),
                          rankflow_chain=bool(params.get("rankflow_chain", False)))
        res = run(train_data, test_data, cfg, ndcg=params.get("ndcg", True), log=log)
        stats = {k: res["stats"][k] for k in ("steps", "train_seconds", "eval_seconds", "requests_per_s",
                                             "peak_rss_mib", "peak_gpu_mib") if k in res["stats"]}
        stats["device"] = device
    out = {**res["metrics"], **stats}
    hits = np.rint(res["per_request"]["joint"] * 10).astype(int)  # 0..10 GT items kept, one hex digit per request
    out["joint_per_request"] = "".join("0123456789a"[h] for h in hits)
    return out


def per_request_joint(metrics: dict) -> np.ndarray:
    """Per-request joint recall of a cell (R,) from its ``joint_per_request`` field (hex string or int list)."""
    v = metrics["joint_per_request"]
    return (np.array([int(c, 16) for c in v]) if isinstance(v, str) else np.asarray(v)) / 10


def significance(cells: list[dict], reference: str = "lcron", metric: str = "joint") -> list[dict]:
    """Paired t-tests (5%) of ``reference`` against every other method: over seeds (paired by seed) and over test
    requests (per-request joint recall averaged over seeds)."""
    from siftkit.metrics.stats import paired_t_test

    by: dict[str, dict[int, dict]] = {}
    for c in cells:
        by.setdefault(c["params"]["method"], {})[int(c["params"]["seed"])] = c["metrics"]
    if reference not in by:
        return []
    ref = by[reference]
    rows = []
    for m, runs in by.items():
        if m == reference or m in ORACLES:
            continue
        seeds = sorted(set(ref) & set(runs))
        row: dict[str, Any] = {"method": m, "seeds": len(seeds)}
        if len(seeds) >= 2:
            t = paired_t_test([ref[s][metric] for s in seeds], [runs[s][metric] for s in seeds])
            row.update(diff=t.diff, p_seeds=t.p_value)
            a = np.mean([per_request_joint(ref[s]) for s in seeds], 0)
            b = np.mean([per_request_joint(runs[s]) for s in seeds], 0)
            tr = paired_t_test(a, b)
            row.update(p_requests=tr.p_value)
            row["significant_5pct"] = bool((t.p_value < 0.05) if not math.isnan(t.p_value) else False)
        rows.append(row)
    return rows


__all__ = ["METHODS", "ORACLES", "VARIANTS", "load_data", "run_cell", "significance"]


# ---------------------------------------------------------------------------------------------------- plumbing


def run_grid(config: str, stages: int, methods: list[str], seeds: list[int], variants: list[str] | None = None,
             taus: list[float] | None = None, oracles: bool = True, log=None, device: str = "cpu",
             data=None) -> list[dict]:
    """Run every (method, variant, τ, seed) cell in this process; returns cell records like benchmarks/cells."""
    cells = []
    for method in methods:
        for variant in (variants or ["full"]) if method == "lcron" else ["full"]:
            for tau in (taus or [None]) if method == "lcron" else [None]:
                for seed in seeds:
                    p = {"config": config, "stages": stages, "method": method, "seed": seed}
                    if variant != "full":
                        p["variant"] = variant
                    if tau is not None:
                        p["tau"] = tau
                    if log:
                        log(f"cell {p}")
                    cells.append({"params": p, "metrics": run_cell(p, log, device, data)})
    if oracles:
        for kind in ORACLES:
            if kind == "oracle_utility" and data is not None and np.isnan(data[1].utility).all():
                continue  # real data has no latent utility
            p = {"config": config, "stages": stages, "method": kind, "seed": 0}
            cells.append({"params": p, "metrics": run_cell(p, log, device, data)})
    return cells


def table(cells: list[dict], by: tuple[str, ...] = ("method", "variant", "tau")) -> "pd.DataFrame":  # noqa: F821
    """Mean and std over seeds of every numeric metric, one row per (method, variant, τ)."""
    import pandas as pd

    rows = [{**{k: c["params"].get(k, "full" if k == "variant" else "") for k in by},
             **{k: v for k, v in c["metrics"].items() if isinstance(v, (int, float))}} for c in cells]
    df = pd.DataFrame(rows)
    metrics = [c for c in df.columns if c not in by]
    g = df.groupby(list(by), sort=False)
    out = g[metrics].mean()
    std = g[metrics].std(ddof=1).add_suffix("_std")
    out = out.join(std).reset_index()
    out.insert(len(by), "seeds", g.size().values)
    return out.sort_values("joint", ascending=False)


def report_section(cells: list[dict], title: str):
    """A report :class:`~siftkit.core.report.Section`: the table, t-tests and a bar chart of joint recall."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from siftkit.core.report import Section

    df = table(cells)
    show = [c for c in ("method", "variant", "tau", "seeds", "joint", "joint_std", "recall_dssm", "recall_mlp",
                        "recall_din", "ndcg_din", "requests_per_s") if c in df.columns]
    fig, ax = plt.subplots(figsize=(7, 3))
    labels = [f"{r.method}" + (f" {r.variant}" if r.variant != "full" else "") + (f" τ={r.tau}" if r.tau != "" else "")
              for r in df.itertuples()]
    ax.bar(labels, df["joint"], yerr=df["joint_std"].fillna(0), color="#3b6ea5")
    ax.set_ylim(max(0.0, float(df["joint"].min()) - 0.05), min(1.0, float(df["joint"].max()) + 0.02))
    ax.set_ylabel("joint recall")
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    sig = pd.DataFrame(significance(cells))
    tables = [("joint recall and per-stage metrics (mean over seeds; _std = sample std)", df[show])]
    if len(sig):
        tables.append(("paired t-tests, LCRON against each baseline (5%)", sig))
    metrics = {r.method + (f"/{r.variant}" if r.variant != "full" else "")
               + (f"/tau={r.tau}" if r.tau != "" else ""): {"joint": float(r.joint)} for r in df.itertuples()}
    return Section(title, text=(
        "LCRON and its baselines train a cascade of stage models; joint recall is the share of the 10 ground-truth "
        "items that survive every stage's serving quota on the test day (columns shuffled with a fixed seed before "
        "any top-k). oracle_labels and oracle_utility score by the labels and by the simulator's latent utility; "
        "random is the floor."), tables=tables, figures=[("joint recall per method", fig)], metrics=metrics)
