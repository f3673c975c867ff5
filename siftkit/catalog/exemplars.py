"""Exemplar retrieval (leave-one-database-out) and the prompts (spec §2 "Retrieval key", "Prompt").

The exemplar pool is every asset of the same kind with a non-trivial human description that is not a duplicate
(``skip_eval``). For a target in database D, exemplars come only from databases other than D, so nothing of D - its
descriptions included - can reach D's prompts:

* BM25 (spec retriever a): one BM25 index per held-out database (a "fold"), built on first use and cached;
* dense (spec retriever b): the pool's retrieval keys are embedded once with a core embedder (e.g. MiniLM), and a
  target's cosine scores against D's rows are set to -inf before the top-k [ours: exact, and the same as one index
  per fold, without embedding the pool once per fold].
"""

from __future__ import annotations

import random
import re
import zlib
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from siftkit.catalog.model import Asset, expand_name, is_trivial

if TYPE_CHECKING:
    from siftkit.embed import Embedder

INSTRUCTION = {"column": "You write data-catalog descriptions of database columns.",
               "table": "You write data-catalog descriptions of database tables."}
REQUEST = "Write a one-sentence business description. Do not state facts that the context does not support."
MAX_SAMPLE_CHARS = 40  # [ours] long sample values are cut in prompts


def usable(a: Asset) -> bool:
    """In the exemplar pool / the scored set: a non-trivial human description, not a duplicate copy."""
    return bool(a.description) and not a.skip_eval and not is_trivial(a.description, a.name, a.original_name)


def _fmt(v: Any) -> str:
    s = str(v)
    return s if len(s) <= MAX_SAMPLE_CHARS else s[:MAX_SAMPLE_CHARS] + "…"


def retrieval_key(a: Asset) -> str:
    """Spec: "table.column (type): name tokens + sample values", names split and abbreviations expanded; for a
    table, its name tokens and its column names. [ours] Only sample values with a letter enter the key: BM25 gives
    rare numbers (ids, dates) a high weight that carries no meaning."""
    if a.kind == "table":
        return f"{a.table}: {expand_name(a.table)}; columns: " + " ".join(expand_name(c) for c in a.siblings[:40])
    return (f"{a.table}.{a.column} ({a.type}): {expand_name(a.column)} {expand_name(a.table)} "
            + " ".join(_fmt(v) for v in a.samples[:10] if re.search(r"[A-Za-z]", str(v))))


def context(a: Asset, full: bool = True) -> str:
    """The asset's context as the prompt shows it; ``full=False`` is the shorter form used for exemplars [ours]."""
    if a.kind == "table":
        cols = a.siblings[:25] if full else a.siblings[:10]
        lines = [f"Table: {a.table}", "Columns: " + ", ".join(cols) + (" …" if len(a.siblings) > len(cols) else "")]
        if full and a.sibling_descriptions:
            lines.append("Column descriptions: " + "; ".join(f"{k}: {v}" for k, v in
                                                             list(a.sibling_descriptions.items())[:10]))
        return "\n".join(lines)
    lines = [f"Column: {a.table}.{a.column} ({a.type})"]
    if a.samples:
        lines.append("Sample values: " + ", ".join(_fmt(v) for v in a.samples[:10 if full else 5]))
    if full:
        st = a.stats
        parts = [f"{k} {st[k]:.3g}" if isinstance(st.get(k), float) else f"{k} {st[k]}"
                 for k in ("null_fraction", "unique_count", "min", "max") if st.get(k) is not None]
        if parts:
            lines.append("Statistics: " + ", ".join(parts))
        if a.foreign_keys:
            lines.append("References: " + ", ".join(a.foreign_keys))
        if a.siblings:
            lines.append("Other columns: " + ", ".join(a.siblings[:15]))
    return "\n".join(lines)


def build_prompt(target: Asset, exemplars: Sequence[Asset]) -> list[dict[str, str]]:
    """Chat messages: a system message (instruction and request), then each exemplar as a user turn (its context)
    answered by an assistant turn (its description), then the target's context as the last user turn [ours: the
    few-shot chat layout small instruction models follow best]. The target's own description is never read here.
    """
    msgs = [{"role": "system", "content": f"{INSTRUCTION[target.kind]} {REQUEST} Answer with the description only."}]
    for e in exemplars:
        msgs += [{"role": "user", "content": context(e, full=False)},
                 {"role": "assistant", "content": e.description.strip()}]
    msgs.append({"role": "user", "content": context(target)})
    return msgs


