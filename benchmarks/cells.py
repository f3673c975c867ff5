"""Benchmark cells: a grid of results that survives interruption and cannot go stale silently.

An experiment is a grid of cells (e.g. method × seed × setting). Each finished cell writes one JSON file under
``benchmarks/results/cells/<experiment>/`` and is skipped when that file is present, so a long experiment can be
killed and finished in pieces. A cell records what it ran on (its *stamp*): the siftkit version, a hash of the
source files the experiment declares (``sources``), hashes of its input files (``inputs``) and the settings that
shape its result (``settings``; see benchmarks/stamp.py). Loading compares each stamp with the current one and
refuses a cell made by other code or data (:class:`StaleCellError`, naming the cell and what changed). A cell that
is half done keeps its state in ``<experiment>/_partial/<key>.json`` (:class:`Partial`), stamped the same way, and
resumes from it.

    exp = Experiment("demo", {"method": ["a", "b"], "seed": [0, 1, 2]}, fn=train_and_eval,
                     sources=["siftkit/cascade", "benchmarks/demo.py::cell"], inputs={"data": path})
    run_experiment(exp, workers=2)           # runs the missing cells only, in two worker processes
    cells = exp.load()                       # stale cells refused; each record carries "status"
    table = collect("demo", by=["method"])   # DataFrame

Cells written before stamps existed ("legacy") are shown as ``unverified`` until :func:`adopt` stamps them (see
docs/benchmarks.md, "Migration"). Experiments that declare no ``sources`` keep the old, unchecked behaviour.

Command line: ``python -m benchmarks.cells collect EXPERIMENT --by method --metric ndcg``; the runner is
``python -m benchmarks`` (benchmarks/runner.py).
"""

from __future__ import annotations

import datetime as _dt
import inspect
import itertools
import json
import math
import re
import time
import traceback
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Sequence

from benchmarks.stamp import (REPO, StaleCellError, input_hash, legacy_verdict, make_stamp,  # noqa: F401 (re-exported)
                              source_hashes, stamp_changes)
from siftkit.core.io import atomic_write_text
from siftkit.core.rundir import git_commit, thread_info

RESULTS = Path(__file__).resolve().parent / "results"
CELLS = RESULTS / "cells"


def cell_key(params: dict[str, Any]) -> str:
    """A file-name-safe, order-independent key such as ``method=bm25__seed=0``."""
    parts = [f"{k}={params[k]}" for k in sorted(params)]
    return re.sub(r"[^A-Za-z0-9_.=+-]", "-", "__".join(parts))


