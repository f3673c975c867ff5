"""The seed papers' claims, written once as data, and their verdicts computed from stored benchmark cells.

Each method has one file ``benchmarks/claims/<method>.yaml``:

* ``paper:`` the paper's numbers (the only place they are typed); anything else refers to them as
  ``"<table>/<key>"`` (e.g. ``joint_2stage/lcron``), and results pages read them with :func:`paper`;
* ``claims:`` each claim in words, the cells that test it (experiment, selectors, metric) and the test.

Tests (``test:``), all at 95%:

* ``seeds`` — paired over seeds: ``d_s = a_s - b_s`` for every seed ``s`` both arms have (an arm with a single
  seedless cell, e.g. a zero-shot model, is paired with every seed); effect ``mean(d)``, interval
  ``mean(d) ± t_{0.975, n-1} · sd(d) / sqrt(n)`` [ours: a t interval, since a percentile bootstrap over 3 seeds is
  far too narrow]. One pair gives no interval.
* ``clusters`` — per-item values stored in the cells (``per_item``: a ``{id: value}`` mapping, a list, or a hex-digit
  string times ``scale``), paired by seed and item; effect ``mean(d)`` over (seed, item) pairs, percentile
  bootstrap CI resampling whole items as clusters (``siftkit.metrics.stats.bootstrap_ci``, 2000 resamples, seed 0).
  It ignores training variance (seeds are not resampled), so it is the optimistic test.
* ``interval`` — the cell stores its own estimate and interval (``<metric>``, ``<metric>_lo``, ``<metric>_hi``),
  for effects whose rows cannot be stored (e.g. gold labels without a licence to copy).
* ``known_answer`` — every ``expected`` value equals the measured one rounded to ``digits`` (pyserini 2cr style).

Verdict of one comparison (effect ``a - b`` with the paper's ``direction``): **holds** when the interval lies on
the paper's side of zero, **contradicted** when it lies on the other side, **not resolved** when it covers zero (or
there is no interval), **missing cells** when an arm has no cells. A claim with several comparisons is contradicted
if any is, missing if any is missing, holds if all hold, else not resolved.

    python -m benchmarks claims [--method lcron] [--output benchmarks/results/claims.md]

    from benchmarks.claims import claims_section, paper
    claims_section("lcron")                      # markdown for the method's results page
    paper("lcron")["joint_2stage"]["lcron"]      # 0.8732
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from benchmarks.claims.spec import CLAIMS_DIR, Claim, claim_files, load_claims, paper, resolve_paper
from benchmarks.claims.verdict import CONTRADICTED, HOLDS, MISSING, OPEN, Result, Verdict, _same, evaluate, verdicts
from siftkit.core.errors import InputError


# ---------------------------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------------------------


def _f(x: float | None, d: int = 4, sign: bool = True) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:+.{d}f}" if sign else f"{x:.{d}f}"


def _detail_rows(v: Verdict) -> list[str]:
    rows = []
    for r in v.results:
        label = r.label.replace("|", "\\|")  # a selector value such as "smollm2|stocks|none" stays in its cell
        if v.claim.test == "known_answer":
            rows.append(f"| {label} | {r.note or '–'} | {r.verdict} |")
            continue
        ci = f"[{_f(r.lo)}, {_f(r.hi)}]" if math.isfinite(r.lo) else ""
        rows.append(f"| {label} | {_f(r.paper_effect)} | {_f(r.effect)} {ci} | {r.n or '–'} | {r.verdict}"
                    + (f" ({r.note})" if r.note else "") + " |")
    return rows


_TEST_WORDS = {"seeds": "paired over seeds, 95% t interval", "clusters": "paired per item, 95% cluster bootstrap",
               "interval": "the cell's stored 95% interval", "known_answer": "known answer, rounded"}


def render(vs: list[Verdict], heading: str = "##") -> str:
    """Markdown: a summary table, then each claim's comparisons."""
    if not vs:
        return "(no claims)"
    out = ["| claim | verdict | test | source |", "|---|---|---|---|"]
    for v in vs:
        out.append(f"| **{v.claim.id}**: {v.claim.claim} | **{v.verdict}** | {_TEST_WORDS[v.claim.test]} | "
                   f"{v.claim.source or '–'} |")
    for v in vs:
        c = v.claim
        out += ["", f"{heading}# {c.id}: {v.verdict}", "", c.claim + (f" ({c.source})" if c.source else ""), ""]
        if c.test == "known_answer":
            out += ["| condition | ours (paper) | verdict |", "|---|---|---|"]
        else:
            arms = [x for comp in c.comparisons for x in (comp.a, comp.b) if x is not None]
            exps = ", ".join(f"`{e}`" for e in dict.fromkeys(x.experiment for x in arms))
            what = ", ".join(dict.fromkeys(str(x.metric or x.per_item) for x in arms))
            common = {k: v for k, v in arms[0].where.items()
                      if all(k in x.where and _same(x.where[k], v) for x in arms)}
            sel = ", ".join(f"{k}={v}" for k, v in common.items())
            paired = c.comparisons[0].b is not None
            out.append(f"Cells {exps}" + (f" [{sel}]" if sel else "") + f", {what}; the paper's direction: "
                       + ("a − b " if paired else "") + ("> 0" if c.direction == "greater" else "< 0")
                       + (f"; paired by {c.pair_by}" if c.test in ("seeds", "clusters") else "") + ".")
            ours = "ours a − b [95% CI]" if paired else "ours [95% CI]"
            out += ["", f"| comparison | paper effect | {ours} | n | verdict |", "|---|---|---|---|---|"]
        out += _detail_rows(v)
        if c.note:
            out += ["", c.note]
    return "\n".join(out)


