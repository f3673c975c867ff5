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