def prompt_text(messages: Sequence[dict[str, str]]) -> str:
    """All message contents joined (for leak checks and prompt sizes)."""
    return "\n\n".join(m["content"] for m in messages)


class ExemplarPool:
    """Exemplars of one kind from ``assets``, searched leave-one-database-out.

    Args:
        assets: any assets; the usable ones of ``kind`` form the pool.
        kind: ``"column"`` or ``"table"``.
        lodo: leave the target's database out (evaluation). ``False`` [ours] is for describing assets that have no
            description yet: their own database's descriptions are then fair exemplars (the target, having none,
            is never in the pool).
        embedder: a :class:`siftkit.embed.Embedder` for :meth:`dense` (e.g. ``load_embedder("minilm")``); the pool
            is embedded on first use.
    """

    def __init__(self, assets: Sequence[Asset], kind: str, lodo: bool = True, embedder: "Embedder | None" = None):
        self.kind, self.lodo, self.embedder = kind, lodo, embedder
        self.pool = [a for a in assets if a.kind == kind and usable(a)]
        self._folds: dict[str, tuple[Any, list[Asset]]] = {}
        self._P: np.ndarray | None = None  # (N, d) unit rows: the pool's embedded retrieval keys
        self._q: dict[str, np.ndarray] = {}  # target id → (d,) unit query embedding

    def _fold(self, db: str):
        if not self.lodo:
            db = "\0all"  # one index over the whole pool
        if db not in self._folds:
            from siftkit.retrieval import BM25Retriever, Corpus

            mine = [a for a in self.pool if a.db != db]
            index = None
            if mine:
                corpus = Corpus.from_records({"id": str(i), "contents": retrieval_key(a)} for i, a in enumerate(mine))
                index = BM25Retriever(corpus)
            self._folds[db] = (index, mine)
        return self._folds[db]

    def candidates(self, db: str) -> list[Asset]:
        """The exemplars a target of database ``db`` may see."""
        return self._fold(db)[1]

    def retrieve(self, target: Asset, k: int) -> list[Asset]:
        """The top-``k`` BM25 exemplars from other databases, best first (fewer when fewer share a term)."""
        if k <= 0:
            return []
        index, mine = self._fold(target.db)
        if index is None:
            return []
        hits = index.search([retrieval_key(target)], k=k)[0]
        return [mine[int(h.docid)] for h in hits]

    def embed_targets(self, targets: Sequence[Asset]) -> None:
        """Embed the retrieval keys of ``targets`` in one batch (:meth:`dense` would embed them one by one)."""
        todo = [t for t in dict((t.id, t) for t in targets).values() if t.id not in self._q]
        if todo:
            Q = _unit(self._embedder().encode_queries([retrieval_key(t) for t in todo]))  # (n, d)
            self._q.update((t.id, q) for t, q in zip(todo, Q))

    def dense(self, target: Asset, k: int) -> list[Asset]:
        """The top-``k`` exemplars by cosine similarity of embedded retrieval keys (spec: "use cosine"), from other
        databases only, best first; ties keep pool order."""
        if k <= 0 or not self.pool:
            return []
        if self._P is None:
            self._P = _unit(self._embedder().encode_passages([retrieval_key(a) for a in self.pool]))  # (N, d)
            self._db = np.array([a.db for a in self.pool])  # (N,)
        self.embed_targets([target])
        s = self._P @ self._q[target.id]  # (N,) cosine
        if self.lodo:
            s = np.where(self._db == target.db, -np.inf, s)  # the fold: the target's database is never a candidate
        top = np.argsort(-s, kind="stable")[:k]
        return [self.pool[i] for i in top if s[i] > -np.inf]

    def _embedder(self) -> "Embedder":
        if self.embedder is None:
            raise ValueError("dense retrieval needs an embedder (ExemplarPool(..., embedder=load_embedder(...)))")
        return self.embedder

    def random(self, target: Asset, k: int, seed: int = 0) -> list[Asset]:
        """``k`` exemplars drawn uniformly from other databases, reproducibly per (target, seed)."""
        mine = self.candidates(target.db)
        rng = random.Random(zlib.crc32(f"{seed}:{target.id}".encode()))
        return rng.sample(mine, min(k, len(mine)))


def _unit(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    X = np.asarray(X, dtype=np.float32)  # (n, d)
    n = np.linalg.norm(X, axis=1, keepdims=True)  # (n, 1)
    return X / np.where(n > 0, n, 1)
