"""Loaders: the THUIR KDD'19 table, generic JSONL session logs, published LLM outputs, the fine-tuning files.

Every loader returns :class:`Click` rows (one clicked document each) with stable unique ``id`` keys, in file order.
A search session is a ``(user, task_id)`` pair; a query is ``(user, task_id, query_position)``.

Units and conventions (spec §5):

* ``rank`` is **1-based** here. The THUIR CSV stores it 0-based (0–29) while the paper's glossary says 1–30, so
  :func:`load_thuir` adds 1 [ours, spec §5.2]. JSONL logs carry a 1-based ``rank`` already.
* Dwell times are **seconds**. The upstream fine-tuning text labels them "ms", but the CSV value (e.g. task dwell
  509.552) is evidently seconds [checked, spec §5.3].
* The CSV starts with a UTF-8 BOM; :func:`siftkit.core.io.read_csv` strips it.

The data under ``../shared/data/usefulness`` has no licence: it is read from there and never copied.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable

from siftkit.core.errors import InputError
from siftkit.core.io import iter_jsonl, read_csv, read_json

GROUPS = ("HR-HU", "HR-LU", "LR-HU", "LR-LU")


@dataclass
class Click:
    """One clicked document in a search session, with its task-, query-, document- and behaviour-level features.

    Optional features are ``None`` when the log lacks them; the prompt builder then leaves them out.
    """

    id: str
    user: str
    task_id: str
    task: str
    """Task description."""
    query: str
    url: str
    title: str = ""
    summary: str = ""
    query_position: int | None = None
    """1-based position of the query in the task session."""
    rank: int | None = None
    """1-based SERP rank."""
    task_sat: float | None = None
    """Task satisfaction (THUIR 1–5)."""
    task_dwell_s: float | None = None
    query_sat: float | None = None
    """Query satisfaction (THUIR 1–5)."""
    query_dwell_s: float | None = None
    task_relevance: float | None = None
    """0–3."""
    query_relevance: float | None = None
    """0–3."""
    url_dwell_s: float | None = None
    avg_url_dwell_user_task_s: float | None = None
    avg_url_dwell_user_s: float | None = None
    ctr: float | None = None
    total_queries: int | None = None
    max_clicks_user_query: int | None = None
    usefulness: int | None = None
    """Gold usefulness 0–3 (the user's own label), when known."""

    @property
    def session(self) -> tuple[str, str]:
        return (self.user, self.task_id)

    @property
    def query_key(self) -> tuple[str, str, str]:
        return (self.user, self.task_id, str(self.query_position) if self.query_position is not None else self.query)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def divergence_group(c: Click) -> str | None:
    """``HR``/``LR`` by ``query_relevance >= 2``, ``HU``/``LU`` by ``usefulness >= 2`` (spec §3); None if unknown."""
    if c.query_relevance is None or c.usefulness is None:
        return None
    return f"{'H' if c.query_relevance >= 2 else 'L'}R-{'H' if c.usefulness >= 2 else 'L'}U"


def sessions(clicks: Iterable[Click]) -> dict[tuple[str, str], list[Click]]:
    """Clicks grouped by ``(user, task_id)``, in first-seen order, each sorted by (query position, rank, id)."""
    out: dict[tuple[str, str], list[Click]] = {}
    for c in clicks:
        out.setdefault(c.session, []).append(c)
    for k, cs in out.items():
        cs.sort(key=lambda c: (c.query_position if c.query_position is not None else 0,
                               c.rank if c.rank is not None else 0))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# THUIR KDD'19 (df_final_llama.csv)
# ---------------------------------------------------------------------------------------------------------------------

THUIR_CSV = "usefulness/LLMUsefulnessLabels/dataset/df_final_llama.csv"
_T = {"i": ((int,), True), "f": ((float,), False), "s": ((str,), True)}
_THUIR_SCHEMA = {
    "id": _T["i"], "user": _T["s"], "task_id": _T["s"], "task": _T["s"], "task_sat_score": _T["f"],
    "task_dwell_time": _T["f"], "trs_query": _T["s"], "query_position": ((int,), False), "query_sat_score": _T["f"],
    "query_dwell_time": _T["f"], "url": _T["s"], "title_en": ((str,), False), "summary_en": ((str,), False),
    "rank": _T["f"], "usefulness_score": ((int,), True), "task_relevance": _T["f"], "query_relevance": _T["f"],
    "url_dwell_time": _T["f"], "avg_url_dwell_time_per_user_task": _T["f"], "avg_url_dwell_time_per_user": _T["f"],
    "CTR": _T["f"], "total_queries": ((int,), False), "max_clicks_per_user_query": ((int,), False),
}


def load_thuir(path: str | Path) -> list[Click]:
    """Read ``df_final_llama.csv`` (THUIR KDD'19, 3,046 clicks) into :class:`Click` rows.

    ``rank`` is shifted from 0-based to 1-based [ours]; dwell times are kept as seconds; ``usefulness_score`` is
    the gold label and must be 0–3.

    Args:
        path: the CSV, or the ``../shared/data`` folder (the file is then found under it).
    """
    path = Path(path)
    if path.is_dir():
        path = path / THUIR_CSV
    rows = read_csv(path, _THUIR_SCHEMA)
    out = []
    for line, r in enumerate(rows, 2):
        if not 0 <= r["usefulness_score"] <= 3:
            raise InputError(f"usefulness_score must be 0-3, got {r['usefulness_score']}", path, line,
                             "usefulness_score")
        rank = r["rank"]
        out.append(Click(
            id=str(r["id"]), user=r["user"], task_id=r["task_id"], task=r["task"], query=r["trs_query"],
            url=r["url"], title=r.get("title_en") or "", summary=r.get("summary_en") or "",
            query_position=r["query_position"], rank=int(rank) + 1 if rank is not None else None,
            task_sat=r["task_sat_score"], task_dwell_s=r["task_dwell_time"], query_sat=r["query_sat_score"],
            query_dwell_s=r["query_dwell_time"], task_relevance=r["task_relevance"],
            query_relevance=r["query_relevance"], url_dwell_s=r["url_dwell_time"],
            avg_url_dwell_user_task_s=r["avg_url_dwell_time_per_user_task"],
            avg_url_dwell_user_s=r["avg_url_dwell_time_per_user"], ctr=r["CTR"], total_queries=r["total_queries"],
            max_clicks_user_query=r["max_clicks_per_user_query"], usefulness=r["usefulness_score"]))
    _check_unique(out, path)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# generic JSONL session logs
# ---------------------------------------------------------------------------------------------------------------------

_NUM = (int, float)
JSONL_SCHEMA: dict[str, tuple[tuple[type, ...], bool]] = {
    "id": ((str, int), True), "user": ((str, int), True), "task_id": ((str, int), True), "task": ((str,), True),
    "query": ((str,), True), "url": ((str,), True), "title": ((str,), False), "summary": ((str,), False),
    "query_position": ((int,), False), "rank": ((int,), False), "task_sat": (_NUM, False),
    "task_dwell_s": (_NUM, False), "query_sat": (_NUM, False), "query_dwell_s": (_NUM, False),
    "task_relevance": (_NUM, False), "query_relevance": (_NUM, False), "url_dwell_s": (_NUM, False),
    "avg_url_dwell_user_task_s": (_NUM, False), "avg_url_dwell_user_s": (_NUM, False), "ctr": (_NUM, False),
    "total_queries": ((int,), False), "max_clicks_user_query": ((int,), False), "usefulness": ((int,), False),
}
_RANGES = {"rank": (1, None), "query_position": (1, None), "task_relevance": (0, 3), "query_relevance": (0, 3),
           "usefulness": (0, 3), "ctr": (0, 1)}


def load_sessions_jsonl(path: str | Path) -> list[Click]:
    """Read a user-supplied session log: one JSON object per clicked document.

    Required fields: ``id, user, task_id, task, query, url``; every other :class:`Click` field is optional and
    uses the same name (dwell times in seconds, ``rank`` and ``query_position`` 1-based, relevance and
    ``usefulness`` 0–3, ``ctr`` 0–1). Unknown fields are an error (they would silently drop out of the prompt).

    Example line::

        {"id": "c1", "user": "u1", "task_id": "t1", "task": "Plan a trip", "query": "cheap flights",
         "query_position": 1, "url": "https://example.org", "title": "Flights", "rank": 2, "usefulness": 3}
    """
    path = Path(path)
    known = {f.name for f in fields(Click)}
    out = []
    for line, obj in iter_jsonl(path, JSONL_SCHEMA):
        extra = sorted(set(obj) - known)
        if extra:
            raise InputError(f'unknown field "{extra[0]}" (known: {", ".join(sorted(known))})', path, line, extra[0])
        for name, (lo, hi) in _RANGES.items():
            v = obj.get(name)
            if v is not None and ((lo is not None and v < lo) or (hi is not None and v > hi)):
                raise InputError(f'field "{name}" out of range [{lo}, {hi if hi is not None else "∞"}]: {v}',
                                 path, line, name)
        for k in ("id", "user", "task_id"):
            obj[k] = str(obj[k])
        out.append(Click(**obj))
    _check_unique(out, path)
    return out


def write_sessions_jsonl(path: str | Path, clicks: Iterable[Click]) -> None:
    """Write :class:`Click` rows in the format :func:`load_sessions_jsonl` reads (``None`` fields left out)."""
    with open(path, "w", encoding="utf-8") as f:
        for c in clicks:
            f.write(json.dumps({k: v for k, v in c.to_dict().items() if v is not None}, ensure_ascii=False) + "\n")


def load_clicks(path: str | Path) -> list[Click]:
    """Dispatch on the suffix: ``.csv`` → :func:`load_thuir`, otherwise :func:`load_sessions_jsonl`."""
    path = Path(path)
    return load_thuir(path) if path.is_dir() or path.suffix.lower() == ".csv" else load_sessions_jsonl(path)


# ---------------------------------------------------------------------------------------------------------------------
# published outputs and the fine-tuning files
# ---------------------------------------------------------------------------------------------------------------------

RESULTS_DIR = "usefulness/LLMUsefulnessLabels/results/thuir"
PUBLISHED = {  # (model, prompt) -> file name under results/thuir; the GPT session files do not align (spec §5.4)
    ("Llama-3.3-70B", "baseline"): "llama3.3_70B_baseline.json",
    ("Llama-3.3-70B", "session"): "llama3.3_70B_session.json",
    ("GPT-4o-mini", "baseline"): "gpt4omini_baseline.json",
    ("GPT-4o-mini", "session"): "gpt4omini_session.json",
    ("GPT-3.5-turbo", "baseline"): "gptturbo_baseline.json",
    ("GPT-3.5-turbo", "session"): "gptturbo_session.json",
    ("Llama-3.1-8B", "baseline"): "llama3.1_8B_baseline.json",
    ("Llama-3.1-8B", "session"): "llama3.1_8B_session.json",
    ("Llama-3.2-3B", "baseline"): "llama3.2_3B_baseline.json",
    ("Llama-3.2-3B", "session"): "llama3.2_3B_session.json",
}
MISALIGNED = {("GPT-4o-mini", "session"), ("GPT-3.5-turbo", "session")}


def load_labels_json(path: str | Path) -> dict[str, Any]:
    """A ``{id: score}`` JSON object (a published output or our own ``label`` output); values are kept raw."""
    obj = read_json(path, expect=dict)  # {id: score}
    return {str(k): v for k, v in obj.items()}


def load_finetuning(path: str | Path) -> list[dict[str, Any]]:
    """The upstream fine-tuning JSON-lines (``instruction, input, usefulness_score, text, token_count``)."""
    schema = {"instruction": ((str,), True), "input": ((str,), True), "usefulness_score": ((int,), True)}
    return [obj for _, obj in iter_jsonl(path, schema)]


def _check_unique(clicks: list[Click], path: Path) -> None:
    seen: dict[str, int] = {}
    for i, c in enumerate(clicks, 1):
        if c.id in seen:
            raise InputError(f'duplicate id "{c.id}" (first at record {seen[c.id]})', path, None, "id")
        seen[c.id] = i
