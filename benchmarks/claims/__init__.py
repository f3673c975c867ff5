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

    python -m benchmarks.claims [--method lcron] [--output benchmarks/results/claims.md]

    from benchmarks.claims import claims_section, paper
    claims_section("lcron")                      # markdown for the method's results page
    paper("lcron")["joint_2stage"]["lcron"]      # 0.8732
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siftkit.core.errors import InputError

CLAIMS_DIR = Path(__file__).resolve().parent
TESTS = ("seeds", "clusters", "interval", "known_answer")
DIRECTIONS = ("greater", "less")
HOLDS, OPEN, CONTRADICTED, MISSING = "holds", "not resolved", "contradicted", "missing cells"
N_RESAMPLES, ALPHA = 2000, 0.05


# ---------------------------------------------------------------------------------------------------------------
# data model
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: the cells ``experiment`` whose params match ``where``, read at ``metric``."""

    experiment: str
    where: dict[str, Any]
    metric: str | None = None
    per_item: str | None = None
    """Key (in ``metrics``; dots walk into mappings) of per-item values, for ``test: clusters``."""
    items: str | None = None
    """Regular expression an item id must match (``clusters``), e.g. ``2hop``."""
    scale: float = 1.0
    """Multiplier for hex-digit per-item strings (e.g. 0.1 for counts out of 10)."""
    paper: float | None = None
    paper_ref: str | None = None

    def describe(self) -> str:
        sel = ", ".join(f"{k}={v}" for k, v in self.where.items())
        what = self.metric or self.per_item or ""
        return f"`{self.experiment}`" + (f" [{sel}]" if sel else "") + (f" {what}" if what else "")


@dataclass(frozen=True)
class Comparison:
    a: Arm
    b: Arm | None
    label: str


@dataclass(frozen=True)
class Claim:
    """One claim of a paper and the test that checks it on our cells."""

    method: str
    id: str
    claim: str
    test: str
    direction: str
    comparisons: tuple[Comparison, ...]
    source: str = ""
    note: str = ""
    pair_by: str = "seed"
    digits: int = 3
    conditions: tuple[dict[str, Any], ...] = ()
    path: str = ""
    line: int = 0


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
# reading the claims files (line numbers kept for error messages)
# ---------------------------------------------------------------------------------------------------------------


class _Map(dict):
    """A YAML mapping that remembers the line of each key."""

    line: int = 0
    lines: dict[Any, int]


def _yaml_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node):
        loader.flatten_mapping(node)
        out = _Map()
        out.lines = {}
        out.line = node.start_mark.line + 1
        for k_node, v_node in node.value:
            k = loader.construct_object(k_node, deep=True)
            out[k] = loader.construct_object(v_node, deep=True)
            out.lines[k] = k_node.start_mark.line + 1
        return out

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def _read_yaml(path: Path) -> _Map:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", path) from None
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path) from None
    try:
        data = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(f"cannot parse YAML: {str(getattr(e, 'problem', e)).strip()}", path,
                         mark.line + 1 if mark is not None else None) from None
    if not isinstance(data, _Map):
        raise InputError("a claims file is a mapping with `paper:` and `claims:`", path, 1)
    return data


def _line(m: Any, key: Any = None) -> int | None:
    if isinstance(m, _Map):
        return m.lines.get(key, m.line) if key is not None else m.line
    return None


def _need(m: _Map, key: str, path: Path, kind: type | tuple = str, where: str = "") -> Any:
    name = f"{where}{key}"
    if key not in m:
        raise InputError(f"{name}: missing", path, _line(m), field=name)
    v = m[key]
    if not isinstance(v, kind) or isinstance(v, bool) and kind is not bool:
        raise InputError(f"{name}: expected {getattr(kind, '__name__', 'a value')}, got {type(v).__name__}", path,
                         _line(m, key), field=name)
    return v


def resolve_paper(table: dict, ref: str) -> Any:
    """Walk ``table`` along ``"a/b/c"``; keys compare as strings (so ``tau/50`` finds the int key 50)."""
    node: Any = table
    for part in ref.split("/"):
        if not isinstance(node, dict):
            raise KeyError(ref)
        hit = [k for k in node if str(k) == part]
        if not hit:
            raise KeyError(ref)
        node = node[hit[0]]
    return node


def _paper_value(v: Any, paper_table: dict, path: Path, m: _Map, key: str,
                 name: str) -> tuple[float | None, str | None]:
    if v is None:
        return None, None
    if isinstance(v, list) and len(v) == 2:  # an effect the paper reports as two numbers: v[0] - v[1]
        (x, rx), (y, ry) = (_paper_value(e, paper_table, path, m, key, name) for e in v)
        if x is None or y is None:
            raise InputError(f"{name}: expected two numbers or references", path, _line(m, key), field=name)
        return x - y, f"{rx or x} − {ry or y}"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v), None
    if isinstance(v, str):
        try:
            x = resolve_paper(paper_table, v)
        except KeyError:
            raise InputError(f"{name}: {v!r} is not in the file's `paper:` table", path, _line(m, key),
                             field=name) from None
        if not isinstance(x, (int, float)) or isinstance(x, bool):
            raise InputError(f"{name}: {v!r} is not a number in `paper:`", path, _line(m, key), field=name)
        return float(x), v
    raise InputError(f"{name}: expected a number or a `paper:` reference", path, _line(m, key), field=name)


_ARM_KEYS = {"experiment", "where", "metric", "per_item", "items", "scale", "paper"}


def _arm(spec: Any, defaults: _Map, axis: str | None, paper_table: dict, axis_paper: str | None, path: Path,
         name: str, line: int | None) -> Arm:
    """An arm from its spec: a mapping, or (with ``axis``) just the axis value."""
    if not isinstance(spec, _Map):
        if axis is None:
            raise InputError(f"{name}: expected a mapping (or set `axis:` to give bare values)", path, line,
                             field=name)
        spec_map = _Map({"where": {axis: spec}})
        spec_map.lines, spec_map.line = {}, line or 0
        if axis_paper is not None:
            try:
                resolve_paper(paper_table, f"{axis_paper}/{spec}")
                spec_map["paper"] = f"{axis_paper}/{spec}"
            except KeyError:
                pass  # the paper does not report this arm
        spec = spec_map
    unknown = sorted(set(spec) - _ARM_KEYS, key=str)
    if unknown:
        raise InputError(f"{name}.{unknown[0]}: unknown field (expected one of {', '.join(sorted(_ARM_KEYS))})",
                         path, _line(spec, unknown[0]), field=f"{name}.{unknown[0]}")
    merged: dict[str, Any] = {k: defaults[k] for k in _ARM_KEYS - {"paper"} if k in defaults}
    where = dict(defaults.get("where") or {})
    for k, v in spec.items():
        if k == "where":
            if not isinstance(v, dict):
                raise InputError(f"{name}.where: expected a mapping", path, _line(spec, k), field=f"{name}.where")
            where.update(v)
        else:
            merged[k] = v
    if not isinstance(merged.get("experiment"), str):
        raise InputError(f"{name}.experiment: missing (give it in the arm or in the claim's `cells:`)", path,
                         _line(spec), field=f"{name}.experiment")
    for k in ("metric", "per_item", "items"):
        if merged.get(k) is not None and not isinstance(merged[k], str):
            raise InputError(f"{name}.{k}: expected a string", path, _line(spec, k), field=f"{name}.{k}")
    scale = merged.get("scale", 1.0)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool):
        raise InputError(f"{name}.scale: expected a number", path, _line(spec, "scale"), field=f"{name}.scale")
    p, ref = _paper_value(spec.get("paper"), paper_table, path, spec, "paper", f"{name}.paper")
    return Arm(merged["experiment"], where, merged.get("metric"), merged.get("per_item"), merged.get("items"),
               float(scale), p, ref)


def _label(a: Arm, b: Arm | None) -> str:
    """What differs between the arms: selectors both name, the experiment, the metric."""
    if b is None:
        return a.describe()
    parts = [f"{k}: {a.where[k]} vs {b.where[k]}" for k in a.where
             if k in b.where and not _same(a.where[k], b.where[k])]
    if a.experiment != b.experiment:
        parts.append(f"`{a.experiment}` vs `{b.experiment}`")
    am, bm = a.metric or a.per_item, b.metric or b.per_item
    if am != bm:
        parts.append(f"{am} vs {bm}")
    return "; ".join(parts) or a.describe()


_CLAIM_KEYS = {"id", "claim", "source", "note", "test", "direction", "cells", "axis", "a", "b", "compare",
               "pair_by", "digits", "conditions", "match", "defaults", "paper"}


def _claim(c: Any, i: int, method: str, paper_table: dict, path: Path, claims_line: int | None) -> Claim:
    where = f"claims[{i}]."
    if not isinstance(c, _Map):
        raise InputError(f"claims[{i}]: expected a mapping", path, claims_line, field=f"claims[{i}]")
    unknown = sorted(set(c) - _CLAIM_KEYS, key=str)
    if unknown:
        raise InputError(f"{where}{unknown[0]}: unknown field", path, _line(c, unknown[0]), field=where + unknown[0])
    cid = _need(c, "id", path, str, where)
    where = f"claims[{cid}]."
    text = _need(c, "claim", path, str, where)
    test = _need(c, "test", path, str, where)
    if test not in TESTS:
        raise InputError(f"{where}test: {test!r} is not one of {', '.join(TESTS)}", path, _line(c, "test"),
                         field=where + "test")
    direction = c.get("direction", "greater")
    if direction not in DIRECTIONS:
        raise InputError(f"{where}direction: {direction!r} is not one of {', '.join(DIRECTIONS)}", path,
                         _line(c, "direction"), field=where + "direction")
    defaults = c.get("cells") or _Map()
    if not isinstance(defaults, _Map):
        raise InputError(f"{where}cells: expected a mapping", path, _line(c, "cells"), field=where + "cells")
    axis = c.get("axis")
    axis_paper = c.get("paper") if isinstance(c.get("paper"), str) else None
    if axis_paper is not None:
        try:
            resolve_paper(paper_table, axis_paper)
        except KeyError:
            raise InputError(f"{where}paper: {axis_paper!r} is not in the file's `paper:` table", path,
                             _line(c, "paper"), field=where + "paper") from None
    comps: list[Comparison] = []
    conditions: tuple[dict[str, Any], ...] = ()
    if test == "known_answer":
        conds = _need(c, "conditions", path, list, where)
        match = c.get("match") or []
        if not isinstance(match, list):
            raise InputError(f"{where}match: expected a list of condition keys", path, _line(c, "match"),
                             field=where + "match")
        dflt = dict(c.get("defaults") or {})
        arm0 = _arm(_Map({k: v for k, v in defaults.items()}) if defaults else _Map(), _Map(), None, paper_table,
                    None, path, where + "cells", _line(c, "cells"))
        out = []
        for j, cond in enumerate(conds):
            if not isinstance(cond, _Map):
                raise InputError(f"{where}conditions[{j}]: expected a mapping", path, _line(c, "conditions"),
                                 field=f"{where}conditions[{j}]")
            full = {**dflt, **cond}
            exp = full.get("expected")
            if isinstance(exp, str):
                try:
                    exp = resolve_paper(paper_table, exp)
                except KeyError:
                    raise InputError(f"{where}conditions[{j}].expected: {exp!r} is not in `paper:`", path,
                                     _line(cond, "expected"), field=f"{where}conditions[{j}].expected") from None
            if full.get("known_answer", True) is not False and not isinstance(exp, dict):
                raise InputError(f"{where}conditions[{j}].expected: missing (a mapping or a `paper:` reference)",
                                 path, _line(cond), field=f"{where}conditions[{j}].expected")
            missing = [k for k in match if k not in full]
            if missing:
                raise InputError(f"{where}conditions[{j}].{missing[0]}: missing (named in `match:`)", path,
                                 _line(cond), field=f"{where}conditions[{j}].{missing[0]}")
            full["expected"] = dict(exp or {})
            sel = {**arm0.where, **{k: full[k] for k in match}}
            arm = Arm(arm0.experiment, sel)
            out.append(full)
            comps.append(Comparison(arm, None, " ".join(str(full[k]) for k in match) or arm.describe()))
        conditions = tuple(out)
    elif "compare" in c:
        pairs = _need(c, "compare", path, list, where)
        for j, p in enumerate(pairs):
            if not isinstance(p, _Map) or "a" not in p or (test != "interval" and "b" not in p):
                raise InputError(f"{where}compare[{j}]: expected a mapping with `a:`"
                                 + ("" if test == "interval" else " and `b:`"), path,
                                 _line(p) or _line(c, "compare"), field=f"{where}compare[{j}]")
            a = _arm(p["a"], defaults, axis, paper_table, axis_paper, path, f"{where}compare[{j}].a", _line(p, "a"))
            b = None if p.get("b") is None else _arm(p["b"], defaults, axis, paper_table, axis_paper, path,
                                                     f"{where}compare[{j}].b", _line(p, "b"))
            comps.append(Comparison(a, b, str(p.get("label") or _label(a, b))))
    else:
        if "a" not in c:
            raise InputError(f"{where}a: missing (or give `compare:`)", path, _line(c), field=where + "a")
        a = _arm(c["a"], defaults, axis, paper_table, axis_paper, path, where + "a", _line(c, "a"))
        bs = c.get("b")
        if bs is None and test != "interval":
            raise InputError(f"{where}b: missing", path, _line(c), field=where + "b")
        for j, bspec in enumerate(bs if isinstance(bs, list) else [bs]):
            b = None if bspec is None else _arm(bspec, defaults, axis, paper_table, axis_paper, path,
                                                f"{where}b[{j}]", _line(c, "b"))
            comps.append(Comparison(a, b, _label(a, b)))
    for comp in comps:
        for arm, side in ((comp.a, "a"), (comp.b, "b")):
            if arm is None:
                continue
            if test in ("seeds", "interval") and not arm.metric:
                raise InputError(f"{where}{side}.metric: missing (test {test} reads one number per cell)", path,
                                 _line(c), field=f"{where}{side}.metric")
            if test == "clusters" and not arm.per_item:
                raise InputError(f"{where}{side}.per_item: missing (test clusters reads per-item values)", path,
                                 _line(c), field=f"{where}{side}.per_item")
    digits = c.get("digits", 3)
    pair_by = c.get("pair_by", "seed")
    if not isinstance(digits, int) or isinstance(digits, bool) or not isinstance(pair_by, str):
        raise InputError(f"{where}digits/pair_by: expected an integer / a string", path, _line(c), field=where)
    return Claim(method, cid, text, test, direction, tuple(comps), str(c.get("source", "")), str(c.get("note", "")),
                 pair_by, digits, conditions, str(path), _line(c) or 0)


def claim_files(claims_dir: Path = CLAIMS_DIR) -> dict[str, Path]:
    """``{method: path}`` of every claims file."""
    return {p.stem: p for p in sorted(Path(claims_dir).glob("*.yaml"))}


def load_claims(method: str | None = None, claims_dir: Path = CLAIMS_DIR) -> list[Claim]:
    """Every claim (of one method, or of all); a malformed file raises :class:`InputError` naming file, line, field."""
    files = claim_files(claims_dir)
    if method is not None and method not in files:
        raise InputError(f"no claims file for {method!r} (have: {', '.join(files) or 'none'})", field="--method")
    out: list[Claim] = []
    for m, path in files.items():
        if method is not None and m != method:
            continue
        data = _read_yaml(path)
        table = data.get("paper") or {}
        if not isinstance(table, dict):
            raise InputError("paper: expected a mapping", path, _line(data, "paper"), field="paper")
        claims = _need(data, "claims", path, list)
        ids: set[str] = set()
        for i, c in enumerate(claims):
            cl = _claim(c, i, m, table, path, _line(data, "claims"))
            if cl.id in ids:
                raise InputError(f"claims[{cl.id}].id: duplicate id", path, cl.line, field=f"claims[{cl.id}].id")
            ids.add(cl.id)
            out.append(cl)
    return out


def paper(method: str, claims_dir: Path = CLAIMS_DIR) -> dict[str, Any]:
    """The paper's numbers of one method (the ``paper:`` table of its claims file), for results pages."""
    path = claim_files(claims_dir).get(method)
    if path is None:
        raise InputError(f"no claims file for {method!r}", field="method")
    return _plain(_read_yaml(path).get("paper") or {})


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_plain(v) for v in x]
    return x


