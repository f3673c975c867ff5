"""Ingestion: BIRD ``dev_metadata.json``, Spider2 BigQuery table JSONs (+ ``DDL.csv``), and live SQLite, DuckDB and
PostgreSQL (SQLAlchemy) databases.

Live databases are introspected and profiled in SQL: one aggregate query per column (``COUNT``, ``COUNT(DISTINCT)``,
``MIN``, ``MAX``) and one ``SELECT DISTINCT ... LIMIT 10`` for the samples; no table is loaded whole.
"""

from __future__ import annotations

import csv
import datetime as _dt
import decimal
import json
import re
from pathlib import Path
from typing import Any, Callable

from siftkit.catalog.model import Catalog, Column, Database, Table
from siftkit.core.errors import InputError

N_SAMPLES = 10


def shared_dir() -> Path | None:
    """``../shared/data/metadata_rag`` (or ``$SIFTKIT_SHARED/data/metadata_rag``) if present."""
    from siftkit.core.assets import shared_data_dir

    d = shared_data_dir()
    p = d / "metadata_rag" if d else None
    return p if p and p.is_dir() else None


def _need_shared(sub: str) -> Path:
    d = shared_dir()
    if d is None or not (d / sub).exists():
        raise InputError(f"{sub} not found: needs ../shared/data/metadata_rag (or $SIFTKIT_SHARED)", field="source")
    return d / sub


