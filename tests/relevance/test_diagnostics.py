"""DPO prior-shift diagnostics, the keep-rule ablation and the auxiliary models' accuracy, on hand-made cases."""

import math

import pytest

from siftkit.relevance.diagnostics import (ABLATION, aux_accuracy, centred, dpo_shift_report, grades_used,
                                           judge_summary, keep_rule_ablation, pair_grades, prior_shift, shift_stats,
                                           top1)
from siftkit.relevance.lref import GRADES

E, S, M, T, I = GRADES


def test_centring_removes_what_all_grades_of_an_input_share():
    assert centred([[1.0, 2.0, 3.0, 4.0, 5.0]])[0] == pytest.approx([-2.0, -1.0, 0.0, 1.0, 2.0])
    assert centred([[7.0] * 5]) == [[0.0] * 5]


def test_top1_breaks_ties_by_grade_order():
    assert top1([[0.0, 1.0, 1.0, 0.0, 0.0], [0.0] * 5, [0, 0, 0, 0, 0.5]]) == [S, E, I]


def test_prior_shift_statistics_on_a_hand_made_case():
    before = [[0.0] * 5, [0.0] * 5, [1.0, 0, 0, 0, 0]]
    after = [[1.0, -1.0, 0, 0, 0], [3.0, -3.0, 0, 0, 0], [0.0, 2.0, 0, 0, 0]]
    delta = prior_shift(before, after, [0, 1])  # rows 0 and 1 only: δ = ((1 + 3) / 2, (-1 - 3) / 2, 0, 0, 0)
    assert delta == pytest.approx([2.0, -2.0, 0.0, 0.0, 0.0])
    st = shift_stats(before[:2], after[:2], delta)
    assert st["explained"] == pytest.approx(1 - (1 + 1 + 1 + 1) / (1 + 1 + 9 + 9))  # Σ(Δ − δ)² = 4, ΣΔ² = 20
    assert st["same_sign"] == 1.0 and st["top1_agree"] == 1.0
    st = shift_stats(before[2:], after[2:], delta)  # centred Δ = (-1.2, 1.8, -0.2, -0.2, -0.2): against δ's signs
    assert st["same_sign"] == 0.0 and st["top1_agree"] == 0.0  # before + δ says Exact, after says Significant
    assert st["explained"] == pytest.approx(1 - ((-1.2 - 2) ** 2 + (1.8 + 2) ** 2 + 3 * 0.2 ** 2)
                                            / (1.2 ** 2 + 1.8 ** 2 + 3 * 0.2 ** 2))
    assert math.isnan(shift_stats(before, before, delta)["explained"])


def test_judge_summary_counts_grades_and_over_rating():
    golds, preds = [E, M, T, I], [E, S, S, I]  # two errors, both rated above gold
    s = judge_summary(golds, preds)
    assert s["accuracy"] == pytest.approx(2 / 4) and s["grades"] == 3
    assert s["over_recall_err"] == pytest.approx(2 / 2) and s["over_recall_pred"] == pytest.approx(2 / 4)
    assert s["recall_marginal"] == 0.0 and s["precision_significant"] == 0.0


def test_pair_grades_read_the_label_line():
    pairs = [{"chosen": "Label: Marginal", "rejected": "Label: Exact"},
             {"chosen": "why\nLabel: Irrelevant ", "rejected": "Label: Trivial"}]
    assert pair_grades(pairs) == [(2, 0), (4, 3)]


def test_a_pure_prior_shift_is_all_of_the_change():
    """After = before + a constant per grade: δ is that constant (centred), it explains everything, start + δ is the
    DPO model, and DPO − δ grades exactly like the start model."""
    shift = [0.0, 3.0, -1.0, 0.5, -2.5]  # mean 0: already centred
    before = [[2.0, 1.0, 0.0, -1.0, -2.0], [0.0, 1.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 3.0],
              [1.0, 0.0, 0.0, 0.0, 0.5]]
    after = [[v + d for v, d in zip(row, shift)] for row in before]
    golds = [E, M, I, E]
    pairs = [(0, 1)]  # pool row 0: chosen Exact, rejected Significant
    r = dpo_shift_report(golds, before, after, before, after, pair_rows=[0], pairs=pairs)
    assert list(r["delta"].values()) == pytest.approx(shift)
    assert r["explained"] == pytest.approx(1.0) and r["same_sign"] == 1.0 and r["top1_agree"] == 1.0
    assert r["accuracy"] == r["shift/accuracy"] and r["grades"] == r["shift/grades"]
    assert top1(before) == golds and r["corrected/accuracy"] == 1.0  # removing δ gives the start model back
    assert top1(after) == [S, S, S, S]  # rows + shift: (2, 4, ...), (0, 4, ...), (0, 3, ..., 1.5, ...), (1, 3, ...)
    assert r["accuracy"] == 0.0 and r["grades"] == 1 and r["over_recall_pred"] == pytest.approx(2 / 4)
    assert r["fixed"] == 0.0  # pool row 0 now says Significant, the rejected grade
    assert r["d_chosen"] == pytest.approx(0.0) and r["d_rejected"] == pytest.approx(3.0)


