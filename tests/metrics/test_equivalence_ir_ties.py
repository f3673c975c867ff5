"""IR measures on runs full of tied scores, against an independent NumPy transcription of trec_eval's definitions.

The ranx check in ``test_ir.py`` uses continuous random scores (no ties), where tie-breaking never shows. Here scores
come from three values, so most documents tie; the reference orders each query's documents as trec_eval does
(score descending, then docno descending as a string), and computes, per query of the qrels (a query missing from
the run scores 0; a run query without qrels is ignored):
P@k = hits in the top k / k; R@k = hits in the top k / |R_q|; nDCG@k = Σ_{i≤k} rel_i / log2(i + 1) over the ideal
DCG of the qrels' labels; AP = Σ_{relevant at i} P@i / |R_q|; RR = 1 / rank of the first relevant document.
"""

from __future__ import annotations

import numpy as np
import pytest

from siftkit.metrics.ir import evaluate, per_query


def _order(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda d: (scores[d], d), reverse=True)  # ties: docno descending (trec_eval)


def ref_measures(labels: dict[str, int], scores: dict[str, float], k: int) -> dict[str, float]:
    ranking = _order(scores)
    rel = np.array([labels.get(d, 0) for d in ranking], dtype=float)  # graded label at each rank, 0 if unjudged
    hit = (rel >= 1).astype(float)
    n_rel = sum(1 for v in labels.values() if v >= 1)
    if n_rel == 0:
        return {"P": 0.0, "R": 0.0, "nDCG": 0.0, "AP": 0.0, "RR": 0.0}
    disc = 1.0 / np.log2(np.arange(2, len(ranking) + 2))
    ideal = np.sort(np.array([v for v in labels.values() if v > 0], dtype=float))[::-1][:k]
    idcg = float(np.sum(ideal / np.log2(np.arange(2, len(ideal) + 2))))
    dcg = float(np.sum(rel[:k] * disc[:k]))
    prec_at = np.cumsum(hit) / np.arange(1, len(hit) + 1)
    first = np.flatnonzero(hit)
    return {"P": hit[:k].sum() / k, "R": hit[:k].sum() / n_rel, "nDCG": dcg / idcg,
            "AP": float(np.sum(prec_at * hit)) / n_rel, "RR": 1.0 / (first[0] + 1) if len(first) else 0.0}


def _tied_case(seed: int):
    rng = np.random.default_rng(seed)
    docs = [f"d{i:02d}" for i in range(25)] + ["d3", "d30", "x1"]  # string order differs from numeric order
    qrels = {f"q{q}": {d: int(rng.integers(0, 4)) for d in rng.choice(docs, 12, replace=False)} for q in range(12)}
    qrels["q0"] = {d: 0 for d in list(qrels["q0"])}  # judged, nothing relevant: counts, scores 0
    qrels["q_missing"] = {"d01": 2, "d02": 1}  # not in the run: counts, scores 0
    run = {q: {d: float(rng.choice([0.0, 0.5, 1.0])) for d in rng.choice(docs, int(rng.integers(3, 20)),
                                                                        replace=False)}
           for q in qrels if q != "q_missing"}
    run["q_unjudged"] = {"d01": 1.0}  # no qrels: ignored
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tied_runs_match_trec_eval_definitions(seed):
    qrels, run = _tied_case(seed)
    for k in (1, 3, 5, 10):
        names = {"P": f"P@{k}", "R": f"recall@{k}", "nDCG": f"ndcg@{k}"}
        for fam, name in names.items():
            got = per_query(qrels, run, name)
            want = {q: (ref_measures(qrels[q], run[q], k)[fam] if q in run else 0.0) for q in qrels}
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12), name
            assert evaluate(qrels, run, name)[name] == pytest.approx(np.mean(list(want.values())), rel=1e-9)
    for fam, name in (("AP", "map"), ("RR", "mrr")):
        got = per_query(qrels, run, name)
        want = {q: (ref_measures(qrels[q], run[q], 10 ** 6)[fam] if q in run else 0.0) for q in qrels}
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), name


def test_a_tie_goes_to_the_larger_docno_not_input_order():
    qrels = {"q": {"a": 1}}
    run = {"q": {"a": 1.0, "b": 1.0}}  # tied; "b" > "a" as strings, so "b" ranks first
    assert per_query(qrels, run, "P@1") == {"q": 0.0}
    assert per_query(qrels, run, "mrr") == {"q": 0.5} == {"q": ref_measures(qrels["q"], run["q"], 1)["RR"]}
    assert per_query({"q": {"b": 1}}, run, "P@1") == {"q": 1.0}
