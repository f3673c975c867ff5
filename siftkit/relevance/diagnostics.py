"""What a trained LREF judge learned: DPO's grade-prior shift, the keep rule's terms, the auxiliary models.

Analysis of stored predictions and log-probabilities, no training. Symbols: ``lp[n][g]`` the log-probability of grade
g for input n (grades best first, :data:`~siftkit.relevance.lref.GRADES`), ``c[n][g] = lp[n][g] − mean_g lp[n]`` the
centred log-probability (a change shared by all grades of an input cannot move the ranking, so it drops out),
``Δ = c_after − c_before``.

* δ_g, the prior shift [ours]: the mean of Δ[n][g] over inputs n that gave no preference pair — one constant per
  grade, i.e. a shift of the grade prior. :func:`prior_shift`.
* share of the change that is δ: ``1 − Σ_{n,g} (Δ[n][g] − δ_g)² / Σ_{n,g} Δ[n][g]²``. :func:`shift_stats`.
* keep-rule ablation: the Stage-1 rule re-applied with terms switched off (the paper's +IM → +CI → +MS ladder).
  :func:`keep_rule_ablation`.

The question these answer (``benchmarks/results/lref.md``, "What label-only DPO changes"): does label-only DPO teach
the judge to grade, or mostly move its prior over grades? If the second, the DPO model minus δ should grade about as
well as the start model, and the start model plus δ should pick most of the DPO model's grades.
"""

from __future__ import annotations

from typing import Sequence

from siftkit.relevance.lref import GRADES, keep, ms_target, ranked, selection_stats
from siftkit.relevance.metrics import relevance_report

LogProbs = Sequence[Sequence[float]]
"""Per input, one log-probability per grade (grades best first)."""

SUMMARY = ("macro_f1", "accuracy", "over_recall_err", "over_recall_pred", "recall_marginal", "precision_significant")
"""The judge numbers :func:`judge_summary` keeps (the paper's macro-F1, over-rating, Marginal recall, Significant
precision), besides ``grades``."""

# ---------------------------------------------------------------------------------------------------------------------
# method: the grade-prior shift
# ---------------------------------------------------------------------------------------------------------------------


def centred(lp: LogProbs) -> list[list[float]]:
    """``c[n][g] = lp[n][g] − mean_g lp[n][g]``: what decides the ranking of input n's grades."""
    return [[v - sum(row) / len(row) for v in row] for row in lp]


def top1(lp: LogProbs, grades: Sequence[str] = GRADES) -> list[str]:
    """The predicted grade of each input: the highest log-probability (ties keep the grade order)."""
    return [ranked(row, grades)[0] for row in lp]


def shifted(lp: LogProbs, delta: Sequence[float], sign: float = 1.0) -> list[list[float]]:
    """``lp[n][g] + sign · δ_g``: a model's log-probabilities with the prior shift added (``sign=-1``: removed)."""
    return [[v + sign * d for v, d in zip(row, delta)] for row in lp]


def prior_shift(before: LogProbs, after: LogProbs, rows: Sequence[int]) -> list[float]:
    """δ_g = mean over n ∈ ``rows`` of Δ[n][g] (centred log-probabilities): a per-grade constant.

    Example: one input, before (0, 0, 0, 0, 0), after (1, −1, 0, 0, 0) → δ = (1, −1, 0, 0, 0).
    """
    b, a = centred(before), centred(after)
    return [sum(a[i][g] - b[i][g] for i in rows) / len(rows) for g in range(len(before[0]))]


def shift_stats(before: LogProbs, after: LogProbs, delta: Sequence[float]) -> dict[str, float]:
    """How much of the change from ``before`` to ``after`` the constant ``delta`` is.

    Returns:
        ``explained`` = 1 − Σ(Δ − δ)² / ΣΔ² over inputs × grades (NaN when nothing changed); ``same_sign`` = share
        of the non-zero (input, grade) changes with the sign of δ_g (where δ_g ≠ 0); ``top1_agree`` = share of
        inputs whose top-1 grade under ``before + δ`` is the one under ``after``.
    """
    b, a = centred(before), centred(after)
    d = [[x - y for x, y in zip(ra, rb)] for ra, rb in zip(a, b)]
    total = sum(v * v for row in d for v in row)
    resid = sum((v - delta[g]) ** 2 for row in d for g, v in enumerate(row))
    same = [(v > 0) == (delta[g] > 0) for row in d for g, v in enumerate(row) if v != 0 and delta[g] != 0]
    agree = sum(x == y for x, y in zip(top1(shifted(before, delta)), top1(after)))
    return {"explained": 1 - resid / total if total else float("nan"),
            "same_sign": sum(same) / len(same) if same else float("nan"),
            "top1_agree": agree / len(after)}


def judge_summary(golds: Sequence[str], preds: Sequence[str], grades: Sequence[str] = GRADES) -> dict:
    """The :data:`SUMMARY` numbers of :func:`~siftkit.relevance.metrics.relevance_report` plus ``grades``, the
    number of distinct grades predicted (a judge collapsed onto one grade predicts 1)."""
    r = relevance_report(golds, preds, grades)
    return {k: r[k] for k in SUMMARY} | {"grades": len(set(preds))}


def pair_grades(pairs: Sequence[dict], grades: Sequence[str] = GRADES) -> list[tuple[int, int]]:
    """(chosen, rejected) grade indices of label-only preference pairs, whose completions end in ``Label: <g>``."""
    def g(text: str) -> int:
        return list(grades).index(text.rsplit("Label: ", 1)[-1].strip())

    return [(g(p["chosen"]), g(p["rejected"])) for p in pairs]


