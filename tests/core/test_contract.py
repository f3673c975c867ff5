"""The input contract over EVERY registered command (issue 24; docs/core/contract.md).

One driver subprocess (:data:`DRIVER`) enumerates the commands from the typer app after plug-in discovery, so a new
method's commands are covered without editing this file, and runs every case IN ITS OWN PROCESS, one after the
other, through ``siftkit.cli.main(argv)`` (fds 1/2 redirected to files per case, the working folder changed to the
case's, warnings shown afresh, 120 s at most each). The cases are

* a bad file (non-UTF-8 bytes; truncated JSON) for each input path option, one at a time, the other
  inputs valid where a sample is known (:func:`write_samples`);
* a bad option value (a word for a numeric option; an unknown option where there is none), and ``-1`` for every
  numeric option but seeds (sizes, counts, rates, ports are never negative; one invocation per command);
* an unwritable output (a path under a regular file) and an output of the wrong kind (a folder where a file goes,
  a file where a folder goes) for each output path option, with valid inputs;

and each must answer with exactly one ``siftkit:`` line on stderr, exit code 2, no traceback, nothing created or
changed in its working folder (no run directory, no stray ``.tmp``, the pre-existing output byte for byte), and no
model loaded nor run directory created: the driver replaces the model loaders and ``RunDir.create`` by a stop (an
exception that ``except Exception`` cannot catch; reported as exit 97) as their modules are imported.

Throw-away commands registered in the driver prove the checker fails a command that raises ``ValueError``, makes a
run directory first or loads a model first. One case is rerun as a real ``siftkit`` process (no driver, no stops)
and must give the same exit code and stderr as in the driver.

Time: 211 invocations over 39 commands (36 real) in 25 s at load average ~1 on 2 cores, 39 s for the file with the
driver's start and two real processes (the forked driver before: 83 s for the invocations, 97 s in all); most of
what is left is the lazy imports of the first case of some commands. ``main()`` builds typer's click tree once
(``siftkit.cli._click_command``), not once per invocation.
"""


from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = Path(str(files("siftkit.data") / "demo"))
FIXTURE_SESSIONS = REPO / "siftkit" / "usefulness" / "fixtures" / "sessions.jsonl"
STOP = 97  # the driver's exit code when a model load or a run directory came before the input check
LIMIT_S = 120  # an invocation still running after this is stopped and reported
THROWAWAY = "contract-throwaway"  # the driver's commands that break the contract on purpose

