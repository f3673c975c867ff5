"""Known-answer matrices (pyserini's "two-click reproductions"): conditions whose ``expected`` values are references
into a paper's table of numbers, resolved in one place.

A matrix is YAML with a ``paper:`` table (the paper's numbers, typed once), optional ``defaults:`` (keys every
condition gets unless it sets them) and ``conditions:``, each a mapping such as
``{model: m, prompt: baseline, file: x.json, expected: thuir/m/baseline}`` or ``{..., known_answer: false, note: ...}``.
A method ships its matrix as package data (e.g. ``siftkit/usefulness/published.yaml``, read by :func:`load_matrix`
through :mod:`importlib.resources`); the benchmarks' claims files point at it (``matrix:``), and both resolve its
conditions with :func:`resolve_conditions`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from siftkit.core.errors import InputError


def resolve_ref(table: dict, ref: str) -> Any:
    """Walk ``table`` along ``"a/b/c"``; keys compare as strings (so ``tau/50`` finds the int key 50).
    Raises KeyError when a step is missing."""
    node: Any = table
    for part in ref.split("/"):
        if not isinstance(node, dict):
            raise KeyError(ref)
        hit = [k for k in node if str(k) == part]
        if not hit:
            raise KeyError(ref)
        node = node[hit[0]]
    return node


def _no_line(obj: Any, key: Any = None) -> int | None:
    return None


def resolve_conditions(conditions: Any, table: dict, defaults: dict | None = None, match: Sequence[str] = (),
                       path: Any = None, where: str = "",
                       line: Callable[[Any, Any], int | None] = _no_line) -> list[dict[str, Any]]:
    """The conditions with ``defaults`` applied and every ``expected`` reference resolved into a plain mapping.

    Args:
        conditions: the list of condition mappings.
        table: the paper table references are resolved in.
        defaults: keys each condition gets unless it sets them.
        match: keys each condition must have (those that select its cell).
        path: the file named in errors.
        where: prefix of the field named in errors (e.g. ``claims[published-outputs].``).
        line: ``line(mapping, key)`` -> 1-based line of a key in the file, where the reader kept them.

    Raises:
        InputError: a condition that is not a mapping, a reference not in ``table``, a checked condition
            (``known_answer`` not false) without ``expected``, or a ``match`` key missing.
    """
    if not isinstance(conditions, list):
        raise InputError(f"{where}conditions: expected a list", path, None, field=f"{where}conditions")
    out = []
    for j, cond in enumerate(conditions):
        name = f"{where}conditions[{j}]"
        if not isinstance(cond, dict):
            raise InputError(f"{name}: expected a mapping", path, line(conditions, None), field=name)
        full = {**(defaults or {}), **cond}
        exp = full.get("expected")
        if isinstance(exp, str):
            try:
                exp = resolve_ref(table, exp)
            except KeyError:
                raise InputError(f"{name}.expected: {exp!r} is not in `paper:`", path, line(cond, "expected"),
                                 field=f"{name}.expected") from None
        if full.get("known_answer", True) is not False and not isinstance(exp, dict):
            raise InputError(f"{name}.expected: missing (a mapping or a `paper:` reference)", path, line(cond, None),
                             field=f"{name}.expected")
        missing = [k for k in match if k not in full]
        if missing:
            raise InputError(f"{name}.{missing[0]}: missing (named in `match:`)", path, line(cond, None),
                             field=f"{name}.{missing[0]}")
        full["expected"] = dict(exp or {})
        out.append(full)
    return out


def package_resource(ref: str):
    """The package data file ``"package.name/file.yaml"`` (an :mod:`importlib.resources` Traversable).

    Raises:
        InputError: the package cannot be imported or holds no such file.
    """
    from importlib.resources import files

    package, _, name = ref.partition("/")
    try:
        res = files(package).joinpath(name) if name else None
    except ModuleNotFoundError:
        res = None
    if res is None or not res.is_file():
        raise InputError(f"package data {ref!r} not found (expected `package.name/file`)", field="matrix")
    return res


def load_matrix(source: str | Path, match: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The resolved conditions (:func:`resolve_conditions`) of a matrix file: package data ``"package.name/file.yaml"``
    (a ``str``) or a file (a :class:`~pathlib.Path`).

    Raises:
        InputError: the file is missing or not a YAML mapping with a ``paper:`` mapping, or a condition is bad.
    """
    import yaml

    if isinstance(source, Path):
        if not source.is_file():
            raise InputError("known-answer matrix not found", source)
        read = source.read_text
    else:
        read = package_resource(source).read_text
    try:
        data = yaml.safe_load(read(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", source) from None
    except yaml.YAMLError as e:
        raise InputError(f"cannot parse YAML: {str(getattr(e, 'problem', e)).strip()}", source) from None
    if not isinstance(data, dict) or not isinstance(data.get("paper") or {}, dict):
        raise InputError("expected a mapping with `paper:` and `conditions:`", source)
    defaults = data.get("defaults")
    if defaults is not None and not isinstance(defaults, dict):
        raise InputError("defaults: expected a mapping", source, field="defaults")
    return resolve_conditions(data.get("conditions"), data.get("paper") or {}, defaults, match, source)
