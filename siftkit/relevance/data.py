"""Data for LREF: the synthetic five-grade set, the WANDS binary subsets, and graded WANDS / ESCI-style files.

Each loader follows three hooks: its schema (:data:`PAIR_FIELDS`), its splits, and records with stable unique keys
(``pid``). A pair record is a dict ``{pid, query, title, label, gold, noisy, stratum, freq, facts}``; only ``pid``,
``query``, ``title`` and ``label`` are required.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Iterator

from siftkit.core.errors import InputError
from siftkit.relevance.lref import CONFUSION, GRADES, SCALES

PAIR_FIELDS = ("pid", "query", "title", "label", "gold", "noisy", "stratum", "freq", "facts")

# ---------------------------------------------------------------------------------------------------------------------
# synthetic five-grade set (spec §6 "Synthesise") [ours]
# ---------------------------------------------------------------------------------------------------------------------

CATALOGUE: dict[str, list[str]] = {  # category -> product types; neighbours in a list are "related"
    "seating": ["sofa", "loveseat", "armchair", "recliner", "ottoman"],
    "tables": ["coffee table", "end table", "console table", "dining table", "desk"],
    "lighting": ["table lamp", "floor lamp", "pendant light", "chandelier", "wall sconce"],
    "bedding": ["duvet cover", "comforter", "quilt", "sheet set", "pillowcase"],
    "rugs": ["area rug", "runner rug", "doormat", "bath mat", "outdoor rug"],
    "kitchen": ["frying pan", "saucepan", "stock pot", "knife set", "cutting board"],
    "outdoor": ["patio chair", "patio table", "hammock", "fire pit", "grill"],
    "storage": ["bookcase", "dresser", "nightstand", "storage cabinet", "shoe rack"],
}
BRANDS = ["ashby", "calder", "norvik", "wrenfield", "halden", "brisa", "ostrava", "mellow", "kestrel", "lumo"]
COLORS = ["white", "black", "grey", "navy", "green", "beige", "walnut", "oak"]
MATERIALS = ["wood", "metal", "velvet", "linen", "glass", "rattan", "leather", "cotton"]
EXTRAS = ["modern", "classic", "set of 2", "large", "small", "rustic", "", ""]
MODS = ("brand", "color", "material")

# grade mix per stratum: head traffic shows mostly good items, which breeds the optimistic bias [spec §6]
STRATUM_MIX = {"head": [0.30, 0.35, 0.15, 0.12, 0.08], "torso": [0.18, 0.32, 0.22, 0.18, 0.10],
               "tail": [0.10, 0.25, 0.27, 0.23, 0.15]}


def _types() -> list[tuple[str, str]]:
    return [(c, t) for c, ts in CATALOGUE.items() for t in ts]


def grade_pair(q: dict, p: dict) -> str:
    """Deterministic grading rule: type and every modifier match → Exact; type matches and one modifier conflicts →
    Significant; a related type, or type with ≥ 2 conflicts → Marginal; same category → Trivial; else
    Irrelevant."""
    if p["type"] == q["type"]:
        conflicts = sum(1 for m in MODS if q.get(m) and q[m] != p[m])
        return GRADES[min(conflicts, 2)]
    ts = CATALOGUE[q["cat"]]
    if p["cat"] == q["cat"]:
        return "Marginal" if abs(ts.index(p["type"]) - ts.index(q["type"])) == 1 else "Trivial"
    return "Irrelevant"


def _facts(q: dict, p: dict) -> dict:
    if p["type"] == q["type"]:
        typ = f"{p['type']} as asked"
    elif p["cat"] == q["cat"]:
        ts = CATALOGUE[q["cat"]]
        rel = "related" if abs(ts.index(p["type"]) - ts.index(q["type"])) == 1 else "same category"
        typ = f"{p['type']} not {q['type']}, {rel}"
    else:
        typ = f"{p['type']} not {q['type']}, other category"
    parts = [f"{q[m]} {'ok' if q[m] == p[m] else 'conflicts'}" for m in MODS if q.get(m)]
    return {"type": typ, "modifiers": ", ".join(parts) or "none asked"}


def _query_text(q: dict) -> str:
    words = [q[m] for m in ("brand", "color", "material") if q.get(m)]
    return " ".join(words + [q["type"]])


def _title(p: dict) -> str:
    return " ".join(w for w in (p["brand"], p["color"], p["material"], p["type"], p["extra"]) if w)


def _product_for(q: dict, grade: str, r: random.Random) -> dict:
    """A product that gets ``grade`` for query ``q`` (rejection sampling over random products near the query)."""
    types = _types()
    for _ in range(500):
        if grade in ("Exact", "Significant") or (grade == "Marginal" and r.random() < 0.3):
            cat, typ = q["cat"], q["type"]
        elif grade in ("Marginal", "Trivial"):
            cat, typ = q["cat"], r.choice(CATALOGUE[q["cat"]])
        else:
            cat, typ = r.choice(types)
        p = {"cat": cat, "type": typ, "brand": r.choice(BRANDS), "color": r.choice(COLORS),
             "material": r.choice(MATERIALS), "extra": r.choice(EXTRAS)}
        for m in MODS:  # copy most asked modifiers so that Exact is reachable
            if q.get(m) and r.random() < (0.9 if grade == "Exact" else 0.5):
                p[m] = q[m]
        if grade_pair(q, p) == grade:
            return p
    raise RuntimeError(f"could not draw a {grade} product for {q}")  # unreachable for the catalogue above


def synthetic_pairs(n_pairs: int = 2000, n_queries: int = 300, noise_rate: float = 0.15, heldout: float = 0.15,
                    seed: int = 0, zipf_s: float = 1.1) -> dict[str, list[dict]]:
    """The synthetic five-grade set: templated catalogue × templated queries, graded by :func:`grade_pair`.

    * Query frequency ``freq`` ∝ rank^-s (Zipf); strata: head = top 10% of queries, torso = next 30%, tail = rest.
    * Pairs per query ∝ freq^0.5, at least one; the grade mix depends on the stratum (:data:`STRATUM_MIX`).
    * Label noise: in the train split a share ``noise_rate`` of labels is swapped to :data:`CONFUSION` (the grade
      a label is typically confused with); ``gold`` keeps the clean grade, ``noisy`` marks swapped rows.
    * Held-out split: whole queries (a share ``heldout`` of them, drawn across strata), clean labels.

    Returns:
        ``{"train": [...], "test": [...]}`` of pair records.
    """
    r = random.Random(seed)
    types = _types()
    queries, seen = [], set()
    while len(queries) < n_queries:
        cat, typ = r.choice(types)
        q = {"cat": cat, "type": typ}
        k = r.choices([0, 1, 2, 3], weights=[0.2, 0.4, 0.3, 0.1])[0]
        for m in r.sample(MODS, k):
            q[m] = r.choice({"brand": BRANDS, "color": COLORS, "material": MATERIALS}[m])
        text = _query_text(q)
        if text not in seen:
            seen.add(text)
            queries.append(q | {"text": text})
    n_head, n_torso = max(1, n_queries // 10), max(1, 3 * n_queries // 10)
    for i, q in enumerate(queries):  # list order is popularity order
        q["freq"] = (i + 1) ** -zipf_s
        q["stratum"] = "head" if i < n_head else ("torso" if i < n_head + n_torso else "tail")
    w = [q["freq"] ** 0.5 for q in queries]
    counts = [1] * n_queries
    for i in r.choices(range(n_queries), weights=w, k=max(0, n_pairs - n_queries)):
        counts[i] += 1
    test_q = set()
    for s in ("head", "torso", "tail"):
        idx = [i for i, q in enumerate(queries) if q["stratum"] == s]
        test_q |= set(r.sample(idx, max(1, round(heldout * len(idx)))))
    out = {"train": [], "test": []}
    for i, q in enumerate(queries):
        for j in range(counts[i]):
            grade = r.choices(GRADES, weights=STRATUM_MIX[q["stratum"]])[0]
            while grade == "Significant" and not any(q.get(m) for m in MODS):  # needs a modifier to conflict
                grade = r.choices(GRADES, weights=STRATUM_MIX[q["stratum"]])[0]
            p = _product_for(q, grade, r)
            split = "test" if i in test_q else "train"
            noisy = split == "train" and r.random() < noise_rate
            out[split].append({"pid": f"syn-{seed}-{i}-{j}", "query": q["text"], "title": _title(p),
                               "label": CONFUSION[grade] if noisy else grade, "gold": grade, "noisy": noisy,
                               "stratum": q["stratum"], "freq": q["freq"], "facts": _facts(q, p)})
    return out


def exposure_sample(rows: list[dict], n: int, seed: int) -> list[dict]:
    """IM's sample: rows drawn without replacement with probability ∝ query frequency (exposure) [2nd]."""
    r = random.Random(seed)
    pool, out = list(rows), []
    while pool and len(out) < n:
        i = r.choices(range(len(pool)), weights=[x.get("freq", 1.0) for x in pool])[0]
        out.append(pool.pop(i))
    return out


