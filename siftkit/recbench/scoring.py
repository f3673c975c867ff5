"""Score recommendation replies the way RecBench+'s reference script does (``reference``) and correctly
(``corrected``).

Parsing (:func:`parse_reply`, spec §3): drop the book prefix ``"Recommended books (separated by [SEP]):"``, split
on ``[SEP]``, strip quotes and whitespace, drop a trailing `` (YYYY)``, optionally truncate to ``k`` and pad with
``"none"``. FTR (failed to recommend) is 1 when the raw reply has no ``[SEP]``. The ``lenient`` parser [ours]
reads a reply without ``[SEP]`` as a list: its numbered / bulleted lines (else its short lines), markdown emphasis
removed, each cut before a description; its rows are reported under ``parser = lenient``, never mixed with the
``sep`` rows.

Title matching (:func:`match_titles`): every prediction is replaced by the FIRST ground-truth title whose score is
``>= 0.8`` (the reference script's rule), with the core matcher :func:`siftkit.metrics.fuzzy_scores`, scorer
``ratio`` (the normalised Indel similarity ``2·LCS/(|a|+|b|)``, the quantity ``difflib.SequenceMatcher.ratio``
approximates):

* ``reference``: the prediction loses its year, the ground truth keeps it, strings compared as they are (case
  and punctuation count). A title of L characters then scores ``2L/(2L+7)`` against itself-with-year, below 0.8
  for L < 14, so an oracle scores about 0.5 (spec §5.1). Hits count every matching prediction (a repeated title
  counts again).
* ``corrected``: years dropped on both sides, MovieLens's trailing article moved first ("Usual Suspects, The" ->
  "The Usual Suspects") on both sides, then the core normalisation (case, accents, punctuation); [ours] a
  prediction goes to an exactly equal ground-truth title when there is one, else to the BEST one >= 0.8 (the first-
  match rule sends "Aliens" to "Alien" and "Toy Story" to "Toy Story 2" when those come first); equal scores (a
  remake, a title twice in the ground truth) go to the ground-truth title of the prediction's year when it gave one,
  then to one not matched yet; each ground-truth title counts at most once (a repeat is not a hit, in P/R and in
  NDCG).
* ``corrected-first``: the variant behind spec §7's "corrected" column, kept to show that table is reproduced:
  normalisation as ``corrected`` but the first-match rule, P/R counting each ground-truth title once and NDCG
  counting every matching prediction.

Metrics per query: ``recall = hits/|GT|``, ``precision = hits/|pred|``, ``ndcg`` with binary gains
``Σ rel_i / log2(i+2)`` over the IDCG of ``|GT|`` ones. For condition queries with a KG, predictions are also mapped
to item ids (:meth:`~siftkit.recbench.kg.ItemKG.find`) and recall, precision and NDCG are the max of the title- and
the id-matched versions (reference script); ``existence`` = found / predicted; ``satisfied`` = found predictions that
meet all the TRUE conditions (ground-truth items count as meeting them) / found, NaN when nothing is found (the
script's −1, dropped from means).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from siftkit.core.errors import InputError
from siftkit.recbench.kg import ItemKG, article_first, split_year
from siftkit.recbench.queries import CONDITION_TYPES, Query

MODES = ("reference", "corrected", "corrected-first")
PARSERS = ("sep", "lenient")
THRESHOLD = 0.8
"""Match threshold (the book script's default of 0.65 is never used: it is called with 0.8; spec §5.3)."""
BOOK_PREFIX = "Recommended books (separated by [SEP]):"
SEP = "[SEP]"
METRICS = ("recall", "precision", "ndcg", "ftr", "existence", "satisfied", "n_pred")
_BULLET = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")


def _lenient(raw: str) -> list[str]:
    """[ours] Numbered or bulleted lines (else lines of at most 12 words), markdown emphasis removed, cut before a
    description (" - ", " – ", ": ")."""
    lines = [ln for ln in raw.splitlines() if ln.strip()]
    bulleted = [ln for ln in lines if _BULLET.match(ln)]
    chosen = bulleted or [ln for ln in lines if len(ln.split()) <= 12]
    out = []
    for ln in chosen:
        t = re.sub(r"[*_`]", "", _BULLET.sub("", ln))
        t = re.split(r"\s[-–—]\s|:\s", t, maxsplit=1)[0]
        out.append(t)
    return out


def parse_reply(text: str, parser: str = "sep", k: int = 0, keep_year: bool = False) -> tuple[list[str], bool]:
    """The predicted titles (years dropped) and whether the reply failed to recommend (no ``[SEP]``).

    Example:
        >>> parse_reply('"Heat (1995)" [SEP] Casino (1995)')
        (['Heat', 'Casino'], False)
        >>> parse_reply("1. Heat\\n2. Casino", parser="lenient")
        (['Heat', 'Casino'], True)
    """
    if parser not in PARSERS:
        raise InputError(f"unknown parser {parser!r}; choose one of {', '.join(PARSERS)}", field="parser")
    raw = text.replace(BOOK_PREFIX, "")
    ftr = SEP not in raw
    if ftr and parser == "lenient":
        parts = _lenient(raw)
    else:
        parts = raw.split(SEP)
    titles = [p.strip().strip("\"'“”‘’").strip() for p in parts]
    if not keep_year:
        titles = [split_year(t)[0] for t in titles]
    titles = [t for t in titles if t]
    if k > 0:
        titles = (titles + ["none"] * k)[:k]
    return titles, ftr


def _key(title: str, mode: str) -> str:
    return title if mode == "reference" else article_first(split_year(title)[0])


def _rank(matches: Sequence, n_gt: int, mode: str) -> dict[str, float]:
    m = rank_metrics(_relevance(matches, once=mode != "reference"), n_gt)
    if mode == "corrected-first":
        m["ndcg"] = rank_metrics(_relevance(matches, once=False), n_gt)["ndcg"]
    return m


def match_titles(preds: Sequence[str], gt: Sequence[str], mode: str = "corrected") -> list[int | None]:
    """For each prediction the index of the first ground-truth title it matches (score >= 0.8), else None."""
    from siftkit.metrics import fuzzy_scores

    if mode not in MODES:
        raise InputError(f"unknown scoring mode {mode!r}; choose one of {', '.join(MODES)}", field="mode")
    gkeys = [_key(g, mode) for g in gt]
    gyears = [split_year(g)[1] for g in gt]
    out: list[int | None] = []
    for p in preds:
        scores = fuzzy_scores(_key(p, mode), gkeys, "ratio", normalise=(mode != "reference"))
        if mode == "corrected":  # best score; ties (remakes, repeated titles) go to the same year, then unmatched
            year = split_year(p)[1]
            best = max(range(len(scores)), key=lambda j: (scores[j], year is not None and gyears[j] == year,
                                                           j not in out, -j)) if scores else None
            out.append(best if best is not None and scores[best] >= THRESHOLD else None)
        else:
            out.append(next((j for j, s in enumerate(scores) if s >= THRESHOLD), None))
    return out


def rank_metrics(rel: Sequence[int], n_gt: int) -> dict[str, float]:
    """Recall, precision and NDCG from binary relevances in rank order.

    Example:
        >>> rank_metrics([1, 0, 1], 2)["ndcg"]  # (1 + 1/log2(4)) / (1 + 1/log2(3))
        0.919...
    """
    hits = sum(rel)
    dcg = sum(r / math.log2(i + 2) for i, r in enumerate(rel))
    idcg = sum(1 / math.log2(i + 2) for i in range(n_gt))
    return {"recall": hits / n_gt if n_gt else 0.0, "precision": hits / len(rel) if rel else 0.0,
            "ndcg": dcg / idcg if idcg else 0.0}


def _relevance(matches: Sequence, once: bool) -> list[int]:
    seen: set = set()
    rel = []
    for m in matches:
        ok = m is not None and not (once and m in seen)
        rel.append(int(ok))
        if m is not None:
            seen.add(m)
    return rel


@dataclass
class Score:
    recall: float
    precision: float
    ndcg: float
    ftr: float
    existence: float
    satisfied: float
    n_pred: int


def score_reply(text: str, query: Query, mode: str = "corrected", parser: str = "sep", kg: ItemKG | None = None,
                k: int = 0) -> Score:
    """Score one reply to one query (see the module docstring)."""
    preds, ftr = parse_reply(text, parser, k, keep_year=mode == "corrected")  # [ours] a year breaks ties
    m = _rank(match_titles(preds, query.gt_titles, mode), len(query.gt_titles), mode)
    existence = satisfied = float("nan")
    if kg is not None and query.qtype in CONDITION_TYPES:
        gt_ids = set(query.gt_ids) or {kg.find(g) for g in query.gt_titles} - {None}
        ids = [kg.find(p, prefer=gt_ids) for p in preds]
        mi = _rank([i if i in gt_ids else None for i in ids], len(query.gt_titles), mode)
        m = {key: max(m[key], mi[key]) for key in m}
        found = [i for i in ids if i is not None]
        existence = len(found) / len(preds) if preds else 0.0
        if found:
            satisfied = sum(i in gt_ids or kg.satisfies(i, query.conditions) for i in found) / len(found)
    return Score(m["recall"], m["precision"], m["ndcg"], float(ftr), existence, satisfied, len(preds))


def score_all(replies: pd.DataFrame, queries: Sequence[Query], kg: ItemKG | None = None,
              modes: Sequence[str] = MODES, parsers: Sequence[str] = PARSERS, k: int = 0) -> pd.DataFrame:
    """One row per (model, query, mode, parser) from ``replies`` with columns ``model, qid, text``.

    Returns:
        Columns ``model, mode, parser, qid, qtype, domain, conditions, source`` and :data:`METRICS`.
    """
    byid = {q.qid: q for q in queries}
    rows = []
    for r in replies.itertuples(index=False):
        q = byid.get(str(r.qid))
        if q is None:
            raise InputError(f"reply for unknown query id {r.qid!r}", field="qid")
        for mode in modes:
            for parser in parsers:
                s = score_reply(r.text, q, mode, parser, kg, k)
                rows.append({"model": r.model, "mode": mode, "parser": parser, "qid": q.qid, "qtype": q.qtype,
                             "domain": q.domain, "conditions": q.condition_bucket, "source": q.source,
                             **s.__dict__})
    return pd.DataFrame(rows)


def summarise(scores: pd.DataFrame, by: Sequence[str] = ("model", "mode", "parser", "qtype", "conditions"),
              metrics: Sequence[str] = ("recall", "precision", "ndcg", "ftr", "existence", "satisfied"),
              n_resamples: int = 1000, seed: int = 0,
              ci_metrics: Sequence[str] = ("recall", "precision", "ndcg", "satisfied")) -> pd.DataFrame:
    """Means per group with 95% percentile bootstrap CIs clustered by ``source`` (the source user or group):
    columns ``<m>``, ``<m>_lo``, ``<m>_hi`` (for ``ci_metrics``) and ``n`` (queries). NaN values (no KG, nothing
    found) are dropped per metric."""
    from siftkit.metrics import bootstrap_ci

    out = []
    for keys, g in scores.groupby(list(by), sort=False):
        row = dict(zip(by, keys if isinstance(keys, tuple) else (keys,)))
        row["n"] = len(g)
        for m in metrics:
            sub = g[[m, "source"]].dropna()
            if sub.empty:
                row[m] = row[f"{m}_lo"] = row[f"{m}_hi"] = np.nan
                continue
            if m not in ci_metrics:
                row[m] = float(sub[m].mean())
                continue
            ci = bootstrap_ci(sub[m].to_numpy(dtype=float), clusters=sub["source"].to_numpy(),
                              n_resamples=n_resamples, seed=seed)
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = ci.estimate, ci.low, ci.high
        out.append(row)
    return pd.DataFrame(out)
