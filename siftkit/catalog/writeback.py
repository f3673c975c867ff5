"""Write-back: ``COMMENT ON`` for DuckDB and PostgreSQL, a dbt ``schema.yml``, JSON.

``COMMENT ON`` takes no bind parameters, so the text is composed as a literal: PostgreSQL through psycopg's SQL
composition (``psycopg.sql.Literal``, ``psycopg.sql.Identifier``), DuckDB with the standard quoting of
:func:`siftkit.catalog.ingest.qliteral` / :func:`~siftkit.catalog.ingest.qident` (quotes doubled; DuckDB string
literals have no backslash escapes). A description such as ``'); DROP TABLE t; --`` is stored verbatim.

Each writer returns the previous comments ``[{table, column, previous}]`` so a caller can revert [ours].
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from siftkit.catalog.ingest import qident, qliteral
from siftkit.core.errors import InputError


def _items(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str | None, str]]:
    out = []
    for i, r in enumerate(rows, start=1):
        if not isinstance(r.get("table"), str) or not isinstance(r.get("text"), str):
            raise InputError('each description needs "table" and "text" strings', line=i, field="table")
        col = r.get("column")
        out.append((r["table"], col if isinstance(col, str) and col else None, r["text"]))
    return out


def _split_table(table: str) -> list[str]:
    """``schema.table`` → both parts; a plain name → one part [ours: a dotted name means a schema]."""
    return table.split(".", 1) if "." in table else [table]


def comment_duckdb(path: str | Path, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``COMMENT ON TABLE|COLUMN ... IS '<text>'`` in the DuckDB file ``path``, in one transaction."""
    import duckdb

    items = _items(rows)
    con = duckdb.connect(str(path))
    previous = []
    try:
        con.execute("BEGIN")
        for table, col, text in items:
            parts = _split_table(table)
            schema, name = (parts[0], parts[1]) if len(parts) == 2 else ("main", parts[0])
            qt = ".".join(qident(p) for p in parts)
            if col is None:
                got = con.execute("SELECT comment FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
                                  [schema, name]).fetchall()
                con.execute(f"COMMENT ON TABLE {qt} IS {qliteral(text)}")
            else:
                got = con.execute("SELECT comment FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
                                  "AND column_name = ?", [schema, name, col]).fetchall()
                con.execute(f"COMMENT ON COLUMN {qt}.{qident(col)} IS {qliteral(text)}")
            previous.append({"table": table, "column": col, "previous": got[0][0] if got else None})
        con.execute("COMMIT")
    except duckdb.Error as e:
        con.execute("ROLLBACK")
        raise InputError(f"COMMENT ON failed: {str(e).splitlines()[0]}", path) from None
    finally:
        con.close()
    return previous


def comment_postgres(url: str, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``COMMENT ON`` through SQLAlchemy's psycopg connection, composed with :mod:`psycopg.sql`; one transaction."""
    import sqlalchemy as sa
    from psycopg import sql

    items = _items(rows)
    try:
        engine = sa.create_engine(url)
    except Exception as e:  # a malformed URL or an unknown dialect/driver
        raise InputError(f"bad database URL: {str(e).splitlines()[0][:200]}", field="--to") from None
    previous = []
    try:
        try:
            raw = engine.raw_connection()
        except Exception as e:  # refused, unknown host, bad password (the driver's error, raw): nothing written
            raise InputError(f"cannot connect: {str(e.orig if getattr(e, 'orig', None) else e).splitlines()[0][:200]}",
                             field="--to") from None
        try:
            cur = raw.driver_connection.cursor()
            for table, col, text in items:
                qt = sql.SQL(".").join(sql.Identifier(p) for p in _split_table(table))
                regclass = ".".join(_pg_ident(p) for p in _split_table(table))
                if col is None:
                    cur.execute("SELECT obj_description(%s::regclass, 'pg_class')", [regclass])
                    stmt = sql.SQL("COMMENT ON TABLE {} IS {}").format(qt, sql.Literal(text))
                else:
                    cur.execute("SELECT col_description(a.attrelid, a.attnum) FROM pg_attribute a WHERE "
                                "a.attrelid = %s::regclass AND a.attname = %s", [regclass, col])
                    stmt = sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(qt, sql.Identifier(col), sql.Literal(text))
                got = cur.fetchall()
                cur.execute(stmt)
                previous.append({"table": table, "column": col, "previous": got[0][0] if got else None})
            raw.commit()
        except Exception as e:
            raw.rollback()
            raise InputError(f"COMMENT ON failed: {str(e).splitlines()[0]}", field="--to") from None
        finally:
            raw.close()
    finally:
        engine.dispose()
    return previous


def _pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def dbt_schema(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A dbt ``schema.yml`` document: ``version: 2`` and one model per table with its columns' descriptions."""
    models: dict[str, dict[str, Any]] = {}
    for table, col, text in _items(rows):
        m = models.setdefault(table, {"name": table, "columns": []})
        if col is None:
            m["description"] = text
        else:
            m["columns"].append({"name": col, "description": text})
    return {"version": 2, "models": [{k: m[k] for k in ("name", "description", "columns") if k in m}
                                     for m in models.values()]}


def write_dbt(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    import yaml

    from siftkit.core.io import atomic_write_text

    return atomic_write_text(path, yaml.safe_dump(dbt_schema(rows), sort_keys=False, allow_unicode=True))


def write_json(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    from siftkit.core.io import atomic_write_text

    items = [{"table": t, "column": c, "description": d} for t, c, d in _items(rows)]
    return atomic_write_text(path, json.dumps(items, indent=1, ensure_ascii=False))


def write(target: str, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dispatch on ``target``: a ``postgresql...://`` URL, a ``.duckdb`` file, a ``.yml``/``.yaml`` (dbt) or a
    ``.json`` file."""
    if target.startswith("postgresql"):
        return comment_postgres(target, rows)
    p = Path(target)
    if p.suffix == ".duckdb":
        if not p.is_file():
            raise InputError("no such DuckDB file", p)
        return comment_duckdb(p, rows)
    if p.suffix in (".yml", ".yaml"):
        write_dbt(p, rows)
        return []
    if p.suffix == ".json":
        write_json(p, rows)
        return []
    raise InputError("--to must be a postgresql:// URL, a .duckdb file, a dbt .yml or a .json file", field="--to")
