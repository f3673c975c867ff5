"""Loaders: THUIR CSV conventions (BOM, 0-based rank, seconds) and the generic JSONL session log."""

import json
from collections import Counter

import pytest

from siftkit.core.errors import InputError
from siftkit.usefulness.data import (
    divergence_group, load_clicks, load_sessions_jsonl, load_thuir, sessions, write_sessions_jsonl,
)
from siftkit.usefulness.plugin import FIXTURES

from .conftest import make_click

HEADER = ("id,user,task_id,task,task_sat_score,task_dwell_time,trs_query,query_position,query_sat_score,"
          "query_dwell_time,url,title_en,summary_en,rank,usefulness_score,task_relevance,query_relevance,"
          "url_dwell_time,avg_url_dwell_time_per_user_task,avg_url_dwell_time_per_user,CTR,total_queries,"
          "max_clicks_per_user_query,label")
ROW1 = ('1,u9,2,"Plan a picnic, cheaply",4.0,509.552,picnic ideas,1,3.0,91.1,http://x.example/a,Picnic,'
        '"Ideas, lists",0.0,3,3.0,2.0,7.74,19.18,20.5,0.15,2,3,HR-HU')
ROW2 = 'two,u9,2,Plan,4.0,1.0,q,1,3.0,1.0,http://x.example/b,T,S,4.0,1,1.0,1.0,1.0,1.0,1.0,0.5,2,3,LR-LU'


def write_csv(tmp_path, *rows):
    p = tmp_path / "thuir.csv"
    p.write_bytes(b"\xef\xbb\xbf" + "\n".join([HEADER, *rows]).encode("utf-8") + b"\n")
    return p


def test_thuir_bom_rank_and_units(tmp_path):
    (c,) = load_thuir(write_csv(tmp_path, ROW1))
    assert c.id == "1" and c.user == "u9" and c.task == "Plan a picnic, cheaply"
    assert c.rank == 0 + 1  # 0-based in the CSV, 1-based here
    assert c.task_dwell_s == 509.552  # seconds, as stored (the fine-tuning text's "ms" is wrong)
    assert (c.usefulness, c.query_relevance, c.ctr) == (3, 2.0, 0.15)
    assert divergence_group(c) == "HR-HU"


def test_thuir_bad_cell_names_line_and_field(tmp_path):
    with pytest.raises(InputError) as e:
        load_thuir(write_csv(tmp_path, ROW1, ROW2))
    assert e.value.line == 3 and e.value.field == "id"


def test_thuir_missing_column(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text(HEADER.replace(",usefulness_score", "") + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="usefulness_score"):
        load_thuir(p)


@pytest.mark.parametrize("qrel,u,group", [(2, 2, "HR-HU"), (3, 1, "HR-LU"), (1, 3, "LR-HU"), (0, 0, "LR-LU"),
                                          (1.5, 2, "LR-HU")])
def test_divergence_groups(qrel, u, group):
    assert divergence_group(make_click(1, query_relevance=qrel, usefulness=u)) == group


def test_fixture_sessions_load():
    clicks = load_sessions_jsonl(FIXTURES)
    assert len(clicks) == 9 and len(sessions(clicks)) == 3
    assert all(c.usefulness is not None for c in clicks)


def test_jsonl_round_trip(tmp_path, clicks):
    p = tmp_path / "s.jsonl"
    write_sessions_jsonl(p, clicks)
    assert load_clicks(p) == clicks


def test_jsonl_minimal_record(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text(json.dumps({"id": 5, "user": 1, "task_id": 2, "task": "t", "query": "q", "url": "u"}) + "\n")
    (c,) = load_sessions_jsonl(p)
    assert (c.id, c.user, c.task_id, c.rank, c.usefulness) == ("5", "1", "2", None, None)


@pytest.mark.parametrize("record,field", [
    ({"id": "a", "user": "u", "task_id": "t", "task": "t", "url": "u"}, "query"),
    ({"id": "a", "user": "u", "task_id": "t", "task": "t", "query": "q", "url": "u", "rank": 0}, "rank"),
    ({"id": "a", "user": "u", "task_id": "t", "task": "t", "query": "q", "url": "u", "usefulness": 4}, "usefulness"),
    ({"id": "a", "user": "u", "task_id": "t", "task": "t", "query": "q", "url": "u", "ctr": "high"}, "ctr"),
    ({"id": "a", "user": "u", "task_id": "t", "task": "t", "query": "q", "url": "u", "dwell": 3}, "dwell"),
])
def test_jsonl_errors_name_line_and_field(tmp_path, record, field):
    ok = {"id": "z", "user": "u", "task_id": "t", "task": "t", "query": "q", "url": "u"}
    p = tmp_path / "s.jsonl"
    p.write_text(json.dumps(ok) + "\n\n" + json.dumps(record) + "\n")
    with pytest.raises(InputError) as e:
        load_sessions_jsonl(p)
    assert e.value.line == 3 and e.value.field == field


def test_jsonl_duplicate_id(tmp_path):
    ok = {"id": "z", "user": "u", "task_id": "t", "task": "t", "query": "q", "url": "u"}
    p = tmp_path / "s.jsonl"
    p.write_text(json.dumps(ok) + "\n" + json.dumps(ok) + "\n")
    with pytest.raises(InputError, match="duplicate id"):
        load_sessions_jsonl(p)


@pytest.mark.needs_shared
def test_thuir_shared_counts(shared_data):
    clicks = load_thuir(shared_data)
    assert len(clicks) == 3046 and len(sessions(clicks)) == 447
    assert len({c.query_key for c in clicks}) == 1318 and len({c.user for c in clicks}) == 50
    assert Counter(c.usefulness for c in clicks) == {3: 1030, 0: 823, 2: 635, 1: 558}
    assert Counter(divergence_group(c) for c in clicks) == {"HR-HU": 1439, "HR-LU": 879, "LR-LU": 502, "LR-HU": 226}
    assert min(c.rank for c in clicks) == 1 and max(c.rank for c in clicks) == 30


@pytest.mark.needs_shared
def test_finetuning_records_agree_with_our_conventions(shared_data):
    """Upstream's own serialisation (finetuning/test.json) shows rank = CSV rank + 1 and dwell = the CSV value."""
    import re

    from siftkit.usefulness.data import load_finetuning

    by_id = {c.id: c for c in load_thuir(shared_data)}
    rows = load_finetuning(shared_data / "usefulness/LLMUsefulnessLabels/finetuning/test.json")
    assert len(rows) == 305
    for r in rows:
        c = by_id[re.search(r"Unique ID: (\d+)", r["input"]).group(1)]
        assert int(re.search(r"\nRank: (\d+)", r["input"]).group(1)) == c.rank  # our 1-based rank
        dwell = float(re.search(r"Task Dwell Time: ([\d.]+) ms", r["input"]).group(1))  # labelled "ms" upstream
        assert dwell == pytest.approx(c.task_dwell_s, abs=0.0051)  # but the CSV value (seconds), rounded
        assert r["usefulness_score"] == c.usefulness
