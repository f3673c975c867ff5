import math

import pytest
import torch

from siftkit.cascade.baselines import (BASELINES, CascadeLoss, bce_support, fs_ranknet_loss, icc_score,
                                       lambda_weights, pair_bce_upper)


def _labels(n_stages: int, b: int = 3) -> torch.Tensor:
    negs = (7.0, 6.0, 5.0) if n_stages == 2 else (8.0, 7.0, 6.0, 5.0)
    row = [30.0 - i for i in range(10)] + sum([[d] * 10 for d in negs], [])
    return torch.tensor(row).repeat(b, 1)


@pytest.mark.parametrize("n_stages", [2, 3])
@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_is_finite_with_gradients_to_every_stage(name, n_stages):
    quotas = [30, 20] if n_stages == 2 else [40, 30, 20]
    labels = _labels(n_stages)
    torch.manual_seed(0)
    logits = [torch.randn(3, labels.shape[1], requires_grad=True) for _ in range(n_stages)]
    loss, diag = CascadeLoss(name, quotas)(logits, labels)
    assert torch.isfinite(loss) and all(math.isfinite(v) for v in diag.values())
    loss.backward()
    for s in logits:
        assert s.grad is not None and s.grad.abs().sum() > 0, name


def test_bce_support_prefixes():
    assert bce_support(40, 2) == [40, 20]
    assert bce_support(50, 3) == [50, 40, 20]


def test_icc_two_stage_gate_formula():
    # 4 items, k = 2 for both gates: items 0, 1 pass stage 1 (I₁≈1), item 0 passes stage 2 too.
    s1 = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    s2 = torch.tensor([[5.0, 4.0, 9.0, 9.0]])
    out = icc_score([s1, s2], [2, 2])
    # ŝ = (1 − I₁)s₁ + I₁I₂s₂; κ₁ = 2 (gate 0.5 at item 1), κ₂ = 9 (items 2, 3 at the threshold: I₂ = 0.5)
    expected = torch.tensor([[0 * 3 + 1 * 0 * 5, 0.5 * 2 + 0.5 * 0 * 4, 1 * 1 + 0 * 0.5 * 9, 1 * 0 + 0 * 0.5 * 9]])
    assert torch.allclose(out, expected, atol=1e-4)


def test_pair_bce_upper_hand_value():
    s = torch.tensor([[1.0, 0.0, 0.5]])
    labels = torch.tensor([[2.0, 1.0, 1.0]])
    # upper pairs: (0,1) target 1, d = 1; (0,2) target 1, d = 0.5; (1,2) tied, target 0, d = −0.5; over the 3×3 grid
    expected = (math.log1p(math.exp(-1)) + math.log1p(math.exp(-0.5)) + math.log1p(math.exp(-0.5))) / 9
    assert float(pair_bce_upper(s, labels)) == pytest.approx(expected)


def test_fs_ranknet_one_mean_per_anchor_group():
    s = torch.zeros(1, 30)
    labels = _labels(2)[:, :30]
    loss, _ = fs_ranknet_loss([s], labels)
    assert float(loss) == pytest.approx(2 * math.log(2))  # anchors 0 (20 lower items) and 1 (10), each softplus(0)
    s = torch.zeros(1, 30)
    s[0, 20:] = 1.0  # lowest group scored up: anchor 0 = (10·ln2 + 10·softplus(1))/20, anchor 1 = softplus(1)
    loss, _ = fs_ranknet_loss([s], labels)
    sp1 = math.log1p(math.e)
    assert float(loss) == pytest.approx((10 * math.log(2) + 10 * sp1) / 20 + sp1)


def test_lambda_weights_zero_for_equal_labels_and_symmetric():
    torch.manual_seed(1)
    s = torch.randn(2, 40)
    labels = _labels(2, 2)
    w = lambda_weights(s, labels)
    assert torch.allclose(w, w.transpose(-1, -2))
    assert float(w[:, 10:20, 10:20].abs().sum()) == 0.0  # a tied negative block carries no weight
    assert not w.requires_grad


def test_unknown_baseline():
    with pytest.raises(ValueError):
        CascadeLoss("nope", [30, 20])
