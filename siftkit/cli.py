"""The ``siftkit`` command line: a thin layer over the Python API.

Core commands: ``--version``, ``doctor``, ``quickstart``, ``report RUN_DIR``. Packages add their own
sub-commands, servers (``siftkit serve ...``) and quickstart steps through :mod:`siftkit.core.plugins`.
Bad input ends in one line on stderr (``siftkit: FILE:LINE: ...``) and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from siftkit import __version__
from siftkit.core.errors import InputError, RequestsFailed
from siftkit.core.plugins import Registry, discover

app = typer.Typer(add_completion=False, no_args_is_help=True, help="siftkit: search, ranking and recommendation "
                  "methods on one offline-runnable core.", pretty_exceptions_enable=False)
serve_app = typer.Typer(no_args_is_help=True, help="Run a server (bound to 127.0.0.1 unless told otherwise).")
app.add_typer(serve_app, name="serve")
console = Console(stderr=True)
registry = Registry(app=app, serve=serve_app)


def _version(value: bool):
    if value:
        print(f"siftkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    """siftkit command line."""


def progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=console, transient=False)


# ------------------------------------------------------------------------------------------------ doctor
def doctor_section(statuses):
    from siftkit.core.report import Section
    import pandas as pd

    rows = [{"asset": s.name, "kind": s.kind, "source": s.source, "status": "found" if s.ok else "MISSING",
             "version": s.version, "path": s.path, "check": s.detail, "install": "" if s.ok else s.install,
             "seconds": round(s.seconds, 2)} for s in statuses]
    failed = {k: v for k, v in registry.failed.items()}
    text = (f"Plug-ins loaded: {', '.join(registry.loaded) or 'none'}."
            + (f"\n\nPlug-ins that failed to load: {failed}" if failed else ""))
    return Section("Doctor: offline assets", text=text, tables=[("offline assets, each loaded", pd.DataFrame(rows))],
                   metrics={"assets_ok": sum(s.ok for s in statuses), "assets_total": len(statuses)})


@app.command()
def doctor(json_out: bool = typer.Option(False, "--json", help="Print the statuses as JSON.")):
    """List the offline models, data sets and libraries found (each one loaded), with versions, paths and install
    commands; plug-ins' own checks follow the core ones, with their source.

    Example: ``siftkit doctor --json``
    """
    from siftkit.core.assets import CHECKS, REQUIRED, check_all

    with progress_bar() as prog:
        task = prog.add_task("checking assets", total=len(CHECKS) + len(registry.asset_checks))
        statuses = check_all(lambda name: prog.advance(task), registry.asset_checks, registry.failed)
    if json_out:
        print(json.dumps([s.__dict__ for s in statuses], indent=2))
    else:
        t = Table(title="siftkit doctor")
        for col in ("asset", "source", "status", "version", "path / check", "install"):
            t.add_column(col, overflow="fold")
        for s in statuses:
            t.add_row(s.name, s.source, "[green]found[/]" if s.ok else "[red]missing[/]", s.version,
                      f"{s.path}\n{s.detail}" if s.path else s.detail, "" if s.ok else s.install)
        Console().print(t)
    missing = [s for s in statuses if not s.ok and s.kind in REQUIRED]
    raise typer.Exit(1 if missing else 0)


# -------------------------------------------------------------------------------------------- quickstart
def metrics_demo_section(ctx=None):
    """Evaluate the two hand-written demo TREC runs against the demo qrels (the core's own quickstart step)."""
    from importlib.resources import files

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from siftkit.core.io import read_qrels, read_trec_run
    from siftkit.core.records import qrels_dict
    from siftkit.core.report import Section
    from siftkit.metrics import evaluate

    demo = Path(str(files("siftkit.data") / "demo"))
    qrels = qrels_dict(read_qrels(demo / "qrels.txt"))
    if ctx is not None:
        for f in ("qrels.txt", "run_good.trec", "run_weak.trec"):
            ctx.record_input(demo / f)
    measures = ["ndcg@3", "P@3", "recall@3", "map", "mrr"]
    rows = []
    for name in ("good", "weak"):
        run = read_trec_run(demo / f"run_{name}.trec")
        rows.append({"run": name, **evaluate(qrels, run.scores, measures)})
    df = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(6, 3))
    df.set_index("run")[[c for c in df.columns if c != "run"]].T.plot.bar(ax=ax, rot=0)
    ax.set_ylabel("score")
    ax.set_title("demo runs on the demo qrels")
    fig.tight_layout()
    return Section("Metrics demo on a small TREC run", text=(
        "Two hand-written TREC runs over siftkit's invented 12-document demo corpus (siftkit/data/demo), "
        "scored with siftkit.metrics (ir-measures underneath)."), tables=[("IR measures", df)],
        figures=[("IR measures per run", fig)], metrics={r["run"]: {k: v for k, v in r.items() if k != "run"}
                                                         for r in rows})


