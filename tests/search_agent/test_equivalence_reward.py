"""Search-R1's outcome reward against an independent transcription of upstream's ``qa_em.py`` (SQuAD answer
normalisation, ``em_check``) and of SQuAD v1.1's token F1, on random strings built to hit every rule: case,
ASCII punctuation (removed) next to non-ASCII punctuation (kept), articles inside words and at word edges,
tabs / newlines / non-breaking spaces, several gold aliases, a bare-string gold, and empty answers.
"""

from __future__ import annotations

import random
import re
import string
from collections import Counter

import pytest

from siftkit.search_agent.reward import em_reward, exact_match, f1_reward, f1_score, normalize_answer


def ref_normalize(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def ref_em(prediction: str, golds) -> int:
    golds = [golds] if isinstance(golds, str) else golds
    return int(any(ref_normalize(g) == ref_normalize(prediction) for g in golds))


def ref_f1(prediction: str, golds) -> float:
    golds = [golds] if isinstance(golds, str) else golds
    best = 0.0
    for g in golds:
        p, t = ref_normalize(prediction).split(), ref_normalize(g).split()
        same = sum((Counter(p) & Counter(t)).values())
        if same:
            prec, rec = same / len(p), same / len(t)
            best = max(best, 2 * prec * rec / (prec + rec))
    return best


PIECES = ["a", "an", "the", "The", "A", "theater", "ant", "Paris", "paris", "New", "York", "1,000", "U.S.", "é",
          "Ünïcode", "«quoted»", "—", "‘x’", "(b)", "x-y", "!", "?", ".", "'", "\t", "\n", "\u00a0", "  ", "ß", "İ"]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) + rng.choice(["", " ", " ", "\n"]) for _ in range(rng.randint(0, 6)))


@pytest.mark.parametrize("seed", range(3))
def test_normalisation_em_and_f1_equal_the_references(seed):
    rng = random.Random(seed)
    for _ in range(400):
        pred = _text(rng)
        golds = [_text(rng) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.3:
            golds.append(pred.upper() + " the")  # a normalised match more often than by chance
        assert normalize_answer(pred) == ref_normalize(pred)
        assert exact_match(pred, golds) == ref_em(pred, golds)
        assert exact_match(pred, golds[0]) == ref_em(pred, golds[0])  # a bare string is one alias
        assert f1_score(pred, golds) == pytest.approx(ref_f1(pred, golds), rel=1e-12)
        response = f"<think> x </think> <answer> wrong </answer> <answer>{pred}</answer>"
        assert em_reward(response, golds) == ref_em(pred.strip(), golds)  # the last block, stripped
        assert f1_reward(response, golds) == pytest.approx(ref_f1(pred.strip(), golds), rel=1e-12)


def test_no_answer_scores_zero_and_empty_answers():
    assert em_reward("<search> q </search>", ["anything"]) == 0.0 and f1_reward("no tags", ["x"]) == 0.0
    assert exact_match("", [""]) == ref_em("", [""]) == 1  # both normalise to ""
    assert exact_match("the", ["a"]) == ref_em("the", ["a"]) == 1  # articles only: both ""
    assert f1_score("the", ["a"]) == ref_f1("the", ["a"]) == 0.0  # no tokens in common (SQuAD v1.1)
