"""Reading the claims files: the data model (:class:`Claim`, :class:`Comparison`, :class:`Arm`) and the YAML reader,
which keeps line numbers so a malformed file gives one ``siftkit: <file>:<line>: <field> ...`` line.

See :mod:`benchmarks.claims` for the file format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from siftkit.core.errors import InputError
from siftkit.core.known_answer import resolve_conditions, resolve_ref

resolve_paper = resolve_ref
"""Walk a paper table along ``"a/b/c"`` (:func:`siftkit.core.known_answer.resolve_ref`)."""

CLAIMS_DIR = Path(__file__).resolve().parent
TESTS = ("seeds", "clusters", "interval", "known_answer")
DIRECTIONS = ("greater", "less")


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
    cluster: str | None = None
    """Regular expression whose first match in an item id names the item's cluster (``clusters``: whole clusters
    are resampled, e.g. ``^[^.]+`` for the database of ``db.table.column``); default: each item its own cluster."""
    scale: float = 1.0
    """Multiplier for hex-digit per-item strings (e.g. 0.1 for counts out of 10)."""
    paper: float | None = None
    paper_ref: str | None = None
    fixed: bool = False
    """A reference arm of one cell (e.g. a deterministic teacher) paired with every pair key of the other arm."""

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


# ---------------------------------------------------------------------------------------------------------------
# reading the claims files (line numbers kept for error messages)
# ---------------------------------------------------------------------------------------------------------------


class _Map(dict):
    """A YAML mapping that remembers the line of each key."""

    line: int = 0
    lines: dict[Any, int]
    path: str = ""


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


def _read_yaml(path: Path, shape: str = "a claims file is a mapping with `paper:` and `claims:`") -> _Map:
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
        raise InputError(shape, path, 1)
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


_ARM_KEYS = {"experiment", "where", "metric", "per_item", "items", "cluster", "scale", "paper", "fixed"}


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
    for k in ("metric", "per_item", "items", "cluster"):
        if merged.get(k) is not None and not isinstance(merged[k], str):
            raise InputError(f"{name}.{k}: expected a string", path, _line(spec, k), field=f"{name}.{k}")
    if merged.get("cluster") is not None:
        try:
            re.compile(merged["cluster"])
        except re.error as e:
            raise InputError(f"{name}.cluster: not a regular expression ({e})", path, _line(spec, "cluster"),
                             field=f"{name}.cluster") from None
    scale = merged.get("scale", 1.0)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool):
        raise InputError(f"{name}.scale: expected a number", path, _line(spec, "scale"), field=f"{name}.scale")
    p, ref = _paper_value(spec.get("paper"), paper_table, path, spec, "paper", f"{name}.paper")
    fixed = merged.get("fixed", False)
    if not isinstance(fixed, bool):
        raise InputError(f"{name}.fixed: expected true or false", path, _line(spec, "fixed"), field=f"{name}.fixed")
    return Arm(merged["experiment"], where, merged.get("metric"), merged.get("per_item"), merged.get("items"),
               merged.get("cluster"), float(scale), p, ref, fixed)


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


def _known_answer(c: _Map, defaults: _Map, paper_table: dict, path: Path, where: str,
                  matrix: _Map | None = None) -> tuple[list[Comparison], tuple[dict[str, Any], ...]]:
    """One single-arm comparison per condition of a ``known_answer`` claim, and the conditions (expected resolved by
    :func:`siftkit.core.known_answer.resolve_conditions`). The conditions (and their ``defaults``) are the claim's
    own or, when it gives none, those of the file's ``matrix:``."""
    match = c.get("match") or []
    if not isinstance(match, list):
        raise InputError(f"{where}match: expected a list of condition keys", path, _line(c, "match"),
                         field=where + "match")
    src, src_path = (c, path) if "conditions" in c or matrix is None else (matrix, Path(matrix.path))
    if "conditions" not in src:
        raise InputError(f"{where}conditions: missing (or give the file a `matrix:`)", path, _line(c),
                         field=where + "conditions")
    dflt = src.get("defaults") or {}
    if not isinstance(dflt, dict):
        raise InputError(f"{where}defaults: expected a mapping", src_path, _line(src, "defaults"),
                         field=where + "defaults")
    conds = resolve_conditions(src["conditions"], paper_table, dflt, match, src_path,
                               where if src is c else "", _line)
    arm0 = _arm(_Map({k: v for k, v in defaults.items()}) if defaults else _Map(), _Map(), None, paper_table,
                None, path, where + "cells", _line(c, "cells"))
    comps = []
    for full in conds:
        arm = Arm(arm0.experiment, {**arm0.where, **{k: full[k] for k in match}})
        comps.append(Comparison(arm, None, " ".join(str(full[k]) for k in match) or arm.describe()))
    return comps, tuple(conds)


