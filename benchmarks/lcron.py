"""LCRON (cascade ranking as one network) on the simulated RecFlow: the cells and the page benchmarks/results/lcron.md.

    python -m benchmarks run lcron --profile cpu [--only config=full --only method=lcron]   # resumable cells
    python -m benchmarks page lcron --profile cpu                                           # the page, from cells

Every table keeps its own cell folder (``benchmarks/results/cells/lcron_2stage_full``, ``lcron_3stage_mid``, ...;
the claims in ``benchmarks/claims/lcron.yaml`` name them): :class:`TableCells` is one runner experiment over those
folders. The config (``benchmarks/config/lcron.yaml``) lists the tables a profile runs. The page's prose is
``benchmarks/templates/lcron.md``; the paper's numbers come from the claims data (``benchmarks.claims.paper``).
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from benchmarks.cells import CELLS, Experiment, cell_key, collect, load_cells, markdown_table
from benchmarks import runner
from benchmarks.runner import BenchConfig, flag

TEMPLATE = Path(__file__).resolve().parent / "templates" / "lcron.md"
SUPERSEDED = "lcron_superseded_pre_issue18"  # cells made before the issue-18 loss fixes; compared, never tabled
FIX_COMMIT = "6a7add7"  # cascade: losses equal upstream (kwai/LCRON) in value and gradient (issue 18)
TWO, THREE = ["joint", "recall_dssm", "recall_din", "ndcg_din", "ndcg_dssm"], ["joint", "recall_dssm", "recall_mlp",
                                                                               "recall_din", "ndcg_din"]


class LcronBench(BenchConfig):
    """Which LCRON cells exist. A cell's params (config, stages, method, seed, variant, tau, ...) say what it computes,
    so these fields are page fields: adding a seed or a table leaves the stored cells current."""

    page_fields: ClassVar[tuple[str, ...]] = ("tables", "seeds", "taus", "extra_seeds", "throughput_steps")

    tables: list[str]
    """the cell folders (tables) this profile runs and shows; see :func:`table_grids`."""
    seeds: list[int] = [0, 1, 2]
    """training seeds of every table."""
    taus: list[int] = [1, 20, 50, 100, 200, 1000]
    """the τ sweep's NeuralSort temperatures."""
    extra_seeds: list[int] = [3, 4, 5, 6, 7]
    """more seeds for the LCRON vs FS-RankNet check on `main` (lcron_investigate_seeds_main)."""
    throughput_steps: int = 5
    """steady-state training steps timed per method (after one warm-up step)."""
    threads: int = 1
    """torch threads per worker."""


def table_grids(cfg: LcronBench) -> dict[str, dict[str, list]]:
    """Cell folder → grid, for every table the benchmark knows (the config picks some)."""
    from siftkit.cascade.train import METHODS, ORACLES

    m, o, s = list(METHODS), list(ORACLES), list(cfg.seeds)

    def two(config, methods, seeds=s, **axes):
        return {"config": [config], "stages": [2], "method": methods, **axes, "seed": seeds}

    # the full table's order of work on the CPU: the cheap oracles, then LCRON and the baselines the page compares first
    first = o + ["lcron", "fs_ranknet", "icc", "arf_v2", "fs_lambdaloss", "rankflow", "arf", "bce"]
    throughput = "lcron_throughput_main" + ("" if cfg.device == "cpu" else "_" + cfg.device.split(":")[0])
    return {
        "lcron_2stage_full": two("full", first + [x for x in m if x not in first]),
        "lcron_2stage_main": two("main", m),
        "lcron_2stage_mid": two("mid", m),
        "lcron_3stage_mid": {"config": ["mid"], "stages": [3], "method": m, "seed": s},
        "lcron_ablation_mid": two("mid", ["lcron"], variant=["full", "no_e2e", "no_single"]),
        "lcron_tau_mid": two("mid", ["lcron"], tau=list(cfg.taus)),
        "lcron_oracles_main": two("main", o, seeds=[0]),
        "lcron_oracles_mid": {"config": ["mid"], "stages": [2, 3], "method": o, "seed": [0]},
        "lcron_investigate_q_mid": two("mid", ["lcron"], variant=["serving_q"]),
        "lcron_investigate_binarize_mid": {"config": ["mid"], "stages": [3], "method": ["lcron"],
                                           "binarize_y": [False], "seed": s},
        "lcron_investigate_icc_mid": two("mid", ["icc"], seeds=s[:1], icc_fix_k=[False, True]),
        "lcron_investigate_seeds_main": two("main", ["lcron", "fs_ranknet"], seeds=list(cfg.extra_seeds)),
        "lcron_throughput_main": {"method": m, "stages": [2], "steps": [cfg.throughput_steps], "device": [cfg.device]},
    } | ({throughput: {"method": m, "stages": [2], "steps": [cfg.throughput_steps], "device": [cfg.device]}}
         if throughput != "lcron_throughput_main" else {})


