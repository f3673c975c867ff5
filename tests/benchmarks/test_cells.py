import json

from benchmarks.cells import Experiment, cell_key, collect, markdown_table, run_experiment


def test_cells_are_skipped_when_present_and_collected(tmp_path):
    calls = []

    def fn(p):
        calls.append(dict(p))
        if p["seed"] == 2 and len(calls) == 3:
            raise KeyboardInterrupt  # an interruption part-way through the grid
        return {"score": {"a": 1.0, "b": 2.0}[p["method"]] + p["seed"], "note": "x"}

    exp = Experiment("t", {"method": ["a", "b"], "seed": [0, 1, 2]}, fn, root=tmp_path)
    try:
        run_experiment(exp, progress=False)
    except KeyboardInterrupt:
        pass
    assert len(list((tmp_path / "t").glob("*.json"))) == 2
    counts = run_experiment(exp, progress=False)
    assert counts == {"ran": 4, "skipped": 2, "total": 6}
    assert run_experiment(exp, progress=False)["ran"] == 0
    df = collect("t", by=["method"], root=tmp_path)
    a = df[df.method == "a"].iloc[0]
    assert a["n"] == 3 and a["score"] == (1 + 2 + 3) / 3 and abs(a["score_std"] - 1.0) < 1e-12
    assert a["score_lo"] <= a["score"] <= a["score_hi"]
    md = markdown_table(df, ["score"])
    assert "| a | 3 | 2.0000 ± 1.0000" in md
    rec = json.loads(exp.path({"method": "a", "seed": 0}).read_text())
    assert rec["params"] == {"method": "a", "seed": 0} and "seconds" in rec


def test_cell_key_is_order_independent_and_safe():
    assert cell_key({"seed": 0, "method": "a/b"}) == cell_key({"method": "a/b", "seed": 0}) == "method=a-b__seed=0"
