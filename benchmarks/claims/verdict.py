"""Verdicts: each claim's test on the stored cells (paired over seeds, cluster bootstrap, stored interval, known
answer) and the rule that turns an interval into holds / not resolved / contradicted / missing cells.

See :mod:`benchmarks.claims` for the tests' definitions.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from benchmarks.claims.spec import CLAIMS_DIR, Arm, Claim, Comparison, _same, load_claims

HOLDS, OPEN, CONTRADICTED, MISSING = "holds", "not resolved", "contradicted", "missing cells"
N_RESAMPLES, ALPHA = 2000, 0.05


@dataclass
class Result:
    """The measured effect of one comparison and its verdict."""

    label: str
    verdict: str
    effect: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    n: int = 0
    paper_effect: float | None = None
    note: str = ""


@dataclass
class Verdict:
    claim: Claim
    verdict: str
    results: list[Result] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------
# tests and verdicts
# ---------------------------------------------------------------------------------------------------------------


def _as_record(c: dict) -> dict:
    """A partial cell (``{"params", "state": {step: {metric: value}}}``, the runner's resume file) reads as a record
    whose metrics are the union of its finished steps; it is marked ``unverified`` unless it has a status."""
    if "metrics" in c or not isinstance(c.get("state"), dict):
        return c
    metrics = {k: v for step in c["state"].values() if isinstance(step, dict) for k, v in step.items()}
    return {**c, "metrics": metrics, "status": c.get("status", "unverified")}


class _Store:
    """The cells of each experiment, read once: through ``load(name)`` (e.g. the runner's stale-checking
    ``Experiment.load(allow_stale=True)``) or ``benchmarks.cells.load_cells``. Records marked ``status: stale`` are
    never used; they are counted so a missing arm can say why."""

    def __init__(self, root: Path | None = None, load: Callable[[str], list[dict]] | None = None):
        self.root, self.load, self.cells = root, load, {}

    def _all(self, name: str) -> list[dict]:
        if name not in self.cells:
            if self.load is not None:
                self.cells[name] = list(self.load(name))
            else:
                from benchmarks.cells import load_cells

                self.cells[name] = load_cells(name, self.root) if self.root is not None else load_cells(name)
            self.cells[name] = [_as_record(c) for c in self.cells[name]]
        return self.cells[name]

    def _match(self, arm: Arm) -> list[dict]:
        return [c for c in self._all(arm.experiment)
                if all(k in c.get("params", {}) and _same(c["params"][k], v) for k, v in arm.where.items())]

    def select(self, arm: Arm) -> list[dict]:
        return [c for c in self._match(arm) if c.get("status") != "stale"]

    def stale(self, arm: Arm) -> int:
        return sum(c.get("status") == "stale" for c in self._match(arm))

    def unverified(self, arm: Arm) -> list[dict]:
        """Cells used that the runner could not vouch for (made before cells were stamped, or partial)."""
        return [c for c in self.select(arm) if c.get("status") == "unverified"]


def _get(metrics: dict, key: str) -> Any:
    if key in metrics:
        return metrics[key]
    node: Any = metrics
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _number(x: Any) -> float | None:
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x)):
        return float(x)
    return None


def _by_key(cells: list[dict], pair_by: str, read, fixed: bool = False) -> dict[Any, Any]:
    """``{pair key: value}``; a single cell without the pair key, or any cells of a ``fixed`` arm, are keyed
    ``None`` (paired with every key; a fixed arm must match exactly one cell)."""
    out: dict[Any, list] = {}
    for c in cells:
        v = read(c["metrics"])
        if v is None:
            continue
        out.setdefault(None if fixed else c["params"].get(pair_by), []).append(v)
    return {k: vs[0] if len(vs) == 1 else vs for k, vs in out.items()}


def _pair(a: dict, b: dict) -> list[tuple[Any, Any, Any]]:
    if set(a) == set(b) == {None}:  # two seedless cells (deterministic systems) pair with each other
        return [(None, a[None], b[None])]
    if None in a and len(a) == 1:
        return [(k, a[None], v) for k, v in sorted(b.items(), key=lambda t: str(t[0])) if k is not None]
    if None in b and len(b) == 1:
        return [(k, v, b[None]) for k, v in sorted(a.items(), key=lambda t: str(t[0])) if k is not None]
    return [(k, a[k], b[k]) for k in sorted(set(a) & set(b), key=str)]


def _decide(lo: float, hi: float, direction: str) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return OPEN
    if direction == "less":
        lo, hi = -hi, -lo
    return HOLDS if lo > 0 else CONTRADICTED if hi < 0 else OPEN


def _missing(store: _Store, arms: list[Arm], cells: list[list[dict]]) -> Result | None:
    gone = [a.describe() + (f" ({store.stale(a)} stale cells refused)" if store.stale(a) else "")
            for a, cs in zip(arms, cells) if not cs]
    return Result("", MISSING, note="no cells: " + "; ".join(gone)) if gone else None


def _paper_effect(comp: Comparison) -> float | None:
    if comp.b is None:
        return comp.a.paper
    if comp.a.paper is None or comp.b.paper is None:
        return None
    return comp.a.paper - comp.b.paper


def _paired(claim: Claim, comp: Comparison, store: _Store, read, what: str) -> list | Result:
    """``[(pair key, a value, b value)]`` of the two arms read by ``read(metrics, arm)``, or a MISSING result."""
    assert comp.b is not None
    ca, cb = store.select(comp.a), store.select(comp.b)
    miss = _missing(store, [comp.a, comp.b], [ca, cb])
    if miss:
        return miss
    va = _by_key(ca, claim.pair_by, lambda m: read(m, comp.a), comp.a.fixed)
    vb = _by_key(cb, claim.pair_by, lambda m: read(m, comp.b), comp.b.fixed)
    if not va or not vb:
        arm = comp.a if not va else comp.b
        return Result("", MISSING, note=f"cells lack {what} {arm.metric or arm.per_item}")
    dup = [k for k, v in {**va, **vb}.items() if isinstance(v, list)]
    if dup:
        where = "a fixed or seedless arm" if dup[0] is None else f"{claim.pair_by}={dup[0]}"
        return Result("", MISSING, note=f"several cells for {where}: selectors too loose")
    pairs = _pair(va, vb)
    return pairs or Result("", MISSING, note=f"no {claim.pair_by} in common")


def _seeds(claim: Claim, comp: Comparison, store: _Store) -> Result:
    from scipy import stats

    pairs = _paired(claim, comp, store, lambda m, arm: _number(_get(m, arm.metric)), "metric")
    if isinstance(pairs, Result):
        return pairs
    d = [x - y for _, x, y in pairs]
    n = len(d)
    mean = sum(d) / n
    if n < 2:
        return Result("", OPEN, mean, n=n, note=f"one {claim.pair_by}: no interval")
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    half = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) * sd / math.sqrt(n)
    return Result("", _decide(mean - half, mean + half, claim.direction), mean, mean - half, mean + half, n)


def _items(metrics: dict, arm: Arm) -> dict[str, float] | None:
    v = _get(metrics, arm.per_item or "")
    if isinstance(v, str):
        try:
            vals = {str(i): int(ch, 16) * arm.scale for i, ch in enumerate(v)}
        except ValueError:
            return None
    elif isinstance(v, list):
        vals = {str(i): float(x) * arm.scale for i, x in enumerate(v) if _number(x) is not None}
    elif isinstance(v, dict):
        vals = {str(k): float(x) * arm.scale for k, x in v.items() if _number(x) is not None}
    else:
        return None
    if arm.items:
        pat = re.compile(arm.items)
        vals = {k: x for k, x in vals.items() if pat.search(k)}
    return vals


def _clusters(claim: Claim, comp: Comparison, store: _Store) -> Result:
    import numpy as np

    from siftkit.metrics.stats import bootstrap_ci

    pairs = _paired(claim, comp, store, _items, "per-item")
    if isinstance(pairs, Result):
        return pairs
    pattern = re.compile(comp.a.cluster) if comp.a.cluster else None  # arm a names the clusters of both
    diffs, ids = [], []
    for _, ia, ib in pairs:
        for k in sorted(set(ia) & set(ib)):
            diffs.append(ia[k] - ib[k])
            m = pattern.search(k) if pattern else None
            ids.append(m.group(0) if m else k)
    if not diffs:
        return Result("", MISSING, note="no items in common")
    ci = bootstrap_ci(np.asarray(diffs), clusters=ids, n_resamples=N_RESAMPLES, alpha=ALPHA, seed=0)
    return Result("", _decide(ci.low, ci.high, claim.direction), ci.estimate, ci.low, ci.high, len(diffs),
                  note=f"{len(set(ids))} clusters")


def _one_cell(arm: Arm, store: _Store) -> dict | Result:
    """The metrics of the one cell ``arm`` selects, or a MISSING result."""
    cells = store.select(arm)
    miss = _missing(store, [arm], [cells])
    if miss:
        return miss
    if len(cells) > 1:
        return Result("", MISSING, note=f"{len(cells)} cells match {arm.describe()}: selectors too loose")
    return cells[0]["metrics"]


def _interval(claim: Claim, comp: Comparison, store: _Store) -> Result:
    m = _one_cell(comp.a, store)
    if isinstance(m, Result):
        return m
    est, lo, hi = (_number(_get(m, f"{comp.a.metric}{s}")) for s in ("", "_lo", "_hi"))
    if est is None:
        return Result("", MISSING, note=f"cell lacks {comp.a.metric}")
    if lo is None or hi is None:
        return Result("", OPEN, est, note="no interval stored")
    n = m.get("n") if isinstance(m.get("n"), int) else 0
    return Result("", _decide(lo, hi, claim.direction), est, lo, hi, n)


def _known(claim: Claim, comp: Comparison, cond: dict, store: _Store) -> Result:
    if cond.get("known_answer", True) is False:
        return Result("", "n/a", note=str(cond.get("note", "")))
    m = _one_cell(comp.a, store)
    if isinstance(m, Result):
        return m
    diffs, shown = [], []
    for k, exp in cond["expected"].items():
        got = _number(_get(m, k))
        if got is None:
            return Result("", MISSING, note=f"cell lacks {k}")
        diffs.append(abs(round(got, claim.digits) - float(exp)))
        shown.append(f"{k} {got:.{claim.digits}f} (paper {float(exp):.{claim.digits}f})")
    worst = max(diffs) if diffs else 0.0
    ok = worst < 0.5 * 10 ** -(claim.digits + 3)
    return Result("", HOLDS if ok else CONTRADICTED, worst, n=len(diffs), note="; ".join(shown))


def _combine(results: list[Result]) -> str:
    vs = [r.verdict for r in results if r.verdict != "n/a"]
    if not vs:
        return MISSING
    if CONTRADICTED in vs:
        return CONTRADICTED
    if MISSING in vs:
        return MISSING
    return HOLDS if all(v == HOLDS for v in vs) else OPEN


def evaluate(claim: Claim, root: Path | None = None, load: Callable[[str], list[dict]] | None = None,
             store: _Store | None = None) -> Verdict:
    """The verdict of one claim from the cells under ``root`` (default: ``benchmarks/results/cells``) or read by
    ``load(experiment) -> records``."""
    store = store or _Store(root, load)
    results = []
    for i, comp in enumerate(claim.comparisons):
        if claim.test == "seeds":
            r = _seeds(claim, comp, store)
        elif claim.test == "clusters":
            r = _clusters(claim, comp, store)
        elif claim.test == "interval":
            r = _interval(claim, comp, store)
        else:
            r = _known(claim, comp, claim.conditions[i], store)
        r.label = comp.label
        unverified = len({id(c) for x in (comp.a, comp.b) if x is not None for c in store.unverified(x)})
        if unverified and r.verdict != MISSING:
            r.note = "; ".join(filter(None, [r.note, f"⚠ {unverified} unverified cells"]))
        r.paper_effect = _paper_effect(comp) if claim.test != "known_answer" else None
        results.append(r)
    return Verdict(claim, _combine(results), results)


def verdicts(method: str | None = None, root: Path | None = None, claims_dir: Path = CLAIMS_DIR,
             load: Callable[[str], list[dict]] | None = None) -> list[Verdict]:
    """Every claim's verdict (of one method, or of all); cells as in :func:`evaluate`."""
    store = _Store(root, load)
    return [evaluate(c, store=store) for c in load_claims(method, claims_dir)]
