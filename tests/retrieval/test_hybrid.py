"""Reciprocal-rank fusion on a hand case, and HybridRetriever over BM25 + MiniLM."""

from __future__ import annotations

import pytest

from siftkit.retrieval import Hit, HybridRetriever, load_retriever, rrf
from siftkit.retrieval.testing import RetrieverConformance


class Static:
    """A retriever that returns fixed lists (ignores the queries beyond their count)."""

    def __init__(self, docids):
        self.docids = docids

    def search(self, queries, k=10):
        return [[Hit(d, 1.0 / (i + 1), f"text {d}") for i, d in enumerate(self.docids[:k])] for _ in queries]


def test_rrf_hand_case():
    a = [Hit("x", 9.0, "X"), Hit("y", 8.0, "Y"), Hit("z", 7.0, "Z")]
    b = [Hit("y", 0.9, "Y"), Hit("w", 0.8, "W")]
    fused = rrf([a, b], k_rrf=60)
    assert [h.docid for h in fused] == ["y", "x", "w", "z"]
    assert [h.score for h in fused] == pytest.approx([
        1 / (60 + 2) + 1 / (60 + 1),  # y: rank 2 in a, rank 1 in b
        1 / (60 + 1),                 # x
        1 / (60 + 2),                 # w
        1 / (60 + 3),                 # z
    ])


def test_rrf_ties_keep_first_seen_order_and_k_cuts():
    h = HybridRetriever([Static(["p", "q"]), Static(["q", "p"])], k_rrf=60)
    [hits] = h.search(["anything"], k=1)
    assert [x.docid for x in hits] == ["p"]  # p and q both 1/61 + 1/62; p seen first
    assert hits[0].score == pytest.approx(1 / (60 + 1) + 1 / (60 + 2))


@pytest.fixture(scope="module")
def hybrid(bm25, dense):
    return HybridRetriever([bm25, dense], k_rrf=60)


@pytest.mark.slow
def test_hybrid_finds_lexical_and_paraphrase_queries(hybrid):
    results = hybrid.search(["capital of Quillan", "spacecraft sent to photograph a comet"], k=3)
    assert [hits[0].docid for hits in results] == ["d0", "d6"]


@pytest.mark.slow
def test_hybrid_save_load_round_trip(hybrid, tmp_path):
    hybrid.save(tmp_path / "h")
    again = load_retriever(tmp_path / "h")
    qs = ["capital of Quillan", "honey"]
    assert again.search(qs, k=4) == hybrid.search(qs, k=4)


@pytest.mark.slow
class TestHybridConformance(RetrieverConformance):
    @pytest.fixture
    def retriever(self, hybrid):
        return hybrid