def _comparisons(c: _Map, test: str, defaults: _Map, axis: str | None, axis_paper: str | None, paper_table: dict,
                 path: Path, where: str) -> list[Comparison]:
    """The comparisons of a claim written as ``compare:`` pairs or as ``a:`` against one or more ``b:``."""
    comps: list[Comparison] = []
    if "compare" in c:
        pairs = _need(c, "compare", path, list, where)
        for j, p in enumerate(pairs):
            extra = sorted(set(p) - {"a", "b", "label"}, key=str) if isinstance(p, _Map) else []
            if extra:
                raise InputError(f"{where}compare[{j}].{extra[0]}: unknown field (expected a, b, label)", path,
                                 _line(p, extra[0]), field=f"{where}compare[{j}].{extra[0]}")
            if not isinstance(p, _Map) or "a" not in p or (test != "interval" and "b" not in p):
                raise InputError(f"{where}compare[{j}]: expected a mapping with `a:`"
                                 + ("" if test == "interval" else " and `b:`"), path,
                                 _line(p) or _line(c, "compare"), field=f"{where}compare[{j}]")
            a = _arm(p["a"], defaults, axis, paper_table, axis_paper, path, f"{where}compare[{j}].a", _line(p, "a"))
            b = None if p.get("b") is None else _arm(p["b"], defaults, axis, paper_table, axis_paper, path,
                                                     f"{where}compare[{j}].b", _line(p, "b"))
            own = {k: v for k, v in a.where.items() if k not in (defaults.get("where") or {})}
            label = ", ".join(f"{k}={v}" for k, v in own.items()) if b is None and own else _label(a, b)
            comps.append(Comparison(a, b, str(p.get("label") or label)))
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
    return comps


def _claim(c: Any, i: int, method: str, paper_table: dict, path: Path, claims_line: int | None,
           matrix: _Map | None = None) -> Claim:
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
    conditions: tuple[dict[str, Any], ...] = ()
    if test == "known_answer":
        comps, conditions = _known_answer(c, defaults, paper_table, path, where, matrix)
    else:
        comps = _comparisons(c, test, defaults, axis, axis_paper, paper_table, path, where)
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


def _tables(data: _Map, path: Path) -> tuple[dict, _Map | None]:
    """A claims file's ``paper:`` table and its ``matrix:`` (package data ``"package.name/file.yaml"`` whose
    ``paper:`` table is merged into the file's and whose ``conditions:`` a known-answer claim may use), read with
    line numbers; the matrix mapping carries its file in ``.path``."""
    from importlib.resources import as_file

    from siftkit.core.known_answer import package_resource

    table = data.get("paper") or {}
    if not isinstance(table, dict):
        raise InputError("paper: expected a mapping", path, _line(data, "paper"), field="paper")
    ref = data.get("matrix")
    if ref is None:
        return table, None
    if not isinstance(ref, str):
        raise InputError("matrix: expected `package.name/file.yaml`", path, _line(data, "matrix"), field="matrix")
    try:
        res = package_resource(ref)
    except InputError as e:
        raise InputError(f"matrix: {e.message}", path, _line(data, "matrix"), field="matrix") from None
    with as_file(res) as p:
        matrix = _read_yaml(Path(p), "a matrix is a mapping with `paper:` and `conditions:`")
        matrix.path = str(p)
    extra = matrix.get("paper") or {}
    if not isinstance(extra, dict):
        raise InputError("paper: expected a mapping", matrix.path, _line(matrix, "paper"), field="paper")
    both = sorted(set(table) & set(extra), key=str)
    if both:
        raise InputError(f"paper.{both[0]}: also in the matrix {ref} (type each number once)", path,
                         _line(table, both[0]), field=f"paper.{both[0]}")
    return {**table, **extra}, matrix


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
        table, matrix = _tables(data, path)
        claims = _need(data, "claims", path, list)
        ids: set[str] = set()
        for i, c in enumerate(claims):
            cl = _claim(c, i, m, table, path, _line(data, "claims"), matrix)
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
    return _plain(_tables(_read_yaml(path), path)[0])


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_plain(v) for v in x]
    return x


def _same(x: Any, y: Any) -> bool:
    if x == y:
        return True
    if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
        return float(x) == float(y)
    return str(x) == str(y)
