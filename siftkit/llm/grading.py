"""Reading a numeric grade (0–10, 0–4) from one next-token distribution, as an expectation over the grade tokens.

A judge asked for a grade answers with a digit. Instead of decoding it, read the distribution of the first token
(:meth:`~siftkit.llm.base.ChatModel.next_token_logprobs`, one forward pass) and take

    p(g) = sum over tokens t with t.strip() == g of exp(logprob(t))      (so "7" and " 7" both count for 7)
    p_hat(g) = p(g) / mass,   mass = sum_g p(g)                          (renormalised over the grades found)
    expected = sum_g p_hat(g) * float(g),   argmax = argmax_g p_hat(g)

``mass`` tells how much of the model's probability went to a grade at all (low mass: the model wanted to say
something else first, e.g. "The"); grades outside the top-k count as probability 0.

One forward pass reads only the first token, so every grade must be one token of the model's tokenizer. Tokenizers
that split numbers into single digits (Qwen, for one) read "10" as "1" [ours: no second pass is made]: use 0–9 or
0–4 there, or :func:`grade_by_score`, which scores each grade text as a continuation (one pass per grade, exact for
multi-token grades). For single-token grades the two readings agree (``tests/llm/test_next_token.py``).

Example:
    >>> dist = TokenDistribution(top=[("7", -0.5), (" 8", -1.5), ("The", -2.0)])
    >>> r = expected_grade(dist)
    >>> r.argmax, round(r.expected, 3), round(r.mass, 3)
    ('7', 7.269, 0.83)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from siftkit.llm.base import Prompt, TokenDistribution

GRADES_0_10 = tuple(str(g) for g in range(11))
GRADES_0_4 = tuple(str(g) for g in range(5))


@dataclass
class GradeReading:
    """A grade read from a distribution.

    Attributes:
        expected: ``sum_g p_hat(g) * g``; NaN when no grade was found (``mass == 0``).
        argmax: the most probable grade (the first in ``grades`` order on a tie), or ``None`` when none was found.
        mass: total probability of the grade tokens found, under the model's full softmax.
        probs: ``p_hat(g)`` per grade, renormalised to sum to 1 (all 0 when none was found).
    """

    expected: float
    argmax: str | None
    mass: float
    probs: dict[str, float]


def _logsumexp(xs: Sequence[float]) -> float:
    m = max(xs, default=float("-inf"))
    if m == float("-inf"):
        return m
    return m + math.log(sum(math.exp(x - m) for x in xs))


def read_grade(grade_logprobs: Mapping[str, float], grades: Sequence[str] = GRADES_0_10) -> GradeReading:
    """The reading from the log-probability mass of each grade (``-inf`` or absent: not found).

    Args:
        grade_logprobs: ``log p(g)`` per grade text.
        grades: numeric grade texts, e.g. :data:`GRADES_0_10`.
    """
    lps = [grade_logprobs.get(g, float("-inf")) for g in grades]
    log_mass = _logsumexp(lps)
    if log_mass == float("-inf"):
        return GradeReading(expected=float("nan"), argmax=None, mass=0.0, probs=dict.fromkeys(grades, 0.0))
    probs = {g: math.exp(lp - log_mass) for g, lp in zip(grades, lps)}
    best = max(range(len(grades)), key=lambda j: (lps[j], -j))
    return GradeReading(expected=sum(p * float(g) for g, p in probs.items()), argmax=grades[best],
                        mass=math.exp(log_mass), probs=probs)


def expected_grade(dist: TokenDistribution, grades: Sequence[str] = GRADES_0_10) -> GradeReading:
    """Read a grade from a next-token distribution: tokens whose text stripped of whitespace is a grade count for it.

    Args:
        dist: the top-k after the judge prompt (ask for a ``top_k`` of at least 20 so every grade can appear).
        grades: numeric grade texts, each one token of the model's tokenizer.

    Returns:
        A :class:`GradeReading` (expected grade, argmax grade, probability mass found, renormalised probabilities).
    """
    found: dict[str, list[float]] = {g: [] for g in grades}
    for tok, lp in dist.top:
        if tok.strip() in found:
            found[tok.strip()].append(lp)
    return read_grade({g: _logsumexp(lps) for g, lps in found.items()}, grades)


def grade_by_score(llm, prompts: Sequence[Prompt], grades: Sequence[str] = GRADES_0_10,
                   variants: Sequence[str] = ("", " ")) -> list[GradeReading]:
    """The same reading from ``llm.score``: each grade, spelt ``variant + grade``, scored as a continuation.

    ``p(g)`` is the sum over the variants of ``exp(score)``. Costs ``len(grades) * len(variants)`` scored
    continuations per prompt; exact for multi-token grades (e.g. ``"10"`` on a digit-splitting tokenizer).

    Args:
        llm: any :class:`~siftkit.llm.base.ChatModel` (through the response cache, ideally).
        prompts: judge prompts.
        grades: numeric grade texts.
        variants: prefixes that spell the same grade (``" "`` for a leading-space token).
    """
    conts = [v + g for g in grades for v in variants]
    scores = llm.score([p for p in prompts for _ in conts], conts * len(prompts))
    per = len(conts)
    out = []
    for i in range(len(prompts)):
        lp = [s.logprob for s in scores[i * per:(i + 1) * per]]
        out.append(read_grade({g: _logsumexp(lp[j * len(variants):(j + 1) * len(variants)])
                               for j, g in enumerate(grades)}, grades))
    return out
