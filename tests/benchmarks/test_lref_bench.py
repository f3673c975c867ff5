"""The LREF benchmark on the runner: chains and sweeps resume from their partial cells, extra DPO rates and sweep
rates start from the right model, the DPO diagnostic finds a pure prior shift, and the page renders stored cells."""

import json

import pytest

pytest.importorskip("trl")

import benchmarks.lref as bench  # noqa: E402
from benchmarks.cells import Partial  # noqa: E402

TINY_SIZES = {"n_pairs": 160, "n_queries": 40, "noise_rate": 0.15, "heldout": 0.25, "pool": 40, "syn_sample": 8,
              "wands_sample": 6, "data_seed": 0}
TINY_LREF = {"stage1_steps": 1, "sft_steps": 1, "im_sample": 16, "ci_sample": 16, "cot_steps": 1, "dpo_steps": 1,
             "dpo_scan": 8, "cot_max_new_tokens": 4, "batch_size": 4, "judge_autocast": False, "max_length": 4096}


@pytest.fixture(scope="module")
def tiny_llama_path(tmp_path_factory):
    from siftkit.llm.testing import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.getbasetemp() / "tiny-llama")


@pytest.fixture
def make_cfg(tiny_llama_path):
    def make(**over):
        base = {"experiment": "t", "seeds": [0], "sizes": TINY_SIZES, "threads": 1,
                "lref": {**TINY_LREF, "base_model": str(tiny_llama_path)}}
        return bench.LrefBench(**{**base, **over})

    return make


def _partial(tmp_path, params):
    return Partial(tmp_path / "_partial" / "p.json", params, None)


class Killed(Exception):
    pass


def test_a_killed_chain_resumes_from_its_partial_cell(make_cfg, tmp_path, monkeypatch):
    import siftkit.relevance.pipeline as pipeline
    from siftkit.relevance.lref import GRADES

    calls = []

    def fake_stage1_model(cfg, name, train, pool, seed, log=None):  # IM wrong, CI right, MS != label: keep all
        calls.append(name)
        if name == "ms" and calls.count("ms") == 1:
            raise Killed  # killed while training MS
        shift = {"ci": 0, "im": 1, "ms": 2}[name]
        return [GRADES[(GRADES.index(x["label"]) + shift) % len(GRADES)] for x in pool]

    monkeypatch.setattr(pipeline, "stage1_model", fake_stage1_model)
    cfg, params = make_cfg(), {"part": "chain", "seed": 0}
    with pytest.raises(Killed):
        bench.cell(cfg, params, _partial(tmp_path, params))
    saved = json.loads((tmp_path / "_partial" / "p.json").read_text())["state"]
    assert set(saved) == {"stage1", "stage1/im", "stage1/ci"}
    out = bench.cell(cfg, params, _partial(tmp_path, params))
    assert calls == ["im", "ci", "ms", "ms"]  # IM and CI not retrained
    assert out["stage1/im"] == saved["stage1/im"]["stage1/im"]
    pool = bench.data(TINY_SIZES)[0]
    assert out["selection/kept"] == len(pool) and out["stage1/pool_pids"] == [x["pid"] for x in pool]
    for cond in ("sft-all", "sft-selected", "+multi-cot", "+dpo"):
        assert f"{cond}/syn/macro_f1" in out and len(out[f"{cond}/syn/confusion"]) == 5


def test_extra_dpo_rates_start_from_the_same_multicot_model(make_cfg, tmp_path, monkeypatch):
    import torch

    import siftkit.relevance.pipeline as pipeline
    from siftkit.relevance.lref import GRADES

    monkeypatch.setattr(pipeline, "stage1_model", lambda cfg, name, train, pool, seed, log=None: [
        GRADES[(GRADES.index(x["label"]) + {"ci": 0, "im": 1, "ms": 2}[name]) % 5] for x in pool])
    seen = []

    def fake_dpo(cfg, llm, records, seed, log=None):
        p = next(llm.model.parameters())
        seen.append((cfg.dpo_lr, float(p.detach().sum())))
        with torch.no_grad():
            p.add_(1.0)  # DPO merges its adapter into the weights in place
        return llm, 7

    monkeypatch.setattr(pipeline, "stage3_dpo", fake_dpo)
    cfg = make_cfg(dpo_lr_extra=[1e-4])
    cfg.lref["dpo_lr"] = 3e-4
    params = {"part": "chain", "seed": 0}
    out = bench.cell(cfg, params, _partial(tmp_path, params))
    assert [lr for lr, _ in seen] == [3e-4, 1e-4]
    assert seen[0][1] == seen[1][1]  # the second rate starts from the Multi-CoT weights, not the first's DPO
    assert out["+dpo/pairs"] == 7 and "+dpo@lr=0.0001/syn/macro_f1" in out


