"""Bad options of ``siftkit usefulness`` give one line naming the field and exit 2, before any LLM call."""

import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[2] / "siftkit" / "usefulness" / "fixtures" / "sessions.jsonl"


def cli(*args):
    return subprocess.run([sys.executable, "-c", "from siftkit.cli import main; main()", *args],
                          capture_output=True, text=True)


@pytest.mark.parametrize("args, needle", [
    (["label", "--mode", "bogus"], "mode must be one of"),
    (["label", "--readout", "bogus"], "readout must be one of"),
    (["eval", "--labels", "x.json", "--policy", "bogus"], "policy must be one of"),
    (["eval", "--labels", "x.json", "--cluster", "bogus"], "cluster must be query, session or none"),
])
def test_bad_option_is_one_line(args, needle, tmp_path):
    res = cli("usefulness", args[0], "--input", str(FIXTURE), *args[1:], *(
        ["--output", str(tmp_path / "out.json")] if args[0] == "label" else []))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and needle in lines[0], res.stderr


def test_label_output_directory_refused_before_labelling(tmp_path):
    res = cli("usefulness", "label", "--input", str(FIXTURE), "--output", str(tmp_path), "--no-cache")
    assert res.returncode == 2 and "--output is a directory" in res.stderr
    assert not list(tmp_path.iterdir())
