"""A hostile user against ``siftkit catalog``: malformed catalog JSON and descriptions files, mistyped model names
and endpoints, an unreachable database (issue 24). Each case runs through ``main()`` in the contract driver (model
loads and run directories stopped) and must be one ``siftkit:`` line naming the problem, exit 2, its folder
(pre-existing output included) unchanged."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from siftkit.core.errors import InputError, RequestsFailed
from tests.core.test_contract import Case, run_all

CATALOG = {"databases": [{"name": "shop", "source": "", "tables": [
    {"name": "orders", "description": "One row per order placed in the shop.", "row_count": 3, "primary_key": ["id"],
     "columns": [{"name": "id", "type": "INTEGER", "description": "Unique identifier of the order.",
                  "samples": [1, 2, 3], "null_fraction": 0.0, "unique_count": 3},
                 {"name": "total_amt", "type": "DOUBLE", "description": "Amount paid for the order in euros.",
                  "samples": [9.5], "null_fraction": 0.25}]}]}]}


def desc(**over):
    row = {"system": "echo", "id": "shop.orders.id", "db": "shop", "table": "orders", "column": "id",
           "kind": "column", "exemplars": [], "prompt_chars": 0, "text": "Order identifier"}
    return {**row, **over}


GOOD = [desc(), desc(id="shop.orders", column=None, kind="table", text="Orders")]


def catalog_with(edit) -> dict:
    c = copy.deepcopy(CATALOG)
    edit(c)
    return c


def col(c):
    return c["databases"][0]["tables"][0]["columns"][0]


BAD_CATALOGS = {  # file name -> (document, text the line must contain)
    "desc_list.json": (catalog_with(lambda c: col(c).update(description=["a"])),
                       "columns[0].description: must be string or null"),
    "nf_string.json": (catalog_with(lambda c: col(c).update(null_fraction="abc")),
                       "columns[0].null_fraction: must be a number in [0, 1]"),
    "nf_big.json": (catalog_with(lambda c: col(c).update(null_fraction=3)), "null_fraction"),
    "count_neg.json": (catalog_with(lambda c: col(c).update(unique_count=-1)), "unique_count: must be an integer"),
    "db_int.json": (catalog_with(lambda c: c["databases"][0].update(name=5)), "databases[0].name: must be a non-empty"),
    "dup_col.json": (catalog_with(lambda c: c["databases"][0]["tables"][0]["columns"].append(col(c))),
                     "column 'id' appears twice"),
    "cols_null.json": (catalog_with(lambda c: c["databases"][0]["tables"][0].update(columns=None)),
                       "columns: must be an array of objects"),
    "unknown_key.json": (catalog_with(lambda c: col(c).update(x=1)), "unknown field 'x'"),
    "no_name.json": (catalog_with(lambda c: col(c).pop("name")), "columns[0].name: missing"),
    "no_db.json": ({"databases": []}, "the catalog holds no database"),
}
BAD_DESCRIPTIONS = {  # file name -> (rows, text)
    "kind.jsonl": ([desc(kind="banana")], 'kind.jsonl:1: field "kind": \'banana\' is not one of table, column'),
    "dup.jsonl": ([desc(), desc(text="again")], "dup.jsonl:2: system 'echo' describes 'shop.orders.id' again"),
    "column_int.jsonl": ([desc(column=7)], 'field "column" must be string'),
    "db_mismatch.jsonl": ([desc(db="other")], 'field "id" \'shop.orders.id\' does not match db, table and column'),
    "kind_mismatch.jsonl": ([desc(column=None)], 'field "column" must be a column name for a column row'),
}


def write_files(w: Path) -> None:
    w.mkdir(parents=True)
    (w / "cat.json").write_text(json.dumps(CATALOG))
    (w / "good.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GOOD))
    (w / "out.json").write_text('{"keep": true}\n')
    (w / "out").mkdir()
    (w / "out" / "keep.txt").write_text("keep\n")
    for name, (doc, _) in BAD_CATALOGS.items():
        (w / name).write_text(json.dumps(doc))
    for name, (rows, _) in BAD_DESCRIPTIONS.items():
        (w / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def cases(root: Path) -> list[Case]:
    specs = []
    for name, (_, needle) in BAD_CATALOGS.items():
        specs.append((f"ingest {name}", ["catalog", "ingest", "{w}/" + name, "--output", "{w}/out.json"], needle))
    for name, (_, needle) in BAD_DESCRIPTIONS.items():
        specs.append((f"eval {name}", ["catalog", "eval", "--catalog", "{w}/cat.json", "--descriptions",
                                       "{w}/" + name, "--output", "{w}/out"], needle))
    specs += [
        ("eval: an id the catalog lacks", ["catalog", "eval", "--catalog", "{w}/cat.json", "--descriptions",
                                           "{w}/unknown_id.jsonl", "--output", "{w}/out"],
         "unknown_id.jsonl:1: field \"id\": 'shop.orders.nope' is not an asset of the catalog"),
        ("write: a duplicate row", ["catalog", "write", "--descriptions", "{w}/dup.jsonl", "--to", "{w}/out.json"],
         "describes 'shop.orders.id' again"),
        ("describe --endpoint not a URL", ["catalog", "describe", "--catalog", "{w}/cat.json", "--targets",
                                           "described", "--systems", "rag-1", "--endpoint", "notaurl", "--output",
                                           "{w}/out"], "--endpoint: 'notaurl' is not an http"),
        ("describe --model not a model", ["catalog", "describe", "--catalog", "{w}/cat.json", "--targets",
                                          "described", "--systems", "rag-1", "--model", "{w}/nomodel", "--output",
                                          "{w}/out"], "--model: '"),
        ("eval --judge not a model", ["catalog", "eval", "--catalog", "{w}/cat.json", "--descriptions",
                                      "{w}/good.jsonl", "--judge", "smollm3", "--output", "{w}/out"],
         "--judge: 'smollm3' is not one of smollm2"),
        ("eval --judge-endpoint not a URL", ["catalog", "eval", "--catalog", "{w}/cat.json", "--descriptions",
                                             "{w}/good.jsonl", "--judge", "m", "--judge-endpoint", "ftp://h",
                                             "--output", "{w}/out"], "--judge-endpoint: 'ftp://h' is not an http"),
        ("write to an unreachable PostgreSQL", ["catalog", "write", "--descriptions", "{w}/good.jsonl", "--to",
                                                "postgresql+psycopg://nobody@127.0.0.1:9/x"], "--to: cannot connect"),
        ("eval: a huge --resamples", ["catalog", "eval", "--catalog", "{w}/cat.json", "--descriptions",
                                      "{w}/good.jsonl", "--resamples", "10000000", "--output", "{w}/out"],
         "--resamples: must be in [1, 100000]"),
    ]
    out = []
    for i, (name, argv, needle) in enumerate(specs):
        w = root / str(i)
        write_files(w)
        (w / "unknown_id.jsonl").write_text(json.dumps(desc(id="shop.orders.nope", column="nope")) + "\n")
        out.append(Case(name, name, [a.replace("{w}", str(w)) for a in argv], w, names=needle))
    return out


def test_hostile_catalog_inputs_are_one_line_exit_2_and_leave_everything(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    bad = run_all(cases(tmp_path / "cases"), home)
    assert not bad, "\n".join(bad)


def test_good_files_pass_the_checks(tmp_path):
    from siftkit.catalog.check import check_catalog_dict, read_descriptions
    from siftkit.catalog.model import Catalog

    check_catalog_dict(CATALOG, "cat.json")
    p = tmp_path / "d.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in GOOD).encode())  # a BOM is not content
    assert [r["id"] for r in read_descriptions(p, Catalog.from_dict(CATALOG))] == ["shop.orders.id", "shop.orders"]
    # the --previous file of `write` has no id; it reads (to be passed back)
    p.write_text(json.dumps(desc(system="previous", id="")) + "\n")
    assert len(read_descriptions(p)) == 1


def test_failed_llm_replies_are_one_line_exit_1_and_keep_the_output(tmp_path, monkeypatch):
    """generate.describe raises RuntimeError('N LLM replies failed'): the CLI says how many, exits 1, writes nothing."""
    from typer.testing import CliRunner

    import siftkit.catalog.generate as generate
    import siftkit.catalog.plugin as plugin

    def failing(*a, **k):
        raise RuntimeError("3 LLM replies failed; rerun to retry (answers are cached)")

    monkeypatch.setattr(generate, "describe", failing)
    monkeypatch.setattr(plugin, "_model_factory", lambda *a, **k: object())
    (tmp_path / "cat.json").write_text(json.dumps(CATALOG))
    out = tmp_path / "out"
    out.mkdir()
    (out / "descriptions.jsonl").write_text("keep\n")
    res = CliRunner().invoke(plugin.app, ["describe", "--catalog", str(tmp_path / "cat.json"), "--targets",
                                          "described", "--systems", "rag-1", "--endpoint", "http://127.0.0.1:9/v1",
                                          "--output", str(out)])
    assert res.exit_code == 1 and isinstance(res.exception, RequestsFailed), res.output
    assert res.exception.format().startswith(f"siftkit: 3 LLM description(s) failed after retries; nothing was "
                                             f"written ({out} left as it was)")
    assert (out / "descriptions.jsonl").read_text() == "keep\n"
    with pytest.raises(RuntimeError, match="something else"):  # any other RuntimeError is not swallowed
        plugin._failed_replies(RuntimeError("something else"), out, "x")


def test_a_bird_list_is_checked_in_its_own_form(tmp_path):
    from siftkit.catalog.check import check_catalog_source

    col = {"name": "id", "type": "integer", "description": None, "sample_values": [1, 2], "null_fraction": 0.0,
           "unique_count": 2, "foreign_keys": [{"reference_table": "t", "reference_column": "id"}],
           "value_description": "the release's own field"}
    bird = [{"name": "db", "tables": [{"name": "t", "row_count": 2, "primary_key": ["id"], "columns": [col]}]}]
    p = tmp_path / "dev_metadata.json"
    p.write_text(json.dumps(bird))
    check_catalog_source(str(p))  # BIRD's list form (load_bird reads it), with keys of its own
    for doc, needle in (([], "the catalog holds no database"),
                        ([{**bird[0], "tables": [{**bird[0]["tables"][0], "columns": [{**col, "null_fraction": "x"}]}]}],
                         "[0].tables[0].columns[0].null_fraction: must be a number in [0, 1]"),
                        ([{**bird[0], "tables": [{**bird[0]["tables"][0], "columns": [{**col, "foreign_keys": [1]}]}]}],
                         "[0].tables[0].columns[0].foreign_keys: must be an array of {reference_table"),
                        ([bird[0], bird[0]], "database 'db' appears twice"),
                        ({"databases": 1}, 'expected an object with a "databases" list')):
        p.write_text(json.dumps(doc))
        with pytest.raises(InputError) as e:
            check_catalog_source(str(p))
        assert needle in e.value.format()