def test_dpo_rate_sweep_starts_each_rate_from_the_sft_model_and_resumes(make_cfg, tmp_path, monkeypatch):
    import siftkit.relevance.train as train

    cfg = make_cfg(dpolr={"seeds": [0], "lrs": [1e-4, 1e-5]}, dpolr_long={"seeds": [0], "lrs": [3e-5],
                                                                         "dpo_steps": 2, "dpo_scan": 40})
    cfg.lref["dpo_scan"] = 40
    seen = []
    real = train.dpo

    def spy(model, tokenizer, rows, steps, lcfg, seed=0):
        seen.append((lcfg.dpo_lr, steps, float(next(model.parameters()).detach().sum())))
        if len(seen) == 2 and lcfg.dpo_lr == 1e-5:
            raise Killed  # killed during the second rate
        return real(model, tokenizer, rows, steps, lcfg, seed)

    monkeypatch.setattr(train, "dpo", spy)
    params = {"part": "dpolr", "seed": 0}
    with pytest.raises(Killed):
        bench.cell(cfg, params, _partial(tmp_path, params))
    if not seen:
        pytest.skip("the tiny model's ranking gave no preference pair")
    out = bench.cell(cfg, params, _partial(tmp_path, params))
    assert [s[:2] for s in seen] == [(1e-4, 1), (1e-5, 1), (1e-5, 1)]  # the finished rate is not rerun
    assert seen[0][2] == seen[1][2] == seen[2][2]  # every rate from the same SFT weights
    assert out["cfg"]["dpo_cot"] is False and sum(out["pairs_chosen"].values()) == out["pairs"]
    assert "start/syn/macro_f1" in out and "lr=0.0001/syn/macro_f1" in out and "lr=1e-05/wands/fpr" in out
    seen.clear()
    params = {"part": "dpolr_long", "seed": 0}
    out = bench.cell(cfg, params, _partial(tmp_path / "long", params))
    assert out["cfg"]["dpo_steps"] == 2 and out["cfg"]["dpo_scan"] == 40 and [s[:2] for s in seen] == [(3e-5, 2)]


