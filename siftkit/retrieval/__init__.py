"""Retrieval: one interface (:class:`Retriever`, :class:`Hit`), BM25, dense, RRF hybrid, the Search-R1
``/retrieve`` server and its client.

Light names import eagerly; engine-backed classes import on first use (bm25s, faiss, fastapi and httpx stay out of
``import siftkit.retrieval``).
"""

from importlib import import_module

from siftkit.retrieval.base import Hit, Retriever, split_title, to_trec
from siftkit.retrieval.corpus import Corpus

_LAZY = {
    "BM25Retriever": "siftkit.retrieval.bm25",
    "DenseRetriever": "siftkit.retrieval.dense",
    "HybridRetriever": "siftkit.retrieval.hybrid",
    "rrf": "siftkit.retrieval.hybrid",
    "build_retriever": "siftkit.retrieval.index",
    "load_retriever": "siftkit.retrieval.index",
    "RemoteRetriever": "siftkit.retrieval.remote",
    "create_app": "siftkit.retrieval.server",
    "ServerConfig": "siftkit.retrieval.server",
}

__all__ = ["Hit", "Retriever", "Corpus", "split_title", "to_trec", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'siftkit.retrieval' has no attribute {name!r}")
