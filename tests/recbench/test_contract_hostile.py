"""A hostile user against ``siftkit recbench eval``: query files with wrong types, empty or missing ground truth,
huge or NaN ``k``, malformed conditions, repeated ids, a BOM; mistyped baselines and repeated models (issue 24).
Each case runs through ``main()`` in the contract driver and must be one ``siftkit:`` line naming the problem,
exit 2, its folder unchanged (no output folder made, nothing loaded)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from tests.core.test_contract import Case, run_all

FIX = Path(__file__).parent / "fixtures"
QUERY = {"qid": "q1", "qtype": "explicit", "domain": "movie", "text": "Please suggest thrillers.",
         "gt_titles": ["Fargo (1996)", "Scream (1996)"], "gt_ids": ["100", "288"],
         "conditions": [["Genre", "Thriller"]], "source": "52", "k": 2, "meta": {}}


def doc(**over) -> dict:
    q = {**copy.deepcopy(QUERY), **over}
    return {"format": "siftkit-recbench", "info": {}, "queries": [q]}


BAD = {  # file -> (document, text the line must contain)
    "gt_null.json": (doc(gt_titles=None), "queries[0].gt_titles: must be a non-empty array"),
    "gt_empty.json": (doc(gt_titles=[], gt_ids=[]), "queries[0].gt_titles: must be a non-empty array"),
    "gt_ints.json": (doc(gt_titles=[1, 2]), "queries[0].gt_titles"),
    "gt_string.json": (doc(gt_titles="Fargo"), "queries[0].gt_titles"),
    "ids_mismatch.json": (doc(gt_ids=["1"]), "queries[0].gt_ids: must be an array of strings, empty or one per title"),
    "k_negative.json": (doc(k=-3), "queries[0].k: must be an integer in [1, 1000], got -3"),
    "k_string.json": (doc(k="2"), "queries[0].k: must be an integer"),
    "k_huge.json": (doc(k=10 ** 30), "queries[0].k: must be an integer"),
    "k_bool.json": (doc(k=True), "queries[0].k: must be an integer"),
    "conditions.json": (doc(conditions=[["Genre"]]), "queries[0].conditions: must be an array of [relation, value]"),
    "qtype.json": (doc(qtype="bogus"), "queries[0].qtype: must be one of explicit"),
    "text_null.json": (doc(text=None), "queries[0].text: must be a non-empty string"),
    "qid_int.json": (doc(qid=5), "queries[0].qid: must be a non-empty string"),
    "unknown.json": (doc(extra=1), "queries[0]: unknown field 'extra'"),
    "queries_object.json": ({"format": "siftkit-recbench", "queries": {}}, '"queries" must be an array'),
    "no_queries.json": ({"format": "siftkit-recbench", "queries": []}, "the file holds no query"),
    "dup.json": ({"format": "siftkit-recbench", "queries": [QUERY, QUERY]}, "queries[1].qid: 'q1' already used"),
}


def test_hostile_query_files_and_models_are_one_line_exit_2(tmp_path):
    specs = [(name, ["--queries", "{w}/" + name, "--model", "oracle"], needle) for name, (_, needle) in BAD.items()]
    specs += [
        ("a NaN k (Python's json writes NaN)", ["--queries", "{w}/k_nan.json", "--model", "oracle"],
         "queries[0].k: must be an integer in [1, 1000], got nan"),
        ("a released file with a NaN count", ["--queries", "{w}/ExplicitQuery.json", "--model", "oracle"],
         "queries[0].k"),
        ("a released file whose titles are one string (the reader split it into letters)",
         ["--queries", "{w}/title_string/ExplicitQuery.json", "--model", "oracle"],
         "[0].movieSubset: must be a non-empty array of titles (strings), got 'Fargo (1996)'"),
        ("a released file with no query text (the reader made it 'None')",
         ["--queries", "{w}/no_text/ExplicitQuery.json", "--model", "oracle"],
         "[0].direct_description_query: must be a non-empty string (no query text in the record)"),
        ("a mistyped baseline", ["--queries", "{w}/good.json", "--model", "orcale"],
         "--model: 'orcale' is not one of oracle, random, popularity"),
        ("a model twice", ["--queries", "{w}/good.json", "--model", "oracle", "--model", "oracle"],
         "--model: 'oracle' is given twice"),
        ("a huge --k", ["--queries", "{w}/good.json", "--model", "oracle", "--k", "5000"], "--k: must be in [0, 1000]"),
        ("a huge --resamples", ["--queries", "{w}/good.json", "--model", "oracle", "--resamples", "10000000"],
         "--resamples: must be in [1, 100000]"),
    ]
    cases = []
    for i, (name, argv, needle) in enumerate(specs):
        w = tmp_path / "cases" / str(i)
        w.mkdir(parents=True)
        for f, (d, _) in BAD.items():
            (w / f).write_text(json.dumps(d))
        (w / "k_nan.json").write_text(json.dumps(doc(k=float("nan"))))
        released = json.loads((FIX / "ExplicitQuery.json").read_text())
        released[0]["movieCount"] = -1
        (w / "ExplicitQuery.json").write_text(json.dumps(released))
        (w / "good.json").write_text(json.dumps(doc()))
        for name, edit in (("title_string", {"movieSubset": "Fargo (1996)", "movieSubsetId": []}),
                           ("no_text", {"direct_description_query": None, "situational_description_query": None})):
            (w / name).mkdir()
            (w / name / "ExplicitQuery.json").write_text(json.dumps([{**released[0], "movieCount": 2, **edit}]))
        (w / "out").mkdir()
        (w / "out" / "keep.txt").write_text("keep\n")
        args = ["recbench", "eval", *[a.replace("{w}", str(w)) for a in argv], "--kg", "none", "--output",
                str(w / "out")]
        cases.append(Case(name, name, args, w, names=needle))
    home = tmp_path / "home"
    home.mkdir()
    bad = run_all(cases, home)
    assert not bad, "\n".join(bad)


def test_good_and_bom_prefixed_query_files_read(tmp_path):
    from siftkit.recbench.plugin import read_queries

    p = tmp_path / "q.json"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(doc()).encode())  # load_queries alone refused the BOM
    qs = read_queries(p)
    assert [(q.qid, q.k, q.conditions) for q in qs] == [("q1", 2, [("Genre", "Thriller")])]
    released = read_queries(FIX / "ExplicitQuery.json")  # the released form still reads, every query checked
    assert released and all(q.gt_titles for q in released)


def test_generate_refuses_a_type_twice_and_a_huge_per_cell(tmp_path):
    from typer.testing import CliRunner

    from siftkit.core.errors import InputError
    from siftkit.recbench.plugin import app

    out = tmp_path / "q.json"
    for args, needle in ((["--types", "explicit,explicit"], "--types: 'explicit' is given twice"),
                         (["--per-cell", "99999999"], "--per-cell: must be in [1, 10000], got 99999999")):
        res = CliRunner().invoke(app, ["generate", "--output", str(out), *args])
        assert isinstance(res.exception, InputError) and needle in res.exception.format(), res.output
    assert not out.exists()
