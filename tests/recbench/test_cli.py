"""``siftkit recbench generate | eval``: the no-LLM baselines end to end, bad input as one line and exit 2 before any
output folder."""

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from siftkit.core.assets import movielens100k_dir
from tests.cli_helpers import cli, plugin_registry

registry, app = plugin_registry()
FIX = Path(__file__).parent / "fixtures"


def test_registered():
    assert "recbench" in registry.loaded, registry.failed
    assert any(s.name == "recbench" for s in registry.steps)


@pytest.mark.skipif(movielens100k_dir() is None, reason="recbole wheel (ML-100K) not installed")
def test_generate_then_eval(tmp_path):
    qfile = tmp_path / "gen.json"
    res = CliRunner().invoke(app, ["recbench", "generate", "--per-cell", "2", "--output", str(qfile)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["queries"] == 18
    out = tmp_path / "ev"
    res = CliRunner().invoke(app, ["recbench", "eval", "--queries", str(qfile), "--model", "oracle", "--model",
                                   "random", "--output", str(out), "--resamples", "20"])
    assert res.exit_code == 0, res.output
    summary = pd.read_csv(out / "summary.csv")
    oracle = summary[(summary.model == "oracle") & (summary["mode"] == "corrected") & (summary.parser == "sep")]
    assert len(oracle) == 9 and (oracle.recall == 1.0).all() and (oracle.existence == 1.0).all()
    assert (out / "report.html").exists() and len(pd.read_csv(out / "scores.csv")) == 18 * 2 * 3 * 2


def test_eval_fixture_without_kg(tmp_path):
    out = tmp_path / "ev"
    res = CliRunner().invoke(app, ["recbench", "eval", "--queries", str(FIX / "InterestBasedQuery.json"), "--model",
                                   "oracle", "--kg", "none", "--output", str(out), "--resamples", "10"])
    assert res.exit_code == 0, res.output
    s = pd.read_csv(out / "summary.csv")
    assert set(s.qtype) == {"interest"} and s[s["mode"] == "corrected"].recall.eq(1.0).all()


@pytest.mark.parametrize("args", [
    ["--queries", "MISSING/UserBasedQuery.json", "--model", "oracle"],
    ["--queries", str(FIX / "ExplicitQuery.json"), "--model", "oracle", "--kg", "wikidata"],
    ["--queries", str(FIX / "ExplicitQuery.json"), "--model", "oracle", "--limit", "-1"],
    ["--queries", str(FIX / "ExplicitQuery.json"), "--model", "smollm2", "--engine", "vllm"],
    ["--queries", str(FIX / "ExplicitQuery.json"), "--model", "oracle", "--ground-truth", "catalogue", "--kg", "none"],
])
def test_eval_bad_input(tmp_path, args):
    out = tmp_path / "never"
    r = cli("recbench", "eval", *args, "--output", str(out))
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("siftkit: ")
    assert not out.exists()


def test_generate_bad_input(tmp_path):
    r = cli("recbench", "generate", "--types", "explicit,vague", "--output", str(tmp_path / "q.json"))
    assert r.returncode == 2 and r.stderr.startswith("siftkit: ") and "--types" in r.stderr
    assert not (tmp_path / "q.json").exists()


@pytest.mark.skipif(movielens100k_dir() is None, reason="recbole wheel (ML-100K) not installed")
def test_quickstart_step_without_llm(tmp_path):
    from siftkit.core.report import StepContext
    from siftkit.recbench.plugin import quickstart_step

    step = next(s for s in registry.steps if s.name == "recbench")
    opts = {**step.defaults(), "per_cell": 2, "llm_queries": 0, "resamples": 20}
    sec = quickstart_step(StepContext(tmp_path, 0, True, opts))
    table = sec.tables[0][1]
    assert set(table.model) == {"oracle", "random", "popularity"} and len(sec.figures) == 2
    assert sec.metrics["oracle/corrected/explicit/1/recall"] == 1.0
