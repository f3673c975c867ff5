"""The shared data model: queries, items, candidates, judgments and runs.

Columns follow PyTerrier's names so frames move between stages unchanged: ``qid``, ``query``, ``docno``,
``text``, ``score``, ``rank``, ``label``. Records are plain dataclasses; every field has one type, checked by
:func:`siftkit.core.io.read_records` when records come from a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Iterable


@dataclass
class Query:
    """A search request or question. ``meta`` keeps anything else (e.g. gold answers, session id)."""

    qid: str
    query: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Item:
    """A document, product, passage, table or movie. ``title`` is optional; ``text`` is the body."""

    docno: str
    text: str
    title: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Candidate:
    """One ranked entry of a run: document ``docno`` for query ``qid`` with a ``score`` and 1-based ``rank``."""

    qid: str
    docno: str
    score: float
    rank: int = 0


@dataclass
class Judgment:
    """A graded label of ``docno`` for ``qid`` (qrels line, human or LLM judgment). ``annotator`` names its source."""

    qid: str
    docno: str
    label: int
    annotator: str = ""


# Field types for validation when reading from files: name -> (python types accepted, required)
SCHEMAS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "query": {"qid": ((str, int), True), "query": ((str,), True), "meta": ((dict,), False)},
    "item": {"docno": ((str, int), True), "text": ((str,), True), "title": ((str,), False), "meta": ((dict,), False)},
    "candidate": {"qid": ((str, int), True), "docno": ((str, int), True), "score": ((int, float), True),
                  "rank": ((int,), False)},
    "judgment": {"qid": ((str, int), True), "docno": ((str, int), True), "label": ((int,), True),
                 "annotator": ((str,), False)},
}
# Other names a field goes by in files: Search-R1 / Pyserini corpora write items as {"id", "contents"}, as the
# demo corpus (siftkit/data/demo/corpus.jsonl) does. An alias is used only when the field itself is absent.
ALIASES: dict[str, dict[str, str]] = {"item": {"id": "docno", "contents": "text"}}
RECORD_TYPES = {"query": Query, "item": Item, "candidate": Candidate, "judgment": Judgment}


class Run:
    """A ranked list per query: ``{qid: {docno: score}}`` plus a name.

    Ranks are derived by sorting on score (descending) with ``docno`` as a deterministic tie-break,
    as ``trec_eval`` does.
    """

    def __init__(self, scores: dict[str, dict[str, float]] | None = None, name: str = "siftkit"):
        self.scores: dict[str, dict[str, float]] = {str(q): {str(d): float(s) for d, s in v.items()}
                                                    for q, v in (scores or {}).items()}
        self.name = name

    @classmethod
    def from_candidates(cls, cands: Iterable[Candidate], name: str = "siftkit") -> "Run":
        run: dict[str, dict[str, float]] = {}
        for c in cands:
            run.setdefault(str(c.qid), {})[str(c.docno)] = float(c.score)
        return cls(run, name)

    def ranked(self, qid: str) -> list[Candidate]:
        docs = sorted(self.scores.get(qid, {}).items(), key=lambda kv: (-kv[1], kv[0]))
        return [Candidate(qid, d, s, i + 1) for i, (d, s) in enumerate(docs)]

    def candidates(self) -> list[Candidate]:
        return [c for q in sorted(self.scores) for c in self.ranked(q)]

    def to_frame(self):
        """A DataFrame with columns ``qid, docno, score, rank``."""
        import pandas as pd

        return pd.DataFrame([c.__dict__ for c in self.candidates()], columns=["qid", "docno", "score", "rank"])

    def cutoff(self, k: int) -> "Run":
        return Run({q: {c.docno: c.score for c in self.ranked(q)[:k]} for q in self.scores}, self.name)

    def __len__(self) -> int:
        return len(self.scores)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and self.scores == other.scores

    def __repr__(self) -> str:
        n = sum(len(v) for v in self.scores.values())
        return f"Run(name={self.name!r}, queries={len(self.scores)}, entries={n})"


def qrels_dict(judgments: Iterable[Judgment]) -> dict[str, dict[str, int]]:
    """``{qid: {docno: label}}`` as ir-measures and ranx take it."""
    out: dict[str, dict[str, int]] = {}
    for j in judgments:
        out.setdefault(str(j.qid), {})[str(j.docno)] = int(j.label)
    return out


def record_fields(kind: str) -> list[str]:
    return [f.name for f in fields(RECORD_TYPES[kind])]
