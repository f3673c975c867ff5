"""AVVA's data-selection score and selection rules against independent NumPy / brute-force transcriptions.

* The expected grade of one criterion (``siftkit.llm.grading.expected_grade``, what ``score_expected`` reads):
  ``p(g) = Σ_{tokens t: t.strip() = g} exp(lp_t)``, ``p̂ = p / Σ_g p(g)``, ``E = Σ_g p̂(g)·g``, mass ``Σ_g p(g)``,
  argmax the first grade in order among the most probable; on random top-k lists with leading-space duplicates
  (``"7"`` and ``" 7"``), non-grade tokens and missing grades.
* The clip score: the equal-weight mean of the criteria present, rescaled ×10/9 from the 0–9 reading.
* ``threshold_for_fraction``: the largest θ with ``#{f ≥ θ} ≥ fraction · n`` over the scored clips (brute force over
  every candidate θ); ``select_fraction``: exactly ``round(fraction · n)`` kept, every kept score ≥ every dropped one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from siftkit.curation.judge import CRITERIA, final_score, select, select_fraction, threshold_for_fraction
from siftkit.llm.base import TokenDistribution
from siftkit.llm.grading import expected_grade

GRADES = tuple(str(g) for g in range(10))


def ref_expected(top, grades=GRADES):
    p = np.zeros(len(grades))
    for tok, lp in top:
        if tok.strip() in grades:
            p[grades.index(tok.strip())] += math.exp(lp)
    mass = p.sum()
    if mass == 0:
        return math.nan, None, 0.0
    ph = p / mass
    return float(ph @ np.arange(len(grades))), grades[int(np.argmax(p))], float(mass)


@pytest.mark.parametrize("seed", range(5))
def test_expected_grade_equals_a_numpy_reading(seed):
    rng = np.random.default_rng(seed)
    for _ in range(50):
        toks = list(rng.choice(list(GRADES) + [" " + g for g in GRADES] + ["The", " Score", "10", "x"],
                               size=int(rng.integers(1, 20)), replace=False))
        logits = rng.normal(size=len(toks)) * 2
        lps = logits - np.log(np.exp(logits).sum() + rng.random() * 3)  # a top-k: mass below 1
        top = [(str(t), float(lp)) for t, lp in zip(toks, lps)]
        r = expected_grade(TokenDistribution(top=top), GRADES)
        e, arg, mass = ref_expected(top)
        if arg is None:
            assert r.argmax is None and math.isnan(r.expected) and r.mass == 0.0
            continue
        assert r.expected == pytest.approx(e, rel=1e-9) and r.mass == pytest.approx(mass, rel=1e-9)
        assert r.argmax == arg


def test_clip_score_is_the_mean_of_the_present_criteria():
    rng = np.random.default_rng(1)
    for _ in range(100):
        raw = {c: float(rng.random() * 9) for c in CRITERIA}
        gone = rng.random(len(CRITERIA)) < 0.3
        scores = {c: (math.nan if g else v * 10 / 9) for (c, v), g in zip(raw.items(), gone)}
        present = [v * 10 / 9 for (c, v), g in zip(raw.items(), gone) if not g]
        got = final_score(scores)
        assert (math.isnan(got) and not present) or got == pytest.approx(np.mean(present), rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_threshold_and_fraction_selection_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    f = rng.integers(0, 6, size=40).astype(float) * 1.5  # many ties
    f[rng.random(40) < 0.15] = np.nan  # unscored clips
    scored = f[~np.isnan(f)]
    for fraction in (0.05, 0.2, 0.5, 0.77, 1.0):
        ok = [t for t in np.unique(scored) if (scored >= t).sum() >= fraction * len(scored)]
        assert threshold_for_fraction(f, fraction) == max(ok)
        assert select(f, max(ok)).sum() == (scored >= max(ok)).sum()
        mask = select_fraction(f, fraction, seed=seed)
        assert mask.sum() == round(fraction * len(f))
        kept, dropped = np.nan_to_num(f[mask], nan=-np.inf), np.nan_to_num(f[~mask], nan=-np.inf)
        assert not len(kept) or not len(dropped) or kept.min() >= dropped.max()