# ---------------------------------------------------------------------------------------------------------------
# the grid, its cells and partial cells
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Experiment:
    """A grid of cells.

    Attributes:
        name: folder name under ``results/cells``.
        grid: axis name → values (the cells are the Cartesian product), or an explicit list of parameter dicts.
        fn: computes one cell: ``fn(params) -> dict of metrics`` (numbers or small JSON values), or
            ``fn(params, partial)`` to keep a half-done cell's state in a :class:`Partial`. Must be a top-level
            function (or ``functools.partial`` of one) when cells run in worker processes.
        root: where cell folders live (tests point it to a temporary folder).
        sources: the code the cells depend on (see :func:`source_hashes`); empty = unversioned (old behaviour).
        inputs: name → input file or folder, hashed into the stamp.
        settings: values that shape a cell's result but are not grid axes (sizes, seeds of samples, model ids).
        cell_settings: ``params -> dict`` of settings that belong to one cell only (e.g. the definition of the
            variant it names), stamped into that cell alone, so adding a variant does not make the others stale.
        legacy_files: files diffed in git for cells written before stamps (default: the file part of ``sources``).
        legacy_at: the commit those files must match (default HEAD; the last commit before a benchmark's port onto
            the runner, whose own module then changed); package sources must also be unchanged from it to HEAD.
    """

    name: str
    grid: dict[str, Sequence[Any]] | list[dict[str, Any]]
    fn: Callable[..., dict[str, Any]]
    root: Path = CELLS
    sources: Sequence[str] = ()
    inputs: dict[str, str | Path] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    cell_settings: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    legacy_files: Sequence[str] = ()
    legacy_at: str = "HEAD"

    def cells(self) -> list[dict[str, Any]]:
        if isinstance(self.grid, list):
            return [dict(c) for c in self.grid]
        keys = list(self.grid)
        return [dict(zip(keys, vals)) for vals in itertools.product(*(self.grid[k] for k in keys))]

    def path(self, params: dict[str, Any]) -> Path:
        return Path(self.root) / self.name / f"{cell_key(params)}.json"

    def partial_path(self, params: dict[str, Any]) -> Path:
        return Path(self.root) / self.name / "_partial" / f"{cell_key(params)}.json"

    def folders(self) -> list[str]:
        """The folders under ``root`` that hold this experiment's cells (one here; a subclass that spreads its grid
        over several, e.g. one per table, lists them; :func:`adopt` and the page's "Cells" section use this)."""
        return [self.name]

    @property
    def versioned(self) -> bool:
        return bool(self.sources)

    @cached_property
    def stamp(self) -> dict[str, Any] | None:
        return make_stamp(self.sources, self.inputs, self.settings) if self.versioned else None

    def stamp_for(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """The stamp of one cell: the experiment's, plus its own ``cell`` settings when the experiment has them."""
        if self.stamp is None or self.cell_settings is None:
            return self.stamp
        return {**self.stamp, "cell": json.loads(json.dumps(self.cell_settings(dict(params)), sort_keys=True,
                                                            default=str))}

    # -- status ---------------------------------------------------------------------------------------------------
    def check(self, rec: dict[str, Any]) -> tuple[str, list[str]]:
        """A stored record's status: ``fresh`` (stamp matches), ``stale`` (made by other code/data/settings),
        or ``unverified`` (a legacy cell that git cannot vouch for, or has not been adopted yet, or a cell whose
        metrics list ``unverified_inputs``: it was computed from other cells that were unverified)."""
        if not self.versioned:
            return "fresh", []
        if "stamp" in rec:
            try:
                want = self.stamp_for(rec["params"])
            except LookupError:  # e.g. its variant was removed from the config
                return "stale", ["no longer in the grid: its own settings are gone from the config"]
            why = stamp_changes(rec["stamp"], want)
            if why:
                return "stale", why
            derived = (rec.get("metrics") or {}).get("unverified_inputs")
            return ("unverified", [f"made from unverified cells: {', '.join(map(str, derived))}"]) if derived else (
                "fresh", [])
        verdict, reason = self._legacy(rec.get("git_commit"))
        if verdict == "adoptable":
            return "unverified", [f"legacy cell, adoptable ({reason}): run `python -m benchmarks adopt`"]
        return verdict, [f"legacy cell: {reason}"]

    def _legacy(self, commit: str | None) -> tuple[str, str]:
        memo = self.__dict__.setdefault("_legacy_memo", {})
        if commit not in memo:
            files = list(self.legacy_files) or sorted({s.partition("::")[0] for s in self.sources})
            verdict, reason = legacy_verdict(commit, files, self.legacy_at)
            if verdict == "adoptable" and self.legacy_at != "HEAD":
                pkg = [s for s in self.sources if "::" not in s]
                v2, r2 = legacy_verdict(self.legacy_at, pkg, "HEAD") if pkg else ("adoptable", "")
                if v2 != "adoptable":
                    verdict, reason = v2, r2
            memo[commit] = (verdict, reason)
        return memo[commit]

    def status(self, params: dict[str, Any]) -> tuple[str, list[str]]:
        """``missing``, ``partial`` (a current partial cell to resume), ``fresh``, ``stale`` or ``unverified``."""
        p = self.path(params)
        if p.exists():
            return self.check(json.loads(p.read_text()))
        pp = self.partial_path(params)
        if pp.exists():
            st, why = self.check(json.loads(pp.read_text()))
            return ("partial", []) if st == "fresh" else ("stale", [f"partial cell: {w}" for w in why])
        return "missing", []

    # -- loading --------------------------------------------------------------------------------------------------
    def load(self, allow_stale: bool = False) -> list[dict[str, Any]]:
        """Every stored cell, each with ``status`` and ``status_reasons`` added; raises :class:`StaleCellError`
        naming the stale cells and what changed, unless ``allow_stale`` (then they come back marked ``stale``)."""
        out, stale = [], []
        for rec in load_cells(self.name, self.root):
            st, why = self.check(rec)
            rec = {"experiment": self.name, **rec, "status": st, "status_reasons": why}
            if st == "stale":
                stale.append(rec)
            if st != "stale" or allow_stale:
                out.append(rec)
        if stale and not allow_stale:
            raise StaleCellError(stale_message(self.name, stale))
        return out

    def load_partials(self) -> list[dict[str, Any]]:
        """The current partial cells (``{"params", "state", ...}``); stale ones are left out (``run`` reports them)."""
        folder = Path(self.root) / self.name / "_partial"
        recs = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []
        return [r for r in recs if self.check(r)[0] == "fresh"]


def stale_message(name: str, recs: list[dict[str, Any]], limit: int = 8) -> str:
    lines = [f"{len(recs)} cell(s) of {name} were made by other code, data or settings and are refused:"]
    for r in recs[:limit]:
        lines.append(f"  {name}/{cell_key(r['params'])}: {'; '.join(r['status_reasons'][:4])}")
    if len(recs) > limit:
        lines.append(f"  ... and {len(recs) - limit} more")
    lines.append("Rerun them (`python -m benchmarks run NAME --rerun stale`), restore the code they ran on, delete "
                 "cells no longer in the grid, or run other cells with --only.")
    return "\n".join(lines)


class Partial:
    """A half-done cell's state, saved atomically after each step so a killed cell resumes where it stopped.

    The cell function receives it as its second argument; ``partial.state`` is a dict of what is done so far
    (restored on a rerun), ``partial.save(key, value)`` records one finished step. The file carries the
    experiment's stamp; a partial cell made by other code is refused like a stale cell. It is deleted when the
    cell finishes.

        def cell(params, partial):
            for step in range(10):
                if f"step={step}" not in partial:
                    partial.save(f"step={step}", train_one_step(step))
            return {"loss": partial.state["step=9"]["loss"]}
    """

    def __init__(self, path: Path, params: dict[str, Any], stamp: dict[str, Any] | None):
        self.path, self.params, self.stamp = Path(path), params, stamp
        self.state: dict[str, Any] = {}
        if self.path.exists():
            rec = json.loads(self.path.read_text())
            if stamp is not None and (why := stamp_changes(rec.get("stamp", {}), stamp)):
                raise StaleCellError(f"partial cell {self.path}: {'; '.join(why)}")
            self.state = rec.get("state", {})

    def __contains__(self, key: str) -> bool:
        return key in self.state

    def get(self, key: str, default: Any = None) -> Any:
        return self.state.get(key, default)

    def save(self, key: str, value: Any) -> None:
        self.state[key] = value
        if not hasattr(self, "_commit"):
            self._commit = git_commit()
        rec = {"params": self.params, "state": self.state, "git_commit": self._commit,
               "updated": _dt.datetime.now().isoformat(timespec="seconds")}
        if self.stamp is not None:
            rec["stamp"] = self.stamp
        atomic_write_text(self.path, json.dumps(rec, indent=1, default=float))


# ---------------------------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------------------------

class CellsFailed(RuntimeError):
    """Some cells raised; the others finished and were kept."""


def _takes_partial(fn: Callable) -> bool:
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def run_cell(fn: Callable[..., dict[str, Any]], name: str, params: dict[str, Any], path: Path, partial_path: Path,
             stamp: dict[str, Any] | None) -> dict[str, Any]:
    """Compute one cell and write its record (in the calling process: the parent or a worker).

    What the cell prints, and Python warnings, go to ``<experiment>/_tmp_logs/<key>.log`` (ignored by git), not to
    the console, which shows only the runner's progress bar."""
    import contextlib
    import warnings

    import siftkit

    t0 = time.perf_counter()
    log = log_path(path)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), \
            warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = lambda msg, cat, fname, lineno, file=None, line=None: out.write(
            warnings.formatwarning(msg, cat, fname, lineno, line))
        if _takes_partial(fn):
            partial = Partial(partial_path, params, stamp)
            metrics = fn(dict(params), partial)
        else:
            partial, metrics = None, fn(dict(params))
    record = {"experiment": name, "params": params, "metrics": metrics,
              "seconds": round(time.perf_counter() - t0, 3), "git_commit": git_commit(),
              "siftkit": siftkit.__version__,
              "threads": thread_info(), "finished": _dt.datetime.now().isoformat(timespec="seconds")}
    if stamp is not None:
        record["stamp"] = stamp
    atomic_write_text(path, json.dumps(record, indent=2, default=float))
    if partial is not None:
        partial.path.unlink(missing_ok=True)
    return record


