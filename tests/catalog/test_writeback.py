import json

import pytest
import yaml

from siftkit.catalog.writeback import comment_duckdb, comment_postgres, dbt_schema, write
from siftkit.core.errors import InputError

EVIL = "'); DROP TABLE t; --"
TRICKY = [EVIL, 'quote " and \\ backslash \\n', "O'Brien's \"id\"; $$ $x$ E'\\x41'"]


def _rows():
    return [{"table": "t", "column": None, "text": EVIL}, {"table": "t", "column": "a b", "text": TRICKY[1]},
            {"table": "t", "column": "c", "text": TRICKY[2]}]


def test_duckdb_comment_reads_back_verbatim(tmp_path):
    import duckdb

    from siftkit.catalog.ingest import load_duckdb

    p = tmp_path / "w.duckdb"
    con = duckdb.connect(str(p))
    con.execute('CREATE TABLE t ("a b" INTEGER, c VARCHAR); INSERT INTO t VALUES (1, \'x\')')
    con.execute("COMMENT ON COLUMN t.c IS 'old'")
    con.close()
    prev = comment_duckdb(p, _rows())
    assert prev == [{"table": "t", "column": None, "previous": None}, {"table": "t", "column": "a b", "previous": None},
                    {"table": "t", "column": "c", "previous": "old"}]
    t = load_duckdb(p).databases[0].tables[0]
    assert t.description == EVIL and t.row_count == 1  # the table is still there
    assert [c.description for c in t.columns] == TRICKY[1:]
    comment_duckdb(p, [{"table": "t", "column": "c", "text": "old"}])  # revert from `previous`
    assert load_duckdb(p).databases[0].tables[0].columns[1].description == "old"
    with pytest.raises(InputError, match="COMMENT ON failed"):
        comment_duckdb(p, [{"table": "missing", "column": None, "text": "x"}])


def test_dbt_and_json(tmp_path):
    doc = dbt_schema(_rows())
    assert doc == {"version": 2, "models": [{"name": "t", "description": EVIL, "columns": [
        {"name": "a b", "description": TRICKY[1]}, {"name": "c", "description": TRICKY[2]}]}]}
    write(str(tmp_path / "schema.yml"), _rows())
    assert yaml.safe_load((tmp_path / "schema.yml").read_text()) == doc
    write(str(tmp_path / "d.json"), _rows())
    assert json.loads((tmp_path / "d.json").read_text())[0] == {"table": "t", "column": None, "description": EVIL}
    with pytest.raises(InputError):
        write(str(tmp_path / "x.csv"), _rows())
    with pytest.raises(InputError):
        write(str(tmp_path / "d.json"), [{"table": "t"}])


@pytest.fixture(scope="module")
def postgres():
    from siftkit.catalog.pgserver import TempPostgres, why_unavailable

    why = why_unavailable()
    if why:
        pytest.skip(f"PostgreSQL server not available: {why}")
    with TempPostgres() as url:
        yield url


@pytest.mark.slow
def test_postgres_comment_reads_back_verbatim(postgres):
    import sqlalchemy as sa

    from siftkit.catalog.ingest import load_sqlalchemy

    engine = sa.create_engine(postgres)
    with engine.begin() as con:
        con.execute(sa.text('CREATE TABLE t ("a b" INTEGER, c TEXT, j JSON)'))
        con.execute(sa.text("INSERT INTO t VALUES (1, 'x', '{}'), (2, NULL, '[]')"))
    engine.dispose()
    prev = comment_postgres(postgres, _rows())
    assert [p["previous"] for p in prev] == [None, None, None]
    cat = load_sqlalchemy(postgres)
    t = next(x for x in cat.databases[0].tables if x.name == "t")
    assert t.description == EVIL and t.row_count == 2
    cols = {c.name: c for c in t.columns}
    assert cols["a b"].description == TRICKY[1] and cols["c"].description == TRICKY[2]
    assert cols["c"].null_fraction == 0.5 and cols["c"].samples == ["x"]
    assert cols["j"].min is None and len(cols["j"].samples) == 2  # JSON has no MIN/DISTINCT: profiled in part
    with pytest.raises(InputError):
        comment_postgres(postgres, [{"table": "missing", "column": None, "text": "x"}])
