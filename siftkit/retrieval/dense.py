"""Dense retrieval: embed passages once, exact inner-product search over L2-normalised rows (cosine).

As Search-R1's e5 retriever (search_r1 spec §3): FAISS ``IndexFlatIP`` over normalised embeddings; the embedder
adds its own query/passage prefixes. A query batch is one ``(nq, d)`` matrix and one ``index.search`` call.

    s(q, p) = ⟨e_q / ‖e_q‖, e_p / ‖e_p‖⟩

Example:
    >>> dense = DenseRetriever(load_embedder("minilm"), Corpus.from_jsonl("corpus.jsonl"))
    >>> dense.search(["capital of france"], k=3)
    >>> dense.save("runs/dense"); DenseRetriever.load("runs/dense")  # rebuilds the embedder from meta.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from siftkit.core.errors import InputError
from siftkit.retrieval.base import Hit, check_k
from siftkit.retrieval.corpus import Corpus

if TYPE_CHECKING:
    from siftkit.embed import Embedder


class DenseRetriever:
    """Exact dense retriever (faiss-cpu ``IndexFlatIP``).

    Args:
        embedder: any :class:`siftkit.embed.Embedder`.
        corpus: the documents; ``contents`` (title line included) is embedded with ``encode_passages``.
        batch_size: embedding batch size.

    References:
        Karpukhin et al., "Dense Passage Retrieval for Open-Domain Question Answering", arXiv:2004.04906;
        Johnson et al., "Billion-scale similarity search with GPUs" (faiss), arXiv:1702.08734
    """

    def __init__(self, embedder: Embedder, corpus: Corpus, batch_size: int = 64):
        import faiss

        self.embedder, self.corpus, self.batch_size = embedder, corpus, batch_size
        P = embedder.encode_passages(corpus.contents, batch_size=batch_size)  # (N, d)
        self.index = faiss.IndexFlatIP(embedder.dim)
        self.index.add(_normalised(P))

    # ------------------------------------------------------------------------------------------------- method
    def search(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        """Top-``k`` documents per query by cosine similarity, best first."""
        k = min(check_k(k), self.index.ntotal)
        queries = list(queries)
        if not queries:
            return []
        Q = _normalised(self.embedder.encode_queries(queries, batch_size=self.batch_size))  # (nq, d)
        scores, rows = self.index.search(Q, k)  # (nq, k), (nq, k)
        ids, contents = self.corpus.ids, self.corpus.contents
        return [[Hit(ids[j], s, contents[j]) for j, s in zip(r_row, s_row) if j >= 0]
                for r_row, s_row in zip(rows.tolist(), scores.tolist())]

    # ----------------------------------------------------------------------------------------------- plumbing
    def save(self, index_dir: str | Path) -> Path:
        """Write ``index.faiss``, ``ids.json`` (row → id), ``corpus.jsonl`` and ``meta.json`` to ``index_dir``."""
        import faiss

        d = Path(index_dir)
        d.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(d / "index.faiss"))
        (d / "ids.json").write_text(json.dumps(self.corpus.ids))
        self.corpus.to_jsonl(d / "corpus.jsonl")
        meta = {"kind": "dense", "embedder": self.embedder.model_id, "dim": self.embedder.dim,
                "n_docs": len(self.corpus)}
        (d / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        return d

    @classmethod
    def load(cls, index_dir: str | Path, embedder: Embedder | None = None, batch_size: int = 64) -> "DenseRetriever":
        """Read an index written by :meth:`save`; ``embedder`` defaults to ``load_embedder(meta["embedder"])``."""
        import faiss

        d = Path(index_dir)
        meta = json.loads((d / "meta.json").read_text())
        if meta.get("kind") != "dense":
            raise InputError(f'not a dense index (kind {meta.get("kind")!r})', d / "meta.json", field="kind")
        if embedder is None:
            from siftkit.embed import load_embedder

            embedder = load_embedder(meta["embedder"])
        if embedder.dim != meta["dim"]:
            raise InputError(f"embedder {embedder.model_id!r} has dim {embedder.dim}, index has {meta['dim']}",
                             d / "meta.json", field="dim")
        self = cls.__new__(cls)
        self.embedder, self.batch_size = embedder, batch_size
        self.corpus = Corpus.from_jsonl(d / "corpus.jsonl")
        if json.loads((d / "ids.json").read_text()) != self.corpus.ids:
            raise InputError("ids.json and corpus.jsonl disagree", d / "ids.json")
        self.index = faiss.read_index(str(d / "index.faiss"))
        return self

    def __repr__(self) -> str:
        return f"DenseRetriever({self.embedder!r}, n_docs={len(self.corpus)})"


def _normalised(X: np.ndarray) -> np.ndarray:
    """Row-L2-normalised float32 copy (idempotent on normalised input)."""
    import faiss

    X = np.array(X, dtype=np.float32, order="C", copy=True)  # (n, d)
    faiss.normalize_L2(X)
    return X
