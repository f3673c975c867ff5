"""The LREF benchmark driver: auxiliary models in their own processes feed the seed chain; the job scheduler."""

import json
import sys

import pytest

pytest.importorskip("trl")

import benchmarks.lref as bench  # noqa: E402

TINY_SIZES = {"n_pairs": 160, "n_queries": 40, "noise_rate": 0.15, "heldout": 0.25, "pool": 40, "syn_sample": 8,
              "wands_sample": 6, "data_seed": 0}
TINY_CFG = {"stage1_steps": 1, "sft_steps": 1, "im_sample": 16, "ci_sample": 16, "cot_steps": 1, "dpo_steps": 1,
            "dpo_scan": 8, "cot_max_new_tokens": 4, "batch_size": 4, "judge_autocast": False}


@pytest.fixture(scope="module")
def tiny_llama_path(tmp_path_factory):
    from siftkit.llm.testing import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.getbasetemp() / "tiny-llama")


@pytest.fixture
def tiny_bench(tmp_path, monkeypatch, tiny_llama_path):
    monkeypatch.setattr(bench, "CELLS", tmp_path)
    monkeypatch.setattr(bench, "SIZES", TINY_SIZES)
    monkeypatch.setattr(bench, "BENCH_CFG", TINY_CFG)
    monkeypatch.setattr(bench, "BASE", str(tiny_llama_path))
    return tmp_path


def test_the_chain_takes_the_auxiliary_predictions_and_refuses_other_settings(tiny_bench):
    for name in bench.AUX:
        bench.aux_cell("t", 0, name, stage1_steps=2)
    aux = {n: json.loads((tiny_bench / "t_partial" / f"seed=0__aux={n}.json").read_text())["metrics"]
           for n in bench.AUX}
    out = bench._chain("t", {"seed": 0, "stage1_steps": 2}, bench._cfg(0, 2), sft_all=False)
    pool = bench.data()[0]
    for n in bench.AUX:  # used as trained, not retrained
        assert out[f"stage1/{n}"] == aux[n][f"stage1/{n}"] and len(out[f"stage1/{n}"]) == len(pool)
    assert out["stage1/cfg"]["stage1_steps"] == 2
    assert "sft-all/syn/macro_f1" not in out
    if out["selection/kept"]:
        assert "+dpo/syn/macro_f1" in out and "sft-selected/syn/macro_f1" in out
    else:
        assert out["selection/empty"]
    with pytest.raises(RuntimeError, match="other settings"):  # the same seed under another Stage-1 budget
        bench._chain("t", {"seed": 0, "stage1_steps": 3}, bench._cfg(0, 3), sft_all=False)


def test_aux_files_from_other_settings_are_retrained(tiny_bench, monkeypatch):
    import siftkit.relevance.pipeline as pipeline

    calls = []

    def fake_stage1_model(cfg, name, train, pool, seed, log=None):
        calls.append(name)
        return [x["label"] for x in pool]

    monkeypatch.setattr(pipeline, "stage1_model", fake_stage1_model)
    for name in bench.AUX:
        bench.aux_cell("u", 0, name, stage1_steps=2)
    bench.aux_cell("u", 0, "ci", stage1_steps=2)  # already there under the same settings: skipped
    assert calls == ["im", "ci", "ms"]
    ms_path = tiny_bench / "u_partial" / "seed=0__aux=ms.json"
    rec = json.loads(ms_path.read_text())
    rec["metrics"]["stage1/ms_pool_pids"] = rec["metrics"]["stage1/ms_pool_pids"][::-1]  # made on another pool
    ms_path.write_text(json.dumps(rec))
    bench.aux_cell("u", 0, "ms", stage1_steps=2)
    assert calls == ["im", "ci", "ms", "ms"]
    path = tiny_bench / "u_partial" / "seed=0__aux=im.json"
    rec = json.loads(path.read_text())
    rec["metrics"]["stage1/im_cfg"]["stage1_steps"] = 99  # trained under another budget
    path.write_text(json.dumps(rec))
    out = bench._chain("u", {"seed": 0, "stage1_steps": 2}, bench._cfg(0, 2), sft_all=False)
    assert calls == ["im", "ci", "ms", "ms", "im"]
    assert out["selection/kept"] == 0 and out["selection/empty"]  # IM never wrong: nothing is hard


def test_jobs_start_after_their_dependencies_and_at_most_n_at_once(tmp_path):
    script = ("import sys, time, pathlib; p = pathlib.Path(sys.argv[1]); "
              "(p / (sys.argv[2] + '.start')).write_text(str(time.time())); time.sleep(float(sys.argv[3])); "
              "(p / (sys.argv[2] + '.end')).write_text(str(time.time())); sys.exit(int(sys.argv[4]))")
    cmd = [sys.executable, "-c", script, str(tmp_path)]
    jobs = [(["a", "0.6", "0"], []), (["b", "0.2", "3"], []), (["c", "0.1", "0"], [0, 1]), (["d", "0.1", "0"], [])]
    codes = bench._schedule(jobs, 2, tmp_path / "logs", cmd=cmd, poll=0.02)
    assert codes == [0, 3, 0, 0]
    t = {f.name: float(f.read_text()) for f in tmp_path.glob("*.*") if f.suffix in (".start", ".end")}
    assert t["c.start"] >= max(t["a.end"], t["b.end"])  # after both, even the failed one
    assert t["d.start"] >= t["b.end"]  # a third job waits for a free slot
    assert (tmp_path / "logs" / "a_0.6_0.log").exists()