def log_path(cell_path: Path) -> Path:
    """Where a cell's console output goes (``<experiment>/_tmp_logs/<key>.log``)."""
    return cell_path.parent / "_tmp_logs" / f"{cell_path.stem}.log"


def _job(exp: Experiment, params: dict[str, Any]) -> tuple:
    """``run_cell``'s arguments: plain values and the cell function (stamps are computed here, once)."""
    return exp.fn, exp.name, params, exp.path(params), exp.partial_path(params), exp.stamp_for(params)


def run_experiment(exp: Experiment, progress: bool = True, only: Callable[[dict], bool] | None = None,
                   workers: int = 0, rerun: Sequence[str] = (), stale: str = "refuse") -> dict:
    """Run every cell that is missing or partial; returns ``{"ran", "skipped", "total"}`` (and, with
    ``stale="skip"``, ``"stale"``: the names ``EXPERIMENT/KEY`` of the stale cells left as they are).

    Stale cells (and stale partial cells) stop the run before anything starts, with a message naming them
    (``stale="refuse"``), or are left out of it (``stale="skip"``, what ``python -m benchmarks run`` does), unless
    ``"stale"`` is in ``rerun``; ``"unverified"`` in ``rerun`` recomputes unverified legacy cells too.
    ``workers`` > 0 runs cells in that many worker processes (``concurrent.futures``, spawned); 0 runs them here.
    A cell that raises is reported at the end (:class:`CellsFailed`) after the others ran.
    """
    cells = [c for c in exp.cells() if only is None or only(c)]
    status = {cell_key(c): exp.status(c) for c in cells}
    if stale not in ("refuse", "skip"):
        raise ValueError(f"stale must be 'refuse' or 'skip', not {stale!r}")
    refused = [{"params": c, "status_reasons": status[cell_key(c)][1]} for c in cells
               if status[cell_key(c)][0] == "stale"]
    if refused and "stale" not in rerun and stale == "refuse":
        raise StaleCellError(stale_message(exp.name, refused))
    todo = [c for c in cells if status[cell_key(c)][0] in ("missing", "partial", *rerun)]
    for c in todo:
        if status[cell_key(c)][0] == "stale":
            exp.partial_path(c).unlink(missing_ok=True)
    failed: list[tuple[str, str]] = []
    bar = None
    if progress and todo:
        import sys

        from rich.console import Console
        from rich.progress import Progress

        bar = Progress(console=Console(file=sys.stderr))  # this stderr, not a cell's redirected one
        bar.start()
        task = bar.add_task(f"{exp.name}", total=len(todo))
    try:
        if workers <= 0:
            for params in todo:
                try:
                    run_cell(*_job(exp, params))
                except Exception as e:  # one failed cell must not stop the others
                    failed.append((cell_key(params), "".join(traceback.format_exception(e))))
                if bar:
                    bar.advance(task)
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {pool.submit(run_cell, *_job(exp, params)): params for params in todo}
                for fut in as_completed(futures):
                    if (e := fut.exception()) is not None:
                        failed.append((cell_key(futures[fut]), "".join(traceback.format_exception(e))))
                    if bar:
                        bar.advance(task)
    finally:
        if bar:
            bar.stop()
    if failed:
        head = "; ".join(f"{k}: {tb.strip().splitlines()[-1]}" for k, tb in failed[:5])
        head += f"; logs in {Path(exp.root) / exp.name / '_tmp_logs'}"
        raise CellsFailed(f"{len(failed)} of {len(todo)} cells of {exp.name} failed ({head}); the others were kept."
                          f"\nFirst traceback:\n{failed[0][1]}")
    out = {"ran": len(todo), "skipped": len(cells) - len(todo), "total": len(cells)}
    if stale == "skip":
        out["stale"] = [] if "stale" in rerun else [f"{exp.name}/{cell_key(r['params'])}" for r in refused]
    return out


