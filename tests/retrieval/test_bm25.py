"""BM25Retriever: expected documents, save/load identity, conformance, and equality with bm25s called directly."""

from __future__ import annotations

import pytest

from siftkit.retrieval import BM25Retriever, load_retriever
from siftkit.retrieval.testing import RetrieverConformance

QUERIES = {
    "capital of Quillan": "d0",
    "volcano eruption ash": "d4",
    "railway spiral tunnel": "d7",
    "otters in polluted streams": "d1",
}


def test_expected_top_document(bm25):
    results = bm25.search(list(QUERIES), k=3)
    assert [hits[0].docid for hits in results] == list(QUERIES.values())
    assert results[0][0].title == "Velmora"


def test_unknown_words_and_stopwords_only_give_no_hits(bm25):
    assert bm25.search(["zzzqx", "the of and"], k=3) == [[], []]


def test_save_load_round_trip(bm25, tmp_path):
    bm25.save(tmp_path / "idx")
    again = load_retriever(tmp_path / "idx")
    assert isinstance(again, BM25Retriever)
    assert again.search(list(QUERIES), k=5) == bm25.search(list(QUERIES), k=5)


def test_same_ranking_as_bm25s_directly(bm25, corpus):
    import bm25s

    direct = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    direct.index(bm25s.tokenize(corpus.contents, stopwords="en", show_progress=False), show_progress=False)
    docs, scores = direct.retrieve(bm25s.tokenize(list(QUERIES), stopwords="en", show_progress=False), k=3,
                                   show_progress=False)
    ours = bm25.search(list(QUERIES), k=3)
    for hits, d_row, s_row in zip(ours, docs.tolist(), scores.tolist()):
        assert [h.docid for h in hits] == [corpus.ids[j] for j, s in zip(d_row, s_row) if s > 0]
        assert [h.score for h in hits] == pytest.approx([s for s in s_row if s > 0], rel=1e-6)


class TestBM25Conformance(RetrieverConformance):
    @pytest.fixture
    def retriever(self, bm25):
        return bm25
