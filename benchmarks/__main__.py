"""``python -m benchmarks list | run | status | page | adopt | claims`` (see benchmarks/runner.py, docs/benchmarks.md).

    python -m benchmarks run usefulness --profile gpu --workers 1 --only variant="rows|baseline|all"
    python -m benchmarks page usefulness --profile gpu
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from benchmarks.cells import CELLS, RESULTS, CellsFailed, StaleCellError, adopt, cell_key, run_experiment
from benchmarks.runner import available, find, not_ported, only_filter, render_page
from siftkit.core.errors import InputError


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="benchmarks on the runner and their profiles")
    sub.add_parser("claims", help="paper claims' verdicts from the cells (python -m benchmarks claims --help)")
    for cmd, helptext in [("run", "run the missing (and partial) cells, then optionally render the page"),
                          ("status", "each cell's status: missing, partial, fresh, stale, unverified"),
                          ("page", "render benchmarks/results/NAME.md from stored cells (runs nothing)"),
                          ("adopt", "stamp legacy cells whose declared sources git shows unchanged")]:
        p = sub.add_parser(cmd, help=helptext)
        p.add_argument("name", metavar="NAME")
        p.add_argument("--profile", required=True, help="a profile of benchmarks/config/NAME.yaml (cpu, gpu, ...)")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value (repeatable)")
        p.add_argument("--cells-root", type=Path, default=CELLS, help="where cell folders live")
        if cmd in ("run", "status"):
            p.add_argument("--only", action="append", default=[], metavar="AXIS=VALUE",
                           help="only cells with this grid value (repeatable; all must hold)")
        if cmd == "run":
            p.add_argument("--workers", type=int, help="worker processes (0 = this process); default: the profile's")
            p.add_argument("--rerun", action="append", default=[], choices=["stale", "unverified"],
                           help="also recompute stale (or unverified legacy) cells; without it stale cells are skipped "
                                "with one warning line")
            p.add_argument("--page", action="store_true", help="render the results page afterwards")
            p.add_argument("--no-progress", action="store_true")
        if cmd in ("run", "page"):
            p.add_argument("--out", type=Path, help=f"page path (default {RESULTS}/NAME.md)")
        if cmd == "page":
            p.add_argument("--allow-stale", action="store_true", help="render stale cells, marked ✗stale")
        if cmd == "adopt":
            p.add_argument("--dry-run", action="store_true")
    return ap


def _main(a: argparse.Namespace) -> int:
    if a.cmd == "list":
        for name in available():
            b = find(name)
            cfg_text = b.config_path().read_text()
            import yaml

            profiles = ", ".join((yaml.safe_load(cfg_text) or {}).get("profiles", {})) if b.config_path().suffix != \
                ".toml" else "(toml)"
            print(f"{name:16s} {b.title}  [profiles: {profiles}]")
        for name in not_ported():
            print(f"{name:16s} (not on the runner yet: python -m benchmarks.{name} --help)")
        return 0
    bench = find(a.name)
    cfg = bench.load_config(a.profile, a.overrides)
    exps = bench.experiments_for(cfg, a.cells_root)
    if a.cmd == "status":
        sel = only_filter(exps, a.only)
        for exp in exps:
            for params in exp.cells():
                if sel is None or sel(params):
                    st, why = exp.status(params)
                    print(f"{st:10s} {exp.name}/{cell_key(params)}" + (f"  ({'; '.join(why)})" if why else ""))
        return 0
    if a.cmd == "adopt":
        rows = [(f"{e.name}/{k}", v, r) for e in exps for k, v, r in adopt(e, dry_run=a.dry_run)]
        for key, verdict, reason in rows:
            print(f"{verdict:10s} {key}: {reason}")
        n = sum(v == "adoptable" for _, v, _ in rows)
        print(f"{n} of {len(rows)} legacy cells {'adoptable' if a.dry_run else 'adopted'}")
        return 0
    if a.cmd == "page":
        print(render_page(bench, cfg, a.profile, a.cells_root, a.out, a.allow_stale))
        return 0
    workers = cfg.workers if a.workers is None else a.workers
    if workers < 0:
        raise InputError(f"must be >= 0 (0 = this process), got {workers}", field="--workers")
    sel = only_filter(exps, a.only)
    counts = {"ran": 0, "skipped": 0, "total": 0}
    stale: list[str] = []
    for exp in exps:  # in order: a part may read the main grid's cells
        if sel is None or any(sel(c) for c in exp.cells()):
            got = run_experiment(exp, progress=not a.no_progress, only=sel, workers=workers, rerun=a.rerun,
                                 stale="skip")
            counts = {k: counts[k] + got[k] for k in counts}
            stale += got["stale"]
    if stale:
        print(stale_warning(stale, a), file=sys.stderr)
    print(json.dumps({**counts, "stale": len(stale)}))
    if a.page:
        print(render_page(bench, cfg, a.profile, a.cells_root, a.out))
    return 0


def stale_warning(names: list[str], a: argparse.Namespace, limit: int = 4) -> str:
    """One line: which stale cells ``run`` left as they are, and the command that recomputes them."""
    shown = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
    import shlex

    again = shlex.join(["python", "-m", "benchmarks", "run", a.name, "--profile", a.profile,
                        *(x for o in a.only for x in ("--only", o)), *(x for o in a.overrides for x in ("--set", o)),
                        "--rerun", "stale"])
    return (f"siftkit: warning: skipped {len(names)} stale cell(s) (made by other code, data or settings): {shown}; "
            f"recompute them with `{again}` (reasons: `python -m benchmarks status {a.name} --profile {a.profile}`)")


def main(argv: list[str] | None = None) -> int:
    # as under the siftkit CLI: nothing downloads, and no nested library bars under the runner's one (the spawned
    # workers inherit these)
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(key, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["claims"]:  # every paper claim's verdict (benchmarks/claims)
        from benchmarks.claims import main as claims_main

        return claims_main(argv[1:])
    a = _parser().parse_args(argv)
    try:
        return _main(a)
    except InputError as e:
        print(e.format(), file=sys.stderr)
        return 2
    except (StaleCellError, CellsFailed) as e:
        print(f"siftkit: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
