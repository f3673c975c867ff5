"""ROUGE-1, ROUGE-2 and ROUGE-L F1 between generated texts and references, via Google's rouge-score.

Symbols: ``c`` a candidate (generated) text, ``r`` its reference, ``g_n(t)`` the multiset of word n-grams of ``t``,
``LCS(r, c)`` the longest common subsequence of their tokens, ``|t|`` the token count.

* ``ROUGE-n: P = |g_n(r) ∩ g_n(c)| / |g_n(c)|``, ``R = |g_n(r) ∩ g_n(c)| / |g_n(r)|``
* ``ROUGE-L: P = LCS(r, c) / |c|``, ``R = LCS(r, c) / |r|``
* ``F1 = 2 P R / (P + R)`` (0 when ``P + R = 0``)

Tokenisation is rouge-score's default: lower-case, every run of characters outside ``[a-z0-9]`` is a separator, so
non-ASCII text scores 0 (pass a ``tokenizer`` to rouge-score directly for such text). ROUGE-L is the sentence-level
variant (``rougeL``), not the summary-level ``rougeLsum``. With several references for one candidate, the best
reference per ROUGE type is taken (rouge-score's ``score_multi``).

References:
    Lin. "ROUGE: A Package for Automatic Evaluation of Summaries", ACL Workshop 2004.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rouge_score import rouge_scorer

from siftkit.core.errors import InputError

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")

# ----------------------------------------------------------------------------------------------------------------
# method
# ----------------------------------------------------------------------------------------------------------------


def rouge_per_pair(candidates: Sequence[str], references: Sequence[str | Sequence[str]],
                   use_stemmer: bool = False) -> dict[str, np.ndarray]:
    """ROUGE-1/2/L F1 of every (candidate, reference) pair.

    Args:
        candidates: generated texts.
        references: one reference per candidate, or a list of references per candidate (best one counts).
        use_stemmer: apply the Porter stemmer before matching.

    Returns:
        ``{"rouge1": (N,), "rouge2": (N,), "rougeL": (N,)}`` arrays of F1 values.

    Example:
        >>> rouge_per_pair(["the cat sat"], ["the cat ran"])["rouge1"].round(4).tolist()  # P = R = 2/3
        [0.6667]
    """
    if isinstance(candidates, str) or isinstance(references, str):
        raise InputError("candidates and references must be lists of texts, not a single string")
    if len(candidates) != len(references):
        raise InputError(f"{len(candidates)} candidates but {len(references)} references")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)
    out = {t: np.zeros(len(candidates)) for t in ROUGE_TYPES}  # (N,) each
    for n, (c, r) in enumerate(zip(candidates, references)):
        scores = scorer.score(r, c) if isinstance(r, str) else scorer.score_multi(list(r), c)  # target first
        for t in ROUGE_TYPES:
            out[t][n] = scores[t].fmeasure
    return out


def rouge(candidates: Sequence[str], references: Sequence[str | Sequence[str]],
          use_stemmer: bool = False) -> dict[str, float]:
    """Mean ROUGE-1/2/L F1 over (candidate, reference) pairs.

    Args:
        candidates: generated texts.
        references: one reference (or a list of references) per candidate.
        use_stemmer: apply the Porter stemmer before matching.

    Returns:
        ``{"rouge1": mean F1, "rouge2": mean F1, "rougeL": mean F1}``.
    """
    if len(candidates) == 0:
        raise InputError("need at least one (candidate, reference) pair")
    per_pair = rouge_per_pair(candidates, references, use_stemmer)
    return {t: float(v.mean()) for t, v in per_pair.items()}