@app.command()
def quickstart(
    output: Path = typer.Option(Path("runs"), "--output", help="Root folder for run directories."),
    seed: int = typer.Option(0, "--seed"),
    only: Optional[list[str]] = typer.Option(None, "--only", help="Run only these steps (repeatable)."),
    skip_doctor: bool = typer.Option(False, "--skip-doctor", help="Do not run the asset checks."),
    overrides: Optional[list[str]] = typer.Option(None, "--set", help="STEP.KEY=value, an option of one step "
                                                  "(repeatable), e.g. --set search-r1.steps=5 --set cascade.config=tiny."),
):
    """Run every registered method pipeline at small scale and write one HTML report.

    Example: ``siftkit quickstart --output runs``
    """
    import dataclasses

    from siftkit.core.report import Section, StepContext, write_report
    from siftkit.core.rundir import RunDir
    from siftkit.core.seeding import seed_all
    from siftkit.core.validate import check_output_dir

    options = registry.step_options(overrides or [])  # before the run directory: a typo leaves none
    fns = {"doctor": None, "metrics-demo": metrics_demo_section, **{s.name: s.fn for s in registry.steps}}
    steps = [(n, fns[n]) for n in registry.select_steps(only) if not (skip_doctor and n == "doctor")]
    check_output_dir(output)
    seed_all(seed)
    rd = RunDir.create("quickstart", output, seeds=[seed])
    ctx = StepContext(run_dir=rd.path, seed=seed)
    sections: list[Section] = []
    with progress_bar() as prog:
        task = prog.add_task("quickstart", total=len(steps))
        for name, fn in steps:
            prog.update(task, description=f"quickstart: {name}")
            t0 = time.perf_counter()
            try:
                if name == "doctor":
                    from siftkit.core.assets import check_all

                    sec = doctor_section(check_all(extra=registry.asset_checks, failed=registry.failed))
                else:  # each step sees its own options only; inputs stay one shared list
                    sec = fn(dataclasses.replace(ctx, options=options[name]))
            except Exception as e:  # one failing step is reported, the others still run
                rd.log(traceback.format_exc())
                sec = Section(name, text=f"step failed: {type(e).__name__}: {e}", status="failed")
            sec.metrics.setdefault("seconds", round(time.perf_counter() - t0, 2))
            rd.log(f"step {name}: {sec.status} in {sec.metrics['seconds']} s")
            sections.append(sec)
            prog.advance(task)
    for p in dict.fromkeys(ctx.inputs):  # sha256 of every model and data file the steps read
        rd.record_input(p)
    rd.write_metrics({s.title: s.metrics for s in sections})
    rd.write_manifest({"steps": [s.title for s in sections]})
    report = write_report(rd.path / "report.html", "siftkit quickstart", sections,
                          {"run": str(rd.path), "seed": seed, "version": __version__})
    t = Table(title="quickstart")
    t.add_column("step")
    t.add_column("status")
    t.add_column("seconds", justify="right")
    for s in sections:
        t.add_row(s.title, s.status, f"{s.metrics.get('seconds', 0):.1f}")
    Console().print(t)
    print(f"report: {report}")
    failed = [s for s in sections if s.status == "failed"]
    raise typer.Exit(1 if failed else 0)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run directory (runs/<name>/<time>).")):
    """Re-render the HTML report of a run directory from its metrics.json.

    Example: ``siftkit report runs/quickstart/20261126-120000-000000``
    """
    import pandas as pd

    from siftkit.core.report import Section, write_report

    from siftkit.core.io import read_json

    metrics_file = run_dir / "metrics.json"
    if not metrics_file.exists():
        raise InputError("no metrics.json: not a run directory", run_dir)
    metrics = read_json(metrics_file, expect=dict)
    sections = []
    for title, m in metrics.items():
        flat = {k: v for k, v in m.items() if not isinstance(v, dict)} if isinstance(m, dict) else {"value": m}
        nested = {k: v for k, v in m.items() if isinstance(v, dict)} if isinstance(m, dict) else {}
        tables = [(title, pd.DataFrame([flat]))] if flat else []
        if nested:
            tables.append((f"{title} (by key)", pd.DataFrame([{"key": k, **v} for k, v in nested.items()])))
        sections.append(Section(title, tables=tables, metrics=m if isinstance(m, dict) else {}))
    out = write_report(run_dir / "report.html", f"siftkit report: {run_dir}", sections)
    print(f"report: {out}")


