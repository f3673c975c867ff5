"""Hybrid retrieval by reciprocal-rank fusion (RRF; Cormack, Clarke & Büttcher, SIGIR 2009).

Each retriever r ranks its top ``depth`` documents (rank 1 = best). The fused score of document d is

    RRF(d) = Σ_r 1 / (k_rrf + rank_r(d))

summed over the retrievers that returned d (a missing document adds 0); k_rrf = 60 as in the paper. Scores of the
parts are ignored, so BM25 and cosine scores need no calibration. Ties keep first-seen order (retriever order, then
rank), so results are deterministic.

Example:
    >>> hybrid = HybridRetriever([bm25, dense], k_rrf=60)
    >>> hybrid.search(["capital of france"], k=3)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from siftkit.retrieval.base import Hit, Retriever, check_k


# --------------------------------------------------------------------------------------------------------- method
def rrf(runs: Sequence[Sequence[Hit]], k_rrf: float = 60.0) -> list[Hit]:
    """Fuse ranked lists for one query: ``score(d) = Σ_r 1 / (k_rrf + rank_r(d))``, best first.

    Args:
        runs: one ranked hit list per retriever (best first).
        k_rrf: the RRF constant k (paper: 60).

    Returns:
        Every document found by any run, with its fused score; ``contents`` from the first run that had it.
    """
    fused: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for hits in runs:
        for rank, h in enumerate(hits, start=1):
            fused[h.docid] = fused.get(h.docid, 0.0) + 1.0 / (k_rrf + rank)
            first.setdefault(h.docid, h)
    order = sorted(fused, key=lambda docid: -fused[docid])  # stable: ties keep first-seen order
    return [Hit(docid, fused[docid], first[docid].contents) for docid in order]


class HybridRetriever:
    """Reciprocal-rank fusion of several retrievers (typically BM25 + dense).

    Args:
        retrievers: the parts; each is searched once per batch.
        k_rrf: the RRF constant [paper: 60].
        depth: how many hits each part contributes per query (at least ``k``).

    References:
        Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion outperforms Condorcet and individual Rank Learning
        Methods", SIGIR 2009. https://doi.org/10.1145/1571941.1572114
    """

    def __init__(self, retrievers: Sequence[Retriever], k_rrf: float = 60.0, depth: int = 100):
        if len(retrievers) < 1:
            raise ValueError("HybridRetriever needs at least one retriever")
        if k_rrf < 0:
            raise ValueError(f"k_rrf must be >= 0, got {k_rrf}")
        self.retrievers, self.k_rrf, self.depth = list(retrievers), k_rrf, check_k(depth)

    def search(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        """Top-``k`` fused documents per query."""
        k = check_k(k)
        queries = list(queries)
        per_part = [r.search(queries, max(k, self.depth)) for r in self.retrievers]  # parts × nq lists
        return [rrf([part[i] for part in per_part], self.k_rrf)[:k] for i in range(len(queries))]

    # ----------------------------------------------------------------------------------------------- plumbing
    def save(self, index_dir: str | Path) -> Path:
        """Save each part under ``index_dir/part{i}`` and the fusion settings in ``meta.json``."""
        d = Path(index_dir)
        d.mkdir(parents=True, exist_ok=True)
        parts = []
        for i, r in enumerate(self.retrievers):
            r.save(d / f"part{i}")
            parts.append(f"part{i}")
        meta = {"kind": "hybrid", "k_rrf": self.k_rrf, "depth": self.depth, "parts": parts}
        (d / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        return d

    @classmethod
    def load(cls, index_dir: str | Path) -> "HybridRetriever":
        """Read an index written by :meth:`save` (parts load through :func:`siftkit.retrieval.load_retriever`)."""
        from siftkit.retrieval.index import load_retriever

        d = Path(index_dir)
        meta = json.loads((d / "meta.json").read_text())
        return cls([load_retriever(d / p) for p in meta["parts"]], k_rrf=meta["k_rrf"], depth=meta["depth"])

    def __repr__(self) -> str:
        return f"HybridRetriever({self.retrievers!r}, k_rrf={self.k_rrf})"