def test_extra_dpo_rates_start_from_the_same_multicot_model(tiny_bench, monkeypatch):
    import siftkit.relevance.pipeline as pipeline
    from siftkit.relevance.lref import GRADES

    def fake_stage1_model(cfg, name, train, pool, seed, log=None):  # IM wrong, CI right, MS != label: keep all
        shift = {"ci": 0, "im": 1, "ms": 2}[name]
        return [GRADES[(GRADES.index(x["label"]) + shift) % len(GRADES)] for x in pool]

    seen = []

    def fake_dpo(cfg, llm, records, seed, log=None):
        p = next(llm.model.parameters())
        seen.append((cfg.dpo_lr, float(p.detach().sum())))
        with __import__("torch").no_grad():
            p.add_(1.0)  # DPO merges its adapter into the weights in place
        return llm, 7

    monkeypatch.setattr(pipeline, "stage1_model", fake_stage1_model)
    monkeypatch.setattr(pipeline, "stage3_dpo", fake_dpo)
    monkeypatch.setattr(bench, "BENCH_CFG", {**bench.BENCH_CFG, "dpo_lr": 3e-4, "max_length": 4096})  # tiny tokenizer
    monkeypatch.setattr(bench, "DPO_LR_EXTRA", [1e-4])
    out = bench._chain("v", {"seed": 0, "stage1_steps": 2}, bench._cfg(0, 2), sft_all=False)
    assert out["selection/kept"] == len(bench.data()[0])
    assert [lr for lr, _ in seen] == [3e-4, 1e-4]
    assert seen[0][1] == seen[1][1]  # the second rate starts from the Multi-CoT weights, not the first's DPO
    assert out["+dpo/pairs"] == 7 and "+dpo/syn/macro_f1" in out and "+dpo@lr=0.0001/syn/macro_f1" in out


def test_dpo_rate_sweep_starts_each_rate_from_the_sft_model(tiny_bench, monkeypatch):
    import siftkit.relevance.train as train

    monkeypatch.setattr(bench, "DPO_LRS", [1e-4, 1e-5])
    monkeypatch.setattr(bench, "BENCH_CFG", {**bench.BENCH_CFG, "dpo_scan": 40})
    seen = []
    real = train.dpo

    def spy(model, tokenizer, rows, steps, cfg, seed=0):
        seen.append((cfg.dpo_lr, float(next(model.parameters()).detach().sum())))
        return real(model, tokenizer, rows, steps, cfg, seed)

    monkeypatch.setattr(train, "dpo", spy)
    out = bench.dpolr_cell({"seed": 0})
    assert "start/syn/macro_f1" in out and out["cfg"]["dpo_cot"] is False
    assert sum(out["pairs_chosen"].values()) == sum(out["pairs_rejected"].values()) == out["pairs"]
    if out["pairs"]:
        assert [lr for lr, _ in seen] == [1e-4, 1e-5] and seen[0][1] == seen[1][1]  # same start, fresh copy
        assert "lr=0.0001/syn/macro_f1" in out and "lr=1e-05/wands/fpr" in out
    from benchmarks import cells

    monkeypatch.setattr(bench, "load_cells", lambda name: cells.load_cells(name, tiny_bench))
    section = bench._dpolr_section("lref")  # from the partial file the cell wrote
    assert "| none (sft-all) | 1 |" in section and f"{out['pairs']} pairs" in section


def test_long_dpo_sweep_takes_its_own_rates_steps_and_scan(tiny_bench, monkeypatch):
    import siftkit.relevance.train as train

    monkeypatch.setattr(bench, "DPO_LONG", {"lrs": [3e-5], "dpo_steps": 2, "dpo_scan": 40})
    seen = []
    monkeypatch.setattr(train, "dpo", lambda model, tok, rows, steps, cfg, seed=0: (
        seen.append((cfg.dpo_lr, steps)), (model, [{"train_loss": 0.5}]))[1])
    out = bench.dpolr_cell({"seed": 0}, long=True)
    assert out["cfg"]["dpo_steps"] == 2 and out["cfg"]["dpo_scan"] == 40
    assert seen == ([(3e-5, 2)] if out["pairs"] else [])
    assert (tiny_bench / "lref_dpolr_long_partial" / "seed=0.json").exists()


