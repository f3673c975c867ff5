"""The catalog: databases → tables → columns, and the flat asset view the method works on.

An :class:`Asset` is one table or column with everything a prompt may show (spec §2 "Asset model"): type, sample
values, profile statistics, foreign keys, sibling columns, and the existing (human) description if any.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from siftkit.core.errors import InputError

# [ours] common catalog abbreviations, expanded in retrieval keys and in the trivial-description rule
ABBREVIATIONS = {
    "id": "identifier", "num": "number", "no": "number", "nbr": "number", "dt": "date", "amt": "amount",
    "qty": "quantity", "desc": "description", "cnt": "count", "pct": "percent", "avg": "average", "min": "minimum",
    "max": "maximum", "addr": "address", "tel": "telephone", "ts": "timestamp", "yr": "year", "mo": "month",
    "cd": "code", "nm": "name", "dob": "date of birth", "cust": "customer", "acct": "account", "prod": "product",
    "txn": "transaction", "trans": "transaction", "img": "image", "url": "url", "st": "state", "lat": "latitude",
    "lon": "longitude", "lng": "longitude", "std": "standard", "dept": "department", "emp": "employee",
    "org": "organisation", "info": "information", "stat": "statistic", "pos": "position", "ref": "reference",
}


@dataclass
class Column:
    """One column: ``samples`` holds up to 10 distinct non-null values; statistics are ``None`` when unknown."""

    name: str
    type: str = ""
    description: str | None = None
    samples: list[Any] = field(default_factory=list)
    null_fraction: float | None = None
    unique_count: int | None = None
    min: Any = None
    max: Any = None
    foreign_keys: list[str] = field(default_factory=list)  # "table.column" targets
    original_name: str | None = None  # BIRD's expanded name
    ai_description: str | None = None  # BIRD's third-party LLM description (a competitor, never gold)
    skip_eval: bool = False  # a duplicate (Spider2 yearly copy): kept as context, never scored


@dataclass
class Table:
    name: str
    columns: list[Column] = field(default_factory=list)
    description: str | None = None
    row_count: int | None = None
    primary_key: list[str] = field(default_factory=list)
    ai_description: str | None = None


@dataclass
class Database:
    name: str
    tables: list[Table] = field(default_factory=list)
    source: str = ""


@dataclass
class Catalog:
    databases: list[Database] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"databases": [asdict(d) for d in self.databases]}

    @classmethod
    def from_dict(cls, data: Any, path: str | Path | None = None) -> "Catalog":
        """Rebuild from :meth:`to_dict` output; a missing or mistyped field is an InputError naming it."""
        if not isinstance(data, dict) or not isinstance(data.get("databases"), list):
            raise InputError('expected an object with a "databases" list', path, field="databases")
        dbs = []
        for i, d in enumerate(data["databases"]):
            try:
                tables = [Table(**{**t, "columns": [Column(**c) for c in t.get("columns", [])]})
                          for t in d.get("tables", [])]
                dbs.append(Database(d["name"], tables, d.get("source", "")))
            except (TypeError, KeyError, AttributeError) as e:
                raise InputError(f"databases[{i}]: missing or bad field {e}", path, field=f"databases[{i}]") from None
        return cls(dbs)

    def save(self, path: str | Path) -> Path:
        from siftkit.core.io import atomic_write_text

        return atomic_write_text(path, json.dumps(self.to_dict(), indent=1, default=str, ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> "Catalog":
        from siftkit.core.io import read_json

        return cls.from_dict(read_json(path), path)

    def assets(self) -> list["Asset"]:
        """Every table then its columns, database by database (the order of the catalog)."""
        out = []
        for d in self.databases:
            for t in d.tables:
                out.append(Asset.of_table(d, t))
                out += [Asset.of_column(d, t, c) for c in t.columns]
        return out


@dataclass
class Asset:
    """A table (``column is None``) or a column, with its context."""

    kind: str  # "table" | "column"
    db: str
    table: str
    column: str | None
    type: str
    description: str | None
    samples: list[Any]
    stats: dict[str, Any]
    foreign_keys: list[str]
    siblings: list[str]  # the other columns of the table (for a table: all its columns)
    sibling_descriptions: dict[str, str]  # column → existing description (used in table prompts)
    original_name: str | None = None
    ai_description: str | None = None
    skip_eval: bool = False

    @property
    def id(self) -> str:
        return f"{self.db}.{self.table}" + (f".{self.column}" if self.column else "")

    @property
    def name(self) -> str:
        return self.column or self.table

    @classmethod
    def of_table(cls, d: Database, t: Table) -> "Asset":
        return cls("table", d.name, t.name, None, "table", t.description, [],
                   {"row_count": t.row_count, "primary_key": t.primary_key}, [], [c.name for c in t.columns],
                   {c.name: c.description for c in t.columns if c.description}, None, t.ai_description)

    @classmethod
    def of_column(cls, d: Database, t: Table, c: Column) -> "Asset":
        stats = {"null_fraction": c.null_fraction, "unique_count": c.unique_count, "min": c.min, "max": c.max}
        return cls("column", d.name, t.name, c.name, c.type, c.description, list(c.samples[:10]), stats,
                   list(c.foreign_keys), [x.name for x in t.columns if x.name != c.name], {}, c.original_name,
                   c.ai_description, c.skip_eval)


# ------------------------------------------------------------------------------------------------ text helpers
def name_tokens(name: str) -> list[str]:
    """``"CustomerID"`` → ``["customer", "id"]``; snake_case, camelCase, digits and punctuation split."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name or "")
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", s)
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", s) if w]


def expand_name(name: str) -> str:
    """Name tokens with common abbreviations expanded: ``"cust_dt"`` → ``"customer date"``."""
    return " ".join(ABBREVIATIONS.get(w, w) for w in name_tokens(name))


def _alnum(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", (text or "").lower())


def is_trivial(description: str | None, name: str, original_name: str | None = None) -> bool:
    """Spec §2 rule: a description is trivial when, lower-cased with non-alphanumerics stripped, it equals the
    name, the expanded name, or (BIRD) the original name [ours: the original name is the dataset's own
    expansion]. Empty descriptions are trivial too."""
    d = _alnum(description or "")
    if not d:
        return True
    forms = {_alnum(name), _alnum(expand_name(name))}
    if original_name:
        forms |= {_alnum(original_name), _alnum(expand_name(original_name))}
    return d in forms


def first_line(text: str | None) -> str:
    """BIRD's ``ai_description`` ends with appended ``Stats:``/``Foreign keys:`` lines: only line 1 is scored."""
    return (text or "").strip().split("\n", 1)[0].strip()