@app.command("check")
def check_cmd(
    path: Path = typer.Argument(..., help="A .jsonl, .csv, .tsv, .parquet, TREC run (.trec/.run) or qrels file."),
    kind: str = typer.Option("query", "--kind", help="query | item | candidate | judgment | run | qrels"),
):
    """Validate a data file; bad input is reported as FILE:LINE: field problem, with exit code 2.

    Example: ``siftkit check topics.jsonl --kind query``
    """
    from siftkit.core.io import read_qrels, read_records, read_trec_run
    from siftkit.core.records import SCHEMAS
    from siftkit.core.validate import check_choice

    check_choice(kind, [*SCHEMAS, "run", "qrels"], "--kind")
    if kind == "run":
        run = read_trec_run(path)
        print(f"{path}: ok ({run!r})")
    elif kind == "qrels":
        print(f"{path}: ok ({len(read_qrels(path))} judgments)")
    else:
        print(f"{path}: ok ({len(read_records(path, kind))} {kind} records)")


@app.command("eval")
def eval_cmd(
    qrels: Path = typer.Option(..., "--qrels", help="TREC qrels file."),
    run: list[Path] = typer.Option(..., "--run", help="TREC run file (repeatable)."),
    metrics: list[str] = typer.Option(["ndcg@10", "P@10", "recall@100", "map", "mrr"], "--metric"),
    output: Optional[Path] = typer.Option(None, "--output", help="Write the table as JSON here."),
):
    """Evaluate TREC runs against qrels (ir-measures underneath) and print a table.

    Example: ``siftkit eval --qrels qrels.txt --run bm25.trec --metric ndcg@10``
    """
    from siftkit.core.io import read_qrels, read_trec_run
    from siftkit.core.records import qrels_dict
    from siftkit.core.validate import check_output_file
    from siftkit.metrics import evaluate

    if output:
        check_output_file(output)
    q = qrels_dict(read_qrels(qrels))
    rows = []
    for r in run:
        res = evaluate(q, read_trec_run(r).scores, list(metrics))
        rows.append({"run": str(r), **res})
    t = Table(title=f"qrels: {qrels}")
    for col in rows[0]:
        t.add_column(col, justify="left" if col == "run" else "right")
    for row in rows:
        t.add_row(*[v if isinstance(v, str) else f"{v:.4f}" for v in row.values()])
    Console().print(t)
    if output:
        from siftkit.core.io import atomic_write_text

        atomic_write_text(output, json.dumps(rows, indent=2))


# ------------------------------------------------------------------------------------------------- media
media_app = typer.Typer(no_args_is_help=True, help="Inspect media files (audio, images, video).")
app.add_typer(media_app, name="media")


