import json

import typer
from typer.testing import CliRunner

from siftkit.core.plugins import Registry, discover

registry = discover(Registry(app=typer.Typer(), serve=typer.Typer()))
app = registry.app


def test_cascade_plugin_registered():
    assert "cascade" in registry.loaded, registry.failed
    assert any(s.name == "cascade" for s in registry.steps)


def test_cascade_run_smoke(tmp_path):
    res = CliRunner().invoke(app, ["cascade", "run", "--stages", "2", "--methods", "bce,lcron", "--seeds", "1",
                                   "--config", "tiny", "--output", str(tmp_path)])
    assert res.exit_code == 0, res.output
    run_dir = next((tmp_path / "cascade").iterdir())
    for name in ("report.html", "metrics.json", "manifest.json", "table.md", "cells.json"):
        assert (run_dir / name).exists()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["oracle_labels"]["joint"] == 1.0 and "lcron" in metrics


def test_unknown_method_is_one_line_error(tmp_path):
    res = CliRunner().invoke(app, ["cascade", "run", "--methods", "nope", "--config", "tiny", "--output",
                                   str(tmp_path)])
    assert res.exit_code != 0


def test_quickstart_step_returns_a_table(tmp_path):
    from siftkit.cascade.plugin import quickstart_step
    from siftkit.core.report import StepContext

    sec = quickstart_step(StepContext(run_dir=tmp_path, options={"config": "tiny"}))
    assert sec.status == "ok" and sec.tables and "lcron" in sec.metrics


def test_cascade_run_on_a_recflow_folder(tmp_path):
    from siftkit.cascade import recflow
    from siftkit.cascade.simulator import preset, simulate

    train, test = simulate(preset("tiny", requests_per_day=24, test_requests=24))
    recflow.write_layout(train, tmp_path / "rf", ["2024-02-01", "2024-02-02"], 2)
    recflow.write_layout(test, tmp_path / "rf", [recflow.TEST_DATE], 2)
    args = ["cascade", "run", "--recflow", str(tmp_path / "rf"), "--methods", "lcron", "--seeds", "1",
            "--output", str(tmp_path / "runs")]
    refused = CliRunner().invoke(app, args)  # RecFlow's pickles are refused without --trust-pickle
    assert refused.exit_code != 0 and "--trust-pickle" in str(refused.exception)
    assert not (tmp_path / "runs").exists()  # nothing half-made is left behind
    res = CliRunner().invoke(app, args + ["--trust-pickle"])
    assert res.exit_code == 0, res.output
    run_dir = next((tmp_path / "runs" / "cascade").iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "lcron" in metrics and "oracle_utility" not in metrics
    hashed = json.loads((run_dir / "manifest.json").read_text())["inputs"]  # exactly the files that were read
    assert len(hashed) == 9 and any(k.endswith("request_id_dict/2024-02-01.pkl") for k in hashed)


def test_bad_device_is_refused_before_training(tmp_path):
    res = CliRunner().invoke(app, ["cascade", "run", "--config", "tiny", "--device", "gpu", "--output",
                                   str(tmp_path)])
    assert res.exit_code != 0 and "'gpu' is not a torch device" in str(res.exception)
    assert not (tmp_path / "cascade").exists()