def load_cells(name: str, root: Path = CELLS) -> list[dict[str, Any]]:
    """Every stored record of an experiment, unchecked (use :meth:`Experiment.load` to refuse stale cells)."""
    folder = Path(root) / name
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


def adopt(exp: Experiment, dry_run: bool = False) -> list[tuple[str, str, str]]:
    """Stamp the legacy cells whose method code git shows unchanged since they ran (see :func:`legacy_verdict`);
    returns ``(key, verdict, reason)`` per legacy cell. Adopted cells get ``stamp`` and an ``adopted`` note
    (from which commit, checked against what; their inputs were not recorded then and are stamped as they are now)."""
    out = []
    for p in sorted(f for folder in exp.folders() for f in (Path(exp.root) / folder).glob("*.json")):
        rec = json.loads(p.read_text())
        if "stamp" in rec:
            continue
        verdict, reason = exp._legacy(rec.get("git_commit"))
        key = cell_key(rec["params"])
        out.append((key if len(exp.folders()) == 1 else f"{p.parent.name}/{key}", verdict, reason))
        if verdict == "adoptable" and not dry_run:
            rec["stamp"] = exp.stamp_for(rec["params"])
            rec["adopted"] = {"from_commit": rec.get("git_commit"), "checked_against": exp.legacy_at,
                              "rule": f"git diff --quiet <from_commit> {exp.legacy_at} -- <declared sources>",
                              "inputs": "not recorded when the cell ran; stamped with their hashes at adoption",
                              "on": _dt.date.today().isoformat()}
            atomic_write_text(p, json.dumps(rec, indent=2, default=float))
    return out


