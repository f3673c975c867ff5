"""Few-step smoke runs of every ``siftkit relevance`` command on the tiny random Llama."""

import json

import pytest
from typer.testing import CliRunner

from siftkit.relevance.plugin import app, read_pairs

runner = CliRunner()


def _ok(args):
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def test_every_command_runs(tiny_llama_path, tmp_path):
    tiny = str(tiny_llama_path)
    _ok(["synth", "--output", str(tmp_path / "d"), "--n-pairs", "60", "--seed", "1"])
    train = tmp_path / "d" / "train.jsonl"
    small = tmp_path / "small.jsonl"
    small.write_text("".join(train.read_text().splitlines(keepends=True)[:8]))
    out = _ok(["select", "--train", str(small), "--output", str(tmp_path / "kept.jsonl"), "--model", tiny,
               "--steps", "1", "--max-length", "512"])
    assert '"kept_share"' in out
    _ok(["sft", "--train", str(small), "--output", str(tmp_path / "m1"), "--model", tiny, "--steps", "1",
         "--max-length", "512"])
    _ok(["sft", "--train", str(small), "--output", str(tmp_path / "m2"), "--model", str(tmp_path / "m1"), "--cot",
         "--steps", "1", "--max-length", "512"])
    _ok(["dpo", "--train", str(small), "--model", str(tmp_path / "m2"), "--output", str(tmp_path / "m3"),
         "--steps", "1", "--beam-k", "5", "--max-length", "512"])
    _ok(["judge", "--input", str(small), "--output", str(tmp_path / "p.jsonl"), "--model", str(tmp_path / "m3"),
         "--scale", "binary"])
    preds = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(preds) == 8 and preds[0]["label"] in ("Relevant", "Not relevant") and len(preds[0]["logprobs"]) == 5
    out = _ok(["eval", "--input", str(small), "--model", tiny, "--output", str(tmp_path / "r.json")])
    assert "macro_f1" in json.loads((tmp_path / "r.json").read_text())


def test_bad_input_names_file_and_line(tmp_path):
    from siftkit.core.errors import InputError

    f = tmp_path / "x.jsonl"
    f.write_text('{"query": "sofa", "title": "sofa", "label": "Exact"}\n{"query": "lamp"}\n')
    with pytest.raises(InputError, match="x.jsonl:2"):
        read_pairs(f, need_label=True)
    csv = tmp_path / "w.csv"
    csv.write_text("query,name,target\nsofa,navy sofa,Relevant\n")
    assert read_pairs(csv, need_label=True)[0]["title"] == "navy sofa"
