"""LCRON benchmark grids (resumable cells) and the results page benchmarks/results/lcron.md.

    nice -n 10 python -m benchmarks.lcron two-stage [--workers 2 --worker 0]   # main config, 8 methods × 3 seeds
    nice -n 10 python -m benchmarks.lcron three-stage                           # mid config, 8 methods × 3 seeds
    nice -n 10 python -m benchmarks.lcron ablations                             # mid config, LCRON −L_e2e / −L_single
    nice -n 10 python -m benchmarks.lcron tau                                   # mid config, τ sweep
    nice -n 10 python -m benchmarks.lcron oracles
    nice -n 10 python -m benchmarks.lcron throughput                            # main shapes, one process per method
    python -m benchmarks.lcron write                                            # → benchmarks/results/lcron.md

Every process runs with one torch thread. ``--workers K --worker i`` runs every K-th missing cell, so K processes
can share a grid. Cells live under benchmarks/results/cells/lcron_*/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from benchmarks.cells import CELLS, RESULTS, Experiment, collect, load_cells, markdown_table, run_experiment, \
    write_markdown

SEEDS = [0, 1, 2]
TAUS = [1, 20, 50, 100, 200, 1000]


def _methods():
    from siftkit.cascade.train import METHODS

    return list(METHODS)


def experiments(device: str = "cpu") -> dict[str, Experiment]:
    import functools

    from siftkit.cascade.experiment import run_cell as _run_cell
    from siftkit.cascade.train import ORACLES

    run_cell = functools.partial(_run_cell, device=device)

    m = _methods()
    return {
        "two-stage": Experiment("lcron_2stage_main", {"config": ["main"], "stages": [2], "method": m,
                                                      "seed": SEEDS}, run_cell),
        "two-stage-full": Experiment("lcron_2stage_full", {"config": ["full"], "stages": [2], "method": m + list(ORACLES),
                                                           "seed": SEEDS}, run_cell),
        "three-stage": Experiment("lcron_3stage_mid", {"config": ["mid"], "stages": [3], "method": m,
                                                       "seed": SEEDS}, run_cell),
        "ablations": Experiment("lcron_ablation_mid", {"config": ["mid"], "stages": [2], "method": ["lcron"],
                                                       "variant": ["full", "no_e2e", "no_single"], "seed": SEEDS},
                                run_cell),
        "tau": Experiment("lcron_tau_mid", {"config": ["mid"], "stages": [2], "method": ["lcron"], "tau": TAUS,
                                            "seed": SEEDS[:2]}, run_cell),
        "cpu-check": Experiment("lcron_cpu_check_mid", {"config": ["mid"], "stages": [2], "method": ["lcron"],
                                                        "variant": ["full"], "seed": SEEDS[:2]}, run_cell),
        "investigate-binarize": Experiment("lcron_investigate_binarize_mid", {
            "config": ["mid"], "stages": [3], "method": ["lcron"], "binarize_y": [False], "seed": SEEDS}, run_cell),
        "investigate-icc": Experiment("lcron_investigate_icc_mid", {
            "config": ["mid"], "stages": [2], "method": ["icc"], "icc_fix_k": [False, True], "seed": SEEDS[:1]},
            run_cell),
        "oracles": Experiment("lcron_oracles_main", {"config": ["main"], "stages": [2], "method": list(ORACLES),
                                                     "seed": [0]}, run_cell),
        "oracles-mid": Experiment("lcron_oracles_mid", {"config": ["mid"], "stages": [2, 3],
                                                        "method": list(ORACLES), "seed": [0]}, run_cell),
    }


def throughput_cell(params: dict) -> dict:
    """Train ``steps`` steps of one method at batch 1024 on the main config's shapes in a fresh process."""
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
    # the first step pays one-off allocation costs; report the steady-state rate over the remaining steps
    return {"requests_per_s": s["requests_per_s"], "seconds_per_step": s["train_seconds"] / s["steps"],
            "peak_rss_mib": s["peak_rss_mib"], "steps": s["steps"], "peak_gpu_mib": s.get("peak_gpu_mib", 0.0)}


def throughput_experiment(device: str = "cpu") -> Experiment:
    name = "lcron_throughput_main" + ("" if device == "cpu" else "_" + device.split(":")[0])
    return Experiment(name, {"method": _methods(), "stages": [2], "steps": [5], "device": [device]},
                      throughput_cell)


def _fmt(v, d=4):
    return f"{v:.{d}f}"


def _table_with_paper(name: str, by: list[str], paper: dict | None, metrics: list[str]) -> str:
    df = collect(name, by=by, metrics=metrics)
    order = {m: i for i, m in enumerate(_methods())}
    if "method" in df.columns:
        df = df.sort_values("joint", ascending=False, key=None)
    md = markdown_table(df, metrics)
    if paper and "method" in df.columns:
        lines = md.splitlines()
        lines[0] += " paper joint |"
        lines[1] += "---|"
        for i, (_, r) in enumerate(df.iterrows()):
            lines[2 + i] += f" {paper.get(r['method'], '–')} |"
        md = "\n".join(lines)
    del order
    return md


