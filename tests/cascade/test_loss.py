import math

import numpy as np
import pytest
import torch

from siftkit.cascade.loss import LcronConfig, LcronLoss, label_matrix, lcron_loss, neuralsort, top_mass


def test_neuralsort_rows_sum_to_one_and_columns_at_small_tau():
    s = torch.randn(3, 7, generator=torch.Generator().manual_seed(0))
    p = neuralsort(s, 1.0)
    assert torch.allclose(p.sum(-1), torch.ones(3, 7), atol=1e-6)  # row-stochastic at any τ
    p_small = neuralsort(s, 1e-3)
    assert torch.allclose(p_small.sum(-2), torch.ones(3, 7), atol=1e-4)  # columns too, as τ → 0


def test_neuralsort_columns_need_not_sum_to_one_at_large_tau():
    p = neuralsort(torch.tensor([[3.0, 0.0, -1.0, 0.5]]), 5.0)
    assert not torch.allclose(p.sum(-2), torch.ones(1, 4), atol=1e-3)  # why top_mass divides by the column sum


def test_neuralsort_approaches_hard_sort():
    s = torch.tensor([[0.3, 2.0, -1.0, 1.1]])
    hard = torch.zeros(4, 4)
    for k, j in enumerate(torch.argsort(s[0], descending=True)):
        hard[k, j] = 1
    errs = [float((neuralsort(s, t)[0] - hard).abs().max()) for t in (10.0, 1.0, 0.1, 0.01)]
    assert errs == sorted(errs, reverse=True) and errs[-1] < 1e-6


def test_label_matrix_tie_block_gives_one_tenth():
    labels = torch.tensor([[30.0 - i for i in range(10)] + [7.0] * 10])  # 10 distinct, then a tie block of 10
    y = label_matrix(labels)
    assert torch.allclose(y[0, 10:, 10:], torch.full((10, 10), 1 / 10), atol=1e-6)
    assert torch.allclose(y[0, :10, :10], torch.eye(10), atol=1e-6)
    yb = label_matrix(labels, binarize=True)
    assert float(yb[0, 10:, 10:].sum(0)[0]) == 10  # binarised: a tied negative weighs 10


def test_lcron_four_item_hand_value():
    # equal scores: P = 1/4 everywhere, column sums 1 → top(P,2) = bot(P,2) = 0.5/(1+1e-6) for every item.
    # labels 4,3,2,1 → Y = identity, GT = items 0, 1 (gt_k = 2).
    cfg = LcronConfig(q=2, gt_k=2)
    logits = [torch.zeros(1, 4), torch.zeros(1, 4)]
    labels = torch.tensor([[4.0, 3.0, 2.0, 1.0]])
    loss, diag = lcron_loss(logits, labels, cfg, torch.zeros(2))
    t = 0.5 / (1 + 1e-6)
    e2e = (2 * -math.log(t * t + 1e-6) + 2 * -math.log(1 - t * t + 1e-6)) / 4
    single = (4 * -math.log(t + 1e-6)) / 4
    assert diag["l_e2e"] == pytest.approx(e2e, rel=1e-5)
    assert diag["l_single_0"] == pytest.approx(single, rel=1e-5)
    assert float(loss) == pytest.approx(e2e + 0.5 * single + 0.5 * single + math.log(1 * 1), rel=1e-5)


# ---------------------------------------------------------------- independent NumPy transcription of the formulas
def _np_neuralsort(s, tau):
    n = len(s)
    out = np.zeros((n, n))
    for k in range(1, n + 1):
        z = np.array([((n + 1 - 2 * k) * s[j] - sum(abs(s[j] - s[l]) for l in range(n))) / tau for j in range(n)])
        z = np.exp(z - z.max())
        out[k - 1] = z / z.sum()
    return out


def _np_lcron(logits, labels, tau=50.0, q=10, gt_k=10, binarize=False, w=None):
    total = 0.0
    b = len(labels)
    w = np.ones(len(logits)) if w is None else w
    e2e, singles = 0.0, np.zeros(len(logits))
    for r in range(b):
        y = _np_neuralsort(labels[r], 1e-4)
        if binarize:
            y = (y > 1e-3).astype(float)
        y_pos, y_neg = y[:gt_k].sum(0), y[gt_k:].sum(0)
        tops, bots = [], []
        for s in logits:
            p = _np_neuralsort(s[r], tau)
            c = p.sum(0) + 1e-6
            tops.append(p[:q].sum(0) / c)
            bots.append(p[q:].sum(0) / c)
        prod = np.prod(tops, axis=0)
        e2e += np.mean(-np.log(prod + 1e-6) * y_pos - np.log(1 - prod + 1e-6) * np.clip(1 - y_pos, 0, 1)) / b
        for i in range(len(logits)):
            singles[i] += np.mean(-np.log(tops[i] + 1e-6) * y_pos - np.log(bots[i] + 1e-6) * y_neg) / b
    total = e2e + sum(0.5 / w[i] ** 2 * singles[i] + np.log(w[i]) for i in range(len(logits)))
    return total, e2e, singles