@media_app.command("probe")
def media_probe(path: Path = typer.Argument(..., help="An audio, image or video file.")):
    """Print the kind, duration and streams of a media file as JSON (an unreadable file: one line, exit 2).

    Example: ``siftkit media probe clip.mp4``
    """
    from siftkit.core.media import probe

    print(json.dumps(probe(path).to_dict(), indent=1))


def _usage_line(e) -> str:
    """One ``siftkit:`` line for a click/typer usage error: the command, the option, what is wrong (values cut)."""
    import click
    import typer._click.exceptions as tce

    from siftkit.core.validate import cut

    ctx = getattr(e, "ctx", None)
    where = " ".join(ctx.command_path.split()[1:]) if ctx is not None else ""
    param = getattr(e, "param", None)
    opt = "/".join(param.opts) if param is not None and getattr(param, "opts", None) else ""
    msg = e.format_message()
    missing = isinstance(e, (click.exceptions.MissingParameter, tce.MissingParameter))
    if param is not None and isinstance(e, (click.exceptions.BadParameter, tce.BadParameter)) and not missing:
        msg = f"invalid value: {e.message}"  # click's "Invalid value for '--x'" would repeat the option
        cause = e.__cause__
        if cause is not None and hasattr(cause, "errors"):  # typer's pydantic coercion: name the value given
            try:
                msg = f"invalid value {cut(cause.errors()[0]['input'])}: {e.message}"
            except (KeyError, IndexError, TypeError):  # another shape keeps click's message
                pass
    head = ": ".join(x for x in (where, opt) if x)
    return InputError(msg, field=head or "usage").format()


_CLICK: dict = {}  # the click command built from `app`, by what is registered (building it takes ~0.1-2 s)


def _click_command():
    """``typer.main.get_command(app)``, built once per set of registered commands (``main()`` may run many times in a
    process; typer would rebuild the whole tree on every call). With pretty exceptions off, calling it directly is
    what ``app(...)`` does."""
    key = (len(app.registered_commands), len(app.registered_groups), len(serve_app.registered_commands))
    if _CLICK.get("key") != key:
        _CLICK.update(key=key, cmd=typer.main.get_command(app))
    return _CLICK["cmd"]


def main(argv: list[str] | None = None) -> None:
    """Entry point: discover plug-ins, run typer; every bad input (an :class:`InputError` or a click/typer usage
    error: missing or unknown option, a value of the wrong type) ends as one ``siftkit:`` line and exit code 2.

    ``argv`` (default ``sys.argv[1:]``) lets one process run many invocations, as the contract test does; it
    always ends in ``SystemExit``."""
    import click
    import typer._click.exceptions as tce

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing downloads at run time
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # one progress bar (ours): no nested library bars (model conversion, weight loading) in the console
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    discover(registry)
    registry.report_failures()
    usage_errors = (click.exceptions.UsageError, tce.UsageError)
    try:
        # click returns the code of typer.Exit here instead of exiting
        rc = _click_command().main(args=argv, prog_name="siftkit", standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except (InputError, RequestsFailed) as e:
        print(e.format(), file=sys.stderr)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except SystemExit:
        raise
    except (tce.NoArgsIsHelpError, click.exceptions.NoArgsIsHelpError) as e:  # `siftkit cascade`: the help
        print(e.ctx.get_help() if e.ctx is not None else e.format_message())
        sys.exit(2)
    except usage_errors as e:
        print(_usage_line(e), file=sys.stderr)
        sys.exit(2)
    except (click.exceptions.ClickException, tce.ClickException) as e:  # e.g. FileError: one line too
        print(InputError(e.format_message(), field="usage").format(), file=sys.stderr)
        sys.exit(e.exit_code or 2)
    except (click.exceptions.Abort, typer.Abort, KeyboardInterrupt):
        print("siftkit: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":  # `python -m siftkit.cli ...`, e.g. under `accelerate launch -m siftkit.cli`
    main()
