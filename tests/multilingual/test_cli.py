"""``siftkit multilingual distill | eval``: bad input is one line and exit 2 before any output folder; a tiny
distillation run on the tiny VLM writes its model and metrics; eval on an MMMEB file."""

import json

import pytest

from tests.cli_helpers import cli, plugin_registry

registry, _ = plugin_registry()


def test_registered():
    assert "multilingual" in registry.loaded, registry.failed
    assert any(s.name == "multilingual" for s in registry.steps)


@pytest.mark.parametrize("args, where", [
    (["--langs", "de,xx"], "--langs"),
    (["--lr", "0"], "--lr"),
    (["--target", "unit"], "--target"),
    (["--target", "u" * 100_000], "--target"),  # a huge value is cut in the message, not echoed whole
    (["--test-fraction", "1"], "--test-fraction"),
    (["--data", "missing.tsv"], "missing.tsv"),
])
def test_distill_bad_input(tmp_path, args, where):
    out = tmp_path / "run"
    res = cli("multilingual", "distill", "--output", str(out), *args)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("siftkit: ") and where in lines[0]
    assert len(lines[0]) < 1000
    assert not out.exists()


def test_bad_user_file_line(tmp_path):
    bad = tmp_path / "p.tsv"
    bad.write_text("Hello\tHallo\tde\n\tleer\tde\n")
    res = cli("multilingual", "distill", "--output", str(tmp_path / "run"), "--data", str(bad))
    assert res.returncode == 2 and f"{bad}:2:" in res.stderr and not (tmp_path / "run").exists()


def test_distill_and_eval_on_tiny_vlm(tmp_path):
    from siftkit.embed import make_tiny_vlm

    vlm = make_tiny_vlm(tmp_path / "vlm")
    data = tmp_path / "p.tsv"
    data.write_text("".join(f"a cat number {i}\tun gatto numero {i}\tit\n" for i in range(12)))
    out = tmp_path / "run"
    res = cli("multilingual", "distill", "--model", str(vlm), "--data", str(data), "--langs", "it",
              "--batch-size", "6", "--lr", "1e-3", "--output", str(out))
    assert res.returncode == 0, res.stderr
    train = json.loads((out / "train.json").read_text())
    assert train["steps"] == 2 and len(train["losses"]) == 2
    assert (out / "model" / "siftkit-vlm.json").is_file() and (out / "checkpoints" / "epoch-1").is_dir()
    mm = tmp_path / "xtd_it_3_formatted_t2i.jsonl"
    mm.write_text("".join(json.dumps({"qry_text": f"un gatto numero {i}",
                                      "tgt_text": [f"a cat number {i}", "a dog", "a tree"]}) + "\n"
                          for i in range(3)))
    res = cli("multilingual", "eval", "--model", str(out / "model"), "--data", str(mm), "--output",
              str(tmp_path / "m.json"))
    assert res.returncode == 0, res.stderr
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["queries"] == 3 and 0 <= m["p@1"] <= m["p@5"] == 1.0


def test_quickstart_step_small(tmp_path):
    from siftkit.core.report import StepContext
    from siftkit.multilingual.plugin import quickstart_step

    step = next(s for s in registry.steps if s.name == "multilingual")
    opts = {**step.defaults(), "pairs": 8, "test_pairs": 12}
    sec = quickstart_step(StepContext(run_dir=tmp_path, options=opts))
    table = sec.tables[0][1]
    assert list(table["lang"]) == ["de", "fr", "it", "es"] and (table["n"] == 12).all()
    assert sec.figures and 0 <= sec.metrics["en_retention_p1"] <= 1
    assert sec.metrics["loss_last"] > 0


def test_xtd10_split_for_distill(shared_data):
    """``distill --data xtd10`` trains on XTD10 split by English caption; no held-out caption is trained on in any
    language, and the held-out part is what ``eval --data xtd10-heldout`` reads at the same --test-fraction."""
    from siftkit.multilingual.data import english_key, load_xtd10, split_by_english
    from siftkit.multilingual.plugin import _load_pairs

    train, test = _load_pairs("xtd10", ["de", "fr"], 0.5, 1, 0)
    seen = {english_key(p.en) for ps in train.values() for p in ps}
    held = {english_key(p.en) for ps in test.values() for p in ps}
    assert seen and held and not seen & held
    assert sum(len(v) for v in train.values()) + sum(len(v) for v in test.values()) == 2000
    assert test == split_by_english(load_xtd10(["de", "fr"]), 0.5, seed=0)[1]
    assert len(_load_pairs("xtd10", ["de"], 0.5, 1, 40)[0]["de"]) == 40
