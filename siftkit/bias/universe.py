"""Product universes for the five asset classes (spec §6): project-written CSVs with an as-of date.

Each ``universes/<asset_class>.csv`` has ``#`` comment lines (source, ``as_of: YYYY-MM-DD``, what ``weight`` means)
and the columns ``id, name, aliases, sector, weight``:

* ``id``: the ticker (stocks, funds, crypto) or a project code (savings, portfolios: never matched in text);
* ``aliases``: extra names, ``|``-separated; the name without its legal suffix ("Inc.", "Corporation", ...) is added;
* ``sector``: GICS sector (stocks) or a category;
* ``weight``: market capitalisation (stocks, crypto), empty where a size weight is not meaningful.

A universe file can also be given by path (same columns), e.g. the full S&P 500 of another date.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from siftkit.core.errors import InputError

ASSET_CLASSES = ("stocks", "mutual_funds", "crypto", "savings", "portfolios")
"""The paper's five asset classes [paper]."""
NAME_ONLY_CLASSES = frozenset({"savings", "portfolios"})
"""Classes whose ``id`` is a project code, never looked for in text (a universe CSV by path has ticker ids)."""
UNIVERSE_DIR = Path(__file__).with_name("universes")
_SUFFIX = re.compile(r"[,\s]+(inc\.?|incorporated|corporation|corp\.?|company|co\.?|plc|ltd\.?|& co\.?)$", re.I)


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    aliases: tuple[str, ...]
    sector: str
    weight: float | None


@dataclass(frozen=True)
class Universe:
    """The products of one asset class."""

    asset_class: str
    as_of: str
    products: tuple[Product, ...]
    tickers: bool
    """Whether ids are tickers to look for in text."""
    source: str = ""
    _by_id: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.products]

    def __getitem__(self, pid: str) -> Product:
        if not self._by_id:
            self._by_id.update({p.id: p for p in self.products})
        return self._by_id[pid]

    def __contains__(self, pid: str) -> bool:
        return any(p.id == pid for p in self.products)

    def weights(self) -> dict[str, float] | None:
        """``{id: weight}`` (market cap) when every product has one, else ``None``."""
        if any(p.weight is None for p in self.products):
            return None
        return {p.id: float(p.weight) for p in self.products}

    def sectors(self) -> dict[str, str]:
        return {p.id: p.sector for p in self.products}


def load_universe(asset_class: str | Path) -> Universe:
    """The shipped universe of an asset class, or a universe CSV by path.

    Example:
        >>> u = load_universe("stocks")
        >>> u.as_of, u["AAPL"].sector
        ('2024-12-31', 'Information Technology')
    """
    path = Path(asset_class)
    if str(asset_class) in ASSET_CLASSES:
        path, name = UNIVERSE_DIR / f"{asset_class}.csv", str(asset_class)
    elif path.suffix == ".csv" and path.is_file():
        name = path.stem
    else:
        raise InputError(f"unknown asset class {str(asset_class)!r}; choose one of {', '.join(ASSET_CLASSES)} "
                         "or give a universe CSV", field="asset_class")
    text = path.read_text(encoding="utf-8")
    comments = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("#")]
    as_of = next((c.split("as_of:", 1)[1].split(".")[0].strip() for c in comments if "as_of:" in c), "")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", as_of):
        raise InputError("the universe needs an 'as_of: YYYY-MM-DD' comment line", path, field="as_of")
    body = "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    reader = csv.DictReader(io.StringIO(body))
    missing = {"id", "name", "aliases", "sector", "weight"} - set(reader.fieldnames or [])
    if missing:
        raise InputError(f"columns missing: {sorted(missing)}", path, field=sorted(missing)[0])
    products, seen = [], set()
    line0 = len(comments) + 1  # the header's line number
    for i, row in enumerate(reader, start=line0 + 1):
        pid, pname = (row["id"] or "").strip(), (row["name"] or "").strip()
        if not pid or not pname:
            raise InputError("id and name must be non-empty", path, i, field="id" if not pid else "name")
        if pid in seen:
            raise InputError(f"duplicate id {pid!r}", path, i, field="id")
        seen.add(pid)
        try:
            weight = float(row["weight"]) if (row["weight"] or "").strip() else None
        except ValueError:
            raise InputError(f"weight {row['weight']!r} is not a number", path, i, field="weight") from None
        if weight is not None and weight <= 0:
            raise InputError("weight must be > 0", path, i, field="weight")
        aliases = [a.strip() for a in (row["aliases"] or "").split("|") if a.strip()]
        short = _SUFFIX.sub("", re.sub(r"^the\s+", "", pname, flags=re.I)).strip()
        names = [a for a in dict.fromkeys([pname, short, *aliases]) if a]
        products.append(Product(pid, pname, tuple(names), (row["sector"] or "").strip(), weight))
    if not products:
        raise InputError("the universe is empty", path)
    return Universe(name, as_of, tuple(products), name not in NAME_ONLY_CLASSES, str(path))
