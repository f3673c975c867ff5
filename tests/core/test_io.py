import json
import subprocess
import sys

import pytest

from siftkit.core.errors import InputError
from siftkit.core.io import (read_csv, read_jsonl, read_parquet, read_qrels, read_records, read_trec_run,
                             write_jsonl, write_parquet, write_qrels, write_trec_run)
from siftkit.core.records import SCHEMAS, Candidate, Judgment, Query, Run


def cli(*args):
    return subprocess.run([sys.executable, "-c", "from siftkit.cli import main; main()", *args],
                          capture_output=True, text=True)


BAD_INPUTS = {
    "truncated.jsonl": (b'{"qid": "1", "query": "a"}\n{"qid": "2", "que', ":2: truncated JSON"),
    "wrongtype.jsonl": (b'{"qid": "1", "query": "a"}\n{"qid": "2", "query": 7}\n', ':2: field "query" must be string'),
    "missingcol.csv": (b"qid,text\n1,hello\n", ':1: column "query" missing'),
    "empty.jsonl": (b"", ": file is empty"),
    "latin1.jsonl": ('{"qid": "1", "query": "ok"}\n{"qid": "2", "query": "caf\xe9"}\n'.encode("latin-1"),
                     ":2: not valid UTF-8"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_gives_one_line_and_exit_2(tmp_path, name):
    data, expected = BAD_INPUTS[name]
    p = tmp_path / name
    p.write_bytes(data)
    res = cli("check", str(p), "--kind", "query")
    assert res.returncode == 2
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"siftkit: {p}")
    assert expected in lines[0]
    assert "Traceback" not in res.stderr + res.stdout


def test_missing_field_names_line_and_field(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text('{"qid": "1", "query": "a"}\n\n{"qid": "3"}\n')
    with pytest.raises(InputError) as e:
        read_jsonl(p, SCHEMAS["query"])
    assert (e.value.line, e.value.field) == (3, "query")
    assert str(e.value) == f'siftkit: {p}:3: field "query" missing'


def test_bool_is_not_an_integer(tmp_path):
    p = tmp_path / "j.jsonl"
    p.write_text('{"qid": "1", "docno": "d", "label": true}\n')
    with pytest.raises(InputError, match='field "label" must be integer'):
        read_records(p, "judgment")


def test_bom_is_skipped_and_csv_cells_are_typed(tmp_path):
    p = tmp_path / "c.csv"
    p.write_bytes("\ufeffqid,docno,score\n1,d1,0.5\n1,d2,2\n".encode("utf-8"))
    cands = read_records(p, "candidate")
    assert cands == [Candidate("1", "d1", 0.5), Candidate("1", "d2", 2.0)]
    p.write_text("qid,docno,score\n1,d1,high\n")
    with pytest.raises(InputError, match=r':2: field "score" must be integer or number'):
        read_csv(p, SCHEMAS["candidate"])


def test_csv_ragged_row(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("qid,query\n1,a,extra\n")
    with pytest.raises(InputError, match=":2: row has 3 cells, header has 2"):
        read_csv(p)


def test_jsonl_roundtrip_of_records(tmp_path):
    qs = [Query("1", "héllo", {"answers": ["x"]}), Query("2", "b")]
    write_jsonl(tmp_path / "q.jsonl", qs)
    assert read_records(tmp_path / "q.jsonl", "query") == qs


def test_parquet_roundtrip_and_errors(tmp_path):
    rows = [{"qid": "1", "docno": "d1", "label": 2}, {"qid": "1", "docno": "d2", "label": 0}]
    write_parquet(tmp_path / "j.parquet", rows)
    assert read_records(tmp_path / "j.parquet", "judgment") == [Judgment("1", "d1", 2), Judgment("1", "d2", 0)]
    write_parquet(tmp_path / "bad.parquet", [{"qid": "1", "docno": "d1"}])
    with pytest.raises(InputError, match='column "label" missing'):
        read_parquet(tmp_path / "bad.parquet", SCHEMAS["judgment"])
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        read_parquet(tmp_path / "junk.parquet")


def test_trec_run_and_qrels_roundtrip(tmp_path):
    run = Run({"q1": {"a": 2.0, "b": 3.0, "c": 3.0}, "q2": {"x": 1.0}}, "test")
    write_trec_run(tmp_path / "r.trec", run)
    lines = (tmp_path / "r.trec").read_text().splitlines()
    # ties broken by docno, ranks 1-based
    assert lines[:3] == ["q1 Q0 b 1 3.000000 test", "q1 Q0 c 2 3.000000 test", "q1 Q0 a 3 2.000000 test"]
    assert read_trec_run(tmp_path / "r.trec") == run
    js = [Judgment("q1", "a", 1), Judgment("q2", "x", 0)]
    write_qrels(tmp_path / "qrels", js)
    assert read_qrels(tmp_path / "qrels") == js


def test_trec_errors(tmp_path):
    p = tmp_path / "r.trec"
    p.write_text("q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 x t\n")
    with pytest.raises(InputError, match=':2: field "score" must be number'):
        read_trec_run(p)
    p.write_text("q1 Q0 d1 1 0.5\n")
    with pytest.raises(InputError, match=":1: expected 6 columns"):
        read_trec_run(p)
    p.write_text("q1 0 d1 x\n")
    with pytest.raises(InputError, match=':1: field "label" must be integer'):
        read_qrels(p)


def test_run_cutoff_and_frame():
    run = Run({"q": {"a": 1.0, "b": 2.0, "c": 0.5}})
    assert list(run.cutoff(2).scores["q"]) == ["b", "a"]
    df = run.to_frame()
    assert list(df.columns) == ["qid", "docno", "score", "rank"]
    assert df["rank"].tolist() == [1, 2, 3]


def test_unknown_file_type(tmp_path):
    p = tmp_path / "x.xml"
    p.write_text("<a/>")
    with pytest.raises(InputError, match="unknown file type"):
        read_records(p, "query")
    assert json.loads('{"a": 1}')  # keep json import used


def test_read_json_errors_name_file_and_line(tmp_path):
    from siftkit.core.io import read_json

    p = tmp_path / "m.json"
    p.write_text('{\n  "a": 1,\n  "b": \n}\n')
    with pytest.raises(InputError, match=r"m.json:4: invalid JSON"):
        read_json(p)
    p.write_text("[1, 2]")
    with pytest.raises(InputError, match="expected a JSON object at the top level, got array"):
        read_json(p, expect=dict)
    p.write_bytes(b'\xef\xbb\xbf{"x": 2}')
    assert read_json(p, expect=dict) == {"x": 2}


def test_atomic_write_text_gives_the_mode_of_a_plain_write(tmp_path):
    import os

    from siftkit.core.io import atomic_write_text

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = atomic_write_text(tmp_path / "atomic.txt", "x")
    assert atomic.read_text() == "x"
    assert os.stat(atomic).st_mode & 0o777 == os.stat(plain).st_mode & 0o777
    assert not list(tmp_path.glob(".*.tmp"))


def test_atomic_output_writes_through_a_pipe_without_replacing_it(tmp_path):
    """`--output /dev/null` or a FIFO: the node stays what it was (a rename onto /dev/null, as root, once turned it
    into a plain file) and receives the finished output; a failed block writes nothing into it."""
    import os
    import stat
    import threading

    from siftkit.core.io import atomic_output, atomic_write_text

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    atomic_write_text(fifo, "hello\n")
    reader.join(10)
    assert got == [b"hello\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(RuntimeError):
        with atomic_output(fifo) as tmp:
            tmp.write_text("half")
            raise RuntimeError("the run failed")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and list(tmp_path.iterdir()) == [fifo]
