"""Fuzzy title / name matching on rapidfuzz, with a stated scorer, threshold and normalisation.

Symbols: ``q`` the query string, ``c_j`` the choices, ``σ`` the scorer, ``score_j = σ(norm(q), norm(c_j)) / 100`` in
[0, 1], ``τ`` the threshold. The best match is ``argmax_j score_j`` (the first choice on ties) when
``score_j >= τ``, else no match.

Normalisation (``normalise=True``) [ours]: Unicode NFKD with combining marks dropped ("Nestlé" -> "Nestle"), then
rapidfuzz's ``default_process`` (lower case, every non-alphanumeric character to a space, ends trimmed), then runs of
spaces collapsed to one.

Scorers (rapidfuzz ``fuzz``; each 0-100, divided by 100 here):

* ``"ratio"``: normalised Indel similarity ``1 - d_Indel(a, b) / (|a| + |b|)`` of the whole strings;
* ``"partial_ratio"``: the best ``ratio`` of the shorter string against any equally long substring of the longer;
* ``"token_sort_ratio"``: ``ratio`` after sorting the words;
* ``"token_set_ratio"``: ``ratio`` on the shared and differing word sets (word order and repeats ignored);
* ``"WRatio"``: rapidfuzz's weighted mix of the above.

References:
    rapidfuzz documentation, https://rapidfuzz.github.io/RapidFuzz/Usage/fuzz.html
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, utils

from siftkit.core.errors import InputError

SCORERS = {
    "ratio": fuzz.ratio,
    "partial_ratio": fuzz.partial_ratio,
    "token_sort_ratio": fuzz.token_sort_ratio,
    "token_set_ratio": fuzz.token_set_ratio,
    "WRatio": fuzz.WRatio,
}
"""The scorer names :func:`fuzzy_match` accepts."""


@dataclass(frozen=True)
class FuzzyMatch:
    """The best choice for a query."""

    choice: str
    """The matched choice, as given (not normalised)."""
    score: float
    """``σ(norm(q), norm(c)) / 100`` in [0, 1]."""
    index: int
    """Position of the choice in ``choices``."""


# ----------------------------------------------------------------------------------------------------------------
# method
# ----------------------------------------------------------------------------------------------------------------


def normalise_text(text: str) -> str:
    """The normalisation applied before scoring (see the module docstring).

    Example:
        >>> normalise_text("  Nestlé S.A. ")
        'nestle s a'
    """
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", utils.default_process(stripped))


def fuzzy_scores(query: str, choices: Sequence[str], scorer: str = "ratio", normalise: bool = True) -> list[float]:
    """``score_j`` for every choice, in [0, 1].

    Example:
        >>> fuzzy_scores("abcd", ["abcd", "abce", "wxyz"])  # Indel: 1 - 2/8 for one substitution
        [1.0, 0.75, 0.0]
    """
    sigma = _scorer(scorer)
    q = normalise_text(query) if normalise else query
    return [sigma(q, normalise_text(c) if normalise else c) / 100.0 for c in choices]


def fuzzy_match(query: str, choices: Sequence[str], scorer: str = "ratio", threshold: float = 0.8,
                normalise: bool = True) -> FuzzyMatch | None:
    """The best-scoring choice when its score reaches the threshold, else ``None``.

    Args:
        query: ``q``.
        choices: ``c_j`` (e.g. product names or paper titles).
        scorer: one of :data:`SCORERS`.
        threshold: ``τ`` in [0, 1].
        normalise: apply :func:`normalise_text` to the query and the choices first.

    Returns:
        A :class:`FuzzyMatch` (first choice on equal scores) or ``None``.

    Example:
        >>> fuzzy_match("Microsfot", ["Apple", "Microsoft", "Nvidia"])  # one transposition: 1 - 2/18
        FuzzyMatch(choice='Microsoft', score=0.888..., index=1)
        >>> fuzzy_match("Tesla", ["Apple", "Microsoft"]) is None
        True
    """
    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"threshold must be in [0, 1], got {threshold}", field="threshold")
    scores = fuzzy_scores(query, choices, scorer, normalise)
    if not scores:
        return None
    best = max(range(len(scores)), key=lambda j: (scores[j], -j))
    if scores[best] < threshold:
        return None
    return FuzzyMatch(choices[best], scores[best], best)


# ----------------------------------------------------------------------------------------------------------------
# plumbing
# ----------------------------------------------------------------------------------------------------------------


def _scorer(name: str):
    if name not in SCORERS:
        raise InputError(f"unknown scorer {name!r}; choose one of {', '.join(SCORERS)}", field="scorer")
    return SCORERS[name]