def _significance_table(name: str) -> str:
    from siftkit.cascade.experiment import significance

    rows = significance(load_cells(name))
    if not rows:
        return "(no LCRON cells yet)"
    lines = ["| baseline | seeds | LCRON − baseline (joint) | p (paired t over seeds) | p (paired t over requests) "
             "| LCRON better at 5% (seeds) |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "diff" not in r:
            continue
        lines.append(f"| {r['method']} | {r['seeds']} | {r['diff']:+.4f} | {r['p_seeds']:.3g} | "
                     f"{r['p_requests']:.3g} | {'yes' if r['significant_5pct'] and r['diff'] > 0 else 'no'} |")
    return "\n".join(lines)


def _ordering(name: str) -> str:
    df = collect(name, by=["method"], metrics=["joint"], ci=False).sort_values("joint", ascending=False)
    return " > ".join(f"{r['method']} {r['joint']:.4f}" for _, r in df.iterrows())


def write_page(notes_path: Path | None = None) -> Path:
    from siftkit.cascade.experiment import PAPER_2STAGE, PAPER_3STAGE

    ex = experiments()
    parts = []
    two = ["joint", "recall_dssm", "recall_din", "ndcg_din", "ndcg_dssm"]
    three = ["joint", "recall_dssm", "recall_mlp", "recall_din", "ndcg_din"]
    sections = [("Two-stage cascade (DSSM 40 → 30, DIN 30 → 20), config `main`", "two-stage", ["method"], PAPER_2STAGE,
                 two),
                ("Three-stage cascade (DSSM 50 → 40, MLP 40 → 30, DIN 30 → 20), config `mid`", "three-stage",
                 ["method"], PAPER_3STAGE, three),
                ("Ablations (two-stage, config `mid`)", "ablations", ["variant"], None, ["joint", "recall_dssm",
                                                                                        "recall_din"]),
                ("τ sweep (two-stage LCRON, config `mid`)", "tau", ["tau"], None, ["joint", "recall_din"])]
    for title, key, by, paper, metrics in sections:
        e = ex[key]
        if not load_cells(e.name):
            parts.append(f"## {title}\n\n(not run yet)\n")
            continue
        parts.append(f"## {title}\n\nCells: `benchmarks/results/cells/{e.name}/`; mean ± std over seeds "
                     f"[95% bootstrap CI over seeds].\n\n{_table_with_paper(e.name, by, paper, metrics)}\n")
        if key in ("two-stage", "three-stage"):
            parts.append(f"Ordering by joint recall: {_ordering(e.name)}\n\n"
                         f"Paired t-tests, LCRON against each baseline:\n\n{_significance_table(e.name)}\n")
    import pandas as pd

    oracle_frames = [collect(n, by=["config", "stages", "method"], metrics=["joint"], ci=False)
                     for n in ("lcron_oracles_main", "lcron_oracles_mid") if load_cells(n)]
    if oracle_frames:
        df = pd.concat(oracle_frames)
        parts.append("## Sanity bounds (test day)\n\n" + "\n".join(
            ["| config | stages | scorer | joint recall |", "|---|---|---|---|"]
            + [f"| {r['config']} | {r['stages']} | {r['method']} | {r['joint']:.4f} |" for _, r in df.iterrows()])
            + "\n")
    if load_cells("lcron_throughput_main"):
        df = collect("lcron_throughput_main", by=["method"], metrics=["requests_per_s", "seconds_per_step",
                                                                      "peak_rss_mib"], ci=False)
        parts.append("## Training throughput and peak memory (main shapes, batch 1024, 1 thread)\n\n" + "\n".join(
            ["| method | requests/s | s/step | peak RSS MiB |", "|---|---|---|---|"]
            + [f"| {r['method']} | {r['requests_per_s']:.0f} | {r['seconds_per_step']:.2f} | {r['peak_rss_mib']:.0f} |"
               for _, r in df.iterrows()]) + "\n")
    notes = notes_path.read_text() if notes_path and notes_path.exists() else ""
    cmd = ("nice -n 10 python -m benchmarks.lcron all --workers 2   # (two processes: --worker 0 and --worker 1)\n"
           "python -m benchmarks.lcron write")
    return write_markdown(RESULTS / "lcron.md", "LCRON: cascade ranking as one network (simulated RecFlow)",
                          "\n".join(parts), cmd, notes)


def main(argv: list[str] | None = None) -> None:
    import torch

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["two-stage", "two-stage-full", "cpu-check", "investigate-binarize", "investigate-icc", "three-stage", "ablations", "tau", "oracles", "oracles-mid", "throughput", "all",
                                     "mid", "write"])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--worker", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="torch device for training (cpu, cuda)")
    ap.add_argument("--spawn", type=int, default=0, help="start this many worker processes and wait for them")
    a = ap.parse_args(argv)
    if a.spawn:
        procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.lcron", a.what, "--workers", str(a.spawn),
                                   "--worker", str(i), "--device", a.device]) for i in range(a.spawn)]
        print("workers exited with", [p.wait() for p in procs], flush=True)
        return
    if a.what == "write":
        print(write_page(Path(__file__).resolve().parent / "lcron_notes.md"))
        return
    ex = experiments(a.device)
    names = {"all": ["two-stage", "oracles", "oracles-mid", "ablations", "three-stage", "tau"],
             "mid": ["oracles-mid", "ablations", "three-stage", "tau"]}.get(a.what, [a.what])
    for n in names:
        e = throughput_experiment(a.device) if n == "throughput" else ex[n]
        mine = {json.dumps(c, sort_keys=True) for c in e.cells()[a.worker::a.workers]}  # fixed split of the grid
        print(n, run_experiment(e, progress=False, only=lambda c: json.dumps(c, sort_keys=True) in mine), flush=True)


if __name__ == "__main__":
    main()
_ = CELLS