def test_dpo_diagnostic_finds_a_pure_prior_shift_and_skips_finished_pair_sets(make_cfg, tmp_path, monkeypatch):
    """A fake DPO whose model scores like the start model plus a constant per grade: δ is that constant (centred),
    it explains the whole change, start + δ predicts what "DPO" predicts, and DPO − δ predicts what the start
    did; a killed diagnostic resumes without redoing the pair set it finished."""
    import siftkit.relevance.pipeline as pipeline
    import siftkit.relevance.train as train

    shift = [0.0, 20.0, -10.0, 5.0, -15.0]  # larger than the tiny model's own grade differences
    cfg = make_cfg(dpodiag={"seeds": [0], "lr": 1e-4, "epochs": 2, "dpo_scan": 40}, sizes={**TINY_SIZES,
                                                                                          "syn_sample": 40})
    seen = []

    class Shifted:  # marks the "trained" model; wrap() only needs it passed through
        def __init__(self, model):
            self.inner = model

    def fake_dpo(model, tok, rows, steps, lcfg, seed=0):
        seen.append((lcfg.dpo_lr, len(rows), steps))
        if len(seen) == 2 and not rerun:
            raise Killed
        return Shifted(model), [{"train_loss": 0.5}]

    real_predict = pipeline.predict

    def fake_predict(llm, records, cot=False, cfg=None):
        if isinstance(llm.model, Shifted):
            preds, lp, rats = real_predict(pipeline.wrap(llm.model.inner, llm.tokenizer, "x"), records, cot, cfg)
            return preds, [[v + d for v, d in zip(row, shift)] for row in lp], rats
        return real_predict(llm, records, cot, cfg)

    monkeypatch.setattr(train, "dpo", fake_dpo)
    monkeypatch.setattr(pipeline, "predict", fake_predict)
    params, rerun = {"part": "dpodiag", "seed": 0}, False
    try:
        bench.cell(cfg, params, _partial(tmp_path, params))
    except Killed:
        first = json.loads((tmp_path / "_partial" / "p.json").read_text())["state"]
        assert sum(n in first for n in bench.DIAG_VARIANTS) == 1
    rerun = True
    out = bench.cell(cfg, params, _partial(tmp_path, params))
    done = [n for n in bench.DIAG_VARIANTS if out[f"{n}/pairs"]]
    assert done and len(seen) == len(done) + (1 if len(done) > 1 else 0)  # the killed set is retried, once
    assert all(lr == 1e-4 and steps == -(-2 * n // 4) for lr, n, steps in seen)  # 2 epochs of 4 pairs per step
    centred = [d - sum(shift) / 5 for d in shift]
    for name in done:
        assert list(out[f"{name}/delta"].values()) == pytest.approx(centred, abs=1e-6)
        assert out[f"{name}/explained"] == pytest.approx(1.0) and out[f"{name}/top1_agree"] == 1.0
        for k in ("macro_f1", "accuracy", "over_recall_err", "over_recall_pred", "grades"):
            assert out[f"{name}/shift/{k}"] == out[f"{name}/{k}"]  # the shift alone is the whole "DPO" model
            assert out[f"{name}/corrected/{k}"] == out[f"start/{k}"]  # removing it gives the start model back
    assert out["all/pairs_over"] <= out["all/pairs"]


def test_the_page_renders_the_stored_cells():
    """The committed cells give the committed numbers (regression: the layout may change, the numbers may not)."""
    from benchmarks.lref_page import load_profile_cells, render

    cfg, cells = load_profile_cells("cpu")
    text = render(cfg, cells)
    assert "| sft-all | 3 ⚠ | 0.371 ± 0.030 | 0.438 ± 0.038 |" in text  # CPU main grid, synthetic split
    assert "| sft-selected | 3 ⚠ | 0.311 ± 0.043 | 0.387 ± 0.035 |" in text  # GPU profile, from partial cells
    assert "| all | 0.931 ± 0.078 | 0.968 ± 0.045 | 0.891 ± 0.018 |" in text  # DPO diagnostic
    assert "| IM+CI+MS (the rule) | 23.333 ± 20.599 |" in text  # keep-rule ablation, re-filtered here
    assert "Kept per seed: [31, 39, 0] of 600." in text


def test_grid_and_cell_settings_follow_the_profile(make_cfg):
    cfg = make_cfg(stage1={"seeds": [0, 1], "stage1_steps": 5}, dpodiag={"seeds": [1], "lr": 1e-4, "epochs": 2,
                                                                         "dpo_scan": 9})
    cells = bench.grid(cfg)
    assert cells == [{"part": "zero-shot"}, {"part": "chain", "seed": 0},
                     {"part": "stage1", "seed": 0, "stage1_steps": 5},
                     {"part": "stage1", "seed": 1, "stage1_steps": 5}, {"part": "dpodiag", "seed": 1}]
    assert bench.cell_settings(cfg, cells[4]) == {"dpodiag": cfg.dpodiag}
    assert bench.cell_settings(cfg, cells[1]) == {"dpo_lr_extra": []}


def test_a_cell_runs_through_the_runner_once(make_cfg, tmp_path):
    from benchmarks.cells import run_experiment

    exp = bench.BENCHMARK.experiment_for(make_cfg(), tmp_path)
    assert exp.name == "t"  # the profile's folder
    zero = lambda p: p["part"] == "zero-shot"  # noqa: E731
    assert run_experiment(exp, progress=False, only=zero) == {"ran": 1, "skipped": 0, "total": 1}
    (rec,) = exp.load()
    assert rec["status"] == "fresh" and "syn/macro_f1" in rec["metrics"] and rec["metrics"]["device"] == "cpu"
    assert run_experiment(exp, progress=False, only=zero)["ran"] == 0  # finished: not run again
