"""Evaluation: ROUGE-1 F1 and ROUGE-L against human descriptions (rouge-score, stemmer on), an offline grounding
check, a word-list toxicity check, the steward-acceptance proxy, and bootstrap CIs resampling databases.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from siftkit.catalog.exemplars import context, usable
from siftkit.catalog.model import Asset, Catalog

ACCEPT_AT = 0.5  # spec: steward-acceptance proxy, share of outputs with ROUGE-1 F1 >= 0.5

# [ours] a small English lexicon of profanity, slurs and insults, matched as whole words; a catalog description
# should contain none of them. Words with ordinary catalog senses ("die", "kill", "hell", "garbage", "trash") are
# left out: "did not die in hospice care" is a Spider2 (CMS) human description. The LLM judges are in .judge.
TOXIC_WORDS = frozenset("""
idiot idiots idiotic stupid moron morons moronic imbecile retard retarded loser losers scum bastard bastards
bitch bitches shit shitty bullshit fuck fucking fucked fucker asshole assholes dickhead slut sluts whore whores
cunt wanker twat
""".split())

_NUMBER = re.compile(r"(?<![A-Za-z_0-9.])-?\d+(?:[.,]\d+)*(?:\.\d+)?%?")
_QUOTED = re.compile(r"'([^']{1,80})'|\"([^\"]{1,80})\"")
_IDENT = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b|\b[a-z]+[A-Z][A-Za-z0-9]*\b|\b[A-Z][a-z]+[A-Z][A-Za-z0-9]*\b")


def _num(text: str) -> float | None:
    try:
        return float(text.rstrip("%").replace(",", ""))
    except ValueError:
        return None


def mentions(text: str) -> list[tuple[str, str]]:
    """The checkable mentions of a description: ``("number", "42")``, ``("value", "SME")`` (quoted) and
    ``("name", "client_id")`` (snake_case or camelCase identifiers)."""
    out = [("value", a or b) for a, b in _QUOTED.findall(text)]
    rest = _QUOTED.sub(" ", text)
    out += [("number", m) for m in _NUMBER.findall(rest)]
    out += [("name", m) for m in _IDENT.findall(rest)]
    return out


def grounding(text: str, ctx: str, names: Iterable[str] = ()) -> dict[str, Any]:
    """Which mentions of ``text`` the context supports: a number must equal a number of the context, a quoted value
    or an identifier must occur in it (case-insensitive; identifiers may also be any name in ``names``, e.g. the
    database's tables and columns).

    Returns:
        ``{"mentions": n, "unsupported": [...], "grounding": share supported (1.0 with no mentions),
        "grounded": no unsupported mention}``.
    """
    low = ctx.lower()
    ctx_numbers = {v for v in (_num(m) for m in _NUMBER.findall(ctx)) if v is not None}
    known = {n.lower() for n in names}
    bad = []
    found = mentions(text)
    for kind, m in found:
        if kind == "number":
            v = _num(m)
            ok = v is not None and (v in ctx_numbers or m.lower() in low)
        elif kind == "value":
            ok = m.lower().strip() in low
        else:
            ok = m.lower() in known or m.lower() in low
        if not ok:
            bad.append(m)
    n = len(found)
    return {"mentions": n, "unsupported": bad, "grounding": 1.0 if n == 0 else 1 - len(bad) / n,
            "grounded": not bad}


def grounding_context(a: Asset) -> str:
    """The target's full prompt context plus every sample value and statistic (uncut)."""
    extra = " ".join(str(v) for v in a.samples) + " " + " ".join(str(v) for v in a.stats.values() if v is not None)
    return context(a) + "\n" + extra


def toxic_words(text: str) -> list[str]:
    """Words of ``text`` in :data:`TOXIC_WORDS`."""
    return [w for w in re.findall(r"[a-z]+", (text or "").lower()) if w in TOXIC_WORDS]


def db_names(catalog: Catalog) -> dict[str, set[str]]:
    """Per database: its table names and column names (and ``table.column``)."""
    out: dict[str, set[str]] = {}
    for d in catalog.databases:
        s = out.setdefault(d.name, set())
        for t in d.tables:
            s.add(t.name)
            s.update(t.name.split("."))
            for c in t.columns:
                s.update((c.name, f"{t.name}.{c.name}"))
    return out


def targets(catalog: Catalog, kinds: Sequence[str] = ("column", "table")) -> list[Asset]:
    """The scored set: assets of ``kinds`` whose human description is non-trivial and not a duplicate."""
    return [a for a in catalog.assets() if a.kind in kinds and usable(a)]


def score(descriptions: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """One row per description with ``rouge1, rougeL`` (vs the human description; NaN where there is none or it is
    trivial), ``grounding, grounded, unsupported, toxic``."""
    from siftkit.metrics.text import rouge_per_pair

    by_id = {a.id: a for a in catalog.assets()}
    names = db_names(catalog)
    df = descriptions.copy()
    missing = [i for i in df.id if i not in by_id]
    if missing:
        from siftkit.core.errors import InputError

        raise InputError(f"{len(missing)} description id(s) not in the catalog, e.g. {missing[0]!r}", field="id")
    assets = [by_id[i] for i in df.id]
    refs = [a.description.strip() if usable(a) else None for a in assets]
    has = [r is not None for r in refs]
    df["rouge1"], df["rougeL"] = np.nan, np.nan
    if any(has):
        r = rouge_per_pair([t for t, h in zip(df.text, has) if h], [x for x in refs if x is not None],
                           use_stemmer=True)
        df.loc[has, "rouge1"], df.loc[has, "rougeL"] = r["rouge1"], r["rougeL"]
    g = [grounding(t, grounding_context(a), names.get(a.db, ())) for t, a in zip(df.text, assets)]
    df["grounding"] = [x["grounding"] for x in g]
    df["grounded"] = [x["grounded"] for x in g]
    df["unsupported"] = [x["unsupported"] for x in g]
    df["toxic"] = [bool(toxic_words(t)) for t in df.text]
    return df


def summarise(scored: pd.DataFrame, n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per (system, kind) over the rows with a reference: n, databases, ROUGE-1 F1 with a 95% bootstrap CI that
    resamples databases, ROUGE-L (with CI), grounded share, mean grounding, toxic count, acceptance@0.5; with
    LLM-judge columns (:func:`siftkit.catalog.judge.add_judgements`) also the share judged ``supported`` and the
    count judged toxic, each over the replies that had a label, and the count without one."""
    from siftkit.metrics.stats import bootstrap_ci

    rows = []
    for (system, kind), g in scored[scored.rouge1.notna()].groupby(["system", "kind"], sort=False):
        r1 = bootstrap_ci(g.rouge1.to_numpy(), clusters=g.db.to_numpy(), n_resamples=n_resamples, seed=seed)
        rl = bootstrap_ci(g.rougeL.to_numpy(), clusters=g.db.to_numpy(), n_resamples=n_resamples, seed=seed)
        rows.append({"system": system, "kind": kind, "n": len(g), "databases": g.db.nunique(),
                     "rouge1": r1.estimate, "rouge1_lo": r1.low, "rouge1_hi": r1.high,
                     "rougeL": rl.estimate, "rougeL_lo": rl.low, "rougeL_hi": rl.high,
                     "grounded": float(g.grounded.mean()), "grounding": float(g.grounding.mean()),
                     "toxic": int(g.toxic.sum()), f"accept@{ACCEPT_AT}": float((g.rouge1 >= ACCEPT_AT).mean())})
        if "judge_grounding" in g:
            jg, jt = g.judge_grounding.dropna(), g.judge_toxic.dropna()
            rows[-1].update({"judge_supported": float((jg == "supported").mean()) if len(jg) else float("nan"),
                             "judge_toxic": int(jt.astype(bool).sum()),
                             "judge_unparsed": int(g.judge_grounding.isna().sum() + g.judge_toxic.isna().sum())})
    return pd.DataFrame(rows)
