"""The checks added for the hostile-input pass over the newer commands (issue 24): a local model named before it
loads, values given twice, a choice read from a file, a failure count without a total."""

from __future__ import annotations

import pytest

from siftkit.core.errors import InputError, RequestsFailed
from siftkit.core.validate import check_choice, check_local_model, check_unique


def test_check_local_model(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    gguf = tmp_path / "x.gguf"
    gguf.write_bytes(b"GGUF")
    for ok in ("smollm2", str(folder), str(gguf), "oracle"):
        assert check_local_model(ok, "--model", others=("oracle",)) == ok
    for bad in ("smollm3", str(tmp_path), str(tmp_path / "missing.gguf"), str(folder / "config.json"), ""):
        with pytest.raises(InputError) as e:
            check_local_model(bad, "--model", others=("oracle",))
        assert e.value.format().startswith(f"siftkit: --model: {bad!r} is not one of oracle, smollm2, a model folder")


def test_check_unique():
    assert check_unique(["a", "b"], "--x") == ["a", "b"]
    with pytest.raises(InputError, match="--x: 'a' is given twice"):
        check_unique(["a", "b", "a"], "--x")


def test_check_choice_names_the_file_and_line():
    assert check_choice("none", ("none", "system"), "debias", "r.jsonl", 3) == "none"
    with pytest.raises(InputError) as e:
        check_choice("polite", ("none", "system"), "debias", "r.jsonl", 3)
    assert e.value.format() == "siftkit: r.jsonl:3: field \"debias\": 'polite' is not one of none, system"
    with pytest.raises(InputError) as e:  # an option: as before
        check_choice("x" * 500, ("a",), "--kind")
    assert e.value.format().startswith("siftkit: --kind: 'xxx") and len(e.value.format()) < 150


def test_requests_failed_without_a_total():
    e = RequestsFailed(3, None, "LLM description", detail="out left as it was")
    assert e.format().startswith("siftkit: 3 LLM description(s) failed after retries; nothing was written (out left")
    assert RequestsFailed(1, 4).format().startswith("siftkit: 1 of 4 request(s) failed")