# ---------------------------------------------------------------------------------------------------------------
# tables and pages
# ---------------------------------------------------------------------------------------------------------------

def _mean_std(xs: list[float]) -> tuple[float, float]:
    n = len(xs)
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    return m, sd


def collect(name: str | Experiment, by: Sequence[str], metrics: Sequence[str] | None = None, root: Path = CELLS,
            ci: bool = True, n_resamples: int = 2000, records: list[dict[str, Any]] | None = None):
    """One row per group of ``by`` values, aggregating over the other axes (usually seeds).

    Columns per metric: ``<m>`` (mean), ``<m>_std`` (sample std), ``<m>_lo``/``<m>_hi`` (95% percentile bootstrap
    CI of the mean over cells, when ``ci``), and ``n`` (cells in the group). Given an :class:`Experiment`, its
    cells are read through :meth:`Experiment.load` (stale ones refused); ``records`` replaces reading the folder.
    """
    import numpy as np
    import pandas as pd

    if isinstance(name, Experiment):
        records, name = (name.load() if records is None else records), name.name
    recs = records if records is not None else load_cells(name, root)
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


def md_table(head: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """The one markdown table renderer of the results pages: a header line, a ``|---|`` rule and one line per row,
    every cell written with ``str`` (format numbers before, e.g. with :func:`mean_sd`)."""
    return "\n".join(["| " + " | ".join(map(str, head)) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def mean_sd(xs: Sequence[float | None], digits: int = 3, sd_of_one: bool = False) -> str:
    """``"mean ± sd"`` (sample sd, n − 1) of the values that are not None; ``"–"`` when none. One value prints
    alone, or as ``"x ± 0.000"`` with ``sd_of_one`` (the Search-R1 page's convention)."""
    import statistics

    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    if len(xs) == 1 and not sd_of_one:
        return f"{xs[0]:.{digits}f}"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.{digits}f} ± {sd:.{digits}f}"


def markdown_table(df, metrics: Sequence[str] | None = None, digits: int = 4) -> str:
    """Render a :func:`collect` frame as markdown with ``mean ± std [lo, hi]`` cells."""
    cols = list(df.columns)
    metrics = list(metrics) if metrics else [c for c in cols if f"{c}_std" in cols]
    keys = [c for c in cols if c not in metrics and not c.endswith(("_std", "_lo", "_hi"))]
    rows = []
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
        rows.append(cells)
    return md_table(keys + metrics, rows)


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
    if any("stamp" in r for r in load_cells(a.experiment)):  # versioned: only the runner can say which are current
        raise SystemExit(f"siftkit: {a.experiment} has versioned cells; read them through its benchmark "
                         "(`python -m benchmarks status|page NAME --profile P`), which refuses stale ones")
    df = collect(a.experiment, a.by, a.metric)
    md = markdown_table(df, a.metric)
    if a.out:
        write_markdown(a.out, a.experiment, md, f"python -m benchmarks.cells collect {a.experiment} --by "
                       + " ".join(a.by))
    print(md)


if __name__ == "__main__":
    main()
