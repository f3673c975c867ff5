"""The one retriever interface: ``search(queries, k) -> list[list[Hit]]``, best hit first.

Every retriever (BM25, dense, hybrid, remote) answers a batch of queries in one call, so that the engines can work
on the whole batch at once (one bm25s call, one faiss matrix search, one HTTP request).

A :class:`Hit` carries the corpus row as Search-R1 stores it (search_r1 spec §3): ``contents`` is
``"Title"\\ntext``. ``title`` and ``text`` split it; the Search-R1 observation keeps the quotes and so uses
``contents`` itself.

Example:
    >>> results = retriever.search(["who wrote hamlet"], k=3)
    >>> results[0][0].docid, results[0][0].score
    >>> print("\\n".join(to_trec(results, run_name="bm25")))
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, Sequence, runtime_checkable


class Hit(NamedTuple):  # a NamedTuple: immutable and ~3x cheaper to build than a frozen dataclass (BM25 hot path)
    """One retrieved document.

    Attributes:
        docid: the corpus ``id``.
        score: the retriever's score; higher is better, comparable only within one retriever.
        contents: the corpus ``contents`` (Search-R1: ``"Title"\\ntext``).
    """

    docid: str
    score: float
    contents: str

    @property
    def title(self) -> str | None:
        """The first line without its double quotes when ``contents`` has the Search-R1 layout, else ``None``."""
        return split_title(self.contents)[0]

    @property
    def text(self) -> str:
        """``contents`` after the title line (all of it when there is no quoted title)."""
        return split_title(self.contents)[1]

    def document(self) -> dict[str, str]:
        """The corpus row, ``{"id", "contents"}``, as the ``/retrieve`` API returns it."""
        return {"id": self.docid, "contents": self.contents}


def split_title(contents: str) -> tuple[str | None, str]:
    """``'"Paris"\\nParis is ...'`` → ``("Paris", "Paris is ...")``; no quoted first line: ``(None, contents)``."""
    first, sep, rest = contents.partition("\n")
    if sep and len(first) >= 2 and first.startswith('"') and first.endswith('"'):
        return first[1:-1], rest
    return None, contents


@runtime_checkable
class Retriever(Protocol):
    """Anything with ``search(queries, k)``; results are sorted by descending score, at most ``k`` per query."""

    def search(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]: ...


def to_trec(results: Sequence[Sequence[Hit]], run_name: str = "siftkit",
            qids: Sequence[str] | None = None) -> list[str]:
    """TREC run lines ``qid Q0 docid rank score run_name`` (rank from 1), one per hit.

    Args:
        results: the output of ``search``.
        run_name: the last column.
        qids: one id per query; ``"1"``, ``"2"``, ... by default.

    Returns:
        The lines, without newlines; write them with ``"\\n".join(lines) + "\\n"``.
    """
    if qids is None:
        qids = [str(i + 1) for i in range(len(results))]
    if len(qids) != len(results):
        raise ValueError(f"{len(qids)} qids for {len(results)} result lists")
    return [f"{qid} Q0 {h.docid} {rank} {h.score:.6f} {run_name}"
            for qid, hits in zip(qids, results) for rank, h in enumerate(hits, start=1)]


def check_k(k: int) -> int:
    """``k`` as an int ≥ 1."""
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)
