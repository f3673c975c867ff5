import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from siftkit.search_agent.plugin import app


def test_eval_direct_on_a_qa_file_with_a_local_model(tmp_path, tiny_llama_dir):
    data = tmp_path / "bamboogle.jsonl"
    data.write_text("".join(json.dumps({"idx": i, "question": f"who is {i}", "answer": "x"}) + "\n" for i in range(3)))
    out = tmp_path / "per_q.jsonl"
    res = CliRunner().invoke(app, ["eval", "--data", str(data), "--model", str(tiny_llama_dir), "--max-new-tokens",
                                   "4", "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert "skipping rag" in res.output and "bamboogle" in res.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 3 and {r["system"] for r in rows} == {"direct"} and all(r["searches"] == 0 for r in rows)


def test_eval_synthetic_checkpoint(tmp_path):
    from siftkit.search_agent.demo import SyntheticRunConfig, run_synthetic, save_run

    res = run_synthetic(SyntheticRunConfig(n_entities=12, n_values=6, two_hop=False, sft_trajs=40, sft_epochs=1,
                                           steps=1, prompts_per_step=2, group_size=2, max_turns=1, n_eval=4),
                        log=lambda m: None)
    save_run(res, tmp_path / "run")
    assert (tmp_path / "run" / "reward.png").exists() and (tmp_path / "run" / "history.jsonl").exists()
    r = CliRunner().invoke(app, ["eval", "--synthetic", "--model", str(tmp_path / "run"), "--limit", "3"])
    assert r.exit_code == 0, r.output
    assert "policy" in r.output and "synthetic-1hop" in r.output


def test_cli_is_registered():
    res = subprocess.run([sys.executable, "-c", "from siftkit.cli import main; main()", "search-agent", "--help"],
                         capture_output=True, text=True)
    assert res.returncode == 0 and "eval" in res.stdout and "train" in res.stdout


@pytest.mark.slow
def test_quickstart_step_returns_a_table_and_plot(tmp_path):
    from siftkit.core.report import StepContext
    from siftkit.search_agent.plugin import quickstart_step

    sec = quickstart_step(StepContext(run_dir=tmp_path, options={"steps": 2}))
    assert sec.status == "ok" and len(sec.tables[0][1]) == 6 and sec.figures
    assert (tmp_path / "search-r1" / "history.jsonl").exists()
