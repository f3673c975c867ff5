"""benchmarks/avva.py without models: the grid, the paired table, and the page's claims on hand-made cells."""

from __future__ import annotations

import pytest

from benchmarks import avva as bench
from benchmarks.claims import verdicts
from benchmarks.claims.spec import load_claims

CFG = bench.AvvaBench()


def _cells(gain: float) -> list[dict]:
    """One record per grid cell: every metric = 10 + seed, plus ``gain`` for curated 70% and for nothing else."""
    out = []
    for p in bench.grid(CFG):
        bump = gain if (p["subset"], p["fraction"]) == ("curated", 0.7) else 0.0
        m = {k: 10.0 + p["seed"] + bump + 0.1 * (p["seed"] == 1) * bump for k in bench.METRICS}
        m.update(kept=int(p["fraction"] * CFG.n_train), kept_misaligned_share=0.1, audio_describer_error=0.0,
                 video_describer_error=0.0, judge_auc=0.9)
        out.append({"experiment": "avva_synth", "params": p, "metrics": m, "status": "fresh"})
    return out


def test_grid_is_the_sweep_times_seeds():
    g = bench.grid(CFG)
    assert len(g) == len({tuple(sorted(p.items())) for p in g})  # no duplicate cell
    sweep = {(p["subset"], p["fraction"]) for p in g if p["rho"] == 0.3}
    assert sweep == {(s, f) for s in ("curated", "random") for f in CFG.fractions} | {("all", 1.0),
                                                                                        ("similarity", 0.7)}
    assert {(p["subset"], p["fraction"]) for p in g if p["rho"] == 0.5} == {("curated", 0.7), ("random", 0.7),
                                                                             ("all", 1.0)}
    assert len(g) == len(CFG.seeds) * (2 * len(CFG.fractions) + 2 + 3)


def test_every_synthetic_claim_arm_names_grid_cells():
    keys = {tuple(sorted(p.items())) for p in bench.grid(CFG) if p["seed"] == 0}
    arms = [arm for c in load_claims() if c.method == "avva" for comp in c.comparisons
            for arm in (comp.a, comp.b) if arm is not None and arm.experiment == "avva_synth"]
    assert len(arms) >= 20
    for arm in arms:
        assert any(all(dict(k)[f] == v for f, v in arm.where.items()) for k in keys), arm.where


def test_paired_difference_by_hand():
    # differences 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.3027 -> half-width 2.484; paired t p = 0.0742
    text = bench._paired({0: 2.0, 1: 4.0, 2: 6.0}, {0: 1.0, 1: 2.0, 2: 3.0})
    assert text == "2.00 ± 2.48 (p 0.07)"
    assert bench._paired({0: 1.0}, {0: 0.0}) == "–"  # one seed: no interval


@pytest.mark.parametrize("gain, verdict", [(2.0, "holds"), (-2.0, "contradicted"), (0.0, "not resolved")])
def test_curation_claims_follow_the_cells(gain, verdict):
    cells = _cells(gain)
    got = {v.claim.id: v.verdict for v in verdicts("avva", load=lambda e: [c for c in cells if c["experiment"] == e])}
    assert got["curated-beats-random"] == verdict and got["curated-beats-all-rho05"] == verdict
    assert got["llm-judge-separates"] == "missing cells"  # no judge cell among these
    page = bench.main_markdown(CFG, cells)
    assert page.count("\n") == 2 + len({(p["rho"], p["subset"], p["fraction"]) for p in bench.grid(CFG)}) - 1


# ---------------------------------------------------------------------------------------------- avva_llm (LLM-curated)
def _llm_cells(gain: float) -> list[dict]:
    """One record per avva_llm grid cell: every metric = 10 + seed, plus ``gain`` for LLM-curated 70% only; the
    LLM cells carry a judge reading of their pool."""
    out = []
    for p in bench.llm_grid(CFG):
        bump = gain if (p["subset"], p["fraction"]) == ("llm", 0.7) else 0.0
        m = {k: 10.0 + p["seed"] + bump + 0.1 * (p["seed"] == 1) * bump for k in bench.METRICS}
        m.update(kept=int(p["fraction"] * CFG.llm_pool), kept_misaligned_share=0.1, pool=CFG.llm_pool,
                 pool_misaligned_share=p["rho"])
        if p["subset"] == "llm":
            m.update(judge_auc=0.7, auc_over_chance_lo=0.1, auc_over_chance_hi=0.3, proxy_auc=0.98, grade_mass=0.99,
                     unscored=0, retention=[{"theta": 6.0 - f, "clips": int(f * 400), "hours": f * 400 * 3 / 3600,
                                             "fraction": f} for f in (1.0, 0.7, 0.4)])
        out.append({"experiment": "avva_llm", "params": p, "metrics": m, "status": "fresh"})
    return out


def test_llm_grid_runs_the_judged_subset_first_on_each_pool():
    g = bench.llm_grid(CFG)
    assert len(g) == len({tuple(sorted(p.items())) for p in g})
    assert len(g) == len(CFG.rhos) * len(CFG.seeds) * len(bench.LLM_SUBSETS) + len(CFG.seeds) * len(CFG.llm_fractions)
    first = {}
    for i, p in enumerate(g):
        first.setdefault((p["rho"], p["seed"]), p)
    assert all(p["subset"] == "llm" and p["fraction"] == CFG.fraction for p in first.values())
    sweep = {(p["subset"], p["fraction"]) for p in g if p["rho"] == 0.3 and p["subset"] == "llm"}
    assert sweep == {("llm", f) for f in [*CFG.llm_fractions, CFG.fraction]}