# ---------------------------------------------------------------------------------------------------------------
# tests and verdicts
# ---------------------------------------------------------------------------------------------------------------


def _same(x: Any, y: Any) -> bool:
    if x == y:
        return True
    if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
        return float(x) == float(y)
    return str(x) == str(y)


def _select(arm: Arm, cache: dict[str, list[dict]], root: Path | None) -> list[dict]:
    from benchmarks.cells import load_cells

    if arm.experiment not in cache:
        cache[arm.experiment] = load_cells(arm.experiment, root) if root is not None else load_cells(arm.experiment)
    return [c for c in cache[arm.experiment]
            if all(k in c.get("params", {}) and _same(c["params"][k], v) for k, v in arm.where.items())]


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


def _by_key(cells: list[dict], pair_by: str, read) -> dict[Any, Any]:
    """``{pair key: value}``; a single cell without the pair key is keyed ``None`` (paired with every key)."""
    out: dict[Any, list] = {}
    for c in cells:
        v = read(c["metrics"])
        if v is None:
            continue
        out.setdefault(c["params"].get(pair_by), []).append(v)
    return {k: vs[0] if len(vs) == 1 else vs for k, vs in out.items()}


def _pair(a: dict, b: dict) -> list[tuple[Any, Any, Any]]:
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