DRIVER = r'''
import importlib.abc, json, os, sys


class ContractStop(BaseException):  # not an Exception: a command's `except Exception` cannot swallow it
    pass


STOPS = {  # module -> (class, attribute): replaced by a stop once the module is imported
    "siftkit.llm.local": ("LocalChatModel", "from_pretrained"),
    "transformers.modeling_utils": ("PreTrainedModel", "from_pretrained"),
    "sentence_transformers.SentenceTransformer": ("SentenceTransformer", "__init__"),
    "siftkit.core.rundir": ("RunDir", "create"),
}


def _stop(what):
    def f(*a, **k):
        raise ContractStop(f"CONTRACT: {what} was called before the input was checked")
    return f


def _patch(module, name):
    cls_name, attr = STOPS[name]
    cls = getattr(module, cls_name)
    stop = _stop(f"{cls_name}.{attr}")
    setattr(cls, attr, stop if attr == "__init__" else staticmethod(stop))


class Guard(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in STOPS:
            return None
        sys.meta_path.remove(self)
        try:
            import importlib.util
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module, run=run, name=name):
            run(module)
            _patch(module, name)
        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, Guard())

if os.environ.get("SIFTKIT_CONTRACT_THROWAWAY"):  # commands that break the contract on purpose
    from pathlib import Path
    import typer
    from siftkit.cli import app

    @app.command("contract-throwaway")
    def throwaway(input: Path = typer.Option(..., "--input", help="A file."),
                  output: Path = typer.Option(..., "--output", help="A file."),
                  n: int = typer.Option(1, "--n")):
        # bad input raises ValueError
        raise ValueError(f"cannot parse {input}")

    @app.command("contract-throwaway-rundir")
    def throwaway_rundir(input: Path = typer.Option(..., "--input", help="A file.")):
        # a run directory before the input is read
        from siftkit.core.rundir import RunDir
        RunDir.create("contract", "runs")

    @app.command("contract-throwaway-model")
    def throwaway_model(input: Path = typer.Option(..., "--input", help="A file.")):
        # a model load before the input is read
        from siftkit.llm.local import LocalChatModel
        LocalChatModel.from_pretrained("smollm2")


def list_commands():
    import typing
    import click
    import typer
    from siftkit.cli import app, registry
    from siftkit.core.plugins import discover

    discover(registry)

    def kind(tp):
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            return kind(typing.get_args(tp)[0])
        if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            return kind(args[0]) if len(args) == 1 else "str"
        if origin in (list, tuple):
            return kind(typing.get_args(tp)[0])
        return {"Path": "path", "PosixPath": "path", "int": "int", "float": "float", "bool": "bool"}.get(
            getattr(tp, "__name__", ""), "str")

    def walk(cmd, path):
        if isinstance(cmd, click.Group) or hasattr(cmd, "commands"):
            for n, c in cmd.commands.items():
                yield from walk(c, path + [n])
        else:
            yield path, cmd

    out = []
    for path, cmd in walk(typer.main.get_command(app), []):
        hints = typing.get_type_hints(cmd.callback, include_extras=True)
        params = []
        for p in cmd.params:
            params.append({"name": p.name, "opts": list(p.opts), "argument": p.param_type_name == "argument",
                           "required": bool(p.required), "kind": kind(hints.get(p.name, str)),
                           "flag": bool(getattr(p, "is_flag", False)), "help": getattr(p, "help", "") or ""})
        out.append({"path": path, "params": params})
    return out


def invoke(args, cwd, log, limit):
    # one `siftkit ARGS` through main() in this process: fds 1 and 2 go to LOG.out / LOG.err (C-level writes too),
    # warnings are shown afresh (as in a new process), a stop or a run over LIMIT seconds is reported
    import signal
    import traceback
    import warnings
    from siftkit.cli import main

    class Overtime(BaseException):
        pass

    def alarm(signum, frame):
        raise Overtime()

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    old = sys.stdout, sys.stderr, os.getcwd()
    code = 1
    os.chdir(cwd)
    for fd, name in ((1, log + ".out"), (2, log + ".err")):
        f = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(f, fd)
        os.close(f)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(limit)
    try:
        with warnings.catch_warnings():
            main(list(args))
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except ContractStop as e:
        print(e, file=sys.stderr)
        code = 97
    except Overtime:
        code = -9
    except BaseException:
        traceback.print_exc()
    finally:
        signal.alarm(0)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        sys.stdout, sys.stderr = old[0], old[1]
        os.chdir(old[2])
    return code


if sys.argv[1:2] == ["--contract-run"]:  # list the commands, build the cases, run them all in this process
    import importlib.util
    import time

    root, test_file = sys.argv[2], sys.argv[3]
    spec = importlib.util.spec_from_file_location("contract_cases", test_file)
    cases_mod = importlib.util.module_from_spec(spec)
    sys.modules["contract_cases"] = cases_mod
    spec.loader.exec_module(cases_mod)
    print(json.dumps(cases_mod.run_cases(list_commands(), root, invoke)))
    sys.exit(0)

if sys.argv[1:2] == ["--contract-cases"]:  # run the given cases (a JSON list of args/cwd/log) in this process
    import time

    codes = []
    for c in json.loads(open(sys.argv[2]).read()):
        t = time.perf_counter()
        codes.append([invoke(c["args"], c["cwd"], c["log"], int(sys.argv[3])), round(time.perf_counter() - t, 3)])
    print(json.dumps(codes))
    sys.exit(0)

from siftkit.cli import main
main()
'''

