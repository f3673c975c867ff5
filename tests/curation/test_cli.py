"""``siftkit curation describe | score | select | train | eval`` on synthetic clips; bad input is one line and
exit 2 before any output; the quickstart step."""

import json

from typer.testing import CliRunner

from tests.cli_helpers import cli, plugin_registry

registry, app = plugin_registry()


def test_registered():
    assert "curation" in registry.loaded, registry.failed
    assert any(s.name == "curation" for s in registry.steps)


def test_pipeline_end_to_end(tmp_path):
    run = CliRunner().invoke
    tr, te = tmp_path / "train", tmp_path / "test"
    r = run(app, ["curation", "describe", "--synthetic", "60", "--rho", "0.3", "--output", str(tr)])
    assert r.exit_code == 0, r.output
    assert run(app, ["curation", "describe", "--synthetic", "30", "--rho", "0", "--seed", "9", "--output",
                     str(te)]).exit_code == 0
    r = run(app, ["curation", "score", "--clips", str(tr), "--output", str(tmp_path / "s.jsonl")])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(rows) == 60 and all(0 <= x["final"] <= 10 for x in rows)
    r = run(app, ["curation", "select", "--scores", str(tmp_path / "s.jsonl"), "--fraction", "0.7", "--output",
                  str(tmp_path / "k.jsonl")])
    assert r.exit_code == 0, r.output
    kept = (tmp_path / "k.jsonl").read_text().splitlines()
    assert len(kept) >= 42 and json.loads(r.stdout)["curve"][0]["hours"] == 60 * 3 / 3600
    r = run(app, ["curation", "train", "--clips", str(tr), "--selected", str(tmp_path / "k.jsonl"), "--epochs", "2",
                  "--hidden", "16", "--dim", "8", "--heads", "2", "--output", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["clips"] == len(kept)
    r = run(app, ["curation", "eval", "--model", str(tmp_path / "m"), "--clips", str(te), "--k", "3", "--n", "30"])
    assert r.exit_code == 0, r.output
    assert 0 <= json.loads(r.stdout)["a2v@1"] <= 100


def test_bad_input_one_line_exit_2(tmp_path):
    out = tmp_path / "o"
    for args in (["curation", "describe", "--synthetic", "10", "--rho", "1.5", "--output", str(out)],
                 ["curation", "describe", "--output", str(out)],
                 ["curation", "score", "--clips", str(tmp_path / "none"), "--output", str(out / "s.jsonl")],
                 ["curation", "select", "--scores", str(tmp_path / "x.jsonl"), "--theta", "11", "--output",
                  str(out / "k.jsonl")]):
        p = cli(*args)
        assert p.returncode == 2, (args, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("siftkit: "), p.stderr
        assert not out.exists()


def test_quickstart_step(tmp_path):
    from siftkit.core.report import StepContext
    from siftkit.curation.plugin import quickstart_step

    step = next(s for s in registry.steps if s.name == "curation")
    opts = {**step.defaults(), "clips": 80, "test_clips": 40, "epochs": 1}
    sec = quickstart_step(StepContext(run_dir=tmp_path, options=opts))
    assert sec.status == "ok" and sec.figures
    assert set(sec.tables[0][1].subset) == {"curated", "random", "all"}
    assert sec.metrics["judge_auc"] > 0.8


def test_describe_real_files_segmented(tmp_path):
    import numpy as np
    import soundfile as sf
    from PIL import Image

    sr = 16000
    t = np.arange(int(sr * 7.5)) / sr
    sf.write(tmp_path / "a.wav", 0.3 * np.sin(2 * np.pi * 440 * t), sr)
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(tmp_path / "i.png")
    (tmp_path / "p.jsonl").write_text(json.dumps({"id": "x", "audio": str(tmp_path / "a.wav"),
                                                  "image": str(tmp_path / "i.png")}) + "\n")
    r = CliRunner().invoke(app, ["curation", "describe", "--pairs", str(tmp_path / "p.jsonl"), "--whisper", "none",
                                 "--output", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (tmp_path / "c" / "clips.jsonl").read_text().splitlines()]
    assert [x["start"] for x in rows] == [0.0, 3.0]  # two full 3-s windows; the 1.5-s tail is dropped
    assert "440 Hz" in rows[0]["audio_caption"]
    r = CliRunner().invoke(app, ["curation", "describe", "--pairs", str(tmp_path / "p.jsonl"), "--whisper", "none",
                                 "--max-clips", "1", "--output", str(tmp_path / "d")])
    assert len((tmp_path / "d" / "clips.jsonl").read_text().splitlines()) == 1