def _missing(arms: list[Arm], cells: list[list[dict]], what: str = "") -> Result | None:
    gone = [a.describe() for a, cs in zip(arms, cells) if not cs]
    return Result("", MISSING, note="no cells: " + "; ".join(gone) + what) if gone else None


def _paper_effect(comp: Comparison) -> float | None:
    if comp.b is None:
        return comp.a.paper
    if comp.a.paper is None or comp.b.paper is None:
        return None
    return comp.a.paper - comp.b.paper


def _paired(claim: Claim, comp: Comparison, cache: dict, root: Path | None, read, what: str) -> list | Result:
    """``[(pair key, a value, b value)]`` of the two arms read by ``read(metrics, arm)``, or a MISSING result."""
    assert comp.b is not None
    ca, cb = _select(comp.a, cache, root), _select(comp.b, cache, root)
    miss = _missing([comp.a, comp.b], [ca, cb])
    if miss:
        return miss
    va = _by_key(ca, claim.pair_by, lambda m: read(m, comp.a))
    vb = _by_key(cb, claim.pair_by, lambda m: read(m, comp.b))
    if not va or not vb:
        arm = comp.a if not va else comp.b
        return Result("", MISSING, note=f"cells lack {what} {arm.metric or arm.per_item}")
    dup = [k for k, v in {**va, **vb}.items() if isinstance(v, list)]
    if dup:
        return Result("", MISSING, note=f"several cells for {claim.pair_by}={dup[0]}: selectors too loose")
    pairs = _pair(va, vb)
    return pairs or Result("", MISSING, note=f"no {claim.pair_by} in common")


