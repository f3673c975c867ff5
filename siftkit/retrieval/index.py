"""Build a retriever by name, or load a saved index by its ``meta.json`` ``kind`` (bm25, dense, hybrid).

Example:
    >>> r = build_retriever(Corpus.from_jsonl("corpus.jsonl"), "hybrid", embedder="minilm")
    >>> r.save("runs/hybrid"); load_retriever("runs/hybrid")
"""

from __future__ import annotations

from pathlib import Path

from siftkit.core.errors import InputError
from siftkit.core.io import read_json
from siftkit.retrieval.base import Retriever
from siftkit.retrieval.corpus import Corpus

KINDS = ("bm25", "dense", "hybrid")


def build_retriever(corpus: Corpus, kind: str = "bm25", embedder: str = "minilm") -> Retriever:
    """Index ``corpus`` with ``kind`` ∈ {bm25, dense, hybrid}; ``embedder`` names the dense model."""
    from siftkit.retrieval.bm25 import BM25Retriever
    from siftkit.retrieval.dense import DenseRetriever
    from siftkit.retrieval.hybrid import HybridRetriever

    if kind not in KINDS:
        raise InputError(f'retriever "{kind}": expected one of {", ".join(KINDS)}', field="retriever")
    if kind == "bm25":
        return BM25Retriever(corpus)
    from siftkit.embed import load_embedder

    dense = DenseRetriever(load_embedder(embedder), corpus)
    return dense if kind == "dense" else HybridRetriever([BM25Retriever(corpus), dense])


def load_retriever(index_dir: str | Path) -> Retriever:
    """Load the index in ``index_dir`` with the class its ``meta.json`` names."""
    d = Path(index_dir)
    meta_path = d / "meta.json"
    if not meta_path.is_file():
        raise InputError("not a siftkit index (no meta.json)", d)
    kind = read_json(meta_path, expect=dict).get("kind")  # BOM, UTF-8, bad JSON: one InputError line
    if kind == "bm25":
        from siftkit.retrieval.bm25 import BM25Retriever

        return BM25Retriever.load(d)
    if kind == "dense":
        from siftkit.retrieval.dense import DenseRetriever

        return DenseRetriever.load(d)
    if kind == "hybrid":
        from siftkit.retrieval.hybrid import HybridRetriever

        return HybridRetriever.load(d)
    raise InputError(f"unknown index kind {kind!r}", meta_path, field="kind")
