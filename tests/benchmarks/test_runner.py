"""The benchmark runner and versioned cells: resume of a killed grid, stale cells refused, partial cells resumed,
legacy cells judged by git, pages rendered from cells."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.__main__ import main
from benchmarks.cells import (REPO, Experiment, Partial, StaleCellError, adopt, collect, legacy_verdict,
                              run_experiment, stamp_changes)
from benchmarks.runner import find
from siftkit.core.config import load_profile
from siftkit.core.errors import ConfigError

TOY = "tests.benchmarks.toy_bench"


def _ran(log: Path) -> list[tuple[str, int]]:
    return [(p["method"], p["seed"]) for p in map(json.loads, log.read_text().splitlines())] if log.exists() else []


def test_killed_grid_resumes_only_missing_cells(tmp_path):
    """A grid run in 2 worker processes is killed (whole process group) half-way; the rerun runs only the rest."""
    log, root = tmp_path / "calls.jsonl", tmp_path / "cells"
    args = [sys.executable, "-m", "benchmarks", "run", TOY, "--profile", "gpu", "--cells-root", str(root),
            "--set", f"log={log}", "--set", "sleep=1.0", "--set", "seeds=[0,1,2]", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(args, cwd=REPO, env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while len(list((root / "toy").glob("*.json"))) < 2 and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in (root / "toy").glob("*.json"))
    assert 2 <= len(done) < 6
    first = _ran(log)
    log.unlink()
    out = subprocess.run(args[:-1], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rerun = _ran(log)
    finished_before = {(json.loads((root / "toy" / n).read_text())["params"]["method"],
                        json.loads((root / "toy" / n).read_text())["params"]["seed"]) for n in done}
    assert len(rerun) == 6 - len(done) and not finished_before & set(rerun)
    assert len(list((root / "toy").glob("*.json"))) == 6 and len(first) >= len(done)
    assert len(list((root / "toy_squares").glob("*.json"))) == 2
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert counts["total"] == 6 + 2 and counts["ran"] + counts["skipped"] == 8 and counts["ran"] >= 6 - len(done)


def test_worker_killed_mid_cell_is_reported_and_the_rerun_completes_the_grid(tmp_path, capsys):
    """A worker process dies (SIGKILL) inside a cell: the run ends with exit 1 naming the failed cells, the cells
    that finished are kept, and the rerun runs only the missing ones."""
    log, root, flag = tmp_path / "calls.jsonl", tmp_path / "cells", tmp_path / "died"
    args = ["run", TOY, "--profile", "gpu", "--workers", "1", "--cells-root", str(root), "--set", f"log={log}",
            "--set", f"die_once={flag}", "--no-progress", "--only", "method=a"]
    assert main(args) == 1
    assert "BrokenProcessPool" in capsys.readouterr().err and flag.exists()
    kept = {json.loads(p.read_text())["params"]["seed"] for p in (root / "toy").glob("*.json")}
    assert kept == {0}  # seed 0 finished before the worker died in seed 1; seed 2 never started
    log.unlink()
    assert main(args) == 0
    assert sorted(_ran(log)) == [("a", 1), ("a", 2)]


def test_stale_cell_is_refused_and_rerun_on_request(tmp_path):
    src = tmp_path / "method.py"
    src.write_text("def f(x):\n    return x + 1\n")
    data = tmp_path / "data.txt"
    data.write_text("1")

    def exp():
        return Experiment("s", {"seed": [0, 1]}, _score, root=tmp_path, sources=[str(src)], inputs={"d": data},
                          settings={"n": 3})

    assert run_experiment(exp(), progress=False) == {"ran": 2, "skipped": 0, "total": 2}
    assert [c["status"] for c in exp().load()] == ["fresh", "fresh"]
    src.write_text("def f(x):\n    return x + 2\n")  # the method changed after the cells ran
    with pytest.raises(StaleCellError) as e:
        exp().load()
    assert "s/seed=0" in str(e.value) and f"source {src} changed" in str(e.value)
    with pytest.raises(StaleCellError):
        run_experiment(exp(), progress=False)
    assert [c["status"] for c in exp().load(allow_stale=True)] == ["stale", "stale"]
    assert run_experiment(exp(), progress=False, rerun=["stale"])["ran"] == 2
    assert [c["status"] for c in exp().load()] == ["fresh", "fresh"]
    assert collect(exp(), by=["seed"])["score"].tolist() == [0, 2]
    data.write_text("2")  # the input changed
    with pytest.raises(StaleCellError, match="input d changed"):
        exp().load()
    with pytest.raises(StaleCellError):  # collecting refuses too
        collect(exp(), by=["seed"])


def _score(params):
    return {"score": params["seed"] * 2}


def test_stamp_changes_names_settings_and_files():
    old = {"code": "a", "files": {"x.py": "1", "y.py": "2"}, "inputs": {"d": "1"}, "settings": {"n": 3}}
    new = {"code": "b", "files": {"x.py": "9", "z.py": "3"}, "inputs": {"d": "1"}, "settings": {"n": 4}}
    assert stamp_changes(old, new) == ["source x.py changed", "source z.py added", "source y.py removed",
                                       "setting n: 3 -> 4"]
    assert stamp_changes(old, old) == []


def _stepper(params, partial):
    """Five steps; each adds its index to a running total; step 2 fails on the first attempt."""
    calls = Path(params["log"])
    for step in range(5):
        key = f"step={step}"
        if key in partial:
            continue
        with open(calls, "a") as f:
            f.write(f"{step}\n")
        if step == 2 and not Path(str(calls) + ".failed").exists():
            Path(str(calls) + ".failed").touch()
            raise RuntimeError("killed at step 2")
        partial.save(key, partial.get(f"step={step - 1}", 0) + step)
    return {"total": partial.get("step=4")}


def test_partial_cell_resumes_from_its_state(tmp_path):
    log = tmp_path / "steps.log"
    src = tmp_path / "m.py"
    src.write_text("x = 1\n")
    exp = Experiment("p", [{"log": str(log)}], _stepper, root=tmp_path, sources=[str(src)])
    with pytest.raises(RuntimeError, match="killed at step 2"):
        run_experiment(exp, progress=False)
    params = exp.cells()[0]
    assert exp.status(params)[0] == "partial"
    assert json.loads(exp.partial_path(params).read_text())["state"] == {"step=0": 0, "step=1": 1}
    assert run_experiment(exp, progress=False) == {"ran": 1, "skipped": 0, "total": 1}
    assert log.read_text().split() == ["0", "1", "2", "2", "3", "4"]  # steps 0 and 1 were not redone
    assert exp.load()[0]["metrics"] == {"total": 0 + 1 + 2 + 3 + 4}
    assert not exp.partial_path(params).exists()
    # a partial cell made by other code is refused, not resumed
    exp.path(params).unlink()
    Partial(exp.partial_path(params), params, exp.stamp).save("step=0", 0)
    src.write_text("x = 2\n")
    exp2 = Experiment("p", [{"log": str(log)}], _stepper, root=tmp_path, sources=[str(src)])
    assert exp2.status(params)[0] == "stale"
    with pytest.raises(StaleCellError, match="partial cell"):
        run_experiment(exp2, progress=False, rerun=["unverified"])


def _commit(repo, msg):
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, capture_output=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", msg], cwd=repo, check=True,
                   capture_output=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_legacy_cells_are_judged_by_git(tmp_path):
    """On a throw-away repository, so the verdicts do not depend on this checkout's history or clone depth."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, capture_output=True)
    (tmp_path / "m.py").write_text("x = 1\n")
    (tmp_path / "other.py").write_text("y = 1\n")
    first = _commit(tmp_path, "first")
    (tmp_path / "m.py").write_text("x = 2\n")
    second = _commit(tmp_path, "second")
    (tmp_path / "other.py").write_text("y = 2\n")  # uncommitted, but not a declared file

    def verdict(commit, files=("m.py",)):
        return legacy_verdict(commit, list(files), repo=tmp_path)[0]

    assert verdict(second) == "adoptable"
    assert verdict(first) == "stale"
    assert verdict(second, ["other.py"]) == "stale"  # uncommitted edits of a declared file count
    assert verdict(second + "+dirty") == "unverified"
    assert verdict(None) == "unverified"
    assert verdict("0" * 40) == "unverified"