def _seeds(claim: Claim, comp: Comparison, cache: dict, root: Path | None) -> Result:
    from scipy import stats

    pairs = _paired(claim, comp, cache, root, lambda m, arm: _number(_get(m, arm.metric)), "metric")
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


def _clusters(claim: Claim, comp: Comparison, cache: dict, root: Path | None) -> Result:
    import numpy as np

    from siftkit.metrics.stats import bootstrap_ci

    pairs = _paired(claim, comp, cache, root, _items, "per-item")
    if isinstance(pairs, Result):
        return pairs
    diffs, ids = [], []
    for _, ia, ib in pairs:
        for k in sorted(set(ia) & set(ib)):
            diffs.append(ia[k] - ib[k])
            ids.append(k)
    if not diffs:
        return Result("", MISSING, note="no items in common")
    ci = bootstrap_ci(np.asarray(diffs), clusters=ids, n_resamples=N_RESAMPLES, alpha=ALPHA, seed=0)
    return Result("", _decide(ci.low, ci.high, claim.direction), ci.estimate, ci.low, ci.high, len(diffs),
                  note=f"{len(set(ids))} clusters")


def _one_cell(arm: Arm, cache: dict, root: Path | None) -> dict | Result:
    """The metrics of the one cell ``arm`` selects, or a MISSING result."""
    cells = _select(arm, cache, root)
    miss = _missing([arm], [cells])
    if miss:
        return miss
    if len(cells) > 1:
        return Result("", MISSING, note=f"{len(cells)} cells match {arm.describe()}: selectors too loose")
    return cells[0]["metrics"]