def test_dpo_diagnostic_finds_a_pure_prior_shift(tiny_bench, monkeypatch):
    """A fake DPO whose model scores like the start model plus a constant per grade: δ is that constant (centred),
    it explains the whole change, start + δ predicts what "DPO" predicts, and DPO − δ predicts what the start did."""
    import siftkit.relevance.pipeline as pipeline
    import siftkit.relevance.train as train

    shift = [0.0, 20.0, -10.0, 5.0, -15.0]  # larger than the tiny model's own grade differences
    monkeypatch.setattr(bench, "DPODIAG", {"lr": 1e-4, "epochs": 2, "dpo_scan": 40})
    monkeypatch.setattr(bench, "SIZES", {**bench.SIZES, "syn_sample": 40})
    seen = []

    class Shifted:  # marks the "trained" model; wrap() only needs it passed through
        def __init__(self, model):
            self.inner = model

    def fake_dpo(model, tok, rows, steps, cfg, seed=0):
        seen.append((cfg.dpo_lr, len(rows), steps))
        return Shifted(model), [{"train_loss": 0.5}]

    real_predict = pipeline.predict

    def fake_predict(llm, records, cot=False, cfg=None):
        if isinstance(llm.model, Shifted):
            llm = pipeline.wrap(llm.model.inner, llm.tokenizer, "x")
            preds, lp, rats = real_predict(llm, records, cot, cfg)
            return preds, [[v + d for v, d in zip(row, shift)] for row in lp], rats
        return real_predict(llm, records, cot, cfg)

    monkeypatch.setattr(train, "dpo", fake_dpo)
    monkeypatch.setattr(pipeline, "predict", fake_predict)
    out = bench.dpodiag_cell({"seed": 0})
    assert out["cfg"]["dpo_cot"] is False and out["cfg"]["dpo_scan"] == 40
    assert seen == [(1e-4, out[f"{n}/pairs"], -(-2 * out[f"{n}/pairs"] // 4)) for n in bench.DIAG_VARIANTS
                    if out[f"{n}/pairs"]]  # 2 epochs of 4 pairs per step
    centred = [d - sum(shift) / 5 for d in shift]
    done = [n for n in bench.DIAG_VARIANTS if out[f"{n}/pairs"]]
    assert done
    for name in done:
        assert list(out[f"{name}/delta"].values()) == pytest.approx(centred, abs=1e-6)
        assert out[f"{name}/explained"] == pytest.approx(1.0) and out[f"{name}/top1_agree"] == 1.0
        assert out[f"{name}/same_sign"] == 1.0
        keys = ("macro_f1", "accuracy", "over_recall_err", "over_recall_pred", "grades")
        for k in keys:
            assert out[f"{name}/shift/{k}"] == out[f"{name}/{k}"]  # the shift alone is the whole "DPO" model
            assert out[f"{name}/corrected/{k}"] == out[f"start/{k}"]  # removing it gives the start model back
        assert any(out[f"{name}/{k}"] != out[f"start/{k}"] for k in keys)  # and the shift did change the judge
        assert min(shift) <= out[f"{name}/d_rejected"] <= max(shift)  # raw changes: one of the constants each
    if out["over/pairs"]:
        assert out["over/pairs_over"] == out["over/pairs"]
    assert out["all/pairs_over"] <= out["all/pairs"]
    from benchmarks import cells

    monkeypatch.setattr(bench, "load_cells", lambda name: cells.load_cells(name, tiny_bench))
    section = bench._dpodiag_section("lref")  # from the partial file the cell wrote
    assert "| none (sft-all) | 1 |" in section and "δ Marginal" in section


def test_a_rerun_dpo_diagnostic_skips_the_pair_sets_it_finished(tiny_bench, monkeypatch):
    import siftkit.relevance.train as train

    monkeypatch.setattr(bench, "DPODIAG", {"lr": 1e-4, "epochs": 1, "dpo_scan": 40})
    calls, rerun = [], False

    class Killed(Exception):
        pass

    def fake_dpo(model, tok, rows, steps, cfg, seed=0):
        calls.append(len(rows))
        if len(calls) == 2 and not rerun:
            raise Killed  # killed during the second pair set
        return model, [{"train_loss": 0.5}]

    monkeypatch.setattr(train, "dpo", fake_dpo)
    with pytest.raises(Killed):
        bench.dpodiag_cell({"seed": 0})
    first = json.loads((tiny_bench / "lref_dpodiag_partial" / "seed=0.json").read_text())["metrics"]
    finished = [n for n in bench.DIAG_VARIANTS if f"{n}/macro_f1" in first]
    assert len(finished) == 1
    calls.clear()
    rerun = True
    out = bench.dpodiag_cell({"seed": 0})
    assert out[f"{finished[0]}/macro_f1"] == first[f"{finished[0]}/macro_f1"]
    assert len(calls) == sum(1 for n in bench.DIAG_VARIANTS if n not in finished and out[f"{n}/pairs"])
    assert all(f"{n}/pairs" in out for n in bench.DIAG_VARIANTS)
