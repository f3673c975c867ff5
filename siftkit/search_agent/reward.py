"""Search-R1's outcome reward: exact match (EM) after SQuAD answer normalisation, on the last ``<answer>`` block.

Symbols (search_r1 spec §2 "Reward"): ``norm(s)`` = lowercase → drop ASCII punctuation → articles (a, an, the) to
spaces → collapse whitespace. ``EM(y, G) = 1[∃ g ∈ G: norm(y) = norm(g)]``; no answer scores 0. ``F1`` is SQuAD's
token F1 (best over aliases), an option; ``format_reward`` is a shaped variant in the spirit of upstream v0.3's
``qa_em_format`` (an option, off by default [ours: simplified]).

The answer is taken from the *response* only (the generated part after the prompt), its last ``<answer>`` block
[ours]. Upstream (``qa_em.py``) searches the decoded prompt + response and returns no answer below 2 blocks; but
the template itself holds two matches (``<answer> and </answer>`` and the example ``<answer> Beijing </answer>``),
so that check always passes, and a response without an answer is scored against the template's "Beijing".

Example:
    >>> em_reward("<search> x </search> ... <answer> The Beijing! </answer>", ["beijing"])
    1.0
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Sequence

ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """SQuAD normalisation: lower → remove punctuation → articles to spaces → single spaces."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def extract_answer(response: str) -> str | None:
    """The stripped content of the last ``<answer>…</answer>`` block of ``response``, or ``None``."""
    found = ANSWER_RE.findall(response)
    return found[-1].strip() if found else None


def _aliases(golds: str | Sequence[str]) -> Sequence[str]:
    """A bare string is one alias (not a sequence of one-character aliases) [code: ``em_check`` does the same]."""
    return [golds] if isinstance(golds, str) else golds


def exact_match(prediction: str | None, golds: str | Sequence[str]) -> float:
    """1.0 when ``norm(prediction)`` equals ``norm(g)`` for some gold alias ``g``; 0.0 otherwise or for ``None``.
    ``golds`` is a list of aliases or one bare string."""
    if prediction is None:
        return 0.0
    golds = _aliases(golds)
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(g) for g in golds))


def f1_score(prediction: str | None, golds: str | Sequence[str]) -> float:
    """SQuAD token F1 between normalised prediction and the best gold alias (0.0 for ``None``); a bare string is
    one alias."""
    if prediction is None:
        return 0.0
    golds = _aliases(golds)
    p = normalize_answer(prediction).split()
    best = 0.0
    for g in golds:
        t = normalize_answer(g).split()
        common = sum((Counter(p) & Counter(t)).values())
        if common == 0:
            continue
        prec, rec = common / len(p), common / len(t)
        best = max(best, 2 * prec * rec / (prec + rec))
    return best


def em_reward(response: str, golds: Sequence[str]) -> float:
    """Search-R1's reward: EM of the response's last ``<answer>`` block."""
    return exact_match(extract_answer(response), golds)


def f1_reward(response: str, golds: Sequence[str]) -> float:
    """F1 of the response's last ``<answer>`` block (option)."""
    return f1_score(extract_answer(response), golds)


def format_reward(response: str, golds: Sequence[str], n_invalid: int = 0, lam_format: float = 0.2) -> float:
    """EM, or ``lam_format`` for a wrong answer given in a well-formed trajectory (no invalid action) [ours]."""
    em = em_reward(response, golds)
    if em > 0:
        return em
    return lam_format if extract_answer(response) is not None and n_invalid == 0 else 0.0


REWARDS = {"em": em_reward, "f1": f1_reward}
