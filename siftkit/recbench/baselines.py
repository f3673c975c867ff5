"""No-LLM responders: each returns a reply string in the paper's format (titles joined by ``" [SEP] "``).

* ``oracle``: echoes the ground-truth titles (the upper bound; spec §7 "oracle/echo");
* ``random``: ``k`` titles drawn uniformly from the KG (seeded per query);
* ``popularity``: the ``k`` items most often in the KG's user histories (ML-100K ``.inter``; ML-1M ships no
  ``ratings.dat`` here, so for ML-1M items popularity is [ours] the number of demographic groups whose TF-IDF top-10
  holds the movie, ties by summed TF-IDF); ``k = 10`` for profile queries as in spec §7's "global top-10";
* ``group-top10`` / ``group-top3``: a demographics query's group TF-IDF top-10 (or top-3) movies (spec §7; they
  show the leakage of §5.6).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from siftkit.core.errors import InputError
from siftkit.recbench.kg import ItemKG
from siftkit.recbench.queries import CONDITION_TYPES, Query

BASELINES = ("oracle", "random", "popularity", "group-top10", "group-top3")
PROFILE_LIST = 10
"""List length of the no-LLM responders on profile queries (spec §7)."""


def _k(q: Query) -> int:
    return q.k if q.qtype in CONDITION_TYPES else PROFILE_LIST


def _seed(name: str, qid: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{name}|{qid}|{seed}".encode()).digest()[:8], "little")


def popularity_ranking(kg: ItemKG, queries: Sequence[Query] = ()) -> list[str]:
    """Item ids, most popular first (see the module docstring)."""
    pop = kg.popularity()
    if pop:
        return sorted(pop, key=lambda i: (-pop[i], int(i) if i.isdigit() else i))
    count: dict[str, int] = defaultdict(int)
    weight: dict[str, float] = defaultdict(float)
    seen_groups = set()
    for q in queries:
        if q.source in seen_groups or "top_10" not in q.meta:
            continue
        seen_groups.add(q.source)
        for rank, iid in enumerate(q.meta["top_10"]):
            count[iid] += 1
            weight[iid] += 1.0 / (rank + 1)
    if not count:
        raise InputError("popularity needs user histories or demographics top-10 lists", field="model")
    return sorted(count, key=lambda i: (-count[i], -weight[i], i))


def respond(name: str, queries: Sequence[Query], kg: ItemKG, seed: int = 0) -> pd.DataFrame:
    """Replies of baseline ``name`` to every query: columns ``model, qid, text``."""
    if name not in BASELINES:
        raise InputError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}", field="model")
    fn: Callable[[Query], list[str]]
    if name == "oracle":
        def fn(q): return list(q.gt_titles)
    elif name == "random":
        ids = sorted(kg.items)

        def fn(q):
            rng = np.random.default_rng(_seed(name, q.qid, seed))
            return [kg.items[ids[j]].title for j in rng.choice(len(ids), size=_k(q), replace=False)]
    elif name == "popularity":
        ranking = popularity_ranking(kg, queries)

        def fn(q): return [kg.items[i].title for i in ranking[:_k(q)] if i in kg.items]
    else:
        n = 10 if name == "group-top10" else 3

        def fn(q):
            if "top_10" not in q.meta:
                raise InputError(f"{name} needs demographics queries (query {q.qid} has no group top-10)",
                                 field="model")
            return [kg.items[i].title for i in q.meta["top_10"][:n] if i in kg.items]
    return pd.DataFrame([{"model": name, "qid": q.qid, "text": " [SEP] ".join(fn(q))} for q in queries])