def jsonable(v: Any) -> Any:
    """A sample or min/max value as JSON: numbers, text and booleans stay; dates, decimals and others become text."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return None if v != v else v  # NaN → None
    if isinstance(v, (bytes, bytearray, memoryview)):
        return f"<{len(bytes(v))} bytes>"
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (_dt.date, _dt.datetime, _dt.time)):
        return v.isoformat()
    return str(v)


# ----------------------------------------------------------------------------------------------------- BIRD
def load_bird(path: str | Path | None = None) -> Catalog:
    """BIRD mini-dev ``dev_metadata.json`` (11 databases, 75 tables, 798 columns)."""
    from siftkit.core.io import read_json

    path = Path(path) if path else _need_shared("bird_mini_dev/dev_metadata.json")
    data = read_json(path, expect=list)
    dbs = []
    for i, d in enumerate(data):
        try:
            tables = []
            for t in d["tables"]:
                cols = [Column(name=c["name"], type=c.get("type") or "", description=(c.get("description") or None),
                               samples=[jsonable(v) for v in (c.get("sample_values") or [])][:N_SAMPLES],
                               null_fraction=c.get("null_fraction"), unique_count=c.get("unique_count"),
                               min=jsonable(c.get("min_value")), max=jsonable(c.get("max_value")),
                               foreign_keys=[f"{f['reference_table']}.{f['reference_column']}"
                                             for f in c.get("foreign_keys") or []],
                               original_name=c.get("original_name"), ai_description=c.get("ai_description"))
                        for c in t["columns"]]
                tables.append(Table(t["name"], cols, None, t.get("row_count"), list(t.get("primary_key") or []),
                                    t.get("ai_description")))  # BIRD has no human table descriptions
            dbs.append(Database(d["name"], tables, f"bird:{path}"))
        except (KeyError, TypeError) as e:
            raise InputError(f"database {i}: missing or bad field {e}", path, field="tables") from None
    return Catalog(dbs)


# --------------------------------------------------------------------------------------------------- Spider2
_TABLE_DESC = re.compile(r"\n\)\s*(?:PARTITION BY[^\n]*\n\s*)?(?:CLUSTER BY[^\n]*\n\s*)?OPTIONS\(\s*description=\"(.*)\"\s*\)"
                         r";?\s*$", re.S)


def ddl_table_description(ddl: str) -> str | None:
    """The table-level ``OPTIONS(description="...")`` that follows the closing parenthesis of ``CREATE TABLE``."""
    m = _TABLE_DESC.search(ddl.strip())
    if not m:
        return None
    text = m.group(1).replace('\\"', '"').replace("\\n", "\n").strip()
    return text or None


def schema_key(table: str, columns: list[str]) -> tuple:
    """[ours] Yearly/partitioned copies share this key: the name with digit runs replaced, and the column list."""
    return re.sub(r"\d+", "#", table), tuple(columns)


def load_spider2(root: str | Path | None = None) -> Catalog:
    """Spider2-lite BigQuery: one database per dataset group (22), tables ``dataset.table``.

    Duplicate schemas are collapsed [ours]: within a dataset, tables with the same :func:`schema_key` keep only the
    first (sorted by name); within a group, a column whose (name, description) pair was already seen is kept as
    context but marked ``skip_eval`` (neither scored nor an exemplar).
    """
    root = Path(root) if root else _need_shared("spider2_lite_bigquery")
    dbs = []
    for group in sorted(p for p in root.iterdir() if p.is_dir()):
        tables, seen_pairs = [], set()
        for ds in sorted(p for p in group.iterdir() if p.is_dir()):
            dataset = ds.name.split(".", 1)[-1]
            ddl_desc = {}
            if (ds / "DDL.csv").exists():
                with open(ds / "DDL.csv", newline="", encoding="utf-8") as f:
                    for row in csv.DictReader(f):
                        ddl_desc[row["table_name"].strip()] = ddl_table_description(row.get("ddl") or "")
            seen_schemas = set()
            for fp in sorted(ds.glob("*.json")):
                t = json.loads(fp.read_text(encoding="utf-8"))
                desc = t.get("description") or []
                names, types = t["column_names"], t["column_types"]
                if len(desc) != len(names) and len(desc) == len(t.get("nested_column_names") or []):
                    names, types = t["nested_column_names"], t["nested_column_types"]
                tname = t["table_name"].strip()  # some names carry a leading space
                key = schema_key(tname, names)
                if key in seen_schemas:
                    continue
                seen_schemas.add(key)
                rows = t.get("sample_rows") or []
                cols = []
                for j, (n, ty) in enumerate(zip(names, types)):
                    d = desc[j] if j < len(desc) else None
                    vals = []
                    for r in rows:
                        v = jsonable(r.get(n)) if isinstance(r, dict) else None
                        if v is not None and v not in vals and not isinstance(v, (dict, list)):
                            vals.append(v if not isinstance(v, str) else v[:80])
                    c = Column(n, ty, (d or None), vals[:N_SAMPLES])
                    if c.description:
                        pair = (n.lower(), c.description.strip().lower())
                        c.skip_eval = pair in seen_pairs
                        seen_pairs.add(pair)
                    cols.append(c)
                tables.append(Table(f"{dataset}.{tname}", cols, ddl_desc.get(t["table_name"], ddl_desc.get(tname))))
        dbs.append(Database(group.name, tables, f"spider2:{group}"))
    return Catalog(dbs)


# ------------------------------------------------------------------------------------------------ live: common
def qident(name: str) -> str:
    """A SQL identifier in double quotes, embedded quotes doubled (SQLite, DuckDB, PostgreSQL)."""
    return '"' + str(name).replace('"', '""') + '"'


def profile_column(query: Callable[[str], list[tuple]], qtable: str, qcol: str) -> dict[str, Any]:
    """Counts, distinct count, min/max and up to 10 distinct samples, each computed by the database.

    ``query(sql)`` runs one statement and returns its rows; a statement the type does not support (e.g. ``MIN`` of
    a JSON column) leaves those fields ``None``.
    """
    out: dict[str, Any] = {"null_fraction": None, "unique_count": None, "min": None, "max": None, "samples": []}
    try:
        n, nn, nd = query(f"SELECT COUNT(*), COUNT({qcol}), COUNT(DISTINCT {qcol}) FROM {qtable}")[0]
        out["null_fraction"] = (1 - nn / n) if n else None
        out["unique_count"] = int(nd)
    except Exception:  # noqa: BLE001 - an unsupported type: keep what works
        pass
    try:
        lo, hi = query(f"SELECT MIN({qcol}), MAX({qcol}) FROM {qtable}")[0]
        out["min"], out["max"] = jsonable(lo), jsonable(hi)
    except Exception:  # noqa: BLE001
        pass
    for sql in (f"SELECT DISTINCT {qcol} FROM {qtable} WHERE {qcol} IS NOT NULL LIMIT {N_SAMPLES}",
                f"SELECT {qcol} FROM {qtable} WHERE {qcol} IS NOT NULL LIMIT {N_SAMPLES}"):
        try:
            out["samples"] = [jsonable(r[0]) for r in query(sql)]
            break
        except Exception:  # noqa: BLE001
            continue
    return out


def _table_from(query, qtable: str, name: str, columns: list[tuple[str, str, str | None]], description: str | None,
                pk: list[str], fks: dict[str, list[str]]) -> Table:
    cols = []
    for cname, ctype, cdesc in columns:
        p = profile_column(query, qtable, qident(cname))
        cols.append(Column(cname, str(ctype), cdesc or None, p["samples"], p["null_fraction"], p["unique_count"],
                           p["min"], p["max"], fks.get(cname, [])))
    try:
        rows = int(query(f"SELECT COUNT(*) FROM {qtable}")[0][0])
    except Exception:  # noqa: BLE001
        rows = None
    return Table(name, cols, description or None, rows, pk)


# ---------------------------------------------------------------------------------------------------- SQLite
def load_sqlite(path: str | Path, name: str | None = None) -> Catalog:
    """A SQLite file (read-only). SQLite has no comments, so descriptions are empty."""
    import sqlite3

    path = Path(path)
    if not path.is_file():
        raise InputError("no such SQLite file", path)
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        query = lambda sql: con.execute(sql).fetchall()  # noqa: E731
        try:
            names = [r[0] for r in query("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE "
                                         "'sqlite_%' ORDER BY name")]
        except sqlite3.DatabaseError as e:
            raise InputError(f"not a SQLite database: {e}", path) from None
        tables = []
        for t in names:
            info = query(f"PRAGMA table_info({qident(t)})")  # cid, name, type, notnull, default, pk
            fks: dict[str, list[str]] = {}
            for r in query(f"PRAGMA foreign_key_list({qident(t)})"):  # id, seq, table, from, to, ...
                fks.setdefault(r[3], []).append(f"{r[2]}.{r[4]}")
            pk = [r[1] for r in sorted(info, key=lambda r: r[5]) if r[5]]
            tables.append(_table_from(query, qident(t), t, [(r[1], r[2], None) for r in info], None, pk, fks))
    finally:
        con.close()
    return Catalog([Database(name or path.stem, tables, f"sqlite:{path}")])


# ---------------------------------------------------------------------------------------------------- DuckDB
def load_duckdb(path: str | Path, name: str | None = None) -> Catalog:
    """A DuckDB file (read-only); descriptions are the ``COMMENT ON`` comments. Tables outside ``main`` are named
    ``schema.table``."""
    import duckdb

    path = Path(path)
    if not path.is_file():
        raise InputError("no such DuckDB file", path)
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as e:
        raise InputError(f"not a DuckDB database: {e}", path) from None
    try:
        query = lambda sql: con.execute(sql).fetchall()  # noqa: E731
        tables = []
        for schema, t, comment in query("SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE NOT "
                                        "internal AND database_name = current_database() ORDER BY 1, 2"):
            cols = query(f"SELECT column_name, data_type, comment FROM duckdb_columns() WHERE database_name = "
                         f"current_database() AND schema_name = {qliteral(schema)} AND table_name = {qliteral(t)} "
                         "ORDER BY column_index")
            pk, fks = [], {}
            for ctype, cnames, ref, rcols in query(
                    "SELECT constraint_type, constraint_column_names, referenced_table, referenced_column_names "
                    f"FROM duckdb_constraints() WHERE schema_name = {qliteral(schema)} AND table_name = "
                    f"{qliteral(t)}"):
                if ctype == "PRIMARY KEY":
                    pk = list(cnames)
                elif ctype == "FOREIGN KEY" and ref:
                    for c, rc in zip(cnames, rcols or cnames):
                        fks.setdefault(c, []).append(f"{ref}.{rc}")
            qtable = f"{qident(schema)}.{qident(t)}"
            tables.append(_table_from(query, qtable, t if schema == "main" else f"{schema}.{t}", cols, comment, pk,
                                      fks))
    finally:
        con.close()
    return Catalog([Database(name or path.stem, tables, f"duckdb:{path}")])


def qliteral(text: str) -> str:
    """A SQL string literal, embedded single quotes doubled (DuckDB and SQLite; PostgreSQL uses psycopg.sql)."""
    return "'" + str(text).replace("'", "''") + "'"


# ------------------------------------------------------------------------------------------------ SQLAlchemy
def load_sqlalchemy(url: str, schema: str | None = None, name: str | None = None) -> Catalog:
    """Any SQLAlchemy URL (PostgreSQL: ``postgresql+psycopg://user@host/db``); comments are descriptions."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as e:
        raise InputError(f"bad database URL: {e}", field="source") from None
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as con:
            insp = sa.inspect(con)
            prep = engine.dialect.identifier_preparer
            query = lambda sql: [tuple(r) for r in con.execute(sa.text(sql)).fetchall()]  # noqa: E731
            tables = []
            for t in sorted(insp.get_table_names(schema=schema)):
                cols = [(c["name"], str(c["type"]), c.get("comment")) for c in insp.get_columns(t, schema=schema)]
                pk = list(insp.get_pk_constraint(t, schema=schema).get("constrained_columns") or [])
                fks: dict[str, list[str]] = {}
                for fk in insp.get_foreign_keys(t, schema=schema):
                    for c, rc in zip(fk["constrained_columns"], fk["referred_columns"]):
                        fks.setdefault(c, []).append(f"{fk['referred_table']}.{rc}")
                try:
                    comment = insp.get_table_comment(t, schema=schema).get("text")
                except NotImplementedError:
                    comment = None
                qtable = (prep.quote_schema(schema) + "." if schema else "") + prep.quote(t)
                tables.append(_table_from(query, qtable, t, cols, comment, pk, fks))
    except sa.exc.OperationalError as e:
        raise InputError(f"cannot connect: {str(e).splitlines()[0]}", field="source") from None
    finally:
        engine.dispose()
    return Catalog([Database(name or engine.url.database or "db", tables, f"sqlalchemy:{engine.url!r}")])


# ------------------------------------------------------------------------------------------------- dispatcher
def load_source(source: str) -> Catalog:
    """``bird``, ``spider2``, a SQLAlchemy URL (``scheme://...``), or a file: ``.duckdb``, ``.sqlite``/``.db``,
    a catalog ``.json`` written by :meth:`Catalog.save`, or a BIRD-format ``dev_metadata.json``."""
    if source == "bird":
        return load_bird()
    if source == "spider2":
        return load_spider2()
    if "://" in source:
        return load_sqlalchemy(source)
    p = Path(source)
    if p.is_dir() and any(p.glob("*/*/*.json")):
        return load_spider2(p)
    if not p.is_file():
        raise InputError("no such file (expected bird, spider2, a database URL, a .duckdb/.sqlite/.db or a "
                         ".json file)", source)
    if p.suffix == ".duckdb":
        return load_duckdb(p)
    if p.suffix in (".sqlite", ".sqlite3", ".db"):
        return load_sqlite(p)
    if p.suffix == ".json":
        from siftkit.core.io import read_json

        data = read_json(p)
        return load_bird(p) if isinstance(data, list) else Catalog.from_dict(data, p)
    raise InputError(f"unknown file type {p.suffix!r} (.duckdb, .sqlite, .db or .json)", source)


def merge(catalogs: list[Catalog]) -> Catalog:
    """One catalog holding the databases of all; a database name seen twice is an InputError."""
    dbs, seen = [], set()
    for c in catalogs:
        for d in c.databases:
            if d.name in seen:
                raise InputError(f"database {d.name!r} appears twice", field="source")
            seen.add(d.name)
            dbs.append(d)
    return Catalog(dbs)