def test_every_llm_claim_arm_names_grid_cells():
    keys = [dict(k) for k in {tuple(sorted(p.items())) for p in bench.llm_grid(CFG) if p["seed"] == 0}]
    arms = [arm for c in load_claims() if c.method == "avva" for comp in c.comparisons
            for arm in (comp.a, comp.b) if arm is not None and arm.experiment == "avva_llm"]
    assert len(arms) >= 48 + 8
    for arm in arms:
        assert any(all(k[f] == v for f, v in arm.where.items()) for k in keys), arm.where


@pytest.mark.parametrize("gain, verdict", [(2.0, "holds"), (-2.0, "contradicted"), (0.0, "not resolved")])
def test_llm_claims_follow_the_cells(gain, verdict):
    cells = _llm_cells(gain)
    got = {v.claim.id: v.verdict for v in verdicts("avva", load=lambda e: [c for c in cells if c["experiment"] == e])}
    for cid in ("llm-curated-beats-random", "llm-curated-beats-random-rho05", "llm-curated-beats-all",
                "llm-curated-beats-all-rho05", "llm-inverted-u"):
        assert got[cid] == verdict, cid
    assert got["curated-beats-random"] == "missing cells"  # no avva_synth cell among these


def test_llm_paired_table_by_hand():
    cells = _llm_cells(2.0)
    text = bench.paired_markdown(CFG, cells, "llm", ("random", "all"), {"llm": "LLM-curated"})
    lines = text.splitlines()
    assert lines[0].startswith("| rho | fraction | LLM-curated − |")
    # per pool: llm 70% against random and all (2 rows); the sweep's fractions have no random or all at their fraction
    # except all (100%): 3 sweep fractions x 1 row at rho 0.3
    assert len(lines) == 2 + 2 * len(CFG.rhos) + len(CFG.llm_fractions)
    # gains 2, 2.2, 2 over the seeds: mean 2.067, sd 0.1155, half-width t(0.975, 2) = 4.3027 x sd / sqrt(3) = 0.287
    row = next(x for x in lines if x.startswith("| 0.3 | 70% | random |"))
    assert row.split(" | ")[3].startswith("2.07 ± 0.29")


def test_llm_judge_table_one_row_per_pool():
    text = bench.llm_judge_markdown(_llm_cells(0.0))
    pools = [x for x in text.splitlines() if x.startswith("| 0.")]
    assert len(pools) == 2 * len(CFG.rhos) * len(CFG.seeds)  # the judge table and the retention table
    assert "0.700 (0.600–0.800)" in text and "theta 5.30: 280 clips, 0.233 h" in text
    assert bench.llm_judge_markdown([]).startswith("Not run")


def test_llm_cell_curates_by_the_judge_scores(monkeypatch):
    """The LLM cell keeps the judge's top fraction: a judge that scores exactly the aligned pairs high keeps no
    misaligned pair, and its stored ROC-AUC and retention follow (the model is replaced by those scores)."""
    import numpy as np

    cfg = bench.AvvaBench(n_train=60, llm_pool=40, n_test=30, k=2, n=10, epochs=1, threads=1, n_resamples=50)
    monkeypatch.setattr(bench, "_llm_finals", lambda c, s: (np.where(s.aligned, 8.0, 2.0), 0.99))
    m = bench.llm_cell(cfg, {"rho": 0.3, "subset": "llm", "fraction": 0.5, "seed": 0})
    assert m["pool"] == 40 and m["kept"] == 20 and m["kept_misaligned_share"] == 0.0
    assert m["judge_auc"] == 1.0 and len(m["final"]) == 40 and m["unscored"] == 0
    keep_all = next(r for r in m["retention"] if r["fraction"] == 1.0)
    assert keep_all["theta"] == 2.0 and keep_all["hours"] == 40 * 3 / 3600
    r = bench.llm_cell(cfg, {"rho": 0.3, "subset": "random", "fraction": 0.5, "seed": 0})
    assert r["kept"] == 20 and "judge_auc" not in r


def test_real_train_runs_through_retrieval(tmp_path):
    """Four 'real' clips (tones) with their images: the judge keeps its top pairs, the heads train, retrieval is
    read over the true pairs (N = 4)."""
    import numpy as np
    import soundfile as sf
    from PIL import Image

    pairs, rng = [], np.random.default_rng(0)
    for i in range(4):
        wav, png = tmp_path / f"{i}.wav", tmp_path / f"{i}.png"
        t = np.arange(16000 * 3) / 16000
        sf.write(wav, 0.3 * np.sin(2 * np.pi * 300 * (i + 1) * t), 16000)
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(png)
        pairs.append((wav, png))
    rows = [(a, im, 1) for a, im in pairs] + [(a, pairs[(i + 1) % 4][1], 0) for i, (a, _) in enumerate(pairs)]
    cfg = bench.AvvaBench(real_epochs=2, threads=1)
    out = bench._real_train(cfg, pairs, rows, np.array([9.0] * 4 + [1.0] * 4))
    assert out["real_kept"] == round(cfg.fraction * 8) and out["real_kept_matched"] == 4
    for name in ("curated", "all"):
        assert 0 <= out[f"real_{name}_a2v@1"] <= out[f"real_{name}_a2v@3"] <= 100


def test_llm_missing_names_what_was_not_computed():
    cells = [c for c in _llm_cells(0.0) if not (c["params"]["rho"] == 0.5 and c["params"]["seed"] > 0)]
    n = len(bench.LLM_SUBSETS) * 2
    assert bench.llm_missing(CFG, cells) == (f"{n} of the {len(bench.llm_grid(CFG))} cells of the LLM-judged grid "
                                             "were not computed in the CPU time the session had (rho 0.5: seeds 1, 2)")
    assert bench.llm_missing(CFG, _llm_cells(0.0)) == "every cell of the LLM-judged grid was computed"