def test_page_renders_from_cells_and_flags_legacy(tmp_path, capsys):
    root, out = tmp_path / "cells", tmp_path / "toy.md"
    assert main(["run", TOY, "--profile", "cpu", "--cells-root", str(root), "--no-progress"]) == 0
    console = capsys.readouterr()
    assert "says hello" not in console.out + console.err and "a library warning" not in console.err
    log = (root / "toy" / "_tmp_logs" / "method=a__seed=0.log").read_text()
    assert "toy cell {'method': 'a', 'seed': 0} says hello" in log and "UserWarning: a library warning" in log
    legacy = {"experiment": "toy", "params": {"method": "a", "seed": 7}, "metrics": {"score": 99.0},
              "git_commit": None}
    (root / "toy" / "method=a__seed=7.json").write_text(json.dumps(legacy))
    assert main(["page", TOY, "--profile", "cpu", "--cells-root", str(root), "--out", str(out)]) == 0
    text = out.read_text()
    # scores: 10·{1,2} + seed + offset 0.5 (shared setting)
    for row in ["| a | 0 | 10.50 |", "| a | 1 | 11.50 |", "| b | 0 | 20.50 |", "| b | 1 | 21.50 |",
                "| a ⚠ | 7 | 99.00 |"]:
        assert row in text
    assert "4 fresh, 1 unverified" in text and "`toy/method=a__seed=7`: legacy cell: no commit recorded" in text
    assert "squares: 2²=4, 3²=9" in text  # the part's cells were run by the same command and reach the page
    # a setting changed in the config: the page refuses the cells made with the old one
    assert main(["page", TOY, "--profile", "cpu", "--cells-root", str(root), "--out", str(out),
                 "--set", "offset=1.5"]) == 1
    assert "setting offset: 0.5 -> 1.5" in capsys.readouterr().err
    assert main(["page", TOY, "--profile", "cpu", "--cells-root", str(root), "--out", str(out),
                 "--set", "offset=1.5", "--allow-stale"]) == 0
    text = out.read_text()
    assert "| a ✗stale | 0 | 10.50 |" in text and "--allow-stale  # this page" in text
    assert "- ✗ `toy/method=a__seed=0`: setting offset: 0.5 -> 1.5" in text


