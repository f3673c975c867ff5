"""A passage corpus in Search-R1's JSONL format: one ``{"id": "0", "contents": "\\"Title\\"\\ntext"}`` per line.

:meth:`Corpus.from_jsonl` checks every line and raises :class:`~siftkit.core.errors.InputError` naming the file,
the 1-based line and the field (bad JSON, not an object, ``id``/``contents`` missing or of the wrong type, a
duplicate ``id``). Blank lines are skipped. Integer ids are accepted and kept as strings (TREC ids are strings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from siftkit.core.errors import InputError
from siftkit.core.io import iter_text_lines
from siftkit.core.validate import cut


@dataclass
class Corpus:
    """Parallel lists of ids and contents; row ``i`` is document ``i`` in every index built from it.

    Attributes:
        ids: document ids (unique strings).
        contents: document texts, ``"Title"\\ntext`` in Search-R1 corpora.
        path: the file it came from, if any.

    Example:
        >>> corpus = Corpus.from_jsonl("corpus.jsonl")
        >>> corpus[0]
        {'id': '0', 'contents': '"Paris"\\nParis is the capital of France.'}
    """

    ids: list[str]
    contents: list[str]
    path: str | None = None
    _row: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        if len(self.ids) != len(self.contents):
            raise ValueError(f"{len(self.ids)} ids for {len(self.contents)} contents")
        self._row = {docid: i for i, docid in enumerate(self.ids)}
        if len(self._row) != len(self.ids):
            raise InputError("duplicate document ids", self.path, field="id")

    @classmethod
    def from_jsonl(cls, path: str | Path) -> "Corpus":
        """Read and validate a JSONL corpus; see the module docstring for the checks."""
        ids: list[str] = []
        contents: list[str] = []
        seen: dict[str, int] = {}
        for line_no, line in iter_text_lines(path):  # BOM, non-UTF-8 and empty files as the core readers
            if not line.strip():
                continue
            docid, text = _parse_line(line, path, line_no)
            if docid in seen:
                raise InputError(f'field "id": duplicate id {cut(docid)} (first on line {seen[docid]})', path,
                                 line_no, "id")
            seen[docid] = line_no
            ids.append(docid)
            contents.append(text)
        if not ids:
            raise InputError("no documents", path)
        return cls(ids, contents, path=str(path))

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]]) -> "Corpus":
        """Build from in-memory ``{"id", "contents"}`` dicts, with the same checks (line = record number)."""
        ids, contents = [], []
        for i, rec in enumerate(records, start=1):
            docid, text = _check_record(rec, None, i)
            ids.append(docid)
            contents.append(text)
        return cls(ids, contents)

    def to_jsonl(self, path: str | Path) -> None:
        """Write the corpus back in the same format (round-trips with :meth:`from_jsonl`)."""
        with open(path, "w", encoding="utf-8") as f:
            for docid, text in zip(self.ids, self.contents):
                f.write(json.dumps({"id": docid, "contents": text}, ensure_ascii=False) + "\n")

    def row(self, docid: str) -> int:
        """The row of ``docid``."""
        return self._row[docid]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, str]:
        return {"id": self.ids[i], "contents": self.contents[i]}

    def __iter__(self) -> Iterator[dict[str, str]]:
        return (self[i] for i in range(len(self)))


def _parse_line(line: str, path: str | Path, line_no: int) -> tuple[str, str]:
    """One JSONL line → ``(id, contents)`` or InputError."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON ({e.msg} at column {e.colno})", path, line_no) from None
    return _check_record(rec, path, line_no)


def _check_record(rec: Any, path: str | Path | None, line_no: int) -> tuple[str, str]:
    """Validate one decoded record → ``(id, contents)``."""
    if not isinstance(rec, dict):
        raise InputError(f"expected a JSON object, got {type(rec).__name__}", path, line_no)
    for name in ("id", "contents"):
        if name not in rec:
            raise InputError(f'field "{name}" missing', path, line_no, name)
    docid, text = rec["id"], rec["contents"]
    if isinstance(docid, bool) or not isinstance(docid, (str, int)):
        raise InputError(f'field "id" must be a string, got {type(docid).__name__}', path, line_no, "id")
    if not isinstance(text, str):
        raise InputError(f'field "contents" must be a string, got {type(text).__name__}', path, line_no,
                         "contents")
    docid = str(docid)
    if not docid.strip() or any(c.isspace() for c in docid):
        raise InputError(f'field "id" must be non-empty without whitespace (TREC), got {cut(docid)}', path, line_no,
                         "id")
    return docid, text
