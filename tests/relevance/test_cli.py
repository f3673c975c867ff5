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
         "--steps", "1", "--beam-k", "5", "--max-length", "512", "--lr", "1e-4"])
    _ok(["judge", "--input", str(small), "--output", str(tmp_path / "p.jsonl"), "--model", str(tmp_path / "m3"),
         "--scale", "binary"])
    preds = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(preds) == 8 and preds[0]["label"] in ("Relevant", "Not relevant") and len(preds[0]["logprobs"]) == 5
    out = _ok(["eval", "--input", str(small), "--model", tiny, "--output", str(tmp_path / "r.json")])
    assert "macro_f1" in json.loads((tmp_path / "r.json").read_text())


def test_precision_flags_reach_the_config(tmp_path, monkeypatch):
    import siftkit.relevance.pipeline as pipeline
    import siftkit.relevance.plugin as plugin

    seen = {}

    def fake_select(cfg, rows, pool, seed, log=print):
        seen["select"] = cfg
        return {"kept": [True] * len(pool), "stats": {}}

    def fake_evaluate(llm, rows, scale, cot, cfg, gold_key="gold"):
        seen["eval"] = cfg
        return {"macro_f1": 0.0}

    monkeypatch.setattr(pipeline, "stage1_select", fake_select)
    monkeypatch.setattr(pipeline, "evaluate", fake_evaluate)
    monkeypatch.setattr(plugin, "_llm", lambda model, threads: None)
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"query": "q", "title": "t", "label": "Exact"}) + "\n")
    _ok(["select", "--train", str(f), "--output", str(tmp_path / "k.jsonl"), "--gradient-checkpointing",
         "--judge-autocast"])
    assert seen["select"].gradient_checkpointing and seen["select"].judge_autocast
    _ok(["select", "--train", str(f), "--output", str(tmp_path / "k.jsonl")])
    assert not seen["select"].gradient_checkpointing and not seen["select"].judge_autocast
    _ok(["eval", "--input", str(f), "--judge-autocast"])
    assert seen["eval"].judge_autocast


def test_dpo_errors_flag_reaches_the_config(tmp_path, monkeypatch):
    import siftkit.relevance.pipeline as pipeline
    import siftkit.relevance.plugin as plugin

    seen = []
    monkeypatch.setattr(pipeline, "stage3_dpo",
                        lambda cfg, llm, rows, seed, log=print: (seen.append(cfg), (llm, 0))[1])
    monkeypatch.setattr(plugin, "_llm", lambda model, threads: None)
    monkeypatch.setattr(plugin, "_save", lambda llm, output: None)
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"query": "q", "title": "t", "label": "Exact"}) + "\n")
    _ok(["dpo", "--train", str(f), "--model", "m", "--output", str(tmp_path / "o"), "--errors", "over"])
    _ok(["dpo", "--train", str(f), "--model", "m", "--output", str(tmp_path / "o")])
    assert [c.dpo_errors for c in seen] == ["over", "all"]


def test_bad_input_names_file_and_line(tmp_path):
    from siftkit.core.errors import InputError

    f = tmp_path / "x.jsonl"
    f.write_text('{"query": "sofa", "title": "sofa", "label": "Exact"}\n{"query": "lamp"}\n')
    with pytest.raises(InputError, match="x.jsonl:2"):
        read_pairs(f, need_label=True)
    csv = tmp_path / "w.csv"
    csv.write_text("query,name,target\nsofa,navy sofa,Relevant\n")
    assert read_pairs(csv, need_label=True)[0]["title"] == "navy sofa"


def test_llm_teacher_flags_build_a_cached_endpoint_teacher(tmp_path, monkeypatch):
    import siftkit.llm.factory as factory
    import siftkit.relevance.pipeline as pipeline
    import siftkit.relevance.plugin as plugin

    built, passed = [], []
    monkeypatch.setattr(factory, "make_chat_model", lambda *a, **k: (built.append((a, k)), "TEACHER")[1])
    monkeypatch.setattr(pipeline, "stage2_multicot", lambda cfg, llm, rows, seed, teacher=None, log=print: (
        passed.append((cfg.teacher, teacher)), llm)[1])
    monkeypatch.setattr(plugin, "_llm", lambda model, threads: None)
    monkeypatch.setattr(plugin, "_save", lambda llm, output: None)
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"query": "q", "title": "t", "label": "Exact"}) + "\n")
    base = ["sft", "--train", str(f), "--output", str(tmp_path / "o"), "--cot"]
    _ok(base + ["--teacher", "llm", "--teacher-endpoint", "http://127.0.0.1:9/v1", "--teacher-model", "big",
                "--teacher-cache", str(tmp_path / "t.sqlite")])
    assert built[0][0][:3] == ("big", "http://127.0.0.1:9/v1", tmp_path / "t.sqlite")
    _ok(base)
    assert passed == [("llm", "TEACHER"), ("rules", None)] and len(built) == 1
    res = runner.invoke(app, ["sft", "--train", str(f), "--output", str(tmp_path / "o"), "--teacher", "llm"])
    assert res.exit_code != 0 and "--cot" in (res.output + str(res.exception))
    res = runner.invoke(app, base + ["--teacher-endpoint", "http://127.0.0.1:9/v1"])  # without --teacher llm
    assert res.exit_code != 0 and "--teacher llm" in (res.output + str(res.exception)) and len(built) == 1
