import json
import sqlite3

import pytest

from siftkit.catalog.ingest import (ddl_table_description, load_bird, load_duckdb, load_source, load_spider2,
                                    load_sqlite, merge, profile_column, schema_key)
from siftkit.catalog.model import Catalog, expand_name, first_line, is_trivial, name_tokens
from siftkit.core.errors import InputError


def test_name_tokens_and_trivial_rule():
    assert name_tokens("CustomerID") == ["customer", "id"]
    assert name_tokens("order_dt") == ["order", "dt"]
    assert name_tokens("HTTPStatusCode") == ["http", "status", "code"]
    assert expand_name("cust_dt") == "customer date"
    assert is_trivial("Customer ID", "CustomerID")
    assert is_trivial("customer identifier", "cust_id")  # the expanded name
    assert is_trivial("client segment", "Segment", original_name="client segment")
    assert is_trivial("", "x") and is_trivial(None, "x")
    assert not is_trivial("identification of the customer", "CustomerID")
    assert first_line("Customer IDs\nStats: 0% null") == "Customer IDs"


def test_ddl_table_description():
    ddl = ('CREATE TABLE `p.d.t`\n(\n  a INT64 OPTIONS(description="col a"),\n  b STRING\n)\n'
           'PARTITION BY DATE(x)\nOPTIONS(\n  description="Table about \\"things\\""\n);')
    assert ddl_table_description(ddl) == 'Table about "things"'
    assert ddl_table_description('CREATE TABLE t\n(\n  a INT64 OPTIONS(description="only a column")\n);') is None
    assert schema_key("accident_2015", ["a"]) == schema_key("accident_2016", ["a"])
    assert schema_key("accident_2015", ["a"]) != schema_key("accident_2015", ["a", "b"])


def _sqlite(path):
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE "we""ird" (id INTEGER PRIMARY KEY, name TEXT, score REAL);
        INSERT INTO "we""ird" VALUES (1, 'a', 1.5), (2, 'b', NULL), (3, 'b', 4.0), (4, NULL, 2.0);
        CREATE TABLE child (cid INTEGER, parent INTEGER REFERENCES "we""ird"(id));
        INSERT INTO child VALUES (1, 1);
    """)
    con.commit()
    con.close()


def test_sqlite_introspection_and_profile(tmp_path):
    p = tmp_path / "x.sqlite"
    _sqlite(p)
    cat = load_sqlite(p)
    assert [d.name for d in cat.databases] == ["x"]
    tables = {t.name: t for t in cat.databases[0].tables}
    assert set(tables) == {'we"ird', "child"}
    w = tables['we"ird']
    assert w.row_count == 4 and w.primary_key == ["id"]
    cols = {c.name: c for c in w.columns}
    assert cols["name"].null_fraction == pytest.approx(0.25)
    assert cols["name"].unique_count == 2 and sorted(cols["name"].samples) == ["a", "b"]
    assert (cols["score"].min, cols["score"].max) == (1.5, 4.0)
    assert tables["child"].columns[1].foreign_keys == ['we"ird.id']


def test_profile_runs_aggregates_in_sql_only():
    seen = []

    def query(sql):
        seen.append(sql)
        return [(10, 8, 3)] if "COUNT(*)" in sql else [(1, 9)] if "MIN" in sql else [(1,), (2,), (9,)]

    p = profile_column(query, '"t"', '"c"')
    assert p == {"null_fraction": pytest.approx(0.2), "unique_count": 3, "min": 1, "max": 9, "samples": [1, 2, 9]}
    assert all("LIMIT" in s or "COUNT" in s or "MIN" in s for s in seen)  # no unbounded SELECT


def test_duckdb_reads_comments(tmp_path):
    from siftkit.catalog.demo import load_demo

    cat = load_demo(tmp_path)
    assert [d.name for d in cat.databases] == ["shop", "clinic", "library"]
    shop = {t.name: t for t in cat.databases[0].tables}
    assert shop["orders"].description == "Purchases placed by customers, one row per order."
    cust = {c.name: c for c in shop["orders"].columns}["customer_id"]
    assert cust.description == "Identifier of the customer who placed the order."
    assert cust.foreign_keys == ["customers.customer_id"] and cust.unique_count == 4
    assert len(cat.assets()) == 36
    with pytest.raises(InputError):
        merge([cat, cat])


def test_catalog_json_roundtrip_and_bad_sources(tmp_path):
    from siftkit.catalog.demo import load_demo

    cat = load_demo(tmp_path)
    cat.save(tmp_path / "c.json")
    again = load_source(str(tmp_path / "c.json"))
    assert again.to_dict() == json.loads(json.dumps(cat.to_dict(), default=str))
    with pytest.raises(InputError):
        load_source(str(tmp_path / "missing.duckdb"))
    (tmp_path / "bad.json").write_text('{"databases": [{"tables": []}]}')
    with pytest.raises(InputError, match="databases"):
        Catalog.load(tmp_path / "bad.json")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(InputError, match="unknown file type"):
        load_source(str(tmp_path / "x.txt"))


@pytest.mark.needs_shared
def test_bird_counts(shared_data):
    cat = load_bird(shared_data / "metadata_rag/bird_mini_dev/dev_metadata.json")
    cols = [a for a in cat.assets() if a.kind == "column"]
    assert (len(cat.databases), sum(len(d.tables) for d in cat.databases), len(cols)) == (11, 75, 798)
    described = [a for a in cols if a.description]
    assert len(described) == 652  # SOURCE.md
    trivial = [a for a in described if is_trivial(a.description, a.name, a.original_name)]
    assert len(trivial) == 176  # spec pitfall 2: "up to 176"
    assert all(a.ai_description for a in cols)


@pytest.mark.needs_shared
def test_spider2_dedup_and_ddl(shared_data):
    cat = load_spider2(shared_data / "metadata_rag/spider2_lite_bigquery")
    assert len(cat.databases) == 22
    nhtsa = next(d for d in cat.databases if d.name == "nhtsa_traffic_fatalities")
    names = [t.name for t in nhtsa.tables]
    assert names == [n.strip() for n in names]
    files = list((shared_data / "metadata_rag/spider2_lite_bigquery/nhtsa_traffic_fatalities").glob("*/*.json"))
    assert len(names) < len(files) / 2  # yearly copies with the same columns collapsed
    assert len({(c.name, c.description) for t in nhtsa.tables for c in t.columns if c.description and
                not c.skip_eval}) == sum(1 for t in nhtsa.tables for c in t.columns if c.description and
                                         not c.skip_eval)
    austin = next(d for d in cat.databases if d.name == "austin")
    st = next(t for t in austin.tables if t.name == "austin_bikeshare.bikeshare_stations")
    assert st.description == "Austin Bikeshare Stations table"
