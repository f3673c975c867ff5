"""Condition queries generated from a user's history and an item KG (RecBench+ §construction, spec §2).

For a user ``u`` with history ``H_u`` and a target count ``n`` (1, 2, or 3–4 conditions):

1. draw an anchor item ``i ∈ H_u`` and ``n`` of its ``(relation, value)`` pairs;
2. ground truth = the items of ``H_u`` that satisfy all ``n`` conditions (the paper's ``movieSubset``: the source
   user's items, not the whole catalogue); kept when ``MIN_GT <= |GT| <= MAX_GT`` [ours], else drawn again;
3. render the text with deterministic templates (and, when a model is configured, let it rewrite them:
   :func:`rephrase`):

   * ``explicit``: every condition named. Freebase person entities in the ML-100K KG have no names, so [ours]
     explicit queries use the named relations only (``Genre``, ``Year``);
   * ``implicit``: at least one person condition, referenced through another film (multi-hop: "the director of
     *Fargo*"), the reference film being the most popular film outside the ground truth with that person in that
     relation; recorded in ``meta["multihop_info"]``;
   * ``misinformed``: an implicit query plus one false fact about the referenced person (a film they did NOT work on
     in that role, said to be theirs); ``conditions`` keep the true condition, ``meta["misinformed"]`` records the
     false fact.

Everything is seeded: the same KG, seed and counts give the same queries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from siftkit.core.errors import InputError
from siftkit.recbench.kg import PERSON_RELATIONS, ItemKG
from siftkit.recbench.queries import CONDITION_TYPES, Query

BUCKETS = ("1", "2", "3-4")
MIN_GT, MAX_GT = 2, 10
NAMED = ("Genre", "Year")
"""Relations whose values are readable names."""
ROLE = {"Starring": ("starring", "the actor who was in", "acted in"),
        "Directed_by": ("directed by", "the director of", "directed"),
        "Written_by": ("written by", "the writer of", "wrote"),
        "Produced_by": ("produced by", "the producer of", "produced"),
        "Cinematography": ("shot by", "the cinematographer of", "shot")}
OPENERS = ("Can you recommend some movies {c}?", "I'm looking for films {c}. Any ideas?",
           "Please suggest movies {c}.", "What should I watch tonight? Something {c}.")


def _rng(*parts) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8],
                                                 "little"))


class Generator:
    """Draws condition queries from ``kg`` (which must carry user histories)."""

    def __init__(self, kg: ItemKG, seed: int = 0):
        if not kg.histories:
            raise InputError(f"the {kg.source or 'given'} KG has no user histories to generate queries from",
                             field="kg")
        self.kg, self.seed = kg, seed
        pop = kg.popularity()
        self._pop = pop
        self._films: dict[tuple[str, str], list[str]] = {}
        for iid, it in kg.items.items():
            for rel in PERSON_RELATIONS:
                for v in it.attrs.get(rel, ()):
                    self._films.setdefault((rel, v), []).append(iid)
        for films in self._films.values():
            films.sort(key=lambda i: (-pop.get(i, 0), i))
        self._people = {rel: sorted({v for (r, v) in self._films if r == rel}) for rel in PERSON_RELATIONS}

    # ------------------------------------------------------------------------------------------------ drawing
    def draw(self, qtype: str, bucket: str, index: int, attempts: int = 400) -> Query | None:
        """The ``index``-th query of a (type, bucket) cell, or None when no user yields one in ``attempts``."""
        if qtype not in CONDITION_TYPES or bucket not in BUCKETS:
            raise InputError(f"type must be one of {CONDITION_TYPES} and bucket one of {BUCKETS}", field="type")
        users = sorted(self.kg.histories)
        rng = _rng(self.seed, qtype, bucket, index)
        for _ in range(attempts):
            user = users[int(rng.integers(len(users)))]
            hist = self.kg.histories[user]
            anchor = self.kg.items.get(hist[int(rng.integers(len(hist)))])
            if anchor is None:
                continue
            n = 1 if bucket == "1" else 2 if bucket == "2" else int(rng.integers(3, 5))
            pairs = sorted((r, v) for r, vals in anchor.attrs.items() for v in vals
                           if qtype != "explicit" or r in NAMED)
            persons = [p for p in pairs if p[0] in PERSON_RELATIONS]
            if len(pairs) < n or (qtype != "explicit" and not persons):
                continue
            # greedy: start from one (person, for implicit/misinformed) pair, add pairs in random order while at
            # least MIN_GT history items still share all of them
            first = [persons[int(rng.integers(len(persons)))]] if qtype != "explicit" else []
            order = [pairs[j] for j in rng.permutation(len(pairs)) if pairs[j] not in first]
            conds, gt = list(first), self.kg.satisfying(first, among=dict.fromkeys(hist))
            for p in order:
                if len(conds) == n:
                    break
                if p[0] == "Year" and any(r == "Year" for r, _ in conds):
                    continue
                nxt = self.kg.satisfying([p], among=dict.fromkeys(gt))
                if len(nxt) >= MIN_GT:
                    conds, gt = conds + [p], nxt
            if len(conds) != n or not MIN_GT <= len(gt) <= MAX_GT:
                continue
            conds = sorted(conds, key=lambda c: (c[0] not in PERSON_RELATIONS, c))
            q = self._render(qtype, conds, gt, user, rng, f"gen-{qtype}-{bucket}-{index}")
            if q is not None:
                return q
        return None

    def generate(self, per_cell: int, types: Sequence[str] = CONDITION_TYPES,
                 buckets: Sequence[str] = BUCKETS) -> list[Query]:
        """``per_cell`` queries for every (type, bucket); a cell the KG cannot fill stays short (reported by the
        caller through the counts)."""
        out = []
        for t in types:
            for b in buckets:
                for i in range(per_cell):
                    q = self.draw(t, b, i)
                    if q is not None:
                        out.append(q)
        return out

    # ------------------------------------------------------------------------------------------------ rendering
    def _ref_film(self, rel: str, person: str, exclude: set[str]) -> str | None:
        return next((f for f in self._films.get((rel, person), []) if f not in exclude), None)

    def _render(self, qtype, conds, gt, user, rng, qid) -> Query | None:
        kg = self.kg
        exclude = set(gt)
        clauses, multihop, misinformed = [], [], []
        genres = [v for r, v in conds if r == "Genre"]
        for rel, val in conds:
            if rel in PERSON_RELATIONS:
                ref = self._ref_film(rel, val, exclude)
                if ref is None:
                    return None
                title = kg.items[ref].display
                clause = f"{ROLE[rel][0]} {ROLE[rel][1]} {title}"
                multihop.append({"movie": kg.items[ref].title, "relation": rel, "person": val})
                if qtype == "misinformed" and not misinformed:
                    wrong = [f for f in self._pop_order() if not kg.items[f].has(rel, val) and f not in exclude]
                    if not wrong:
                        return None
                    w = wrong[int(rng.integers(min(20, len(wrong))))]
                    clause += f" (who, as I remember, also {ROLE[rel][2]} {kg.items[w].display})"
                    misinformed.append({"movie": kg.items[w].title, "relation": rel, "wrong person": val,
                                        "original person": sorted(kg.items[w].attrs.get(rel, {"unknown"}))[0]})
                clauses.append(clause)
            elif rel == "Year":
                clauses.append(f"released in {val}")
        if genres:
            clauses.insert(0, "in the " + " and ".join(genres) + (" genres" if len(genres) > 1 else " genre"))
        text = OPENERS[int(rng.integers(len(OPENERS)))].format(c=_join(clauses))
        meta = {"multihop_info": multihop} if multihop else {}
        if misinformed:
            meta["misinformed"] = misinformed
        return Query(qid, qtype, "movie", text, [kg.items[i].title for i in gt], list(gt), list(conds), str(user),
                     len(gt), meta)

    def _pop_order(self) -> list[str]:
        if not hasattr(self, "_order"):
            self._order = sorted(self.kg.items, key=lambda i: (-self._pop.get(i, 0), i))
        return self._order


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


REPHRASE = ("Rewrite this movie request so it sounds like a real person asking a friend, in one or two sentences. "
            "Keep every condition and copy every film title exactly as written. Output only the rewritten request.\n\n"
            "Request: {text}")


def rephrase(queries: Sequence[Query], models: dict, params, cache_path, progress: bool = True) -> list[Query]:
    """[ours] The paper's situational phrasing, written by a chat model (``models``: one name → factory, through
    :func:`siftkit.llm.run_batch`, cached). A rewrite replaces the template text only when it is non-empty and
    keeps every film title the template named (multi-hop and false-fact references) and every named condition value
    (genre, year); otherwise the template stays,
    and ``meta["rephrased"]`` says which happened. The template text is kept in ``meta["template_text"]``."""
    import dataclasses

    from siftkit.llm.batch import run_batch

    if len(models) != 1:
        raise InputError("rephrasing takes exactly one model", field="--llm")
    prompts = {q.qid: [{"role": "user", "content": REPHRASE.format(text=q.text)}] for q in queries}
    df = run_batch(models, prompts, params, cache_path, progress=progress)
    texts = dict(zip(df["prompt_id"].astype(str), df["text"].fillna("")))
    out = []
    for q in queries:
        new = texts.get(q.qid, "").strip().strip('"').strip()
        refs = [h["movie"] for h in q.meta.get("multihop_info", []) + q.meta.get("misinformed", [])]
        from siftkit.recbench.kg import article_first

        named = [v for r, v in q.conditions if r in NAMED]
        ok = bool(new) and all(article_first(t) in new for t in refs) and \
            all(v.lower() in new.lower() for v in named)
        meta = {**q.meta, "template_text": q.text, "rephrased": ok}
        out.append(dataclasses.replace(q, text=new if ok else q.text, meta=meta))
    return out


def catalogue_variant(queries: Sequence[Query], kg: ItemKG) -> list[Query]:
    """The catalogue-wide ground truth [ours, reported separately]: every KG item meeting all of a condition query's
    conditions, not only the source user's (the paper's ground truth is the user's subset). ``k`` (the list size
    asked) is unchanged; profile queries pass through as they are."""
    import dataclasses

    out = []
    for q in queries:
        if q.qtype in CONDITION_TYPES and q.conditions:
            ids = kg.satisfying(q.conditions)
            q = dataclasses.replace(q, gt_ids=ids, gt_titles=[kg.items[i].title for i in ids],
                                    meta={**q.meta, "ground_truth": "catalogue"})
        out.append(q)
    return out
