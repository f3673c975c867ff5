"""Conformance tests every :class:`~siftkit.retrieval.Retriever` must pass (pytest; subclass and give fixtures).

Example (in ``tests/``)::

    class TestMyRetriever(RetrieverConformance):
        @pytest.fixture
        def retriever(self, corpus):
            return MyRetriever(corpus)

The subclass (or a conftest) supplies the fixtures ``retriever`` and ``corpus`` (the :class:`Corpus` it indexes)
and may set ``queries`` to texts that match something in that corpus.
"""

from __future__ import annotations

import math

import pytest

from siftkit.retrieval.base import Hit


class RetrieverConformance:
    """Shape, order and batching contract of ``search(queries, k)``."""

    queries: tuple[str, ...] = ("glass bridges", "volcano eruption", "honey bees")

    def test_one_list_per_query_at_most_k_sorted(self, retriever, corpus):
        results = retriever.search(list(self.queries), k=3)
        assert len(results) == len(self.queries)
        for hits in results:
            assert len(hits) <= 3
            assert all(isinstance(h, Hit) and isinstance(h.docid, str) and math.isfinite(h.score) for h in hits)
            assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
            assert len({h.docid for h in hits}) == len(hits)
            for h in hits:
                assert corpus.contents[corpus.row(h.docid)] == h.contents

    def test_batch_equals_one_by_one(self, retriever):
        batch = retriever.search(list(self.queries), k=3)
        single = [retriever.search([q], k=3)[0] for q in self.queries]
        assert [[h.docid for h in hits] for hits in batch] == [[h.docid for h in hits] for hits in single]
        for b, s in zip(batch, single):
            assert [h.score for h in b] == pytest.approx([h.score for h in s], rel=1e-4, abs=1e-5)  # float32

    def test_k_larger_than_corpus_and_empty_batch(self, retriever, corpus):
        hits = retriever.search([self.queries[0]], k=len(corpus) + 5)[0]
        assert 1 <= len(hits) <= len(corpus)
        assert retriever.search([], k=3) == []

    def test_k_one_is_the_top_hit(self, retriever):
        top = retriever.search([self.queries[0]], k=1)[0]
        assert len(top) == 1
        assert top[0].docid == retriever.search([self.queries[0]], k=3)[0][0].docid

