"""DenseRetriever with the real MiniLM and E5: expected documents for paraphrased queries, save/load identity."""

from __future__ import annotations

import pytest

from siftkit.retrieval import DenseRetriever, load_retriever
from siftkit.retrieval.testing import RetrieverConformance

pytestmark = pytest.mark.slow

# Paraphrases that share few words with the passages.
QUERIES = {
    "a sweet dessert cooked from rice and milk": "d3",
    "spacecraft sent to photograph a comet": "d6",
    "beekeepers collecting honey from hives": "d8",
    "group of musicians playing violins and cello": "d5",
}


def test_minilm_expected_top_document(dense):
    results = dense.search(list(QUERIES), k=3)
    assert [hits[0].docid for hits in results] == list(QUERIES.values())
    assert all(-1.0 <= h.score <= 1.0 + 1e-5 for hits in results for h in hits)


def test_e5_expected_top_document(e5, corpus):
    results = DenseRetriever(e5, corpus).search(list(QUERIES), k=3)
    assert [hits[0].docid for hits in results] == list(QUERIES.values())


def test_save_load_round_trip(dense, minilm, tmp_path):
    dense.save(tmp_path / "idx")
    assert (tmp_path / "idx" / "ids.json").is_file()
    again = load_retriever(tmp_path / "idx")  # rebuilds MiniLM from meta.json
    assert isinstance(again, DenseRetriever)
    assert again.search(list(QUERIES), k=5) == dense.search(list(QUERIES), k=5)
    with_given = DenseRetriever.load(tmp_path / "idx", embedder=minilm)
    assert with_given.search(list(QUERIES), k=5) == dense.search(list(QUERIES), k=5)


class TestDenseConformance(RetrieverConformance):
    @pytest.fixture
    def retriever(self, dense):
        return dense