BAD_FILES = {"bad.jsonl": b'{"id": "\xff\xfe bad bytes"}\n',  # non-UTF-8; truncated (empty files: the regressions)
             "truncated.jsonl": b'{"id": "d1", "contents": "the file ends inside this rec'}
OPTION_FIRST = re.compile(r"siftkit: ([\w-]+ )*--[\w-]+: ")  # an option checked before the file: the right order
REQUIRED_VALUES = {"model": "smollm2", "to": "catalog.json"}  # valid values of required non-path options
EXCLUSIVE = {"serve retrieval": ({"index", "corpus"},)}  # options of which a command takes only one
OUTPUT_WORDS = ("output", "save_index", "cache")  # path options a command writes


def is_output(p: dict) -> bool:
    return any(w in p["name"] for w in OUTPUT_WORDS)


def is_dir_option(p: dict) -> bool:
    h = p["help"].lower()
    return "folder" in h or "directory" in h or p["name"] in ("save_index", "recflow", "shared", "run_dir", "index")


def write_samples(d: Path) -> dict[str, Path]:
    """Valid input files, by option name (and ``group:name`` where two groups use one name differently)."""
    d.mkdir(parents=True, exist_ok=True)
    pairs = d / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": f"red shoe {i}", "title": f"red shoe {i}", "label": "Exact"}) + "\n"
                             for i in range(3)))
    qa = d / "qa.jsonl"
    qa.write_text("".join(json.dumps({"idx": i, "question": f"who is {i}", "answer": "x"}) + "\n" for i in range(2)))
    labels = d / "labels.json"
    labels.write_text(json.dumps({json.loads(x)["id"]: 1 for x in FIXTURE_SESSIONS.read_text().splitlines()
                                  if x.strip()}))
    return {"qrels": DEMO / "qrels.txt", "run": DEMO / "run_good.trec", "corpus": DEMO / "corpus.jsonl",
            "data": qa, "train": pairs, "relevance:input": pairs, "usefulness:input": FIXTURE_SESSIONS,
            "labels": labels, "path": DEMO / "queries.jsonl"}


def sample_for(cmd: dict, p: dict, samples: dict) -> Path | None:
    return samples.get(f"{cmd['path'][0]}:{p['name']}") or samples.get(p["name"])


@dataclass
class Case:
    cmd: str
    what: str  # bad-file / bad-option / bad-output
    args: list[str]
    workdir: Path
    names: str = ""  # a string the siftkit: line must contain (the bad file or option), "" = any
    keep: list[Path] = field(default_factory=list)