def _interval(claim: Claim, comp: Comparison, cache: dict, root: Path | None) -> Result:
    m = _one_cell(comp.a, cache, root)
    if isinstance(m, Result):
        return m
    est, lo, hi = (_number(_get(m, f"{comp.a.metric}{s}")) for s in ("", "_lo", "_hi"))
    if est is None:
        return Result("", MISSING, note=f"cell lacks {comp.a.metric}")
    if lo is None or hi is None:
        return Result("", OPEN, est, note="no interval stored")
    n = m.get("n") if isinstance(m.get("n"), int) else 0
    return Result("", _decide(lo, hi, claim.direction), est, lo, hi, n)


def _known(claim: Claim, comp: Comparison, cond: dict, cache: dict, root: Path | None) -> Result:
    if cond.get("known_answer", True) is False:
        return Result("", "n/a", note=str(cond.get("note", "")))
    m = _one_cell(comp.a, cache, root)
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


def evaluate(claim: Claim, root: Path | None = None, cache: dict | None = None) -> Verdict:
    """The verdict of one claim from the cells under ``root`` (default: ``benchmarks/results/cells``)."""
    cache = {} if cache is None else cache
    results = []
    for i, comp in enumerate(claim.comparisons):
        if claim.test == "seeds":
            r = _seeds(claim, comp, cache, root)
        elif claim.test == "clusters":
            r = _clusters(claim, comp, cache, root)
        elif claim.test == "interval":
            r = _interval(claim, comp, cache, root)
        else:
            r = _known(claim, comp, claim.conditions[i], cache, root)
        r.label = comp.label
        r.paper_effect = _paper_effect(comp) if claim.test != "known_answer" else None
        results.append(r)
    return Verdict(claim, _combine(results), results)