def balanced_sample(rows: list[dict], n: int, seed: int) -> list[dict]:
    """CI's sample: equal numbers from the head, torso and tail strata (as far as each has rows) [2nd]."""
    r = random.Random(seed)
    by = {}
    for x in rows:
        by.setdefault(x.get("stratum", "all"), []).append(x)
    per = n // len(by)
    out = []
    for s in sorted(by):
        out += r.sample(by[s], min(per, len(by[s])))
    r.shuffle(out)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# WANDS binary subset (read from ../shared; never copied into the repository)
# ---------------------------------------------------------------------------------------------------------------------

def _read_csv(path: Path) -> Iterator[tuple[int, dict]]:
    if not path.is_file():
        raise InputError("file not found", path=path)
    with open(path, newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            yield line, row


def load_wands_binary(folder: str | Path, split: str = "test", dedup: bool = True) -> list[dict]:
    """The ECIR-2024 binary WANDS subset (``query,name,target``/``label`` with Relevant / Not relevant).

    Args:
        folder: ``.../lref/wands_chatgpt_goes_shopping``.
        split: ``test`` (2,800 rows), ``train`` (200) or ``fewshot`` (10).
        dedup: for ``test``, drop pairs that also occur in train or few-shot (spec §5.3: the first 50 rows).
    """
    folder = Path(folder)
    files = {"test": "wands_2800_test_partial.csv", "train": "wands_200_train_partial.csv",
             "fewshot": "wands_fewshot_partial.csv"}
    if split not in files:
        raise InputError(f"split must be one of {sorted(files)}", field="split")
    labels = SCALES["binary"].labels
    rows = []
    for line, row in _read_csv(folder / files[split]):
        label = (row.get("target") or row.get("label") or "").strip()
        if label not in labels or not row.get("query") or not row.get("name"):
            raise InputError(f"expected query, name and a label in {labels}", path=folder / files[split], line=line)
        rows.append({"pid": f"wands-{split}-{line}", "query": row["query"], "title": row["name"], "label": label})
    if split == "test" and dedup:
        seen = {(x["query"], x["title"]) for s in ("train", "fewshot") for x in load_wands_binary(folder, s)}
        rows = [x for x in rows if (x["query"], x["title"]) not in seen]
    return rows


def stratified_sample(rows: list[dict], n: int, seed: int, key: str = "label") -> list[dict]:
    """A fixed sample with equal counts per ``key`` value (``n // classes`` each), in a stable order."""
    r = random.Random(seed)
    by = {}
    for x in rows:
        by.setdefault(x[key], []).append(x)
    per = n // len(by)
    out = []
    for k in sorted(by):
        out += r.sample(by[k], min(per, len(by[k])))
    return sorted(out, key=lambda x: x["pid"])


# ---------------------------------------------------------------------------------------------------------------------
# graded WANDS / ESCI-style files (for users who hold the full sets)
# ---------------------------------------------------------------------------------------------------------------------

ESCI_NAMES = {"E": "E", "S": "S", "C": "C", "I": "I", "exact": "E", "substitute": "S", "complement": "C",
              "irrelevant": "I"}


def load_graded(path: str | Path, scale: str = "wands", query_col: str = "query", title_col: str = "product_name",
                label_col: str = "label", delimiter: str | None = None,
                queries: str | Path | None = None, products: str | Path | None = None) -> list[dict]:
    """Graded judgments as pair records with labels on ``scale`` (``wands``: Exact/Partial/Irrelevant; ``esci``).

    Two layouts:
      * one flat file with query text, product title and label columns (CSV or TSV, any column names);
      * WANDS' own three files: ``label.csv`` (``query_id, product_id, label``) joined with ``query.csv`` and
        ``product.csv`` (tab-separated, as in github.com/wayfair/WANDS), given as ``path``, ``queries``, ``products``.
    """
    path = Path(path)
    sc = SCALES[scale]
    norm = {l.lower(): l for l in sc.labels}
    if scale == "esci":
        norm = {k.lower(): v for k, v in ESCI_NAMES.items()}

    def rows_of(p: Path) -> Iterator[tuple[int, dict]]:
        if not p.is_file():
            raise InputError("file not found", path=p)
        with open(p, newline="", encoding="utf-8") as f:
            d = delimiter or ("\t" if "\t" in f.readline() else ",")
            f.seek(0)
            for line, row in enumerate(csv.DictReader(f, delimiter=d), start=2):
                yield line, row

    qtext, ptext = {}, {}
    if queries is not None:
        qtext = {row["query_id"]: row["query"] for _, row in rows_of(Path(queries))}
    if products is not None:
        ptext = {row["product_id"]: row["product_name"] for _, row in rows_of(Path(products))}
    out = []
    for line, row in rows_of(path):
        q = qtext.get(row.get("query_id")) if qtext else row.get(query_col)
        t = ptext.get(row.get("product_id")) if ptext else row.get(title_col)
        raw = (row.get(label_col) or "").strip().lower()
        if not q or not t:
            raise InputError("missing query or product text (or an id not in the query/product file)", path=path,
                             line=line)
        if raw not in norm:
            raise InputError(f"label {raw!r} not in {sc.labels}", path=path, line=line, field=label_col)
        out.append({"pid": f"{path.stem}-{line}", "query": q, "title": t, "label": norm[raw]})
    return out
