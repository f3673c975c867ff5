"""``siftkit catalog ingest | describe | eval | write`` end to end on the demo DuckDB catalog (baselines only: no
model loads); bad input is one ``siftkit:`` line and exit 2 before any output folder."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tests.cli_helpers import cli, plugin_registry

registry, app = plugin_registry()


def run(*args):
    res = CliRunner().invoke(app, ["catalog", *map(str, args)])
    assert res.exit_code == 0, res.output
    return res.stdout


def test_registered():
    assert "catalog" in registry.loaded, registry.failed
    assert any(s.name == "catalog" for s in registry.steps)
    assert any(c.name.startswith("PostgreSQL server") for c in registry.asset_checks)


def test_ingest_describe_eval_write(tmp_path):
    from siftkit.catalog.demo import build_demo
    from siftkit.catalog.ingest import load_duckdb

    shop, clinic, library = build_demo(tmp_path / "demo")
    info = json.loads(run("ingest", shop, clinic, library, "--output", tmp_path / "cat.json"))
    assert info == {"databases": 3, "tables": 6, "columns": 30, "described": 36}
    out = tmp_path / "d"
    run("describe", "--catalog", tmp_path / "cat.json", "--targets", "described", "--systems", "echo,copy",
        "--output", out)
    rows = [json.loads(x) for x in (out / "descriptions.jsonl").read_text().splitlines()]
    assert len(rows) == 72 and {r["system"] for r in rows} == {"echo", "copy"}
    assert all(r["column"] is None for r in rows if r["kind"] == "table")  # JSON null, never NaN
    run("eval", "--catalog", tmp_path / "cat.json", "--descriptions", out / "descriptions.jsonl", "--output",
        tmp_path / "e", "--resamples", "100")
    summary = (tmp_path / "e" / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 4  # 2 systems x 2 kinds
    run("write", "--descriptions", out / "descriptions.jsonl", "--system", "copy", "--db", "shop", "--to", shop,
        "--previous", tmp_path / "prev.jsonl")
    copy = {r["id"]: r["text"] for r in rows if r["system"] == "copy" and r["db"] == "shop"}
    got = {a.id: a.description for a in load_duckdb(shop).assets()}
    assert all(got[i] == t for i, t in copy.items()) and len(copy) == 12
    run("write", "--descriptions", tmp_path / "prev.jsonl", "--to", shop)  # revert
    assert load_duckdb(shop).assets()[0].description == "People who have registered an account in the online shop."
    run("write", "--descriptions", out / "descriptions.jsonl", "--system", "echo", "--to", tmp_path / "schema.yml")
    assert "version: 2" in (tmp_path / "schema.yml").read_text()


@pytest.mark.parametrize("args, where", [
    (["describe", "--catalog", "nope.duckdb", "--output", "OUT"], "nope.duckdb"),
    (["describe", "--catalog", "bird", "--systems", "rag-x", "--output", "OUT"], "--systems"),
    (["describe", "--catalog", "bird", "--limit", "-1", "--output", "OUT"], "--limit"),
    (["describe", "--catalog", "bird", "--device", "tpu", "--output", "OUT"], "--device"),
    (["write", "--descriptions", "missing.jsonl", "--to", "x.csv"], "--to"),
])
def test_bad_input_one_line_exit_2_no_output(tmp_path, args, where):
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    res = subprocess.run([sys.executable, "-c", "from siftkit.cli import main; main()", "catalog", *args],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("siftkit: ") and where in lines[0], res.stderr
    assert not (tmp_path / "out").exists()


def test_bad_descriptions_file(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"system": "x", "id": "a", "db": "a", "table": "t", "kind": "column"}\n')
    res = cli("catalog", "write", "--descriptions", str(tmp_path / "d.jsonl"), "--to", str(tmp_path / "o.json"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "d.jsonl:1" in res.stderr, res.stderr


def test_quickstart_step_baselines_only(tmp_path):
    from siftkit.catalog.plugin import quickstart_step
    from siftkit.core.report import StepContext

    ctx = StepContext(run_dir=tmp_path, options={"llm_systems": "", "max_new_tokens": 8, "engine": "ct2",
                                                 "resamples": 50, "limit": 0})
    sec = quickstart_step(ctx)
    assert sec.metrics["writeback_verified"] == 12 and sec.figures
    assert {k for k in sec.metrics if "/" in k} == {f"{s}/{k}/rouge1" for s in ("echo", "copy")
                                                   for k in ("column", "table")}
    assert (tmp_path / "catalog" / "schema.yml").exists()


def test_describe_bad_dense_and_sft_options(tmp_path):
    for args, field in ((["--systems", "dense-0"], "--systems"), (["--systems", "sft-1", "--sft-folds", "1"],
                                                                   "--sft-folds"),
                        (["--systems", "sft-1", "--sft-steps", "0"], "--sft-steps"),
                        (["--systems", "sft-1", "--endpoint", "http://localhost:1/v1"], "--systems")):
        res = cli("catalog", "describe", "--catalog", "bird", "--output", str(tmp_path / "o"), *args)
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and field in res.stderr, res.stderr
        assert not (tmp_path / "o").exists()


def test_eval_with_an_llm_judge(tmp_path):
    from siftkit.catalog.demo import build_demo
    from siftkit.llm.testing import make_tiny_llama

    tiny = make_tiny_llama(tmp_path / "tiny")
    build_demo(tmp_path / "demo")
    shop = tmp_path / "demo" / "shop.duckdb"
    run("describe", "--catalog", shop, "--targets", "described", "--kind", "column", "--systems", "echo", "--output",
        tmp_path / "d")
    run("eval", "--catalog", shop, "--descriptions", tmp_path / "d" / "descriptions.jsonl", "--output",
        tmp_path / "e", "--resamples", "50", "--judge", tiny, "--judge-engine", "torch", "--cache",
        tmp_path / "c.sqlite")
    scored = [json.loads(x) for x in (tmp_path / "e" / "scored.jsonl").read_text().splitlines()]
    assert len(scored) == 10 and all("judge_grounding" in r and "judge_toxic" in r for r in scored)
    header = (tmp_path / "e" / "summary.csv").read_text().splitlines()[0]
    assert "judge_supported" in header and "judge_unparsed" in header
    res = cli("catalog", "eval", "--catalog", str(shop), "--descriptions", str(tmp_path / "d" / "descriptions.jsonl"),
              "--output", str(tmp_path / "e2"), "--judge-endpoint", "http://localhost:1/v1")
    assert res.returncode == 2 and "--judge-endpoint" in res.stderr and not (tmp_path / "e2").exists()