def verdicts(method: str | None = None, root: Path | None = None, claims_dir: Path = CLAIMS_DIR) -> list[Verdict]:
    """Every claim's verdict (of one method, or of all)."""
    cache: dict[str, list[dict]] = {}
    return [evaluate(c, root, cache) for c in load_claims(method, claims_dir)]


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
        if v.claim.test == "known_answer":
            rows.append(f"| {r.label} | {r.note or '–'} | {r.verdict} |")
            continue
        ci = f"[{_f(r.lo)}, {_f(r.hi)}]" if math.isfinite(r.lo) else ""
        rows.append(f"| {r.label} | {_f(r.paper_effect)} | {_f(r.effect)} {ci} | {r.n or '–'} | {r.verdict}"
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
            out += ["", "| comparison | paper effect | ours a − b [95% CI] | n | verdict |", "|---|---|---|---|---|"]
        out += _detail_rows(v)
        if c.note:
            out += ["", c.note]
    return "\n".join(out)


def claims_section(method: str, root: Path | None = None, heading: str = "##",
                   claims_dir: Path = CLAIMS_DIR) -> str:
    """The "Paper claims" section of a method's results page, from ``benchmarks/claims/<method>.yaml`` and cells.

    Args:
        method: the claims file's stem (``lcron``, ``search_r1``, ``lref``, ``usefulness``).
        root: the cells folder (default ``benchmarks/results/cells``).
        heading: the markdown level of the section (``"##"``); claims get one level below.
        claims_dir: where the claims files are (tests point it elsewhere).

    Returns:
        Markdown starting with ``<heading> Paper claims``.
    """
    vs = verdicts(method, root, claims_dir)
    counts = {k: sum(v.verdict == k for v in vs) for k in (HOLDS, OPEN, CONTRADICTED, MISSING)}
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    return (f"{heading} Paper claims\n\nFrom `benchmarks/claims/{method}.yaml`, computed by "
            f"`python -m benchmarks.claims --method {method}` from the stored cells: {summary}. "
            "A claim holds when its 95% interval lies on the paper's side of zero, is contradicted when it lies on "
            "the other side, and is not resolved at this size when it covers zero.\n\n"
            + render(vs, heading) + "\n")


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from siftkit.core.validate import check_choice

    ap = argparse.ArgumentParser(prog="python -m benchmarks.claims",
                                 description="Render every paper claim's verdict from the stored cells.")
    ap.add_argument("--method", help="one method's claims (default: all)")
    ap.add_argument("--output", type=Path, help="markdown page (default benchmarks/results/claims.md; '-' = stdout)")
    ap.add_argument("--cells", type=Path, help="cells folder (default benchmarks/results/cells)")
    ap.add_argument("--claims-dir", type=Path, default=CLAIMS_DIR)
    a = ap.parse_args(argv)
    try:
        if a.method is not None:
            check_choice(a.method, list(claim_files(a.claims_dir)), "--method")
        vs = verdicts(a.method, a.cells, a.claims_dir)
        body = _page_body(vs)
    except InputError as e:
        print(e.format(), file=sys.stderr)
        return 2
    if a.output is not None and str(a.output) == "-":
        print(body)
        return 0
    from benchmarks.cells import RESULTS, write_markdown

    out = a.output or RESULTS / "claims.md"
    cmd = "python -m benchmarks.claims" + (f" --method {a.method}" if a.method else "")
    print(write_markdown(out, "Paper claims: which hold at this size", body, cmd))
    return 0


def _page_body(vs: list[Verdict]) -> str:
    methods = list(dict.fromkeys(v.claim.method for v in vs))
    counts = {k: sum(v.verdict == k for v in vs) for k in (HOLDS, OPEN, CONTRADICTED, MISSING)}
    parts = ["Each claim is written once in `benchmarks/claims/<method>.yaml` (the claim in words, the paper's "
             "numbers, the cells that test it and the test); every verdict below is computed from the stored cells "
             "under `benchmarks/results/cells/`. **holds**: the 95% interval of our effect lies on the paper's side "
             "of zero; **contradicted**: it lies on the other side; **not resolved**: it covers zero (too few seeds "
             "or items at this small CPU size); **missing cells**: a named experiment has no matching cells.",
             "", "Totals: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + "."]
    for m in methods:
        parts += ["", f"## {m}", "", render([v for v in vs if v.claim.method == m], "##")]
    return "\n".join(parts)


__all__ = ["Claim", "Verdict", "Result", "load_claims", "verdicts", "evaluate", "paper", "claims_section", "render",
           "resolve_paper", "main"]