def test_run_skips_stale_cells_with_one_warning_line_unless_rerun_stale(tmp_path, capsys):
    root = tmp_path / "cells"
    base = ["run", TOY, "--profile", "cpu", "--cells-root", str(root), "--no-progress"]
    assert main(base) == 0
    capsys.readouterr()
    (root / "toy" / "method=b__seed=1.json").unlink()  # one cell missing, the others made with offset 0.5

    def score(key):
        return json.loads((root / "toy" / f"{key}.json").read_text())["metrics"]["score"]

    assert main(base + ["--set", "offset=1.5", "--only", "method=b"]) == 0  # the setting stales the old cells
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("siftkit: warning: skipped 1 stale cell(s)")
    assert "toy/method=b__seed=0" in err and "method=a" not in err  # only the selected cells are named
    assert ("`python -m benchmarks run tests.benchmarks.toy_bench --profile cpu --only method=b --set offset=1.5 "
            "--rerun stale`") in err
    assert json.loads(out.strip().splitlines()[-1]) == {"ran": 1, "skipped": 1, "total": 2, "stale": 1}
    assert (score("method=b__seed=0"), score("method=b__seed=1")) == (20.5, 22.5)  # stale kept, missing run
    assert main(base + ["--set", "offset=1.5", "--only", "method=b", "--rerun", "stale"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and json.loads(out.strip().splitlines()[-1])["ran"] == 1
    assert score("method=b__seed=0") == 21.5 and score("method=a__seed=0") == 10.5
    with pytest.raises(StaleCellError):  # the library default still refuses
        run_experiment(find(TOY).experiment_for(find(TOY).load_config("cpu", ["offset=1.5"]), root),
                       progress=False)


def test_bad_profile_and_only_key_are_one_line_errors(tmp_path, capsys):
    assert main(["run", TOY, "--profile", "tpu", "--cells-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("siftkit: ") and "toy_bench.yaml" in err and "profiles.tpu" in err and "\n" not in err
    assert main(["run", TOY, "--profile", "cpu", "--cells-root", str(tmp_path), "--only", "lr=1"]) == 2
    assert '"lr" is not an axis of toy' in capsys.readouterr().err
    assert main(["run", TOY, "--profile", "cpu", "--cells-root", str(tmp_path), "--workers", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "siftkit: --workers: must be >= 0 (0 = this process), got -1"
    assert not (tmp_path / "toy").exists()


def test_load_profile_merges_settings_profile_and_overrides(tmp_path):
    from pydantic import BaseModel

    class C(BaseModel):
        a: int = 0
        b: dict = {}

    f = tmp_path / "c.yaml"
    f.write_text("settings: {a: 1, b: {x: 1, y: 2}}\nprofiles:\n  cpu: {b: {y: 3}}\n  gpu: {a: 5}\n")
    assert load_profile(C, f, "cpu").model_dump() == {"a": 1, "b": {"x": 1, "y": 3}}
    assert load_profile(C, f, "gpu", ["b.x=7"]).model_dump() == {"a": 5, "b": {"x": 7, "y": 2}}
    f.write_text("settings: {}\nprofiles: {cpu: {}}\nseeds: [1]\n")
    with pytest.raises(ConfigError, match='field "seeds"'):
        load_profile(C, f, "cpu")


def test_cell_computed_from_unverified_cells_is_unverified(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("x = 1\n")
    exp = Experiment("d", [{"k": 1}], lambda p: {"v": 1, "unverified_inputs": ["other/k=1"]}, root=tmp_path,
                     sources=[str(src)])
    run_experiment(exp, progress=False)
    (cell,) = exp.load()
    assert cell["status"] == "unverified" and cell["status_reasons"] == ["made from unverified cells: other/k=1"]


def test_adopt_stamps_only_cells_git_vouches_for(tmp_path):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    exp = Experiment("legacy", {"seed": [0, 1, 2]}, _score, root=tmp_path, sources=["siftkit/metrics/ir.py"])
    (tmp_path / "legacy").mkdir()
    for seed, commit in [(0, head), (1, head + "+dirty"), (2, None)]:
        rec = {"experiment": "legacy", "params": {"seed": seed}, "metrics": {"score": seed}, "git_commit": commit}
        exp.path({"seed": seed}).write_text(json.dumps(rec))
    assert [c["status"] for c in exp.load()] == ["unverified"] * 3  # nothing is accepted before adoption
    rows = adopt(exp)
    assert [(k, v) for k, v, _ in rows] == [("seed=0", "adoptable"), ("seed=1", "unverified"),
                                            ("seed=2", "unverified")]
    adopted = json.loads(exp.path({"seed": 0}).read_text())
    assert adopted["stamp"] == exp.stamp and adopted["adopted"]["from_commit"] == head
    assert [c["status"] for c in exp.load()] == ["fresh", "unverified", "unverified"]
    assert "stamp" not in json.loads(exp.path({"seed": 1}).read_text())


def test_per_cell_settings_stale_only_their_cell(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("x = 1\n")
    variants = {"a": {"lr": 1}, "b": {"lr": 2}}

    def exp():
        return Experiment("v", {"variant": list(variants)}, _score_variant, root=tmp_path, sources=[str(src)],
                          cell_settings=lambda p: variants[p["variant"]])

    run_experiment(exp(), progress=False)
    variants["b"] = {"lr": 3}  # b's definition changed, a's did not
    variants["c"] = {"lr": 4}  # a variant added: not run yet, the others stay current
    assert [exp().status({"variant": v})[0] for v in "abc"] == ["fresh", "stale", "missing"]
    assert exp().status({"variant": "b"})[1] == ["cell settings: {'lr': 2} -> {'lr': 3}"]
    del variants["a"]  # a variant removed from the config: its cell is refused, not kept silently
    with pytest.raises(StaleCellError, match="no longer in the grid"):
        exp().load()


def _score_variant(params):
    return {"score": 1.0}


def test_list_names_benchmarks_on_the_runner(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("usefulness ") and "[profiles: cpu, gpu]" in line for line in out)
    assert not any(line.split()[0] in ("cells", "runner", "stamp") for line in out)


def test_input_hash_is_content_based_and_cached(tmp_path):
    from benchmarks import stamp

    cache = tmp_path / "hashes.json"
    d = tmp_path / "data"
    d.mkdir()
    (d / "a.txt").write_text("one")
    h1 = stamp.input_hash(d, cache)
    assert list(json.loads(cache.read_text()).values()) == [h1]
    stamp._INPUT_MEMO.clear()
    assert stamp.input_hash(d, cache) == h1  # from the cache file
    (d / "a.txt").write_text("two")
    h2 = stamp.input_hash(d, cache)
    assert h2 != h1 and sorted(json.loads(cache.read_text()).values()) == sorted([h1, h2])
    (d / "a.txt").write_text("one")  # same content again, new mtime: same hash
    assert stamp.input_hash(d, cache) == h1
