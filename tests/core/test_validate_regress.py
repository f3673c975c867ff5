"""The core's validation helpers, one-line usage errors from main() and atomic outputs (issue 24)."""

import os
import subprocess
import sys

import pytest

from siftkit.core.errors import InputError
from siftkit.core.io import atomic_output, atomic_write_text, read_trec_run
from siftkit.core.validate import (check_choice, check_choices, check_float_list, check_int_list, check_output_dir,
                                   check_output_file, check_range, cut)


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-c", "from siftkit.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=cwd)


def msg(exc_info) -> str:
    return exc_info.value.format()


def test_cut_keeps_short_values_and_cuts_long_ones():
    assert cut("abc") == "'abc'"
    long = "x" * 1000
    assert cut(long) == "'" + "x" * 79 + "...(+922 chars)"  # repr is 1002 chars; 80 kept


def test_check_choice_and_choices():
    assert check_choice("ppo", ("grpo", "ppo"), "--algo") == "ppo"
    with pytest.raises(InputError) as e:
        check_choice("dqn", ("grpo", "ppo"), "--algo")
    assert msg(e) == "siftkit: --algo: 'dqn' is not one of grpo, ppo"
    with pytest.raises(InputError) as e:
        check_choices([], ("a", "b"), "--system")
    assert msg(e) == "siftkit: --system: needs at least one of a, b"
    assert check_choices([], ("a",), "--system", allow_empty=True) == []


def test_check_range_bounds_and_nan():
    assert check_range(1, "--hits", lo=1) == 1
    with pytest.raises(InputError) as e:
        check_range(0, "--hits", lo=1)
    assert msg(e) == "siftkit: --hits: must be >= 1, got 0"
    with pytest.raises(InputError) as e:
        check_range(2.0, "--noise-rate", lo=0, hi=1)
    assert msg(e) == "siftkit: --noise-rate: must be in [0, 1], got 2.0"
    with pytest.raises(InputError) as e:
        check_range(0.0, "--beta", lo=0, lo_open=True)
    assert msg(e) == "siftkit: --beta: must be > 0, got 0.0"
    with pytest.raises(InputError):
        check_range(float("nan"), "--lr", lo=0)


def test_int_and_float_lists():
    assert check_int_list("0, 1,2", "--seeds", lo=0) == [0, 1, 2]
    assert check_float_list("1,20.5", "--taus", lo=0, lo_open=True) == [1.0, 20.5]
    with pytest.raises(InputError) as e:
        check_float_list("abc", "--taus")
    assert msg(e) == "siftkit: --taus: 'abc' is not a number"
    with pytest.raises(InputError) as e:
        check_int_list("", "--seeds")
    assert msg(e) == "siftkit: --seeds: needs at least one integer, got ''"


def test_output_checks(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("keep")
    assert check_output_file(tmp_path / "new" / "out.json") == tmp_path / "new" / "out.json"
    with pytest.raises(InputError) as e:
        check_output_file(tmp_path)
    assert "--output is a directory; give a file name" in msg(e)
    with pytest.raises(InputError) as e:  # a regular file where a folder must be created
        check_output_file(f / "sub" / "out.json")
    assert f"{f} is not a directory" in msg(e)
    with pytest.raises(InputError) as e:
        check_output_dir(f)
    assert "--output is a file; give a folder" in msg(e)
    assert check_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"


def test_input_error_is_one_short_line():
    e = InputError("bad\nvalue " + "y" * 5000, "f.txt", 3)
    line = e.format()
    assert "\n" not in line and line.startswith("siftkit: f.txt:3: bad value yyy") and len(line) < 500


def test_atomic_output_keeps_old_file_on_error_and_leaves_no_tmp(tmp_path):
    out = tmp_path / "out.json"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    atomic_write_text(out, "new")
    assert out.read_text() == "new" and oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def test_atomic_write_to_a_directory_is_input_error_without_tmp(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    with pytest.raises(InputError):
        atomic_write_text(d, "x")
    assert list(tmp_path.iterdir()) == [d] and list(d.iterdir()) == []


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_huge_trec_value_is_cut(tmp_path):
    run = tmp_path / "r.trec"
    run.write_text("q1 Q0 d1 1 " + "9x" * 2_500_000 + " tag\n")
    with pytest.raises(InputError) as e:
        read_trec_run(run)
    assert len(msg(e)) < 300 and 'field "score" must be number' in msg(e)


@pytest.mark.parametrize("args, want", [
    (["cascade", "run", "--seeds", "abc"], "siftkit: cascade run: --seeds: invalid value 'abc': "),
    (["cascade", "run", "--bogus"], "siftkit: cascade run: No such option: --bogus"),
    (["relevance", "synth"], "siftkit: relevance synth: --output: Missing option '--output'"),
])
def test_usage_errors_are_one_line_exit_2(args, want):
    res = cli(*args)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(want), res.stderr


def test_atomic_output_dir_moves_files_in_only_on_success(tmp_path):
    from siftkit.core.io import atomic_output_dir

    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text("old")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        with atomic_output_dir(out) as tmp:
            (tmp / "config.json").write_text("half")
            raise RuntimeError("training died")
    assert (out / "config.json").read_text() == "old"
    with atomic_output_dir(out) as tmp:
        (tmp / "config.json").write_text("new")
        (tmp / "model.safetensors").write_text("w")
    assert {p.name: p.read_text() for p in out.iterdir()} == {"config.json": "new", "notes.txt": "mine",
                                                              "model.safetensors": "w"}
    with atomic_output_dir(tmp_path / "fresh") as tmp:
        (tmp / "a").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "model"]  # no temporary folder left


def test_check_url_and_device():
    from siftkit.core.validate import check_device, check_url

    assert check_url("http://127.0.0.1:8000/v1", "--endpoint") == "http://127.0.0.1:8000/v1"
    assert check_url("https://api.example.org", "--endpoint") == "https://api.example.org"
    for bad in ("localhost:8000", "ftp://h", "http://", "http://h:port"):
        with pytest.raises(InputError):
            check_url(bad, "--endpoint")
    for ok in ("cpu", "cuda", "cuda:1", "mps", "auto"):
        assert check_device(ok) == ok
    for bad in ("gpu", "cuda:", "cuda:x", "CPU "):
        with pytest.raises(InputError):
            check_device(bad)