def test_dpo_shift_report_by_hand():
    """Two pool inputs (row 0 gave a pair, row 1 did not) and one test input, every number computed by hand."""
    pool_before = [[0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]]
    pool_after = [[1.0, -1.0, 0.0, 0.0, 0.0], [0.5, 0.0, 0.0, 0.0, -0.5]]
    test_before = [[0.0, 1.0, 0.0, 0.0, 0.0]]  # top-1 Significant
    test_after = [[2.0, 1.0, 0.0, 0.0, 0.0]]  # top-1 Exact
    r = dpo_shift_report([S], test_before, test_after, pool_before, pool_after, pair_rows=[0], pairs=[(0, 1)])
    assert r["delta"] == pytest.approx({E: 0.5, S: 0.0, M: 0.0, T: 0.0, I: -0.5})  # from row 1 only
    assert r["accuracy"] == 0.0 and r["grades"] == 1  # DPO picks Exact, gold Significant
    assert r["shift/accuracy"] == 1.0  # start + δ = (0.5, 1, 0, 0, -0.5): Significant
    assert r["corrected/accuracy"] == 0.0  # DPO − δ = (1.5, 1, 0, 0, 0.5): still Exact
    assert r["top1_agree"] == 0.0
    # test Δ raw = (2, 0, 0, 0, 0), centred (2 - 0.4, -0.4, -0.4, -0.4, -0.4)
    d = [1.6, -0.4, -0.4, -0.4, -0.4]
    delta = [0.5, 0.0, 0.0, 0.0, -0.5]
    assert r["explained"] == pytest.approx(1 - sum((a - b) ** 2 for a, b in zip(d, delta)) / sum(a * a for a in d))
    assert r["same_sign"] == pytest.approx(2 / 2)  # (E: +1.6 vs +0.5), (I: -0.4 vs -0.5)
    assert r["fixed"] == 1.0  # pool row 0 after DPO: top-1 Exact, the chosen grade
    assert r["d_chosen"] == pytest.approx(1.0) and r["d_rejected"] == pytest.approx(-1.0)


def _pool():
    # (label, gold, noisy): rows 0 and 1 carry injected noise
    rows = [(S, E, True), (M, T, True), (E, E, False), (T, T, False)]
    return [{"label": lab, "gold": g, "noisy": nz, "stratum": "head"} for lab, g, nz in rows]


def test_keep_rule_ablation_by_hand():
    pool = _pool()
    preds = {"im": [E, M, S, T],  # IM wrong (hard) on rows 0 and 2
             "ci": [S, M, E, I],  # CI right (learnable) on rows 0, 1, 2
             "ms": [S, S, S, M]}  # MS ≠ label on rows 1, 2, 3
    out = keep_rule_ablation(pool, preds)
    assert list(out) == list(ABLATION)
    assert out["IM"]["kept"] == 2  # rows 0, 2
    assert out["IM+CI"]["kept"] == 2  # rows 0, 2
    assert out["IM+CI+MS (the rule)"]["kept"] == 1  # row 2
    assert out["IM+CI+MS (the rule)"]["kept_noise_rate"] == 0.0
    assert out["IM+CI+MS (the rule)"]["drop_recall"] == pytest.approx(2 / 2)  # both noisy rows dropped
    assert out["IM+CI+MS (the rule)"]["drop_precision"] == pytest.approx(2 / 3)
    assert out["CI"]["kept"] == 3 and out["CI"]["kept_noise_rate"] == pytest.approx(2 / 3)
    assert out["CI+MS"]["kept"] == 2  # rows 1, 2
    assert out["MS"]["kept"] == 3 and out["MS"]["keep_recall"] == pytest.approx(2 / 2)
    assert out["MS"]["kept_share_head"] == pytest.approx(3 / 4)
    assert keep_rule_ablation(pool, preds, ms_rule="eq")["MS"]["kept"] == 1  # row 0 only: MS = label


def test_aux_accuracy_against_target_and_clean_grade():
    pool = _pool()
    # MS's target label′ = CONFUSION[label]: S → E, M → S, E → S, T → M
    preds = {"im": [S, M, E, I], "ms": [E, S, S, S]}
    acc = aux_accuracy(pool, preds)
    assert acc["im"] == pytest.approx((3 / 4, 1 / 4))  # labels S, M, E right; gold E, T, E, T: row 2 only
    assert acc["ms"] == pytest.approx((3 / 4, 1 / 4))  # targets E, S, S, M: rows 0-2; gold: row 0 (E)


def test_grades_used_counts_predicted_columns():
    assert grades_used([[2, 0, 1], [0, 0, 3], [1, 0, 0]]) == 2
    assert grades_used([[0, 0], [0, 0]]) == 0
