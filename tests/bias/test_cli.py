"""``siftkit bias grid | run | analyze`` on the synthetic responders; bad input is one line and exit 2 before any
output folder; the quickstart step."""

import json

import pytest
from typer.testing import CliRunner

from tests.cli_helpers import cli, plugin_registry

registry, app = plugin_registry()


def test_registered():
    assert "bias" in registry.loaded, registry.failed
    assert any(s.name == "bias" for s in registry.steps)


def test_grid_prints_sizes(tmp_path):
    res = CliRunner().invoke(app, ["bias", "grid", "--design", "subsets", "--templates", "0,1,2", "--debias",
                                   "none,system", "--models", "7", "--output", str(tmp_path / "g.jsonl")])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["prompts"] == 719 * 3 * 2 and info["samples"] == 719 * 3 * 2 * 3 * 7
    assert info["full_grid_samples_5_classes"] == 719 * 3 * 2 * 3 * 7 * 5
    assert len((tmp_path / "g.jsonl").read_text().splitlines()) == 719 * 3 * 2


def test_run_then_analyze(tmp_path):
    out = tmp_path / "run"
    args = ["bias", "run", "--model", "synthetic:always-one", "--model", "synthetic:uniform", "--asset-class",
            "stocks,crypto", "--pairs", "6", "--output", str(out), "--cache", str(tmp_path / "c.sqlite")]
    res = CliRunner().invoke(app, args + ["--dry-run"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout[:res.stdout.rindex("}") + 1])["calls"] == 2 * 2 * 6 * 2
    assert not out.exists()  # a dry run makes nothing
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (out / "responses.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 6 * 2 * 3  # models × classes × pairs × variants × samples
    assert {r["status"] for r in rows} == {"valid"}
    res = CliRunner().invoke(app, ["bias", "analyze", "--responses", str(out / "responses.jsonl"), "--output",
                                   str(tmp_path / "a"), "--resamples", "50"])
    assert res.exit_code == 0, res.output
    import pandas as pd

    s = pd.read_csv(tmp_path / "a" / "summary.csv")
    always = s[(s.model == "synthetic:always-one") & (s.asset_class == "crypto") & (s.debias == "none")].iloc[0]
    assert (always.gini_own, always.n_own) == (0.0, 1) and always.gini_universe == pytest.approx(19 / 20)
    assert len(pd.read_csv(tmp_path / "a" / "delta.csv")) == 4  # 2 models × 2 classes
    assert "<img" in (tmp_path / "a" / "report.html").read_text()
    sec = pd.read_csv(tmp_path / "a" / "sectors_crypto.csv").set_index("sector")
    assert sec.reference.sum() == pytest.approx(1.0)
    assert sec.loc["Currency", "synthetic:always-one / none"] == 1.0  # every mention is BTC


def test_bad_option_is_one_line_and_exit_2(tmp_path):
    res = cli("bias", "run", "--model", "synthetic:zipf", "--output", str(tmp_path / "out"))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert lines[0].startswith("siftkit: ") and "unknown synthetic responder" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, needle", [
    (["run", "--model", "synthetic:market-cap", "--asset-class", "savings"], "no market-cap weights"),
    (["run", "--model", "smollm2", "--asset-class", "bonds"], "unknown asset class"),
    (["run", "--model", "smollm2", "--debias", "none,polite"], "polite"),
    (["run", "--model", "smollm2", "--engine", "vllm"], "--engine: 'vllm' is not one of torch, ct2"),
    (["run", "--model", "smollm2", "--templates", "0,x"], "--templates must be"),
    (["run", "--model", "smollm2", "--backend", "spark"], "--backend must be"),
    (["run", "--model", "smollm2", "--temperature", "-1"], "--temperature"),
])
def test_bad_option_raises_input_error_before_output(args, needle, tmp_path):
    from siftkit.core.errors import InputError

    res = CliRunner().invoke(app, ["bias", *args, "--output", str(tmp_path / "out")])
    assert isinstance(res.exception, InputError) and needle in str(res.exception), res.output
    assert not (tmp_path / "out").exists()


def test_bad_responses_file_names_the_line(tmp_path):
    bad = tmp_path / "r.jsonl"
    bad.write_text(json.dumps({"model": "m", "prompt_id": "a", "pair_id": "a", "asset_class": "stocks",
                               "debias": "none", "text": "x", "sample": 0, "finish_reason": "stop"}) + "\n"
                   + json.dumps({"model": "m", "prompt_id": "b", "asset_class": "stocks"}) + "\n")
    res = CliRunner().invoke(app, ["bias", "analyze", "--responses", str(bad), "--output", str(tmp_path / "a")])
    assert res.exit_code != 0 and "r.jsonl:2" in str(res.exception)
    assert not (tmp_path / "a").exists()


def test_quickstart_step_synthetic_only(tmp_path):
    from siftkit.bias.plugin import quickstart_step
    from siftkit.core.report import StepContext

    step = next(s for s in registry.steps if s.name == "bias")
    opts = {**step.defaults(), "pairs": 0, "resamples": 50}
    sec = quickstart_step(StepContext(run_dir=tmp_path, options=opts))
    assert sec.status == "ok" and sec.figures
    table = sec.tables[0][1].set_index(["model", "debias"])
    assert table.loc[("synthetic:always-one", "none"), "gini_universe"] == pytest.approx(66 / 67)
    assert sec.metrics["synthetic:always-one/none/gini_universe"] == pytest.approx(66 / 67)