@pytest.mark.parametrize("n_stages,binarize", [(2, False), (3, True)])
def test_lcron_matches_numpy_transcription(n_stages, binarize):
    rs = np.random.default_rng(n_stages)
    n = 20
    labels = np.concatenate([30 - rs.permutation(10), np.full(5, 7.0), np.full(5, 6.0)])[None].repeat(2, 0)
    logits = [rs.normal(0, 3, (2, n)) for _ in range(n_stages)]
    w = np.array([0.7, 1.3, 1.1][:n_stages])
    ref, ref_e2e, ref_single = _np_lcron(logits, labels, binarize=binarize, w=w)
    loss, diag = lcron_loss([torch.tensor(x) for x in logits], torch.tensor(labels),
                            LcronConfig(binarize_y=binarize), torch.tensor(np.log(w)))
    assert diag["l_e2e"] == pytest.approx(ref_e2e, rel=1e-6)
    assert [diag[f"l_single_{i}"] for i in range(n_stages)] == pytest.approx(list(ref_single), rel=1e-6)
    assert float(loss) == pytest.approx(ref, rel=1e-6)


def test_upstream_binarisation_default_depends_on_stage_count():
    labels = torch.tensor([[30.0 - i for i in range(10)] + [7.0] * 10 + [6.0] * 10])
    logits2 = [torch.randn(1, 30) for _ in range(2)]
    _, soft = lcron_loss(logits2, labels, LcronConfig(), torch.zeros(2))
    _, soft_explicit = lcron_loss(logits2, labels, LcronConfig(binarize_y=False), torch.zeros(2))
    assert soft["l_single_0"] == pytest.approx(soft_explicit["l_single_0"])
    logits3 = logits2 + [torch.randn(1, 30)]
    _, hard = lcron_loss(logits3, labels, LcronConfig(), torch.zeros(3))
    _, hard_explicit = lcron_loss(logits3, labels, LcronConfig(binarize_y=True), torch.zeros(3))
    assert hard["l_single_0"] == pytest.approx(hard_explicit["l_single_0"])


def test_top_mass_uses_detached_column_sum():
    s = torch.tensor([[1.0, 0.0, -0.5, 2.0]], requires_grad=True)
    p = neuralsort(s, 1.0)
    top = top_mass(p, 2)
    assert torch.allclose(top, p[0, :2].sum(0) / (p[0].sum(0) + 1e-6))
    top.sum().backward()
    assert torch.isfinite(s.grad).all()


@pytest.mark.parametrize("cfg", [LcronConfig(), LcronConfig(use_e2e=False), LcronConfig(use_single=False),
                                 LcronConfig(eq13=True)])
def test_lcron_module_gradients_reach_every_stage_and_weight(cfg):
    crit = LcronLoss(3, cfg)
    logits = [torch.randn(4, 50, requires_grad=True) for _ in range(3)]
    labels = torch.tensor([30.0 - i for i in range(10)] + sum([[d] * 10 for d in (8.0, 7.0, 6.0, 5.0)], []))
    loss, _ = crit(logits, labels.repeat(4, 1))
    loss.backward()
    assert torch.isfinite(loss)
    for x in logits:
        assert x.grad is not None and x.grad.abs().sum() > 0
    if cfg.use_single:
        assert crit.log_w.grad.abs().sum() > 0
    if cfg.eq13:
        assert crit.log_alpha.grad.abs() > 0


def test_config_validation():
    with pytest.raises(ValueError):
        LcronConfig(tau=0)
    with pytest.raises(ValueError):
        LcronConfig(use_e2e=False, use_single=False)


def test_per_stage_q_equals_scalar_q_when_equal_and_differs_otherwise():
    torch.manual_seed(0)
    logits = [torch.randn(2, 40) for _ in range(2)]
    labels = torch.tensor([30.0 - i for i in range(10)] + [7.0] * 10 + [6.0] * 10 + [5.0] * 10).repeat(2, 1)
    a, _ = lcron_loss(logits, labels, LcronConfig(), torch.zeros(2))
    b, _ = lcron_loss(logits, labels, LcronConfig(q_per_stage=(10, 10)), torch.zeros(2))
    c, _ = lcron_loss(logits, labels, LcronConfig(q_per_stage=(30, 20)), torch.zeros(2))
    assert float(a) == pytest.approx(float(b)) and float(a) != pytest.approx(float(c))
    with pytest.raises(ValueError):
        lcron_loss(logits, labels, LcronConfig(q_per_stage=(30,)), torch.zeros(2))