def claims_section(method: str, root: Path | None = None, heading: str = "##", claims_dir: Path = CLAIMS_DIR,
                   load: Callable[[str], list[dict]] | None = None) -> str:
    """The "Paper claims" section of a method's results page, from ``benchmarks/claims/<method>.yaml`` and cells.

    Args:
        method: the claims file's stem (``lcron``, ``search_r1``, ``lref``, ``usefulness``).
        root: the cells folder (default ``benchmarks/results/cells``).
        heading: the markdown level of the section (``"##"``); claims get one level below.
        claims_dir: where the claims files are (tests point it elsewhere).
        load: ``experiment name -> cell records``; records with ``status == "stale"`` are refused (default: every
            stored record, via ``benchmarks.cells.load_cells``).

    Returns:
        Markdown starting with ``<heading> Paper claims``.
    """
    vs = verdicts(method, root, claims_dir, load)
    counts = {k: sum(v.verdict == k for v in vs) for k in (HOLDS, OPEN, CONTRADICTED, MISSING)}
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    return (f"{heading} Paper claims\n\nFrom `benchmarks/claims/{method}.yaml`, computed by "
            f"`python -m benchmarks.claims --method {method}` from the stored cells: {summary}. "
            "A claim holds when its 95% interval lies on the paper's side of zero, is contradicted when it lies on "
            "the other side, and is not resolved at this size when it covers zero.\n\n"
            + render(vs, heading) + "\n")


