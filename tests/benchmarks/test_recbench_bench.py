"""The RecBench+ benchmark on the runner: its grid, a baseline cell (deterministic, hashed query set), the spec §7
numbers as claims data, and the known-answer cells scored from stored replies."""

import pytest

from benchmarks import recbench as rb
from benchmarks.claims import load_claims, paper
from benchmarks.runner import find


@pytest.fixture
def cfg():
    return find("recbench").load_config("cpu")


def test_grid_and_claims_data(cfg):
    g = rb.grid(cfg)
    assert len(g) == 14 and {"condition": "random|generated", "seed": 2} in g
    assert paper("recbench")["spec7"]["group-top10"]["reference"] == {"recall": 0.403, "precision": 0.123,
                                                                        "ndcg": 0.279}
    claim = next(c for c in load_claims("recbench") if c.id == "spec7-no-llm-table")
    checked = [(c["responder"], c["scoring"]) for c in claim.conditions if c.get("known_answer", True)]
    assert len(claim.conditions) == len(rb.SPEC7) == 10 and len(checked) == 6
    assert all(r not in ("popularity", "random") for r, _ in checked)  # shown, not checked (see their notes)


def test_baseline_cell_is_deterministic_and_names_its_query_set(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("SIFTKIT_HOME", str(tmp_path))
    cfg = cfg.model_copy(update={"per_cell": 2})
    qs, _, digest = rb.query_set("generated", 2, 0)
    a = rb.cell(cfg, {"condition": "random|generated", "seed": 1})
    b = rb.cell(cfg, {"condition": "random|generated", "seed": 1})
    c = rb.cell(cfg, {"condition": "random|generated", "seed": 2})
    assert (a["queries"], a["query_sha"], a["engine"]) == (len(qs), digest, "")
    assert [q for q, _ in a["replies"]] == [q.qid for q in qs]
    assert a["replies"] == b["replies"] != c["replies"]


def test_oracle_scores_one_on_generated_queries(cfg, tmp_path, monkeypatch):
    """The page's first check by hand: the generator's ground truth meets its conditions, so the oracle's reply
    scores R = P = NDCG = 1 under corrected scoring."""
    import pandas as pd

    from siftkit.recbench.scoring import score_all

    monkeypatch.setenv("SIFTKIT_HOME", str(tmp_path))
    cfg = cfg.model_copy(update={"per_cell": 2})
    m = rb.cell(cfg, {"condition": "oracle|generated", "seed": 0})
    qs, kg, _ = rb.query_set("generated", 2, 0)
    replies = pd.DataFrame([{"model": "oracle", "qid": q, "text": t} for q, t in m["replies"]])
    s = score_all(replies, qs, kg, modes=("corrected",), parsers=("sep",))
    assert len(s) == len(qs) and (s[["recall", "precision", "ndcg"]] == 1).all().all()