def build_cases(commands: list[dict], root: Path, samples: dict) -> tuple[list[Case], list[str]]:
    """The three kinds of bad input for every command; also returns what was not applicable, for the record."""
    cases, skipped = [], []
    for n, cmd in enumerate(commands):
        name = " ".join(cmd["path"])
        params = cmd["params"]
        paths = [p for p in params if p["kind"] == "path"]
        inputs = [p for p in paths if not is_output(p)]
        outputs = [p for p in paths if is_output(p)]

        guessed = [False]  # set by base(): a required option got a placeholder, so any option may be named first

        def base(workdir: Path, bad_input: dict | None = None, bad_output: dict | None = None,
                 bad_name: str = "bad.jsonl", wrong_kind: bool = False) -> list[str]:
            """argv with every required option filled; outputs point at pre-existing files/folders."""
            args = list(cmd["path"])
            workdir.mkdir(parents=True)
            filled: set[str] = set()
            guessed[0] = False
            groups = [g for g in EXCLUSIVE.get(name, ())]

            def excluded(p: dict) -> bool:  # one option of a set that allows only one
                return any(p["name"] in g and ((bad_input is not None and bad_input["name"] in g) or filled & g)
                           for g in groups)

            for p in params:
                if p["flag"] or p["kind"] == "bool":
                    continue
                value = None
                if p is bad_input:
                    value = workdir / bad_name
                    value.write_bytes(BAD_FILES[bad_name])
                elif p is bad_output and wrong_kind:  # a folder where a file goes, or a file where a folder goes
                    value = workdir / "wrong_kind"
                    if is_dir_option(p):
                        value.write_text("a file, not a folder\n")
                    else:
                        value.mkdir()
                elif p is bad_output:
                    blocker = workdir / "blocker"
                    blocker.write_text("a regular file, not a folder\n")
                    value = blocker / "sub" / ("out" if is_dir_option(p) else "out.json")
                elif p in outputs and (p["required"] or p["name"] == "output"):
                    if is_dir_option(p):
                        value = workdir / "existing_dir"
                        value.mkdir()
                        (value / "keep.txt").write_text("keep\n")
                    else:
                        value = workdir / "existing.json"
                        value.write_text('{"keep": true}\n')
                elif p in inputs and p["required"]:
                    value = sample_for(cmd, p, samples) or (workdir / "missing.jsonl")
                elif p in inputs and sample_for(cmd, p, samples) and not excluded(p):
                    value = sample_for(cmd, p, samples)  # optional inputs too, so the command gets to its work
                    filled.add(p["name"])
                elif p["required"]:  # a value of unknown form: the command may rightly stop at it first
                    value = REQUIRED_VALUES.get(p["name"], "1")
                    guessed[0] = guessed[0] or p["name"] not in REQUIRED_VALUES
                if value is None:
                    continue
                args += [str(value)] if p["argument"] else [p["opts"][0], str(value)]
            return args

        for i, p in enumerate(inputs):
            for bad_name in BAD_FILES:
                wd = root / f"{n}-file-{i}-{bad_name}"
                args = base(wd, bad_input=p, bad_name=bad_name)
                cases.append(Case(name, f"bad file for {p['opts'][0]} ({bad_name})", args, wd,
                                  names="" if guessed[0] else bad_name))
        if not inputs:
            skipped.append(f"{name}: no input file option (bad-file case n/a)")
        numeric = [p for p in params if p["kind"] in ("int", "float") and not p["argument"]]
        wd = root / f"{n}-option"
        args = base(wd)
        if numeric:
            cases.append(Case(name, f"bad value for {numeric[0]['opts'][0]}", args + [numeric[0]["opts"][0], "abc"],
                              wd, names=numeric[0]["opts"][0]))
        else:
            cases.append(Case(name, "unknown option", args + ["--no-such-option"], wd, names="--no-such-option"))
        counts = [p for p in numeric if "seed" not in p["name"]]  # sizes, rates, ports: never negative
        if counts:  # one invocation per command (time): the first option checked must refuse its -1
            wd = root / f"{n}-negative"
            args = base(wd)
            for p in counts:
                args += [p["opts"][0], "-1"]
            cases.append(Case(name, "-1 for every numeric option", args, wd))
        for i, p in enumerate(outputs):
            wd = root / f"{n}-output-{i}"
            args = base(wd, bad_output=p)
            known = all(sample_for(cmd, q, samples) for q in inputs if q["required"]) and not guessed[0]
            cases.append(Case(name, f"unwritable {p['opts'][0]}", args, wd, names="blocker" if known else ""))
            wd = root / f"{n}-output-{i}-kind"
            args = base(wd, bad_output=p, wrong_kind=True)
            kind = "a file" if is_dir_option(p) else "a folder"
            cases.append(Case(name, f"{kind} as {p['opts'][0]}", args, wd, names="wrong_kind" if known else ""))
        if not outputs:
            skipped.append(f"{name}: no output option (unwritable-output case n/a)")
    return cases, skipped


def snapshot(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(d.rglob("*"))}