def runner_load(root: Path | None = None) -> Callable[[str], list[dict]]:
    """``load(experiment)`` for the claims command: cells of a benchmark on the runner come through its
    ``Experiment.load(allow_stale=True)`` (so stale cells are refused and legacy ones flagged), under the first of
    its profiles that names that folder; other folders through ``load_cells``, unchecked (as their benchmark's own
    page reads them). A benchmark whose experiment cannot be built here (e.g. its input data is absent) leaves
    its cells marked ``unverified``."""
    from benchmarks.cells import CELLS, load_cells
    from benchmarks.runner import available, find
    from siftkit.core.config import read_config_file

    import functools

    root = Path(root) if root is not None else CELLS
    exps: dict[str, Any] = {}
    derive: dict[str, Callable[[list[dict]], list[dict]]] = {}  # folder -> its benchmark's claims_metrics
    unchecked: set[str] = set()
    for name in available():
        try:
            bench = find(name)
            profiles = list((read_config_file(bench.config_path()).get("profiles") or {}))
        except Exception:  # noqa: BLE001 (a benchmark that cannot load here is not the claims' concern)
            continue
        for profile in profiles:
            try:
                exp = bench.experiment_for(bench.load_config(profile), root)
            except Exception:  # noqa: BLE001
                folder = bench.experiment if isinstance(bench.experiment, str) else ""
                unchecked.add(folder or bench.name)
                continue
            for folder in exp.folders() if hasattr(exp, "folders") else [exp.name]:
                exps.setdefault(folder, exp)
                if getattr(bench, "claims_metrics", None) is not None:
                    derive.setdefault(folder, functools.partial(bench.claims_metrics, bench.load_config(profile)))

    def load(name: str) -> list[dict]:
        if name in exps:  # an experiment spread over folders (one per table) tags its records with theirs
            exp = exps[name]
            recs = [r for r in exp.load(allow_stale=True)
                    if (r.get("table") or r.get("experiment") or exp.name) == name]
            if name in derive:  # measures the page computes from the stored cells (stale ones are left as they are)
                fresh = derive[name]([r for r in recs if r.get("status") != "stale"])
                recs = fresh + [r for r in recs if r.get("status") == "stale"]
            return recs
        recs = load_cells(name, root)
        return [{**r, "status": r.get("status", "unverified")} for r in recs] if name in unchecked else recs

    return load


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks claims [--method M] [--output PATH|-] [--cells DIR] [--claims-dir DIR]``; bad input is
    one ``siftkit:`` line and exit 2, checked before any cell is read."""
    import argparse
    import sys

    from siftkit.core.validate import check_choice, check_output_file

    class Parser(argparse.ArgumentParser):
        def error(self, message: str):  # one line, as every siftkit command
            raise InputError(message, field="python -m benchmarks claims")

    ap = Parser(prog="python -m benchmarks claims", description="Render every paper claim's verdict from the cells.")
    ap.add_argument("--method", help="one method's claims (default: all)")
    ap.add_argument("--output", type=Path, help="markdown page (default benchmarks/results/claims.md; '-' = stdout)")
    ap.add_argument("--cells", type=Path, help="cells folder (default benchmarks/results/cells)")
    ap.add_argument("--claims-dir", type=Path, default=CLAIMS_DIR)
    try:
        a = ap.parse_args(argv)
        for folder, name in ((a.cells, "--cells"), (a.claims_dir, "--claims-dir")):
            if folder is not None and not folder.is_dir():
                raise InputError("not a folder", folder, field=name)
        if a.output is not None and str(a.output) != "-":
            check_output_file(a.output)
        if a.method is not None:
            check_choice(a.method, list(claim_files(a.claims_dir)), "--method")
        load_claims(a.method, a.claims_dir)  # a malformed file stops here, before the runner hashes anything
        vs = verdicts(a.method, a.cells, a.claims_dir, runner_load(a.cells))
        body = _page_body(vs)
    except InputError as e:
        print(e.format(), file=sys.stderr)
        return 2
    if a.output is not None and str(a.output) == "-":
        print(body)
        return 0
    from benchmarks.cells import RESULTS, write_markdown

    out = a.output or RESULTS / "claims.md"
    cmd = "python -m benchmarks claims" + (f" --method {a.method}" if a.method else "")
    print(write_markdown(out, "Paper claims: which hold at this size", body, cmd))
    return 0


def _page_body(vs: list[Verdict]) -> str:
    methods = list(dict.fromkeys(v.claim.method for v in vs))
    counts = {k: sum(v.verdict == k for v in vs) for k in (HOLDS, OPEN, CONTRADICTED, MISSING)}
    parts = ["Each claim is written once in `benchmarks/claims/<method>.yaml` (the claim in words, the paper's "
             "numbers, the cells that test it and the test); every verdict below is computed from the stored cells "
             "under `benchmarks/results/cells/`. **holds**: the 95% interval of our effect lies on the paper's side "
             "of zero; **contradicted**: it lies on the other side; **not resolved**: it covers zero (too few seeds "
             "or items at this small CPU size); **missing cells**: a named experiment has no matching cells. "
             "\"⚠ n unverified cells\": the comparison used n cells the runner cannot vouch for (made before cells "
             "were stamped, or unfinished partial cells); stale cells (made by other code or data) are refused.",
             "", "Totals: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + ".", "",
             "| method | " + " | ".join(counts) + " |", "|---|" + "---|" * len(counts)]
    for m in methods:
        mine = [v for v in vs if v.claim.method == m]
        parts.append(f"| [{m}](#{m}) | " + " | ".join(str(sum(v.verdict == k for v in mine)) for k in counts) + " |")
    for m in methods:
        parts += ["", f"## {m}", "", render([v for v in vs if v.claim.method == m], "##")]
    return "\n".join(parts)


__all__ = ["CLAIMS_DIR", "CONTRADICTED", "HOLDS", "MISSING", "OPEN", "Claim", "Result", "Verdict", "claim_files",
           "claims_section", "evaluate", "load_claims", "main", "paper", "render", "resolve_paper", "verdicts"]
