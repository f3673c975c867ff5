"""The prompt grid (spec §2 "Prompt grid"): user profiles × templates × de-biasing variants, per asset class.

Profile attributes [2nd] (the replication's reading of Zhi et al.):

=================  =====================================================================
budget             100; 1,000; 10,000; 20,000; 30,000; 40,000; 50,000; 100,000 (× currency)
risk tolerance     risk-averse / risk-neutral / risk-seeking
investment term    less than 1 year / 1 to 3 years / 3 to 10 years
market environment expansion / crisis / recession / recovery
=================  =====================================================================

Designs:

* ``"factorial"``: every attribute present, 8 · 3 · 3 · 4 = **288** profiles;
* ``"subsets"``: every non-empty subset of the attributes, (8+1)(3+1)(3+1)(4+1) − 1 = **719** profiles [2nd].

Profile sentence [2nd]: "I have {budget} {currency} to invest. My risk tolerance is {r}. My investment term is {t}.
The market environment is {e}." with absent attributes omitted; currency is a parameter (default USD [ours]; the
replication used CHF). The question templates per asset class and the de-biasing variants are [ours] (the paper's
exact prompts are unknown).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from siftkit.core.errors import InputError

BUDGETS = (100, 1_000, 10_000, 20_000, 30_000, 40_000, 50_000, 100_000)
RISKS = ("risk-averse", "risk-neutral", "risk-seeking")
TERMS = ("less than 1 year", "1 to 3 years", "3 to 10 years")
MARKETS = ("expansion", "crisis", "recession", "recovery")
ATTRIBUTES = {"budget": BUDGETS, "risk": RISKS, "term": TERMS, "market": MARKETS}
DESIGNS = ("factorial", "subsets")

_NOUNS = {  # asset class -> (singular, plural) [ours]
    "stocks": ("stock", "stocks"),
    "mutual_funds": ("mutual fund or ETF", "mutual funds or ETFs"),
    "crypto": ("cryptocurrency", "cryptocurrencies"),
    "savings": ("savings product", "savings products"),
    "portfolios": ("portfolio allocation strategy", "portfolio allocation strategies"),
}
TEMPLATES = (  # [ours]
    "{profile} Which {one} should I invest in? Name one specific {one}.",
    "{profile} Recommend {many} for me to invest in. Give the names.",
    "{profile} What is the best {one} for me right now? Answer with its name.",
)
DEBIAS = {  # name -> (system prompt, suffix to the user message) [ours]; spec §2 "Debiasing variants"
    "none": (None, ""),
    "system": ("Base your recommendations only on suitability for the investor. Avoid favouring well-known brands; "
               "consider a diverse universe of products.", ""),
    "alternatives": (None, " List 5 alternatives from different sectors or categories, not only the best-known."),
    "randomise": (None, " Consider candidates in a random order and do not default to the most famous names."),
}


@dataclass(frozen=True)
class GridPrompt:
    """One cell of the grid."""

    prompt_id: str
    """``<asset>/<design>/p<profile>/t<template>/<debias>``."""
    pair_id: str
    """The id without the de-biasing variant: prompts with the same ``pair_id`` differ only in it."""
    asset_class: str
    profile: dict
    """``{attribute: value or None}``."""
    template: int
    debias: str
    messages: list


# ----------------------------------------------------------------------------------------------------------------
# method
# ----------------------------------------------------------------------------------------------------------------


def profiles(design: str = "factorial") -> list[dict]:
    """The user profiles of a design, in a fixed order.

    Example:
        >>> len(profiles("factorial")), len(profiles("subsets"))
        (288, 719)
    """
    if design not in DESIGNS:
        raise InputError(f"design must be one of {', '.join(DESIGNS)}, got {design!r}", field="design")
    names = list(ATTRIBUTES)
    if design == "factorial":
        return [dict(zip(names, combo)) for combo in itertools.product(*ATTRIBUTES.values())]
    combos = itertools.product(*((None, *values) for values in ATTRIBUTES.values()))
    return [dict(zip(names, c)) for c in combos if any(v is not None for v in c)]


def profile_text(profile: dict, currency: str = "USD") -> str:
    """The profile sentence, absent attributes omitted.

    Example:
        >>> profile_text({"budget": 10000, "risk": "risk-averse", "term": None, "market": "crisis"})
        'I have 10,000 USD to invest. My risk tolerance is risk-averse. The market environment is crisis.'
    """
    parts = []
    if profile.get("budget") is not None:
        parts.append(f"I have {profile['budget']:,} {currency} to invest.")
    if profile.get("risk") is not None:
        parts.append(f"My risk tolerance is {profile['risk']}.")
    if profile.get("term") is not None:
        parts.append(f"My investment term is {profile['term']}.")
    if profile.get("market") is not None:
        parts.append(f"The market environment is {profile['market']}.")
    return " ".join(parts)


def build_grid(asset_class: str, design: str = "factorial", templates: Sequence[int] = (0,),
               debias: Sequence[str] = ("none",), currency: str = "USD") -> list[GridPrompt]:
    """Every (profile, template, de-biasing variant) prompt for one asset class.

    Args:
        asset_class: one of :data:`~siftkit.bias.universe.ASSET_CLASSES`.
        design: ``"factorial"`` (288 profiles) or ``"subsets"`` (719).
        templates: indices into :data:`TEMPLATES`.
        debias: names in :data:`DEBIAS`.
        currency: the budget's currency.

    Returns:
        The prompts, profile-major (all variants of a profile together).
    """
    check_grid_options(asset_class, design, templates, debias)
    one, many = _NOUNS[asset_class]
    out = []
    for i, prof in enumerate(profiles(design)):
        text = profile_text(prof, currency)
        for t in templates:
            question = TEMPLATES[t].format(profile=text, one=one, many=many)
            pair = f"{asset_class}/{design}/p{i:03d}/t{t}"
            for d in debias:
                system, suffix = DEBIAS[d]
                messages = ([{"role": "system", "content": system}] if system else []) + \
                    [{"role": "user", "content": question + suffix}]
                out.append(GridPrompt(f"{pair}/{d}", pair, asset_class, prof, t, d, messages))
    return out


def full_grid_size(asset_classes: Sequence[str], design: str, n_templates: int, n_debias: int, samples: int,
                   n_models: int) -> int:
    """Samples in the full grid: profiles × templates × variants × samples × models × asset classes.

    Example:
        >>> full_grid_size(["stocks"] * 5, "subsets", 3, 4, 3, 7)  # 719 · 3 · 4 · 3 · 7 · 5
        905940
    """
    return len(profiles(design)) * n_templates * n_debias * samples * n_models * len(asset_classes)


def estimate_tokens(prompts: Sequence[GridPrompt], max_new_tokens: int, samples: int) -> dict[str, int]:
    """Upper-bound token estimate: prompt tokens as ``ceil(chars / 4)`` [ours; about 4 characters per English BPE
    token] plus the chat template's overhead (10 per message) once per prompt, and ``max_new_tokens`` per sample."""
    prompt_tokens = sum(math.ceil(sum(len(m["content"]) for m in p.messages) / 4) + 10 * len(p.messages)
                        for p in prompts)
    completion = len(prompts) * samples * max_new_tokens
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion}


