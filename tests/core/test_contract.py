"""The input contract over EVERY registered command (issue 24; docs/core/contract.md).

The commands are enumerated from the typer app after plug-in discovery, in a subprocess, so a new method's commands
are covered without editing this file. Each command is run through ``siftkit.cli.main()`` in its own (forked)
subprocess with

* a bad file (non-UTF-8 bytes; truncated JSON) for each input path option, one at a time, the other
  inputs valid where a sample is known (:func:`write_samples`);
* a bad option value (a word for a numeric option; an unknown option where there is none), and ``-1`` for every
  numeric option but seeds (sizes, counts, rates, ports are never negative; one invocation per command);
* an unwritable output (a path under a regular file) and an output of the wrong kind (a folder where a file goes,
  a file where a folder goes) for each output path option, with valid inputs;

and must answer with exactly one ``siftkit:`` line on stderr, exit code 2, no traceback, nothing created or changed
in its working folder (no run directory, no stray ``.tmp``, the pre-existing output byte for byte), and no model
loaded nor run directory created: the subprocess driver (:data:`DRIVER`) replaces the model loaders and
``RunDir.create`` by a stop (exit 97) as their modules are imported.

A throw-away command that raises ``ValueError`` proves the checker fails such a command.

Time: the driver imports the plug-ins and heavy libraries once and forks a child per invocation, 4 at a time: 199
invocations over 36 commands took 233 s at load average 19 on 2 cores (178 over 23 commands: 85 s at load 8).
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

DRIVER = r'''
import importlib.abc, json, os, sys

STOPS = {  # module -> (class, attribute): replaced by a stop once the module is imported
    "siftkit.llm.local": ("LocalChatModel", "from_pretrained"),
    "transformers.modeling_utils": ("PreTrainedModel", "from_pretrained"),
    "sentence_transformers.SentenceTransformer": ("SentenceTransformer", "__init__"),
    "siftkit.core.rundir": ("RunDir", "create"),
}


def _stop(what):
    def f(*a, **k):
        sys.stderr.write(f"CONTRACT: {what} was called before the input was checked\n")
        sys.stderr.flush()
        os._exit(97)
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

if os.environ.get("SIFTKIT_CONTRACT_THROWAWAY"):
    from pathlib import Path
    import typer
    from siftkit.cli import app

    @app.command("contract-throwaway")
    def throwaway(input: Path = typer.Option(..., "--input", help="A file."),
                  output: Path = typer.Option(..., "--output", help="A file."),
                  n: int = typer.Option(1, "--n")):
        """A command that breaks the contract on purpose: bad input raises ValueError."""
        raise ValueError(f"cannot parse {input}")

if sys.argv[1:2] == ["--contract-list"]:
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
    print(json.dumps(out))
    sys.exit(0)

if sys.argv[1:2] == ["--contract-batch"]:  # run many invocations: one forked child per case, imports warm
    import time
    import traceback

    cases = json.loads(open(sys.argv[2]).read())
    width = int(sys.argv[3])
    import siftkit.cli  # noqa: F401  the plug-ins' modules and torch load once, in the parent
    import siftkit.core.rundir  # noqa: F401  (patched by the guard as it loads)
    for heavy in ("torch", "pandas", "scipy.stats", "matplotlib.pyplot"):  # shared by the children, for speed
        try:
            __import__(heavy)
        except ImportError:
            pass
    running, todo = {}, list(enumerate(cases))
    results = [None] * len(cases)
    while todo or running:
        while todo and len(running) < width:
            i, case = todo.pop(0)
            pid = os.fork()
            if pid == 0:  # the child: one `siftkit ...` invocation through main()
                os.chdir(case["cwd"])
                for fd, name in ((1, case["log"] + ".out"), (2, case["log"] + ".err")):
                    f = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                    os.dup2(f, fd)
                sys.stdout = open(1, "w", closefd=False)
                sys.stderr = open(2, "w", closefd=False)
                sys.argv = ["siftkit", *case["args"]]
                code = 1
                try:
                    from siftkit.cli import main
                    main()
                    code = 0
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                except BaseException:
                    traceback.print_exc()
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
            running[pid] = (i, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            for p, (i, t) in list(running.items()):
                if time.monotonic() - t > 180:
                    os.kill(p, 9)
            time.sleep(0.02)
            continue
        i, t = running.pop(pid)
        results[i] = [os.waitstatus_to_exitcode(status), round(time.monotonic() - t, 2)]
    print(json.dumps(results))
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


def env(home: Path, throwaway: bool = False) -> dict[str, str]:
    e = dict(os.environ, SIFTKIT_HOME=str(home), PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
             OPENAI_API_KEY="")
    e.pop("SIFTKIT_CONTRACT_THROWAWAY", None)
    if throwaway:
        e["SIFTKIT_CONTRACT_THROWAWAY"] = "1"
    return e


def list_commands(home: Path, throwaway: bool = False) -> list[dict]:
    res = subprocess.run([sys.executable, "-c", DRIVER, "--contract-list"], capture_output=True, text=True,
                         env=env(home, throwaway), timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def run_all(cases: list[Case], home: Path, throwaway: bool = False, width: int = 4) -> list[str]:
    """Run every case (forked children of one driver, ``width`` at a time) and list the contract violations."""
    logs = home.parent / "logs"
    logs.mkdir(exist_ok=True)
    spec = [{"args": c.args, "cwd": str(c.workdir), "log": str(logs / str(i))} for i, c in enumerate(cases)]
    (logs / "cases.json").write_text(json.dumps(spec))
    before = [snapshot(c.workdir) for c in cases]
    res = subprocess.run([sys.executable, "-c", DRIVER, "--contract-batch", str(logs / "cases.json"), str(width)],
                         capture_output=True, text=True, env=env(home, throwaway), timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    codes = json.loads(res.stdout.strip().splitlines()[-1])
    slow = sorted(((t, c.cmd, c.what) for c, (_, t) in zip(cases, codes)), reverse=True)[:5]
    print(f"\nslowest invocations (s): {slow}")
    out = []
    for i, (case, (code, _)) in enumerate(zip(cases, codes)):
        stderr = (logs / f"{i}.err").read_text(errors="replace")
        out += violations(case, code, stderr, before[i])
    return out


def violations(case: Case, code: int, stderr: str, before: dict[str, str]) -> list[str]:
    """What ``case`` did wrong (empty when it held the contract)."""
    where = f"{case.cmd} ({case.what}; argv {case.args})"
    out = []
    lines = stderr.strip().splitlines()
    if code == STOP:
        out.append(f"{where}: {lines[-1] if lines else 'stopped'}")
    elif code == -9:
        out.append(f"{where}: still running after 180 s")
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


def test_every_registered_command_holds_the_input_contract(tmp_path):
    t0 = time.perf_counter()
    home = tmp_path / "home"
    home.mkdir()
    commands = list_commands(home)
    names = {" ".join(c["path"]) for c in commands}
    # the registry is what is enumerated: the core's commands and each plug-in's are all there
    assert {"check", "eval", "quickstart", "report", "doctor", "serve retrieval", "cascade run",
            "relevance dpo", "search-agent eval", "usefulness label"} <= names
    cases, skipped = build_cases(commands, tmp_path / "cases", write_samples(tmp_path / "samples"))
    assert len({c.cmd for c in cases}) == len(commands)  # every command got at least one case
    bad = run_all(cases, home)
    seconds = time.perf_counter() - t0
    print(f"\n{len(cases)} invocations over {len(commands)} commands in {seconds:.0f} s; n/a: {skipped}")
    assert not bad, "\n".join(bad)


def test_the_contract_check_fails_a_command_that_raises_valueerror(tmp_path):
    """A throw-away command raising ValueError on bad input: the same checker must report it."""
    home = tmp_path / "home"
    home.mkdir()
    commands = [c for c in list_commands(home, throwaway=True) if c["path"] == ["contract-throwaway"]]
    assert len(commands) == 1  # registered next to the real ones, so enumerated the same way
    cases, _ = build_cases(commands, tmp_path / "cases", write_samples(tmp_path / "samples"))
    bad_file = [c for c in cases if c.what.startswith("bad file") and "bad.jsonl" in c.what]
    assert len(bad_file) == 1
    found = run_all(bad_file, home, throwaway=True)
    assert any("exit 1, want 2" in v for v in found) and any("traceback" in v for v in found), found


@pytest.mark.parametrize("stop", ["siftkit.core.rundir", "siftkit.llm.local"])
def test_the_driver_stops_work_done_before_the_check(tmp_path, stop):
    """The stops are real: a command that makes a run directory / loads a model first is caught (exit 97)."""
    snippet = {"siftkit.core.rundir": "from siftkit.core.rundir import RunDir; RunDir.create('x', 'runs')",
               "siftkit.llm.local": "from siftkit.llm.local import LocalChatModel; "
                                    "LocalChatModel.from_pretrained('smollm2')"}[stop]
    code = DRIVER.split("if os.environ.get")[0] + snippet
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env=env(tmp_path), timeout=120)
    assert res.returncode == STOP and "before the input was checked" in res.stderr, res.stderr
    assert not (tmp_path / "runs").exists()
