"""A small runner for benchmark grids that survive interruption.

An experiment is a grid of cells (e.g. method × seed × setting). Each finished cell writes one JSON file under
``benchmarks/results/cells/<experiment>/`` and is skipped when that file is present, so a long experiment can be
killed and finished in pieces. :func:`collect` turns the cells into a markdown table of mean ± std with a
bootstrap CI over seeds.

    exp = Experiment("demo", {"method": ["a", "b"], "seed": [0, 1, 2]}, fn=train_and_eval)
    run_experiment(exp)                      # runs the missing cells only
    table = collect("demo", by=["method"])   # DataFrame
    write_markdown("benchmarks/results/demo.md", "Demo", table, command="python -m benchmarks.demo")

Command line: ``python -m benchmarks.cells collect EXPERIMENT --by method --metric ndcg``.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from siftkit.core.io import atomic_write_text
from siftkit.core.rundir import git_commit, thread_info

RESULTS = Path(__file__).resolve().parent / "results"
CELLS = RESULTS / "cells"


def cell_key(params: dict[str, Any]) -> str:
    """A file-name-safe, order-independent key such as ``method=bm25__seed=0``."""
    parts = [f"{k}={params[k]}" for k in sorted(params)]
    return re.sub(r"[^A-Za-z0-9_.=+-]", "-", "__".join(parts))


@dataclass
class Experiment:
    """A grid of cells.

    Attributes:
        name: folder name under ``results/cells``.
        grid: axis name → values; the cells are the Cartesian product.
        fn: computes one cell: ``fn(params) -> dict of metrics`` (numbers or small JSON values).
        root: where cell folders live (tests point it to a temporary folder).
    """

    name: str
    grid: dict[str, Sequence[Any]]
    fn: Callable[[dict[str, Any]], dict[str, Any]]
    root: Path = CELLS

    def cells(self) -> list[dict[str, Any]]:
        keys = list(self.grid)
        return [dict(zip(keys, vals)) for vals in itertools.product(*(self.grid[k] for k in keys))]

    def path(self, params: dict[str, Any]) -> Path:
        return Path(self.root) / self.name / f"{cell_key(params)}.json"


def run_experiment(exp: Experiment, progress: bool = True, only: Callable[[dict], bool] | None = None) -> dict:
    """Run every cell whose JSON is missing; returns counts ``{"ran", "skipped", "total"}``."""
    cells = [c for c in exp.cells() if only is None or only(c)]
    todo = [c for c in cells if not exp.path(c).exists()]
    bar = None
    if progress and todo:
        from rich.progress import Progress

        bar = Progress()
        bar.start()
        task = bar.add_task(f"{exp.name}", total=len(todo))
    try:
        for params in todo:
            t0 = time.perf_counter()
            metrics = exp.fn(dict(params))
            record = {"experiment": exp.name, "params": params, "metrics": metrics,
                      "seconds": round(time.perf_counter() - t0, 3), "git_commit": git_commit(),
                      "threads": thread_info(), "finished": _dt.datetime.now().isoformat(timespec="seconds")}
            atomic_write_text(exp.path(params), json.dumps(record, indent=2, default=float))
            if bar:
                bar.advance(task)
    finally:
        if bar:
            bar.stop()
    return {"ran": len(todo), "skipped": len(cells) - len(todo), "total": len(cells)}


def load_cells(name: str, root: Path = CELLS) -> list[dict[str, Any]]:
    folder = Path(root) / name
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


def _mean_std(xs: list[float]) -> tuple[float, float]:
    n = len(xs)
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    return m, sd


def collect(name: str, by: Sequence[str], metrics: Sequence[str] | None = None, root: Path = CELLS,
            ci: bool = True, n_resamples: int = 2000):
    """One row per group of ``by`` values, aggregating over the other axes (usually seeds).

    Columns per metric: ``<m>`` (mean), ``<m>_std`` (sample std), ``<m>_lo``/``<m>_hi`` (95% percentile bootstrap
    CI of the mean over cells, when ``ci``), and ``n`` (cells in the group).
    """
    import numpy as np
    import pandas as pd

    recs = load_cells(name, root)
    if not recs:
        raise FileNotFoundError(f"no cells for experiment {name!r} under {root}")
    rows = [{**r["params"], **{k: v for k, v in r["metrics"].items() if isinstance(v, (int, float))}} for r in recs]
    df = pd.DataFrame(rows)
    axes = {k for r in recs for k in r["params"]}
    metrics = list(metrics) if metrics else [c for c in df.columns if c not in axes]
    out = []
    for keys, g in df.groupby(list(by), sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        row: dict[str, Any] = dict(zip(by, keys))
        row["n"] = len(g)
        for m in metrics:
            xs = [float(x) for x in g[m].dropna()]
            if not xs:
                continue
            row[m], row[f"{m}_std"] = _mean_std(xs)
            if ci and len(xs) > 1:
                rs = np.random.default_rng(0)
                means = rs.choice(xs, size=(n_resamples, len(xs)), replace=True).mean(axis=1)
                row[f"{m}_lo"], row[f"{m}_hi"] = np.percentile(means, [2.5, 97.5]).tolist()
        out.append(row)
    return pd.DataFrame(out)


def markdown_table(df, metrics: Sequence[str] | None = None, digits: int = 4) -> str:
    """Render a :func:`collect` frame as markdown with ``mean ± std [lo, hi]`` cells."""
    cols = list(df.columns)
    metrics = list(metrics) if metrics else [c for c in cols if f"{c}_std" in cols]
    keys = [c for c in cols if c not in metrics and not c.endswith(("_std", "_lo", "_hi"))]
    head = keys + metrics
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for _, r in df.iterrows():
        cells = [str(r[k]) for k in keys]
        for m in metrics:
            v = r.get(m)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                cells.append("–")
                continue
            s = f"{v:.{digits}f} ± {r[f'{m}_std']:.{digits}f}"
            if f"{m}_lo" in r and not (isinstance(r[f"{m}_lo"], float) and math.isnan(r[f"{m}_lo"])):
                s += f" [{r[f'{m}_lo']:.{digits}f}, {r[f'{m}_hi']:.{digits}f}]"
            cells.append(s)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_markdown(path: str | Path, title: str, body: str, command: str, notes: str = "") -> Path:
    """Write a results page that states the exact command that produced it, the commit and the machine."""
    import platform

    text = (f"# {title}\n\nProduced by:\n\n```\n{command}\n```\n\n"
            f"Commit `{git_commit()}` · {platform.processor() or platform.machine()} · "
            f"{thread_info().get('cpu_count')} CPUs · {_dt.date.today().isoformat()}\n\n{body}\n")
    if notes:
        text += f"\n{notes}\n"
    return atomic_write_text(path, text)


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Collect benchmark cells into a markdown table.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("experiment")
    c.add_argument("--by", nargs="+", required=True)
    c.add_argument("--metric", nargs="*")
    c.add_argument("--out")
    a = ap.parse_args(argv)
    df = collect(a.experiment, a.by, a.metric)
    md = markdown_table(df, a.metric)
    if a.out:
        write_markdown(a.out, a.experiment, md, f"python -m benchmarks.cells collect {a.experiment} --by "
                       + " ".join(a.by))
    print(md)


if __name__ == "__main__":
    main()