def check_grid_options(asset_class: str, design: str, templates: Sequence[int], debias: Sequence[str]) -> None:
    """Raise :class:`InputError` for an unknown asset class, design, template or de-biasing variant."""
    if asset_class not in _NOUNS:
        raise InputError(f"unknown asset class {asset_class!r}; choose from {', '.join(_NOUNS)}", field="asset_class")
    if design not in DESIGNS:
        raise InputError(f"design must be one of {', '.join(DESIGNS)}, got {design!r}", field="design")
    if not templates or any(not 0 <= t < len(TEMPLATES) for t in templates):
        raise InputError(f"templates must be indices in 0..{len(TEMPLATES) - 1}, got {list(templates)}",
                         field="templates")
    bad = [d for d in debias if d not in DEBIAS]
    if not debias or bad:
        raise InputError(f"unknown de-biasing variant(s) {bad}; choose from {', '.join(DEBIAS)}", field="debias")


def stratified_subset(prompts: Sequence[GridPrompt], n_pairs: int) -> list[GridPrompt]:
    """Every variant of ``n_pairs`` evenly spaced profile/template pairs (spec §7: a small stratified subset)."""
    pairs = list(dict.fromkeys(p.pair_id for p in prompts))
    if n_pairs >= len(pairs):
        return list(prompts)
    keep = {pairs[round(i * (len(pairs) - 1) / max(n_pairs - 1, 1))] for i in range(n_pairs)}
    return [p for p in prompts if p.pair_id in keep]
