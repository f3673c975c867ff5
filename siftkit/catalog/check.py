"""Input checks of the catalog commands: a catalog ``.json`` (the form :meth:`Catalog.save` writes) and a
descriptions JSONL (``describe``'s output, read by ``eval`` and ``write``).

[ours] :meth:`siftkit.catalog.model.Catalog.from_dict` builds the dataclasses with whatever types the file holds
(a list where a description goes, a string where a fraction goes, a column twice) and the commands then fail deep
inside, or count the column twice. The CLI runs :func:`check_catalog_dict` first, so such a file is one
``siftkit: FILE: databases[0].tables[1].columns[2].null_fraction: ...`` line and exit 2. (The check lives here, not
in ``model.py``, because ``model.py`` is a declared source of the metadata_rag benchmark cells.)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from siftkit.core.errors import InputError
from siftkit.core.validate import check_unique, cut

_NAME, _STR, _OPT_STR, _LIST, _STR_LIST = "name", "string", "string or null", "array", "array of strings"
_ANY = "any"
# field -> (what it must be, required); min/max/samples hold database values of any JSON type
COLUMN = {"name": (_NAME, True), "type": (_STR, False), "description": (_OPT_STR, False), "samples": (_LIST, False),
          "null_fraction": ("fraction", False), "unique_count": ("count", False), "min": (_ANY, False),
          "max": (_ANY, False), "foreign_keys": (_STR_LIST, False), "original_name": (_OPT_STR, False),
          "ai_description": (_OPT_STR, False), "skip_eval": ("boolean", False)}
TABLE = {"name": (_NAME, True), "columns": ("objects", False), "description": (_OPT_STR, False),
         "row_count": ("count", False), "primary_key": (_STR_LIST, False), "ai_description": (_OPT_STR, False)}
DATABASE = {"name": (_NAME, True), "tables": ("objects", False), "source": (_STR, False)}


def _ok(value: Any, want: str) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if want == "array or null":
        return value is None or isinstance(value, list)
    if want == "foreign keys":  # BIRD's [{reference_table, reference_column}]
        return value is None or (isinstance(value, list) and all(
            isinstance(f, dict) and isinstance(f.get("reference_table"), str)
            and isinstance(f.get("reference_column"), str) for f in value))
    return {
        _NAME: lambda: isinstance(value, str) and bool(value.strip()),
        _STR: lambda: isinstance(value, str),
        _OPT_STR: lambda: value is None or isinstance(value, str),
        _LIST: lambda: isinstance(value, list),
        "objects": lambda: isinstance(value, list),
        _STR_LIST: lambda: isinstance(value, list) and all(isinstance(x, str) for x in value),
        "fraction": lambda: value is None or (number and math.isfinite(value) and 0 <= value <= 1),
        "count": lambda: value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0),
        "boolean": lambda: isinstance(value, bool),
        _ANY: lambda: True,
    }[want]()


_WANT = {"foreign keys": "an array of {reference_table, reference_column} strings or null",
         _NAME: "a non-empty string", "objects": "an array of objects", "fraction": "a number in [0, 1] or null",
         "count": "an integer >= 0 or null", "boolean": "true or false"}


def _record(obj: Any, spec: dict, where: str, path: Path, strict: bool = True) -> dict:
    """``obj`` checked against ``spec``; ``strict``: a key not in ``spec`` is an error too (ours; BIRD's has keys
    of its own)."""
    if not isinstance(obj, dict):
        raise InputError(f"{where}: must be an object, got {type(obj).__name__}", path, field=where)
    for key in obj if strict else ():
        if key not in spec:
            raise InputError(f"{where}: unknown field {cut(key, 40)} (known: {', '.join(spec)})", path,
                             field=f"{where}.{key}")
    for key, (want, required) in spec.items():
        if key not in obj:
            if required:
                raise InputError(f'{where}.{key}: missing', path, field=f"{where}.{key}")
            continue
        if not _ok(obj[key], want):
            raise InputError(f"{where}.{key}: must be {_WANT.get(want, want)}, got {cut(obj[key], 40)}", path,
                             field=f"{where}.{key}")
    return obj


def check_catalog_dict(data: Any, path: str | Path) -> None:
    """Raise :class:`InputError` naming the first field of a catalog document that is missing, of the wrong type,
    out of range or unknown, or the first database / table / column name given twice."""
    path = Path(path)
    if not isinstance(data, dict) or not isinstance(data.get("databases"), list):
        raise InputError('expected an object with a "databases" list', path, field="databases")
    dbs = data["databases"]
    if not dbs:
        raise InputError("the catalog holds no database", path, field="databases")
    for i, d in enumerate(dbs):
        _record(d, DATABASE, f"databases[{i}]", path)
        for j, t in enumerate(d.get("tables", [])):
            tw = f"databases[{i}].tables[{j}]"
            _record(t, TABLE, tw, path)
            for k, c in enumerate(t.get("columns", [])):
                _record(c, COLUMN, f"{tw}.columns[{k}]", path)
            check_unique([c["name"] for c in t.get("columns", [])], tw, path, "column")
        check_unique([t["name"] for t in d.get("tables", [])], f"databases[{i}]", path, "table")
    check_unique([d["name"] for d in dbs], "databases", path, "database")


# BIRD mini-dev ``dev_metadata.json`` (a list of databases): the fields siftkit.catalog.ingest.load_bird reads;
# other keys are the release's own and are left alone
BIRD_COLUMN = {"name": (_NAME, True), "type": (_OPT_STR, False), "description": (_OPT_STR, False),
               "sample_values": ("array or null", False), "null_fraction": ("fraction", False),
               "unique_count": ("count", False), "foreign_keys": ("foreign keys", False),
               "original_name": (_OPT_STR, False), "ai_description": (_OPT_STR, False)}
BIRD_TABLE = {"name": (_NAME, True), "columns": ("objects", True), "row_count": ("count", False),
              "primary_key": ("array or null", False), "ai_description": (_OPT_STR, False)}
BIRD_DATABASE = {"name": (_NAME, True), "tables": ("objects", True)}


def check_bird_list(data: list, path: str | Path) -> None:
    """The BIRD form (a list of databases), field by field as :func:`check_catalog_dict` does for ours."""
    path = Path(path)
    if not data:
        raise InputError("the catalog holds no database", path, field="[0]")
    for i, d in enumerate(data):
        _record(d, BIRD_DATABASE, f"[{i}]", path, strict=False)
        for j, t in enumerate(d["tables"]):
            _record(t, BIRD_TABLE, f"[{i}].tables[{j}]", path, strict=False)
            for k, c in enumerate(t["columns"]):
                _record(c, BIRD_COLUMN, f"[{i}].tables[{j}].columns[{k}]", path, strict=False)
            check_unique([c["name"] for c in t["columns"]], f"[{i}].tables[{j}]", path, "column")
        check_unique([t["name"] for t in d["tables"]], f"[{i}]", path, "table")
    check_unique([d["name"] for d in data], "databases", path, "database")


def check_catalog_source(source: str) -> None:
    """For a source that is a catalog ``.json``: ours (an object, :func:`check_catalog_dict`) or BIRD's list form
    (:func:`check_bird_list`). Other sources (database URLs, .duckdb, bird, spider2) are read by
    :func:`siftkit.catalog.ingest.load_source`, which checks them."""
    p = Path(source)
    if p.suffix != ".json" or not p.is_file():
        return
    from siftkit.core.io import read_json

    data = read_json(p)
    if isinstance(data, list):
        check_bird_list(data, p)
    else:
        check_catalog_dict(data, p)


DESCRIPTION_SCHEMA = {"system": ((str,), True), "id": ((str,), True), "db": ((str,), True), "table": ((str,), True),
                      "column": ((str,), False), "kind": ((str,), True), "text": ((str,), True)}


def read_descriptions(path: str | Path, catalog=None) -> list[dict]:
    """The rows of a descriptions JSONL, each checked: the fields' types, ``kind`` table or column (a column row
    names its column, a table row none), ``id`` = ``db.table[.column]`` (or empty, as in ``write --previous``
    files), no asset twice for one system; with ``catalog``
    also that each id is an asset of it, of the same kind. Raises :class:`InputError` naming the line."""
    from siftkit.core.io import iter_jsonl
    from siftkit.core.validate import check_choice

    by_id = {a.id: a for a in catalog.assets()} if catalog is not None else None
    rows, seen = [], {}
    for line, r in iter_jsonl(path, DESCRIPTION_SCHEMA):
        check_choice(r["kind"], ("table", "column"), "kind", path, line)
        col = r.get("column")
        if (r["kind"] == "column") != bool(col):
            raise InputError(f'field "column" must be {"a column name" if r["kind"] == "column" else "null"} for a '
                             f"{r['kind']} row, got {cut(col, 40)}", path, line, "column")
        want = f"{r['db']}.{r['table']}" + (f".{col}" if col else "")
        if r["id"] and r["id"] != want:  # "" in the --previous file of `write` (no id: pass it back to revert)
            raise InputError(f'field "id" {cut(r["id"], 60)} does not match db, table and column ({cut(want, 60)})',
                             path, line, "id")
        key = (r["system"], r["db"], r["table"], col or None)
        if key in seen:
            raise InputError(f"system {cut(r['system'], 40)} describes {cut(want, 60)} again (first on line "
                             f"{seen[key]})", path, line, "id")
        seen[key] = line
        if by_id is not None:
            a = by_id.get(r["id"])
            if a is None:
                raise InputError(f'field "id": {cut(r["id"], 60)} is not an asset of the catalog', path, line, "id")
            if a.kind != r["kind"]:
                raise InputError(f'field "kind": {r["kind"]} but the catalog\'s {cut(r["id"], 60)} is a {a.kind}',
                                 path, line, "kind")
        rows.append(r)
    if not rows:
        raise InputError("no descriptions", path)
    return rows
