"""BM25 over bm25s (Lù, 2024, arXiv:2407.03618), with pyserini's k1 = 0.9, b = 0.4 as Search-R1's BM25 uses.

Tokenisation is bm25s's: lower-case, ``\\b\\w\\w+\\b`` words, English stop-words removed, and the Snowball English
stemmer only when PyStemmer is installed (it is not a siftkit dependency; ``stemmer="auto"``). A whole query batch
is tokenised in one call against the corpus vocabulary and scored in one ``BM25.retrieve`` call, so the wrapper adds
no per-query pass over the corpus. As pyserini, only documents sharing a term with the query are returned.

Score of document D for query Q (bm25s ``method="lucene"``, Lucene's BM25):

    s(Q, D) = Σ_{t ∈ Q} IDF(t) · tf(t, D) / (tf(t, D) + k1 · (1 − b + b · |D| / avgdl))
    IDF(t) = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))

Example:
    >>> bm25 = BM25Retriever(Corpus.from_jsonl("corpus.jsonl"))
    >>> bm25.search(["capital of france"], k=3)[0][0].docid
    >>> bm25.save("runs/bm25"); BM25Retriever.load("runs/bm25")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from siftkit.core.errors import InputError
from siftkit.retrieval.base import Hit, check_k
from siftkit.retrieval.corpus import Corpus

# Show bm25s's progress bars from this many documents on.
PROGRESS_MIN_DOCS = 50_000


def _make_stemmer(stemmer: str | None):
    """``"auto"`` → PyStemmer's English stemmer if installed, else ``None``; ``"english"`` requires it."""
    if stemmer is None:
        return None, None
    try:
        import Stemmer  # PyStemmer; optional
    except ImportError:
        if stemmer == "auto":
            return None, None
        raise InputError(f'stemmer "{stemmer}" needs PyStemmer (pip install PyStemmer)', field="stemmer") from None
    name = "english" if stemmer == "auto" else stemmer
    return Stemmer.Stemmer(name), name


class BM25Retriever:
    """Sparse BM25 retriever over a :class:`Corpus`.

    Args:
        corpus: the documents; ``contents`` is indexed (title line included, as pyserini does for wiki-18).
        k1: term-frequency saturation [code: pyserini default 0.9].
        b: length normalisation [code: pyserini default 0.4].
        stemmer: ``"auto"`` (PyStemmer English if installed), ``None``, or a PyStemmer language name.
        n_threads: bm25s ``retrieve`` threads (0 = the calling thread).

    References:
        Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond" (2009);
        bm25s: https://arxiv.org/abs/2407.03618
    """

    def __init__(self, corpus: Corpus, k1: float = 0.9, b: float = 0.4, stemmer: str | None = "auto",
                 n_threads: int = 0):
        import bm25s

        self.corpus = corpus
        self.k1, self.b, self.n_threads = k1, b, n_threads
        stem_fn, self.stemmer = _make_stemmer(stemmer)
        self.tokenizer = bm25s.tokenization.Tokenizer(stopwords="en", stemmer=stem_fn)
        progress = len(corpus) >= PROGRESS_MIN_DOCS
        doc_ids = self.tokenizer.tokenize(corpus.contents, update_vocab=True, return_as="ids",
                                          show_progress=progress)  # N lists of token ids
        self.bm25 = bm25s.BM25(k1=k1, b=b, method="lucene")
        self.bm25.index((doc_ids, self.tokenizer.get_vocab_dict()), show_progress=progress)

    # ------------------------------------------------------------------------------------------------- method
    def search(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        """Top-``k`` matching documents per query, best first; documents sharing no term (score 0) are left out."""
        k = min(check_k(k), len(self.corpus))
        queries = list(queries)
        if not queries:
            return []
        q_ids = self.tokenizer.tokenize(queries, update_vocab=False, return_as="ids",
                                        show_progress=False)  # nq lists; unknown words dropped
        docs, scores = self.bm25.retrieve(q_ids, k=k, show_progress=False, n_threads=self.n_threads)  # (nq, k)
        ids, contents = self.corpus.ids, self.corpus.contents
        return [[Hit(ids[j], s, contents[j]) for j, s in zip(d_row, s_row) if s > 0]  # [code] pyserini: matches only
                for d_row, s_row in zip(docs.tolist(), scores.tolist())]

    # ----------------------------------------------------------------------------------------------- plumbing
    def save(self, index_dir: str | Path) -> Path:
        """Write the index, tokenizer vocabulary, corpus and ``meta.json`` to ``index_dir``."""
        d = Path(index_dir)
        d.mkdir(parents=True, exist_ok=True)
        self.bm25.save(str(d), show_progress=False)
        self.tokenizer.save_vocab(str(d))
        self.corpus.to_jsonl(d / "corpus.jsonl")
        meta = {"kind": "bm25", "k1": self.k1, "b": self.b, "stemmer": self.stemmer, "n_docs": len(self.corpus)}
        (d / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        return d

    @classmethod
    def load(cls, index_dir: str | Path, n_threads: int = 0) -> "BM25Retriever":
        """Read an index written by :meth:`save`."""
        import bm25s

        d = Path(index_dir)
        meta = json.loads((d / "meta.json").read_text())
        if meta.get("kind") != "bm25":
            raise InputError(f'not a BM25 index (kind {meta.get("kind")!r})', d / "meta.json", field="kind")
        self = cls.__new__(cls)
        self.corpus = Corpus.from_jsonl(d / "corpus.jsonl")
        self.k1, self.b, self.n_threads = meta["k1"], meta["b"], n_threads
        stem_fn, self.stemmer = _make_stemmer(meta["stemmer"])
        self.tokenizer = bm25s.tokenization.Tokenizer(stopwords="en", stemmer=stem_fn)
        self.tokenizer.load_vocab(str(d))
        self.bm25 = bm25s.BM25.load(str(d), show_progress=False, verbosity=0)
        return self

    def __repr__(self) -> str:
        return f"BM25Retriever(n_docs={len(self.corpus)}, k1={self.k1}, b={self.b}, stemmer={self.stemmer!r})"