def run_cases(commands: list[dict], root: str, invoke) -> dict:
    """In the driver: the cases of every command, each run by ``invoke`` (one process, one after the other).

    Returns the command names, what was not applicable, and per case its argv, exit code, stderr, seconds and the
    contract violations found (:func:`violations`)."""
    t0 = time.perf_counter()
    root = Path(root)
    logs = root / "logs"
    logs.mkdir(parents=True)
    cases, skipped = build_cases(commands, root / "cases", write_samples(root / "samples"))
    out = []
    for i, case in enumerate(cases):
        before = snapshot(case.workdir)
        t = time.perf_counter()
        code = invoke(case.args, str(case.workdir), str(logs / str(i)), LIMIT_S)
        secs = time.perf_counter() - t
        stderr = (logs / f"{i}.err").read_text(errors="replace")
        out.append({"cmd": case.cmd, "what": case.what, "args": case.args, "cwd": str(case.workdir), "code": code,
                    "stderr": stderr, "seconds": round(secs, 3), "violations": violations(case, code, stderr, before)})
    return {"commands": [" ".join(c["path"]) for c in commands], "skipped": skipped, "cases": out,
            "seconds": round(time.perf_counter() - t0, 1)}


def run_all(cases: list[Case], home: Path, throwaway: bool = False) -> list[str]:
    """Run hand-written ``cases`` through the driver (one process, one after the other); their contract violations."""
    logs = home.parent / "logs"
    logs.mkdir(exist_ok=True)
    spec = [{"args": c.args, "cwd": str(c.workdir), "log": str(logs / str(i))} for i, c in enumerate(cases)]
    (logs / "cases.json").write_text(json.dumps(spec))
    before = [snapshot(c.workdir) for c in cases]
    res = subprocess.run([sys.executable, "-c", DRIVER, "--contract-cases", str(logs / "cases.json"), str(LIMIT_S)],
                         capture_output=True, text=True, env=env(home, throwaway), timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    codes = json.loads(res.stdout.strip().splitlines()[-1])
    out = []
    for i, (case, (code, _)) in enumerate(zip(cases, codes)):
        stderr = (logs / f"{i}.err").read_text(errors="replace")
        out += violations(case, code, stderr, before[i])
    return out


def env(home: Path, throwaway: bool = False) -> dict[str, str]:
    e = dict(os.environ, SIFTKIT_HOME=str(home), PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
             OPENAI_API_KEY="")
    e.pop("SIFTKIT_CONTRACT_THROWAWAY", None)
    if throwaway:
        e["SIFTKIT_CONTRACT_THROWAWAY"] = "1"
    return e


def violations(case: Case, code: int, stderr: str, before: dict[str, str]) -> list[str]:
    """What ``case`` did wrong (empty when it held the contract)."""
    where = f"{case.cmd} ({case.what}; argv {case.args})"
    out = []
    lines = stderr.strip().splitlines()
    if code == STOP:
        out.append(f"{where}: {lines[-1] if lines else 'stopped'}")
    elif code == -9:
        out.append(f"{where}: still running after {LIMIT_S} s")
    elif code != 2:
        out.append(f"{where}: exit {code}, want 2; stderr tail: {stderr[-600:]!r}")
    if "Traceback" in stderr:
        out.append(f"{where}: traceback on stderr")
    if len(lines) != 1 or not lines[0].startswith("siftkit: "):
        out.append(f"{where}: stderr is not one siftkit: line: {stderr[-600:]!r}")
    elif case.names and case.names not in lines[0] and not OPTION_FIRST.match(lines[0]):
        out.append(f"{where}: the line does not name {case.names!r}: {lines[0]!r}")
    elif len(lines[0]) > 600:
        out.append(f"{where}: the line is {len(lines[0])} characters long")
    after = snapshot(case.workdir)
    if after != before:
        changed = sorted(set(after.items()) ^ set(before.items()))
        out.append(f"{where}: the working folder changed (run directory, .tmp or output touched): {changed[:6]}")
    return out


@pytest.fixture(scope="module")
def contract(tmp_path_factory) -> dict:
    """One driver process: every registered command's cases, the throw-away commands' among them."""
    root = tmp_path_factory.mktemp("contract")
    home = root / "home"
    home.mkdir()
    res = subprocess.run([sys.executable, "-c", DRIVER, "--contract-run", str(root / "run"), __file__],
                         capture_output=True, text=True, env=env(home, throwaway=True), timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["home"] = home
    slow = sorted(((c["seconds"], c["cmd"], c["what"]) for c in out["cases"]), reverse=True)[:5]
    print(f"\n{len(out['cases'])} invocations over {len(out['commands'])} commands in {out['seconds']} s; "
          f"slowest (s): {slow}")
    return out


def test_every_registered_command_holds_the_input_contract(contract):
    names = {n for n in contract["commands"] if not n.startswith(THROWAWAY)}
    # the registry is what is enumerated: the core's commands and each plug-in's are all there
    assert {"check", "eval", "quickstart", "report", "doctor", "serve retrieval", "cascade run",
            "relevance dpo", "search-agent eval", "usefulness label"} <= names
    cases = [c for c in contract["cases"] if not c["cmd"].startswith(THROWAWAY)]
    assert {c["cmd"] for c in cases} == names  # every command got at least one case
    bad_option = {c["cmd"] for c in cases if c["what"].startswith(("bad value for", "unknown option"))}
    assert bad_option == names  # a bad option value (or an unknown option) for each command
    print(f"n/a: {contract['skipped']}")
    bad = [v for c in cases for v in c["violations"]]
    assert not bad, "\n".join(bad)


def test_the_contract_check_fails_a_command_that_raises_valueerror(contract):
    """A throw-away command raising ValueError on bad input: the same checker reports it."""
    found = [c for c in contract["cases"] if c["cmd"] == THROWAWAY and c["what"] == "bad file for --input (bad.jsonl)"]
    assert len(found) == 1  # registered next to the real ones, so enumerated and run the same way
    v = found[0]["violations"]
    assert found[0]["code"] == 1 and "ValueError: cannot parse" in found[0]["stderr"]
    assert any("exit 1, want 2" in x for x in v) and any("traceback" in x for x in v), v


@pytest.mark.parametrize("cmd,stop", [("contract-throwaway-rundir", "RunDir.create"),
                                      ("contract-throwaway-model", "LocalChatModel.from_pretrained")])
def test_the_driver_stops_work_done_before_the_check(contract, cmd, stop):
    """The stops are real: a command that makes a run directory / loads a model first is caught."""
    found = [c for c in contract["cases"] if c["cmd"] == cmd and c["what"].startswith("bad file")]
    assert len(found) == 2  # non-UTF-8 and truncated
    for c in found:
        assert c["code"] == STOP and f"{stop} was called before the input was checked" in c["stderr"], c
        assert any("before the input was checked" in x for x in c["violations"])
        assert not (Path(c["cwd"]) / "runs").exists()


def test_a_real_process_answers_as_the_driver_did(contract):
    """The in-process run is what a user sees: one case, rerun as a real ``siftkit`` process (no driver, no stops),
    gives the same exit code and the same stderr line, and leaves its folder as it was. (One only: a fresh process
    imports the plug-ins again, 3 s idle, 50 s at load 24; the usage-error lines have their own subprocess tests in
    test_validate_regress.py.)"""
    case = next(c for c in contract["cases"]
                if c["cmd"] == "usefulness eval" and c["what"] == "bad file for --input (truncated.jsonl)")
    before = snapshot(Path(case["cwd"]))
    res = subprocess.run([sys.executable, "-c", "from siftkit.cli import main; main()", *case["args"]],
                         capture_output=True, text=True, cwd=case["cwd"], env=env(contract["home"]), timeout=300)
    assert (res.returncode, res.stderr) == (case["code"], case["stderr"]) and res.returncode == 2, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("siftkit: ")
    assert snapshot(Path(case["cwd"])) == before