def dpo_shift_report(golds: Sequence[str], test_before: LogProbs, test_after: LogProbs, pool_before: LogProbs,
                     pool_after: LogProbs, pair_rows: Sequence[int], pairs: Sequence[tuple[int, int]],
                     used: set[int] | None = None, grades: Sequence[str] = GRADES) -> dict:
    """What DPO changed, split into a grade-prior shift and the rest.

    δ is measured on the pool inputs that gave no pair (never on the test inputs), so "start + δ" is a fair
    prediction of the DPO model on held-out data.

    Args:
        golds: gold grades of the test inputs.
        test_before, test_after: log-probabilities of the start and the DPO model on the test inputs.
        pool_before, pool_after: the same on the training pool (where the pairs were mined).
        pair_rows: per pair, the pool row it was mined from.
        pairs: per pair, (chosen, rejected) grade indices (:func:`pair_grades`).
        used: pool rows that share a pair's prompt (default: ``pair_rows``); excluded from δ.

    Returns:
        The DPO model's :func:`judge_summary`; :func:`shift_stats` on the test inputs; ``shift/<k>`` (start + δ) and
        ``corrected/<k>`` (DPO − δ) summaries; ``delta`` (grade → δ_g); on the pairs' own inputs, ``fixed`` = share
        whose top-1 after DPO is the chosen grade, ``d_chosen`` / ``d_rejected`` = mean raw change of the chosen /
        rejected grade's log-probability.
    """
    used = set(pair_rows) if used is None else used
    delta = prior_shift(pool_before, pool_after, [i for i in range(len(pool_before)) if i not in used])
    n = len(pairs)
    after_top = top1([pool_after[i] for i in pair_rows], grades)
    return {**judge_summary(golds, top1(test_after, grades), grades),
            **shift_stats(test_before, test_after, delta),
            **{f"shift/{k}": v for k, v in judge_summary(golds, top1(shifted(test_before, delta), grades),
                                                         grades).items()},
            **{f"corrected/{k}": v for k, v in judge_summary(golds, top1(shifted(test_after, delta, -1), grades),
                                                             grades).items()},
            "delta": dict(zip(grades, delta)),
            "fixed": sum(t == grades[c] for t, (c, _) in zip(after_top, pairs)) / n,
            "d_chosen": sum(pool_after[i][c] - pool_before[i][c] for i, (c, _) in zip(pair_rows, pairs)) / n,
            "d_rejected": sum(pool_after[i][r] - pool_before[i][r] for i, (_, r) in zip(pair_rows, pairs)) / n}


# ---------------------------------------------------------------------------------------------------------------------
# method: Stage 1, which term of the keep rule does the work
# ---------------------------------------------------------------------------------------------------------------------

ABLATION: dict[str, tuple[bool, bool, bool]] = {
    "IM": (True, False, False), "IM+CI": (True, True, False), "IM+CI+MS (the rule)": (True, True, True),
    "CI": (False, True, False), "CI+MS": (False, True, True), "MS": (False, False, True)}
"""Keep-rule terms switched on (use_im, use_ci, use_ms): the paper's +IM → +CI → +MS ladder [2nd, Table 3] plus the
terms without the "hard" condition [ours]."""


def keep_rule_ablation(pool: Sequence[dict], preds: dict[str, Sequence[str]], ms_rule: str = "neq",
                       terms: dict[str, tuple[bool, bool, bool]] = ABLATION) -> dict[str, dict]:
    """The keep rule re-applied to the same IM, CI and MS predictions with terms switched off.

    Args:
        pool: records with ``label`` (observed), ``noisy`` (injected noise flag) and optionally ``stratum``.
        preds: ``{"im", "ci", "ms"}`` → one predicted grade per pool record.
        ms_rule: as :attr:`~siftkit.relevance.config.LrefConfig.ms_rule`.
        terms: row name → (use_im, use_ci, use_ms).

    Returns:
        Row name → :func:`~siftkit.relevance.lref.selection_stats` of the kept set.
    """
    noisy = [bool(x.get("noisy", False)) for x in pool]
    strata = [x.get("stratum", "all") for x in pool]
    out = {}
    for name, (im, ci, ms) in terms.items():
        kept = [keep(x["label"], a, b, c, ms_rule, im, ci, ms)
                for x, a, b, c in zip(pool, preds["im"], preds["ci"], preds["ms"])]
        out[name] = selection_stats(kept, noisy, strata)
    return out


def aux_accuracy(pool: Sequence[dict], preds: dict[str, Sequence[str]]) -> dict[str, tuple[float, float]]:
    """Per auxiliary model: (accuracy against its training target, accuracy against the clean grade ``gold``).

    The target is the pool label for IM and CI and label′ = :func:`~siftkit.relevance.lref.ms_target` for MS.
    """
    out = {}
    for name, p in preds.items():
        target = [ms_target(x["label"]) if name == "ms" else x["label"] for x in pool]
        out[name] = (sum(a == t for a, t in zip(p, target)) / len(pool),
                     sum(a == x["gold"] for a, x in zip(p, pool)) / len(pool))
    return out


def grades_used(confusion: Sequence[Sequence[int]]) -> int:
    """Distinct grades a judge predicted, from its confusion matrix (rows gold, columns predicted)."""
    return sum(1 for col in zip(*confusion) if sum(col))
