"""Symmetric InfoNCE (AVVA, τ = 0.07, CLIP-style) against an independent float64 loop, value and gradient.

Reference, written for this test: for a batch of ``B`` pairs with similarities ``s_ij = za_i · zv_j``,
``L = ½ [ (1/B) Σ_i −log softmax_j(s_ij / τ)_i + (1/B) Σ_j −log softmax_i(s_ij / τ)_j ]``, one term at a time with
``math``-style log-sum-exp. Cases: unit and non-unit vectors, τ = 0.07 (the paper's), 0.5 and 1, tied rows
(duplicate clips in a batch), B = 2, and B = 1 (a single pair: both cross-entropies are 0).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from siftkit.curation.model import TAU, DualEncoder, _loss, info_nce

D = torch.float64


def ref_info_nce(za, zv, tau):
    B = za.shape[0]
    s = [[(za[i] * zv[j]).sum() / tau for j in range(B)] for i in range(B)]
    a2v, v2a = 0.0, 0.0
    for i in range(B):
        row = torch.stack([s[i][j] for j in range(B)])
        a2v = a2v + (torch.logsumexp(row, 0) - s[i][i])
    for j in range(B):
        col = torch.stack([s[i][j] for i in range(B)])
        v2a = v2a + (torch.logsumexp(col, 0) - s[j][j])
    return 0.5 * (a2v / B + v2a / B)


def _case(seed, B, d, unit):
    g = torch.Generator().manual_seed(seed)
    za, zv = torch.randn(B, d, generator=g, dtype=D), torch.randn(B, d, generator=g, dtype=D)
    if B > 3:
        za[3], zv[3] = za[1], zv[1]  # a duplicated pair: tied logits in rows and columns 1 and 3
    return (F.normalize(za, dim=-1), F.normalize(zv, dim=-1)) if unit else (za, zv)


@pytest.mark.parametrize("tau", [TAU, 0.5, 1.0])
@pytest.mark.parametrize("B, unit", [(6, True), (6, False), (2, True)])
def test_info_nce_value_and_gradient_equal_a_loop(tau, B, unit):
    za0, zv0 = _case(B, B, 5, unit)
    a1, v1 = za0.clone().requires_grad_(True), zv0.clone().requires_grad_(True)
    a2, v2 = za0.clone().requires_grad_(True), zv0.clone().requires_grad_(True)
    ours, ref = info_nce(a1, v1, tau), ref_info_nce(a2, v2, tau)
    ours.backward()
    ref.backward()
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    assert torch.allclose(a1.grad, a2.grad, rtol=1e-5, atol=1e-12)
    assert torch.allclose(v1.grad, v2.grad, rtol=1e-5, atol=1e-12)
    assert a1.grad.abs().sum() > 0


def test_info_nce_is_not_one_directional():
    """The two directions differ when the similarity matrix is not symmetric: the loss is their mean."""
    za, zv = _case(1, 5, 4, False)
    s = za @ zv.T / TAU
    y = torch.arange(5)
    a2v, v2a = F.cross_entropy(s, y), F.cross_entropy(s.T, y)
    assert abs(a2v.item() - v2a.item()) > 1e-3
    assert info_nce(za, zv).item() == pytest.approx(0.5 * (a2v + v2a).item(), rel=1e-12)
    assert info_nce(za, zv).item() == pytest.approx(ref_info_nce(za, zv, TAU).item(), rel=1e-5)  # default τ = 0.07


def test_single_pair_batch_has_zero_loss():
    za, zv = _case(2, 1, 3, True)
    assert info_nce(za, zv).item() == 0.0 == ref_info_nce(za, zv, TAU).item()


def test_training_loss_is_the_mean_over_self_pooled_and_cross_attended_embeddings():
    """``_loss`` (the training and validation objective) = ½ [InfoNCE(za, zv) + InfoNCE(ca, cv)], checked with the
    loop on the model's own outputs, value and gradient with respect to the heads (eval mode: no dropout)."""
    torch.manual_seed(0)
    m = DualEncoder(6, 5, hidden=16, dim=8, heads=2).double().eval()
    g = torch.Generator().manual_seed(3)
    a, v = torch.randn(4, 3, 6, generator=g, dtype=D), torch.randn(4, 2, 5, generator=g, dtype=D)
    ours = _loss(m, a, v, 0.2)
    ours.backward()
    g1 = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    za, zv, ca, cv = m(a, v)
    ref = 0.5 * (ref_info_nce(za, zv, 0.2) + ref_info_nce(ca, cv, 0.2))
    ref.backward()
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    for x, y in zip(g1, [p.grad for p in m.parameters()]):
        assert torch.allclose(x, y, rtol=1e-5, atol=1e-12)
