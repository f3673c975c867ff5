import json
import subprocess
import sys
from pathlib import Path

import pytest

from siftkit.core.plugins import Registry, discover


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-c", "from siftkit.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=cwd)


def test_version():
    import siftkit

    res = cli("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"siftkit {siftkit.__version__}"


def test_quickstart_writes_run_dir_and_report(tmp_path):
    res = cli("quickstart", "--output", str(tmp_path), "--skip-doctor", "--only", "metrics-demo")
    assert res.returncode == 0, res.stderr
    (run_dir,) = list((tmp_path / "quickstart").iterdir())
    for f in ("report.html", "metrics.json", "manifest.json", "run.log"):
        assert (run_dir / f).exists()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    demo = metrics["Metrics demo on a small TREC run"]
    assert demo["good"]["ndcg@3"] > demo["weak"]["ndcg@3"]
    # report re-renders from metrics.json
    (run_dir / "report.html").unlink()
    assert cli("report", str(run_dir)).returncode == 0
    assert (run_dir / "report.html").read_text().count("<table") >= 1


def test_quickstart_bad_override_is_one_line_and_leaves_no_run_dir(tmp_path):
    res = cli("quickstart", "--output", str(tmp_path), "--skip-doctor", "--only", "metrics-demo", "--set", "steps5")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == ["siftkit: --set: override 'steps5' is not key=value"]
    assert not (tmp_path / "quickstart").exists()


def test_report_on_non_run_dir(tmp_path):
    res = cli("report", str(tmp_path))
    assert res.returncode == 2 and "not a run directory" in res.stderr


def test_eval_command_matches_api(tmp_path):
    from importlib.resources import files

    demo = Path(str(files("siftkit.data") / "demo"))
    out = tmp_path / "e.json"
    res = cli("eval", "--qrels", str(demo / "qrels.txt"), "--run", str(demo / "run_good.trec"),
              "--metric", "ndcg@3", "--output", str(out))
    assert res.returncode == 0, res.stderr
    assert 0 < json.loads(out.read_text())[0]["ndcg@3"] <= 1


def test_plugin_discovery_reports_broken_plugins(monkeypatch):
    import importlib.metadata
    import types

    import typer

    class EP:
        name = "broken"

        def load(self):
            return types.SimpleNamespace(register=lambda r: 1 / 0)

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [EP()])
    reg = discover(Registry(app=typer.Typer(), serve=typer.Typer()))
    assert "ZeroDivisionError" in reg.failed["broken"]


@pytest.mark.slow
def test_doctor_finds_and_loads_required_assets():
    res = cli("doctor", "--json")
    statuses = json.loads(res.stdout)
    by_kind = {s["name"]: s for s in statuses}
    required = [s for s in statuses if s["kind"] in ("LLM", "embedder", "audio")]
    assert len(required) == 5 and all(s["ok"] for s in required), [s for s in required if not s["ok"]]
    llm = next(s for s in statuses if s["kind"] == "LLM")
    assert "sha256 ok" in llm["detail"]
    assert by_kind