@dataclass
class TableCells(Experiment):
    """One runner experiment whose cells live in several folders, one per table (``tables``: folder → grid)."""

    tables: dict[str, dict[str, list]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._folder: dict[str, str] = {}
        for folder in self.tables:
            for p in self.part(folder).cells():
                if self._folder.setdefault(cell_key(p), folder) != folder:
                    raise ValueError(f"cell {cell_key(p)} is in two tables: {self._folder[cell_key(p)]}, {folder}")
        self.grid = [p for f in self.tables for p in self.part(f).cells()]

    def part(self, folder: str) -> Experiment:
        """The plain experiment of one table (same code, stamp and legacy rule)."""
        return Experiment(folder, self.tables[folder], self.fn, self.root, self.sources, self.inputs, self.settings,
                          self.cell_settings, self.legacy_files, self.legacy_at)

    def folders(self) -> list[str]:
        return list(self.tables)

    def path(self, params: dict[str, Any]) -> Path:
        return Path(self.root) / self._folder[cell_key(params)] / f"{cell_key(params)}.json"

    def partial_path(self, params: dict[str, Any]) -> Path:
        return Path(self.root) / self._folder[cell_key(params)] / "_partial" / f"{cell_key(params)}.json"

    def load(self, allow_stale: bool = False) -> list[dict[str, Any]]:
        """Every table's stored cells (stale ones refused as :meth:`Experiment.load` does), each with ``table``."""
        return [{**r, "table": f} for f in self.tables for r in self.part(f).load(allow_stale)]

    def load_partials(self) -> list[dict[str, Any]]:
        return [r for f in self.tables for r in self.part(f).load_partials()]


# ---------------------------------------------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------------------------------------------

def cell(cfg: LcronBench, params: dict) -> dict:
    """Train and evaluate one cell (:func:`siftkit.cascade.experiment.run_cell`), or time one method's training."""
    import torch

    torch.set_num_threads(cfg.threads)
    if "steps" in params:
        return throughput_cell(params)
    from siftkit.cascade.experiment import run_cell

    return run_cell(params, device=cfg.device)


def throughput_cell(params: dict) -> dict:
    """Train ``steps`` + 1 steps of one method at batch 1024 on the `main` shapes in a fresh process (one thread)."""
    code = ("import json,sys,torch;torch.set_num_threads(1);"
            "from siftkit.cascade.simulator import preset, simulate;"
            "from siftkit.cascade.train import TrainConfig, train;"
            f"tr,_=simulate(preset('main', n_stages={params['stages']}, train_days=1, requests_per_day=1024*"
            f"{params['steps'] + 1}, test_requests=16));"
            f"m,s=train(tr, TrainConfig(method='{params['method']}', n_stages={params['stages']},"
            f" max_steps={params['steps'] + 1}, device='{params.get('device', 'cpu')}'));"
            "print(json.dumps(s))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    s = json.loads(out.stdout.strip().splitlines()[-1])
    return {"requests_per_s": s["requests_per_s"], "seconds_per_step": s["train_seconds"] / s["steps"],
            "peak_rss_mib": s["peak_rss_mib"], "steps": s["steps"], "peak_gpu_mib": s.get("peak_gpu_mib", 0.0)}


# ---------------------------------------------------------------------------------------------------------------
# page: numbers from the cells, words from the template
# ---------------------------------------------------------------------------------------------------------------

@functools.cache
def _blocks() -> dict[str, str]:
    """The template's blocks: ``%% name`` lines start each one."""
    parts = re.split(r"^%% (\w+)\n", TEMPLATE.read_text(), flags=re.M)
    return {parts[i]: parts[i + 1].strip("\n") for i in range(1, len(parts), 2)}


def _where(cells: list[dict], **where) -> list[dict]:
    return [c for c in cells if all(c["params"].get(k, "full" if k == "variant" else None) == v
                                    for k, v in where.items())]


def _mean(cells: list[dict], metric: str = "joint", **where) -> float | None:
    xs = [c["metrics"][metric] for c in _where(cells, **where)]
    return sum(xs) / len(xs) if xs else None


def _complete(cells: list[dict], n_seeds: int) -> tuple[list[dict], list[str]]:
    """Cells of the methods that have every seed, and the methods left out (fewer seeds)."""
    by: dict[str, list[dict]] = {}
    for c in cells:
        by.setdefault(c["params"]["method"], []).append(c)
    keep = [c for m, cs in by.items() if len(cs) >= n_seeds or m.startswith(("oracle", "random")) for c in cs]
    return keep, sorted(m for m, cs in by.items() if len(cs) < n_seeds and not m.startswith(("oracle", "random")))


def _fmt(x: float | None, sign: bool = False) -> str:
    return "–" if x is None else (f"{x:+.4f}" if sign else f"{x:.4f}")


def _table(cells: list[dict], by: str, metrics: list[str], paper: dict | None) -> str:
    from siftkit.cascade.train import ORACLES

    cells = [c for c in cells if c["params"].get("method") not in ORACLES]
    df = collect("", by=[by], metrics=metrics, records=cells)
    df = df.sort_values("joint", ascending=False) if by == "method" else df.sort_values(by)
    df["n"] = df["n"].astype(int)
    warn = {c["params"][by] for c in cells if flag(c)}
    df[by] = [f"{v}{' ⚠' if v in warn else ''}" for v in df[by]]
    lines = markdown_table(df, metrics).splitlines()
    if paper:
        lines[0] += " paper joint |"
        lines[1] += "---|"
        by_text = {str(k): v for k, v in paper.items()}
        for i, v in enumerate(df[by]):
            lines[2 + i] += f" {_fmt(by_text.get(str(v).split(' ')[0]))} |"
    return "\n".join(lines)


def _ordering(cells: list[dict]) -> str:
    from siftkit.cascade.train import ORACLES

    means = {m: _mean(cells, method=m) for m in {c["params"]["method"] for c in cells} - set(ORACLES)}
    return " > ".join(f"{m} {v:.4f}" for m, v in sorted(means.items(), key=lambda kv: -kv[1]))


def _tests(cells: list[dict]) -> str:
    from siftkit.cascade.experiment import significance

    rows = [r for r in significance(cells) if "diff" in r]
    lines = ["| baseline | seeds | LCRON − baseline (joint) | p (paired t over seeds) | p (paired t over requests) "
             "| LCRON better at 5% (seeds) |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['seeds']} | {r['diff']:+.4f} | {r['p_seeds']:.3g} | {r['p_requests']:.3g} | "
              f"{'yes' if r['significant_5pct'] and r['diff'] > 0 else 'no'} |" for r in rows]
    return "\n".join(lines)


def _section(cfg: LcronBench, exp: TableCells, cells: list[dict], folder: str, by: str, metrics: list[str],
             paper: dict | None) -> str:
    b = _blocks()
    grid = exp.part(folder).cells()
    mine = [c for c in cells if c["table"] == folder]
    if not mine:
        return b["not_run"].format(folder=folder, n_grid=len(grid), superseded=SUPERSEDED)
    shown, _ = _complete(mine, len(cfg.seeds)) if by == "method" else (mine, [])
    have = {c["params"].get("method") for c in shown}
    left_out = sorted({p["method"] for p in grid if by == "method" and p["method"] not in have})
    secs = [c["seconds"] for c in mine if not str(c["params"].get("method")).startswith(("oracle", "random"))] or [
        c["seconds"] for c in mine]
    devices = ", ".join(sorted({str(c["metrics"].get("device", "cpu")) for c in mine}))
    trained = [c for c in shown if not str(c["params"].get("method")).startswith(("oracle", "random"))]
    text = b["table"].format(folder=folder, n_cells=len(mine), n_grid=len(grid), devices=devices,
                             seconds=sum(secs) / len(secs),
                             table=_table(shown, by, metrics, paper) if trained else b["empty"])
    if left_out:
        text = b["partial"].format(n_seeds=len(cfg.seeds), left_out=", ".join(left_out)) + "\n\n" + text
    if by == "method" and any(c["params"]["method"] == "lcron" for c in trained):
        text += "\n\n" + b["tests"].format(ordering=_ordering(shown), tests=_tests(shown))
    return text


def _bounds(cells: list[dict]) -> str:
    from siftkit.cascade.train import ORACLES

    rows = sorted({(c["params"]["config"], c["params"]["stages"], c["params"]["method"]) for c in cells
                   if c["params"].get("method") in ORACLES}, key=lambda r: (["full", "main", "mid"].index(r[0]), r[1:]))
    return "\n".join(["| config | stages | scorer | joint recall |", "|---|---|---|---|"]
                     + [f"| {cf} | {st} | {m} | {_mean(cells, config=cf, stages=st, method=m):.4f} |"
                        for cf, st, m in rows])


def _throughput(cells: list[dict]) -> str:
    rows = sorted((c for c in cells if "steps" in c["params"]), key=lambda c: c["params"]["method"])
    return "\n".join(["| method | device | requests/s | s/step | peak RSS MiB |", "|---|---|---|---|---|"]
                     + [f"| {c['params']['method']}{flag(c)} | {c['params']['device']} | "
                        f"{c['metrics']['requests_per_s']:.0f} | {c['metrics']['seconds_per_step']:.2f} | "
                        f"{c['metrics']['peak_rss_mib']:.0f} |" for c in rows])


def _before_after(cells: list[dict], folder: str, **where) -> tuple[float, float, int] | None:
    """(superseded mean, current mean, seeds) of joint recall over the seeds both sets of cells have."""
    new = {c["params"]["seed"]: c["metrics"]["joint"] for c in _where([c for c in cells if c["table"] == folder],
                                                                     **where)}
    old = {c["params"]["seed"]: c["metrics"]["joint"] for c in _where(load_cells(folder, CELLS / SUPERSEDED), **where)}
    seeds = sorted(set(new) & set(old))
    if not seeds:
        return None
    return sum(old[s] for s in seeds) / len(seeds), sum(new[s] for s in seeds) / len(seeds), len(seeds)


def _changes(cells: list[dict]) -> str:
    rows = []
    for folder, by in (("lcron_2stage_full", "method"), ("lcron_2stage_main", "method"), ("lcron_3stage_mid", "method"),
                       ("lcron_ablation_mid", "variant"), ("lcron_tau_mid", "tau")):
        for v in sorted({c["params"].get(by, "full") for c in cells if c["table"] == folder}, key=str):
            ba = _before_after(cells, folder, **{by: v})
            if ba is not None:
                rows.append(f"| `{folder}` | {by} = {v} | {ba[2]} | {ba[0]:.4f} | {ba[1]:.4f} | {ba[1] - ba[0]:+.4f} |")
    return "\n".join(["| cells | row | seeds (common) | before | after | change |", "|---|---|---|---|---|---|"] + rows)


def _p(cells: list[dict], a: str, b: str) -> tuple[float | None, float | None, int]:
    """(mean of a − b over the seeds both have, paired t p over seeds, seeds)."""
    from siftkit.metrics.stats import paired_t_test

    va = {c["params"]["seed"]: c["metrics"]["joint"] for c in _where(cells, method=a)}
    vb = {c["params"]["seed"]: c["metrics"]["joint"] for c in _where(cells, method=b)}
    seeds = sorted(set(va) & set(vb))
    if len(seeds) < 2:
        return None, None, len(seeds)
    t = paired_t_test([va[s] for s in seeds], [vb[s] for s in seeds])
    return t.diff, t.p_value, len(seeds)


def _unverified(cells: list[dict]) -> dict[str, str]:
    """How many ⚠ cells were made on a commit containing the issue-18 fix, and how far its method code is from HEAD."""
    from benchmarks.cells import REPO

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)

    unver = [c for c in cells if c.get("status") == "unverified"]
    commits = {str(c.get("git_commit")).removesuffix("+dirty") for c in unver}
    after = {k for k in commits if git("merge-base", "--is-ancestor", FIX_COMMIT, k).returncode == 0}
    lines = [sum(int(a) + int(b) for a, b, *_ in (ln.split("\t") for ln in git(
        "diff", "--numstat", k, "HEAD", "--", *BENCHMARK.legacy_files).stdout.splitlines())) for k in after]
    if not unver:
        return {"unverified_note": f"The runner vouches for every cell ({len(cells)}): the hashes of the source files "
                                   "each one stamps equal today's."}
    n_after = sum(str(c.get("git_commit")).removesuffix("+dirty") in after for c in unver)
    return {"unverified_note": (
        "Rows marked ⚠ come from cells the runner cannot vouch for because they were made from a tree with "
        f"uncommitted changes; the closing \"Cells\" section lists each one. {n_after} of the {len(unver)} such "
        f"cells were made on a commit that contains the issue-18 fix (`{FIX_COMMIT}`); their method code "
        f"(`siftkit/cascade`) differs from today's by at most {max(lines, default=0)} changed lines.")}


def _numbers(cfg: LcronBench, cells: list[dict]) -> dict[str, str]:
    """Every number the notes quote, formatted, keyed by the template's field names."""
    import statistics

    from benchmarks.claims import paper

    pp = paper("lcron")
    t = {f: [c for c in cells if c["table"] == f] for f in table_grids(cfg)}
    full, _ = _complete(t["lcron_2stage_full"], len(cfg.seeds))
    old_main, old_full = load_cells("lcron_2stage_main", CELLS / SUPERSEDED), load_cells("lcron_2stage_full",
                                                                                         CELLS / SUPERSEDED)
    out: dict[str, str] = {}
    for name, cs in (("main", t["lcron_2stage_main"]), ("full", full), ("mid", t["lcron_2stage_mid"]),
                     ("old_main", old_main), ("old_full", old_full)):
        d, p, n = _p(cs, "fs_ranknet", "lcron")
        out |= {f"{name}_fsr_gap": _fmt(d, True), f"{name}_fsr_p": "–" if p is None else f"{p:.2g}",
                f"{name}_fsr_n": str(n)}
        for m in ("lcron", "icc", "fs_ranknet", "arf_v2"):
            out[f"{name}_{m}"] = _fmt(_mean(cs, method=m))
        icc = sorted(c["metrics"]["joint"] for c in _where(cs, method="icc"))
        out[f"{name}_icc_seeds"] = ", ".join(f"{x:.4f}" for x in icc) or "–"
        out[f"{name}_icc_std"] = _fmt(statistics.stdev(icc)) if len(icc) > 1 else "–"
        out[f"{name}_order"] = _ordering(cs) or "–"
    out["paper_fsr_gap"] = _fmt(pp["joint_2stage"]["fs_ranknet"] - pp["joint_2stage"]["lcron"], True)
    out["paper_icc_gap"] = _fmt(pp["joint_2stage"]["icc"] - pp["joint_2stage"]["lcron"], True)
    out["paper_order"] = " > ".join(f"{m} {v:.4f}" for m, v in sorted(pp["joint_2stage"].items(), key=lambda kv: -kv[1]))
    out["paper_order3"] = " > ".join(f"{m} {v:.4f}" for m, v in sorted(pp["joint_3stage"].items(), key=lambda kv: -kv[1]))
    out["order3"] = _ordering(t["lcron_3stage_mid"]) or "–"
    for cf, cs in (("main", t["lcron_oracles_main"]), ("full", t["lcron_2stage_full"]), ("mid", t["lcron_oracles_mid"])):
        out[f"random_{cf}"] = _fmt(_mean(cs, method="random", stages=2))
    trained = [c["seconds"] for c in full if not c["params"]["method"].startswith(("oracle", "random"))]
    out["full_minutes"] = f"{sum(trained) / len(trained) / 60:.0f}" if trained else "–"
    full_have = {c["params"]["method"] for c in full}
    full_left = [m for m in table_grids(cfg)["lcron_2stage_full"]["method"]
                 if m not in full_have and not m.startswith(("oracle", "random"))]
    out["full_status"] = (f"The `full` table is partial: the rows shown are the methods whose seeds all finished; "
                          f"{', '.join(full_left)} are listed with the table." if full_left else
                          f"Every method of the `full` table has all {len(cfg.seeds)} seeds.")
    out["full_gpu_cell_minutes"] = f"{sum(c['seconds'] for c in old_full) / 60:.0f}"
    abl = t["lcron_ablation_mid"]
    a = {v: _mean(abl, variant=v) for v in ("full", "no_e2e", "no_single")}
    sd = statistics.stdev([c["metrics"]["joint"] for c in _where(abl, variant="full")]) if len(
        _where(abl, variant="full")) > 1 else None
    out |= {"abl_full": _fmt(a["full"]), "abl_no_e2e": _fmt(a["no_e2e"]), "abl_no_single": _fmt(a["no_single"]),
            "abl_std": _fmt(sd)}
    for v in ("no_e2e", "no_single"):
        out[f"abl_{v}_gap"] = _fmt(None if None in (a[v], a["full"]) else a[v] - a["full"], True)
        out[f"paper_{v}_gap"] = _fmt(pp["ablation"][v] - pp["ablation"]["full"], True)
        ba_v, ba_f = _before_after(cells, "lcron_ablation_mid", variant=v), _before_after(cells, "lcron_ablation_mid",
                                                                                         variant="full")
        out[f"old_abl_{v}_gap"] = _fmt(None if not (ba_v and ba_f) else ba_v[0] - ba_f[0], True)
    q = {"q10": _mean(abl, variant="full"), "serving_q": _mean(t["lcron_investigate_q_mid"], variant="serving_q")}
    out |= {"q10": _fmt(q["q10"]), "q_serving": _fmt(q["serving_q"]),
            "q_gap": _fmt(None if None in q.values() else q["serving_q"] - q["q10"], True),
            "paper_q_gap": _fmt(pp["training_q"]["serving_q"] - pp["training_q"]["q10"], True)}
    taus = {x: _mean(t["lcron_tau_mid"], tau=x) for x in cfg.taus}
    out["taus"] = ", ".join(f"τ = {x}: {_fmt(v)}" for x, v in taus.items())
    out["tau_best"] = str(max((x for x in taus if taus[x] is not None), key=taus.get, default="–"))
    out["paper_taus"] = ", ".join(f"τ = {x}: {v:.4f}" for x, v in pp["tau"].items())
    return out


def page(cfg: LcronBench, cells: list[dict]) -> str:
    from benchmarks.claims import claims_section, paper

    pp = paper("lcron")
    exp = BENCHMARK.experiment_for(cfg)
    sections = {"two_full": ("lcron_2stage_full", "method", TWO, pp["joint_2stage"]),
                "two_main": ("lcron_2stage_main", "method", TWO, pp["joint_2stage"]),
                "two_mid": ("lcron_2stage_mid", "method", TWO, pp["joint_2stage"]),
                "three_mid": ("lcron_3stage_mid", "method", THREE, pp["joint_3stage"]),
                "ablations": ("lcron_ablation_mid", "variant", ["joint", "recall_dssm", "recall_din"], pp["ablation"]),
                "tau": ("lcron_tau_mid", "tau", ["joint", "recall_din"], pp["tau"])}
    fields = {k: _section(cfg, exp, cells, *v) if v[0] in cfg.tables else "(not in this profile)"
              for k, v in sections.items()}
    by_table = {f: [c for c in cells if c["table"] == f] for f in cfg.tables}
    loaded = {f: by_table.get(f, []) for f in table_grids(cfg)}
    claims = claims_section("lcron", load=lambda name: loaded.get(name, []))
    numbers = _numbers(cfg, cells)
    missing = ('A "–" below stands for a number whose cells did not all finish (see the partial tables above).\n\n'
               if "–" in numbers.values() else "")
    return _blocks()["page"].format(**fields, **numbers, **_unverified(cells), missing_note=missing,
                                    bounds=_bounds(cells),
                                    throughput=_throughput(cells), changes=_changes(cells), claims=claims,
                                    superseded=SUPERSEDED).rstrip()


SOURCES = ["siftkit/cascade/loss.py", "siftkit/cascade/baselines.py", "siftkit/cascade/models.py",
           "siftkit/cascade/simulator.py", "siftkit/cascade/data.py", "siftkit/cascade/evaluate.py",
           "siftkit/cascade/train.py",
           "siftkit/cascade/experiment.py::BATCH,VARIANTS,lcron_config,load_data,run_cell",
           "benchmarks/lcron.py::cell,throughput_cell"]


class Benchmark(runner.Benchmark):
    """The runner's benchmark whose experiment is a :class:`TableCells` over the configured tables."""

    def experiment_for(self, cfg: LcronBench, root: Path = CELLS) -> TableCells:
        plain = super().experiment_for(cfg, root)
        grids = table_grids(cfg)
        return TableCells(self.name, [], plain.fn, root, plain.sources, plain.inputs, plain.settings,
                          plain.cell_settings, plain.legacy_files, plain.legacy_at,
                          tables={f: grids[f] for f in cfg.tables})


BENCHMARK = Benchmark(
    name="lcron", title="LCRON: cascade ranking as one network (simulated RecFlow)", config=LcronBench,
    grid=lambda cfg: [], cell=cell, page=page, sources=SOURCES,
    # cells from before the port (no stamp) are adopted when their commit is clean and the method code is unchanged
    # from it: the old benchmarks/lcron.py passed the params straight to siftkit.cascade.experiment.run_cell
    legacy_files=["siftkit/cascade/loss.py", "siftkit/cascade/baselines.py", "siftkit/cascade/models.py",
                  "siftkit/cascade/simulator.py", "siftkit/cascade/data.py", "siftkit/cascade/evaluate.py",
                  "siftkit/cascade/train.py", "siftkit/cascade/experiment.py"],
    legacy_at="f945d609b9e126d6e3e24769abb3e56c7eb850cd",
)
