import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from siftkit.core.report import Section, render_html
from siftkit.core.rundir import RunDir, redact, sha256_file
from siftkit.core.seeding import derive_seed, rng


def test_run_dir_layout_and_manifest(tmp_path):
    rd = RunDir.create("exp", tmp_path, seeds=[0, 1])
    assert rd.path.parent == tmp_path / "exp"
    data = tmp_path / "data.txt"
    data.write_text("hello")
    rd.record_input(data)
    rd.write_config({"lr": 0.1, "api_key": "sk-secret"})
    rd.write_metrics({"ndcg": 0.5, "client": {"OPENAI_API_KEY": "sk-secret"}})
    rd.write_manifest()
    rd.log("hello")
    man = json.loads((rd.path / "manifest.json").read_text())
    assert man["seeds"] == [0, 1]
    assert man["inputs"][str(data)] == sha256_file(data)
    assert any(p.startswith("torch==") for p in man["pip_freeze"])
    assert "cpu_count" in man["threads"]
    for f in ("config.yaml", "metrics.json", "manifest.json", "run.log"):
        assert "sk-secret" not in (rd.path / f).read_text()
    assert RunDir.open(rd.path).metrics["ndcg"] == 0.5


def test_redact_nested():
    assert redact({"a": {"Authorization": "Bearer x"}, "b": [{"token": "t"}]}) == {
        "a": {"Authorization": "<redacted>"}, "b": [{"token": "<redacted>"}]}


def test_report_is_self_contained():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    html = render_html("t", [Section("s <1>", text="para", tables=[("tab", pd.DataFrame({"a": [1.5]}))],
                                     figures=[("fig", fig)])])
    assert "data:image/png;base64," in html
    assert "<caption>tab</caption>" in html
    assert "s &lt;1&gt;" in html
    assert "http://" not in html and "https://" not in html


def test_seeding_is_stable():
    assert derive_seed(0, "a", 1) == derive_seed(0, "a", 1) != derive_seed(0, "a", 2)
    assert rng(3).integers(0, 100, 5).tolist() == rng(3).integers(0, 100, 5).tolist()
