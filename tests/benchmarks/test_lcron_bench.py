"""LCRON on the runner (benchmarks/lcron.py): one experiment over the tables' own cell folders, and the page rendered
from cells, with a partial table showing only the methods whose seeds all finished."""

from __future__ import annotations

import random
import re

import pytest

from benchmarks.cells import cell_key, run_experiment
from benchmarks.claims import paper
from benchmarks.lcron import BENCHMARK, LcronBench, TableCells, page, table_grids


def _fake(params: dict) -> dict:
    return {"joint": 0.5 + 0.01 * params.get("seed", 0)}


def test_each_table_keeps_its_folder_and_a_rerun_skips_done_cells(tmp_path):
    cfg = LcronBench(tables=["lcron_oracles_main", "lcron_ablation_mid"], seeds=[0, 1])
    grids = table_grids(cfg)
    exp = TableCells("lcron", [], _fake, tmp_path, tables={t: grids[t] for t in cfg.tables})
    assert run_experiment(exp, progress=False) == {"ran": 9, "skipped": 0, "total": 9}  # 3 oracles; 3 variants × 2
    assert len(list((tmp_path / "lcron_oracles_main").glob("*.json"))) == 3
    abl = sorted(p.name for p in (tmp_path / "lcron_ablation_mid").glob("*.json"))
    assert abl[0] == "config=mid__method=lcron__seed=0__stages=2__variant=full.json" and len(abl) == 6
    loaded = exp.load()
    assert sorted({c["table"] for c in loaded}) == sorted(cfg.tables) and len(loaded) == 9
    assert all(c["status"] == "fresh" for c in loaded)
    assert run_experiment(exp, progress=False) == {"ran": 0, "skipped": 9, "total": 9}


def test_a_cell_in_two_tables_is_refused(tmp_path):
    grid = {"config": ["mid"], "stages": [2], "method": ["lcron"], "seed": [0]}
    with pytest.raises(ValueError, match="in two tables"):
        TableCells("lcron", [], _fake, tmp_path, tables={"a": grid, "b": grid})


def test_the_benchmark_runs_the_configured_tables_in_their_folders(tmp_path):
    cfg = BENCHMARK.load_config("cpu", ["tables=[lcron_2stage_full, lcron_2stage_main]"])
    exp = BENCHMARK.experiment_for(cfg, tmp_path)
    assert exp.folders() == ["lcron_2stage_full", "lcron_2stage_main"]
    p = {"config": "full", "stages": 2, "method": "lcron", "seed": 0}
    assert exp.path(p) == tmp_path / "lcron_2stage_full" / f"{cell_key(p)}.json"
    assert len(exp.cells()) == (8 + 3) * 3 + 8 * 3  # full: 8 methods + 3 oracles; main: 8 methods; 3 seeds each
    assert exp.stamp["settings"] == {}  # tables, seeds, taus only say which cells exist


def _cell(table: str, method: str, seed: int, joint: float, **params) -> dict:
    rs = random.Random(hash((table, method, seed)))
    hits = "".join(rs.choice("6789a") for _ in range(40))
    m = {"joint": joint, "recall_dssm": joint + 0.1, "recall_din": joint, "ndcg_din": joint - 0.1,
         "ndcg_dssm": joint - 0.2, "joint_per_request": hits}
    return {"table": table, "params": {"config": table.split("_")[-1], "stages": 2, "method": method, "seed": seed,
                                       **params}, "metrics": m, "seconds": 60.0, "status": "fresh",
            "git_commit": "0" * 40}


def test_page_from_cells_shows_complete_methods_only_and_the_papers_numbers():
    cfg = BENCHMARK.load_config("cpu", ["tables=[lcron_2stage_full, lcron_2stage_main]"])
    methods = ["lcron", "arf_v2", "fs_lambdaloss", "rankflow", "arf", "bce", "icc", "fs_ranknet"]
    cells = [_cell("lcron_2stage_main", m, s, 0.75 - 0.01 * i + 0.001 * s) for i, m in enumerate(methods)
             for s in range(3)]
    cells += [_cell("lcron_2stage_full", m, s, 0.8 - 0.02 * i + 0.001 * s) for i, m in enumerate(["lcron", "fs_ranknet"])
              for s in range(3)]
    cells += [_cell("lcron_2stage_full", "icc", 0, 0.6)]  # one seed of three: not shown
    text = page(cfg, cells)
    assert not re.search(r"\{[a-z_0-9]+\}", text)  # every template field was filled
    full = text.split("config `full`")[1].split("## Two-stage cascade, config `main`")[0]
    assert "**Partial.**" in full and "icc" in full.split("**Partial.**")[1].split("\n\n")[0]
    rows = [ln for ln in full.splitlines() if ln.startswith("| ") and not ln.startswith(("| method", "| baseline"))]
    table_rows = [r.split("|")[1].strip() for r in rows if "±" in r]
    assert table_rows == ["lcron", "fs_ranknet"]
    assert f"{paper('lcron')['joint_2stage']['fs_ranknet']:.4f} |" in next(r for r in rows if r.startswith(
        "| fs_ranknet"))
    assert "Ordering by joint recall: lcron 0.8010 > fs_ranknet 0.7810" in full
    assert "-0.0700 on `main`" in text  # FS-RankNet − LCRON: 0.68 + 0.001 s against 0.75 + 0.001 s, 3 seeds


def test_a_table_where_no_method_has_every_seed_says_so():
    cfg = BENCHMARK.load_config("cpu", ["tables=[lcron_2stage_full]"])
    text = page(cfg, [_cell("lcron_2stage_full", "lcron", 0, 0.8), _cell("lcron_2stage_full", "random", 0, 0.5)])
    full = text.split("config `full`")[1].split("## Two-stage cascade, config `main`")[0]
    assert "(No method has all its seeds yet.)" in full and "lcron" in full.split("**Partial.**")[1].split("\n\n")[0]
    assert "Ordering by joint recall" not in full
