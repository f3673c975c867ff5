"""IR measures: hand-computed cases, the query-set rules, the parser, and a cross-check against ranx."""

import math

import numpy as np
import pandas as pd
import pytest

from siftkit.core.errors import InputError
from siftkit.metrics.ir import evaluate, parse_metric, per_query

# q1: relevant d1 (1), d3 (2), d4 (1, never retrieved); ranking d2(0) d1(1) d5(unjudged) d3(2)
# q2: relevant d5 (1); ranking d6 d7 d5
QRELS = {"q1": {"d1": 1, "d2": 0, "d3": 2, "d4": 1}, "q2": {"d5": 1}}
RUN = {"q1": {"d2": 0.9, "d1": 0.8, "d5": 0.7, "d3": 0.6}, "q2": {"d6": 0.9, "d7": 0.8, "d5": 0.7}}

IDCG_Q1 = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # ideal labels 2, 1, 1


@pytest.mark.parametrize("metric, expected", [
    ("P@2", (1 / 2 + 0) / 2),
    ("precision@5", (2 / 5 + 1 / 5) / 2),
    ("R@2", (1 / 3 + 0) / 2),
    ("recall@10", (2 / 3 + 1) / 2),
    ("map", ((1 / 2 + 2 / 4) / 3 + (1 / 3) / 1) / 2),
    ("AP@2", ((1 / 2) / 3 + 0) / 2),
    ("mrr", (1 / 2 + 1 / 3) / 2),
    ("RR@2", (1 / 2 + 0) / 2),
    ("ndcg@10", ((1 / math.log2(3) + 2 / math.log2(5)) / IDCG_Q1 + (1 / math.log2(4)) / 1) / 2),
    ("nDCG@3", ((1 / math.log2(3)) / IDCG_Q1 + (1 / math.log2(4)) / 1) / 2),
])
def test_hand_computed(metric, expected):
    assert evaluate(QRELS, RUN, [metric])[metric] == pytest.approx(expected)


def test_per_query_hand_computed():
    assert per_query(QRELS, RUN, "mrr") == pytest.approx({"q1": 1 / 2, "q2": 1 / 3})
    assert per_query(QRELS, RUN, "AP") == pytest.approx({"q1": (1 / 2 + 2 / 4) / 3, "q2": 1 / 3})


def test_evaluate_keeps_names_and_order():
    names = ["ndcg@10", "P@5", "recall@100", "map", "mrr", "AP"]
    out = evaluate(QRELS, RUN, names)
    assert list(out) == names
    assert out["map"] == out["AP"]
    assert evaluate(QRELS, RUN, "mrr") == {"mrr": pytest.approx((1 / 2 + 1 / 3) / 2)}


def test_run_query_without_qrels_is_ignored():
    run = {**RUN, "q9": {"d1": 1.0}}
    assert evaluate(QRELS, run, ["map", "P@5"]) == evaluate(QRELS, RUN, ["map", "P@5"])
    assert "q9" not in per_query(QRELS, run, "map")


def test_qrels_query_missing_from_run_scores_zero_and_counts():
    qrels = {**QRELS, "q3": {"d1": 1}}
    assert per_query(qrels, RUN, "mrr")["q3"] == 0
    assert evaluate(qrels, RUN, ["mrr"])["mrr"] == pytest.approx((1 / 2 + 1 / 3 + 0) / 3)


def test_dataframe_inputs_match_dicts():
    qrels = pd.DataFrame([(q, d, rel) for q, docs in QRELS.items() for d, rel in docs.items()],
                         columns=["qid", "docno", "label"])
    run = pd.DataFrame([(q, d, s) for q, docs in RUN.items() for d, s in docs.items()],
                       columns=["qid", "docno", "score"])
    names = ["ndcg@10", "P@5", "recall@10", "map", "mrr"]
    assert evaluate(qrels, run, names) == pytest.approx(evaluate(QRELS, RUN, names))
    assert evaluate(qrels.rename(columns={"label": "relevance"}), run, names) == pytest.approx(
        evaluate(QRELS, RUN, names))
    with pytest.raises(InputError, match="score"):
        evaluate(qrels, run.drop(columns="score"), names)


@pytest.mark.parametrize("ranx_like, ir_name", [
    ("ndcg@10", "nDCG@10"), ("precision@5", "P@5"), ("recall@10", "R@10"), ("map", "AP"), ("mrr", "RR"),
    ("map@5", "AP@5"), ("mrr@3", "RR@3"), ("p@5", "P@5"), ("NDCG", "nDCG"),
])
def test_parser_accepts_both_spellings(ranx_like, ir_name):
    assert parse_metric(ranx_like) == parse_metric(ir_name)
    assert str(parse_metric(ranx_like)) == ir_name


def test_parser_rejects_bad_strings():
    for bad in ["foo@3", "precision", "recall", "ndcg@0"]:
        with pytest.raises(InputError):
            parse_metric(bad)
    assert str(parse_metric("P(rel=2)@5")) == "P(rel=2)@5"  # passed through to ir-measures


def _random_case(seed=0, n_queries=20, n_docs=40):
    rng = np.random.default_rng(seed)
    docs = [f"d{i}" for i in range(n_docs)]
    qrels = {f"q{q}": {str(d): int(rng.integers(0, 3)) for d in rng.choice(docs, 15, replace=False)}
             for q in range(n_queries)}
    for judged in qrels.values():  # at least one relevant document per query
        judged[next(iter(judged))] = 1
    run = {f"q{q}": {str(d): float(rng.random()) for d in rng.choice(docs, 30, replace=False)}
           for q in range(n_queries)}
    return qrels, run


def test_against_ranx_on_random_run():
    ranx = pytest.importorskip("ranx")
    qrels, run = _random_case()
    ours = ["ndcg@10", "P@5", "R@20", "AP", "RR", "AP@10", "RR@5"]
    theirs = ["ndcg@10", "precision@5", "recall@20", "map", "mrr", "map@10", "mrr@5"]
    ranx_run = ranx.Run(run)
    expected = ranx.evaluate(ranx.Qrels(qrels), ranx_run, theirs, threads=1)
    got = evaluate(qrels, run, ours)
    for o, t in zip(ours, theirs):
        assert got[o] == pytest.approx(float(expected[t]), abs=1e-9), o
    for o, t in zip(ours, theirs):
        assert per_query(qrels, run, o) == pytest.approx({q: float(v) for q, v in ranx_run.scores[t].items()})
