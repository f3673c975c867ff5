"""benchmarks/metadata_rag.py without models or data: the grids, the per-cell stamps, the nested subsets, and the
claims on hand-made cells (paired per column, bootstrap by database)."""

from __future__ import annotations

import pytest

from benchmarks import metadata_rag as bench
from benchmarks.claims import verdicts
from benchmarks.claims.spec import load_claims

CFG = bench.CatalogBench()


def _all_params() -> dict[str, list[dict]]:
    return {"metadata_rag": bench.grid(CFG), "metadata_rag_ablation": bench.ablation_grid(CFG),
            "metadata_rag_sft": bench.sft_grid(CFG), "metadata_rag_judge": bench.judge_grid(CFG)}


def test_grid_one_cell_per_dataset_condition_k_and_seed():
    cfg = bench.CatalogBench(random_seeds=[0, 1, 2])
    g = bench.grid(cfg)
    assert len(g) == len({tuple(sorted(p.items())) for p in g})
    systems = {(p["dataset"], bench.system_of(p), p.get("seed")) for p in g}
    assert ("bird", "ai_description", None) in systems and ("spider2", "ai_description", None) not in systems
    assert {s for d, s, seed in systems if d == "bird"} == set(bench.BASELINES) | set(cfg.llm_systems)
    assert sorted(seed for d, s, seed in systems if s == "random-3" and d == "bird") == [0, 1, 2]
    assert all("seed" not in p for p in g if p["condition"] != "random")  # deterministic systems: no seed axis
    ab = bench.ablation_grid(cfg)
    assert {bench.system_of(p) for p in ab} == set(cfg.ablation_systems)
    assert bench.system_of({"condition": "zero-shot", "k": 0}) == "zero-shot"
    assert bench.system_of({"condition": "rag", "k": 5}) == "rag-5"


def test_cell_settings_stamp_only_what_the_cell_used():
    base = bench._params("bird", "copy")
    assert bench.cell_settings(CFG, base) == {}  # enlarging the LLM subset leaves the baselines current
    rag = bench.cell_settings(CFG, bench._params("bird", "rag-3"))
    assert rag["n_llm"] == CFG.n_llm["bird"] and "embedder" not in rag
    dense = bench.cell_settings(CFG, bench._params("spider2", "dense-copy"))
    assert dense == {"embedder": CFG.embedder}
    assert bench.ablation_settings(CFG, bench._params("bird", "rag-1"))["n_ablation"] == CFG.n_ablation["bird"]
    assert bench.sft_settings(CFG, bench._params("bird", "sft-3"))["sft"] == CFG.sft


@pytest.mark.parametrize("n_items", [476, 3849, 3900])
def test_halved_subsets_are_the_smaller_evenly_spaced_subsets(n_items):
    items = list(range(n_items))
    assert bench.evenly(bench.evenly(items, 80), 40) == bench.evenly(items, 40)
    assert bench.evenly(bench.evenly(items, 48), 24) == bench.evenly(items, 24)
    assert bench.evenly(items[:5], 10) == items[:5]


def test_every_claim_arm_names_a_grid_cell_or_says_why_not():
    grids = _all_params()
    claims = [c for c in load_claims() if c.method == "metadata_rag"]
    assert len(claims) >= 8
    unmade = set()
    for c in claims:
        for comp in c.comparisons:
            for arm in (comp.a, comp.b):
                if arm is None:
                    continue
                ok = any(all(p.get(k) == v for k, v in arm.where.items()) for p in grids.get(arm.experiment, []))
                if not ok:
                    unmade.add(c.id)
    # the paper's internal catalog, and the fine-tuned variant on Spider2 (not in this CPU run), name no grid cell
    assert unmade == {"headline-rouge1", "headline-acceptance", "fine-tuned-beats-pretrained-spider2"}
    assert all(c.note for c in claims if c.id in unmade)  # each says why


def _cell(experiment: str, params: dict, per_db: dict[str, list[float]]) -> dict:
    ids = {f"{db}.t.c{i}": v for db, vs in per_db.items() for i, v in enumerate(vs)}
    return {"experiment": experiment, "params": params, "status": "fresh",
            "metrics": {"rouge1_by_id": ids, "grounding_by_id": {k: 1.0 for k in ids}}}


@pytest.mark.parametrize("shift, verdict", [(0.2, "holds"), (-0.2, "contradicted")])
def test_retrieved_vs_random_claim_follows_the_cells(shift, verdict):
    rand = {"db1": [0.1, 0.2], "db2": [0.3, 0.1, 0.2], "db3": [0.0]}
    rag = {db: [v + shift for v in vs] for db, vs in rand.items()}
    cells = [_cell("metadata_rag", bench._params("bird", "rag-3"), rag),
             {**_cell("metadata_rag", {**bench._params("bird", "random-3"), "seed": 0}, rand)}]
    got = {v.claim.id: v for v in verdicts("metadata_rag",
                                           load=lambda e: [c for c in cells if c["experiment"] == e])}
    r = got["retrieved-beats-random"].results[0]
    # every column moves by the same shift, so every database resample has mean difference = shift
    assert r.effect == pytest.approx(shift) and r.lo == pytest.approx(shift) and r.hi == pytest.approx(shift)
    assert r.n == 6 and r.note == "3 clusters" and r.verdict == verdict
    assert got["retrieved-beats-random-spider2"].verdict == "missing cells"  # no Spider2 cells here


def test_bootstrap_by_database_is_wider_than_by_column():
    # one database gains a lot, the two others lose a little: per column the mean gain looks solid,
    # per database (3 clusters) the interval reaches below zero
    rand = {"db1": [0.0] * 8, "db2": [0.5, 0.5], "db3": [0.5, 0.5]}
    rag = {"db1": [0.3] * 8, "db2": [0.45, 0.45], "db3": [0.45, 0.45]}
    cells = [_cell("metadata_rag", bench._params("bird", "rag-3"), rag),
             _cell("metadata_rag", {**bench._params("bird", "random-3"), "seed": 0}, rand)]
    v = {x.claim.id: x for x in verdicts("metadata_rag", load=lambda e: [c for c in cells if c["experiment"] == e])}
    r = v["retrieved-beats-random"].results[0]
    assert r.effect == pytest.approx((8 * 0.3 - 4 * 0.05) / 12)
    assert r.lo == pytest.approx(-0.05) and r.hi == pytest.approx(0.3)  # all-db2/db3 and all-db1 resamples
    assert r.verdict == "not resolved"


def test_missing_cells_are_named():
    cells = [{"experiment": e, "params": p} for e, ps in _all_params().items() for p in ps]
    assert bench._missing_cells(CFG, cells) == []
    gone = cells.pop(0)
    assert bench._missing_cells(CFG, cells) == [f"{gone['experiment']}/condition=echo__dataset=bird__k=0"]
