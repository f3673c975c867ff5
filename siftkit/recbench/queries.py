"""The released RecBench+ query files as :class:`Query` rows.

Five query types in the released JSON schema (github.com/jiani-huang/RecBench, data/{movie,book}/...):

* condition-based ``explicit`` / ``implicit`` / ``misinformed`` (``ExplicitQuery.json`` ...): one record per query
  with ``source_user``, ``sharedRelationships`` [[relation, value], ...], ``movieSubset`` / ``bookSubset`` (the
  ground-truth titles), ``movieSubsetId`` (movies only), ``movieCount`` / ``bookCount``,
  ``situational_description_query`` (the text the paper's experiments use; ``direct_description_query`` as a
  fallback) or, for misinformed queries, ``query``; ``multihop_info`` / ``misinformed`` are kept in ``meta``;
* profile-based ``interest`` (``InterestBasedQuery.json``, older name ``ItemBasedQuery.json``) and
  ``demographics`` (``UserBasedQuery.json``, renamed ``DemographicsBasedQuery.json``): one record per group with a
  list ``"query & ground true"`` of {reason, query, "movie subset" | "book subset"}; the query ids are
  ``"<groupIdx>-<childIdx>"`` counting non-empty children only, as the reference evaluation script does.

The group ``summary`` and the ``reason`` are kept out of :attr:`Query.text` (they leak the ground truth: spec §5.6).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from siftkit.core.errors import InputError

TYPES = ("explicit", "implicit", "misinformed", "interest", "demographics")
"""The five query types."""
CONDITION_TYPES = ("explicit", "implicit", "misinformed")
FILE_TYPES = {"ExplicitQuery": "explicit", "ImplicitQuery": "implicit", "MisinformedQuery": "misinformed",
              "InterestBasedQuery": "interest", "ItemBasedQuery": "interest", "UserBasedQuery": "demographics",
              "DemographicsBasedQuery": "demographics"}
PROFILE_K = 5
"""[ours] List size asked for profile queries (the paper's k is unknown; spec §2 allows 3 or 5)."""


@dataclass
class Query:
    """One recommendation request with its ground truth."""

    qid: str
    qtype: str
    """One of :data:`TYPES`."""
    domain: str
    """``movie`` or ``book``."""
    text: str
    """The request shown to the assistant."""
    gt_titles: list[str]
    gt_ids: list[str] = field(default_factory=list)
    conditions: list[tuple[str, str]] = field(default_factory=list)
    """``sharedRelationships`` (the TRUE conditions, also for misinformed queries)."""
    source: str = ""
    """Cluster for the bootstrap: the source user (condition queries) or the group (profile queries)."""
    k: int = PROFILE_K
    """How many titles the instruction asks for."""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_conditions(self) -> int:
        return len(self.conditions)

    @property
    def condition_bucket(self) -> str:
        """``1``, ``2``, ``3-4`` (the paper's buckets) or ``-`` for profile queries."""
        n = self.n_conditions
        return "-" if n == 0 else str(n) if n <= 2 else "3-4"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["conditions"] = [list(c) for c in self.conditions]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Query":
        return cls(**{**d, "conditions": [tuple(c) for c in d.get("conditions", [])]})


def query_type_of(path: Path) -> str:
    """The query type from a released file name (``MisinformedQuery.json`` -> ``misinformed``)."""
    stem = next((k for k in FILE_TYPES if k in Path(path).stem), None)  # also "book_ExplicitQuery", "x-MisinformedQuery"
    if stem is None:
        raise InputError(f"cannot tell the query type from the file name; use one of {', '.join(FILE_TYPES)}.json "
                         "or pass the type", path, field="type")
    return FILE_TYPES[stem]


def load_queries(path: str | Path, qtype: str | None = None, domain: str | None = None) -> list[Query]:
    """Read a released query file (or a generated one written by :func:`write_queries`).

    Args:
        path: the JSON file.
        qtype: one of :data:`TYPES`; default from the file name.
        domain: ``movie`` or ``book``; default from the records' subset field.
    """
    path = Path(path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"not valid JSON: {e}", path, getattr(e, "lineno", None)) from None
    if isinstance(records, dict) and records.get("format") == "siftkit-recbench":
        return [Query.from_json(q) for q in records["queries"]]
    if not isinstance(records, list):
        raise InputError("expected a JSON list of records", path)
    qtype = qtype or query_type_of(path)
    if qtype not in TYPES:
        raise InputError(f"unknown query type {qtype!r}; choose one of {', '.join(TYPES)}", field="type")
    out: list[Query] = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise InputError(f"record {i} is not an object", path, field="record")
        try:
            out += _profile(rec, i, qtype, domain) if qtype in ("interest", "demographics") else \
                [_condition(rec, i, qtype, domain)]
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"record {i}: missing or malformed field {e}", path, field=str(e).strip("'")) from None
    return out


def write_queries(path: str | Path, queries: list[Query], info: dict[str, Any] | None = None) -> None:
    """Write queries (atomically) in siftkit's own format, read back by :func:`load_queries`."""
    from siftkit.core.io import atomic_write_text

    atomic_write_text(path, json.dumps({"format": "siftkit-recbench", "info": info or {},
                                       "queries": [q.to_json() for q in queries]}, indent=1))


# ----------------------------------------------------------------------------------------------------------------
# plumbing
# ----------------------------------------------------------------------------------------------------------------


def _domain(rec: dict, domain: str | None) -> str:
    if domain:
        return domain
    return "book" if any(k.startswith("book") or k.startswith("Shared consecutive book") for k in rec) or \
        any("book subset" in c for c in rec.get("query & ground true", []) if isinstance(c, dict)) else "movie"


def _condition(rec: dict, i: int, qtype: str, domain: str | None) -> Query:
    dom = _domain(rec, domain)
    titles = rec[f"{dom}Subset"]
    ids = [str(x) for x in rec.get(f"{dom}SubsetId", [])]
    conds = [(str(r), str(v)) for r, v in rec["sharedRelationships"]]
    if qtype == "misinformed":
        text = rec.get("query") or rec.get("situational_description_query") or rec["direct_description_query"]
    else:
        text = rec.get("situational_description_query") or rec["direct_description_query"]
    meta = {k: rec[k] for k in ("multihop_info", "misinformed", "direct_description_query") if k in rec}
    qid = str(rec.get("data_idx", i))
    return Query(qid, qtype, dom, str(text), [str(t) for t in titles], ids, conds, str(rec.get("source_user", qid)),
                 int(rec.get(f"{dom}Count", len(titles))), meta)


def _profile(rec: dict, i: int, qtype: str, domain: str | None) -> list[Query]:
    dom = _domain(rec, domain)
    gidx = rec.get("data_idx", i)
    children = [c for c in rec["query & ground true"] if c]
    out = []
    for j, c in enumerate(children):
        subset = c.get(f"{dom} subset", c.get("movie subset", c.get("book subset")))
        if subset is None:
            raise KeyError(f"{dom} subset")
        meta = {"group_type": rec.get("group_type"), "group": rec.get("group"),
                "top_10": [str(m[0]) for m in rec.get("top_10_movies", [])]} if qtype == "demographics" else \
            {"source_users": rec.get("source_users")}
        out.append(Query(f"{gidx}-{j}", qtype, dom, str(c["query"]), [str(t) for t in subset], [], [],
                         f"group-{gidx}", PROFILE_K, meta))
    return out
