"""The self-KD losses against sentence-transformers' MSELoss (``compute_loss_from_embeddings``) and an independent
float64 loop, value and gradient with respect to every student input.

References: sentence-transformers' MSELoss averages one ``mse_loss`` per input column against the (broadcast)
teacher embedding, i.e. ½ [MSE(S(en), T(en)) + MSE(S(x), T(en))] for two columns (xvlm2vec spec, Loss [code]); the
image variant is upstream's ``DistillationTrainerWithImageLoss.compute_loss`` (swapUniba/xVLM2Vec): the four MSEs
(output en/lang vs teacher en; "others" en/lang vs teacher "others" en) divided by 4, which is the same MSELoss
mean over four columns with targets (T, T, O_T, O_T). The loop reference sums squared differences element by element.
"""

from __future__ import annotations

import pytest
import torch

from siftkit.multilingual.train import image_kd_loss, self_kd_loss

D = torch.float64


def _st_mse():
    from sentence_transformers.sentence_transformer.losses import MSELoss

    return MSELoss(torch.nn.Identity())  # the model is unused by compute_loss_from_embeddings


def ref_mse(a, b):
    total = 0.0
    for i in range(a.shape[0]):
        for k in range(a.shape[1]):
            total = total + (a[i, k] - b[i, k]) ** 2
    return total / (a.shape[0] * a.shape[1])


def _tensors(seed, n, d, k):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g, dtype=D) * (1 + i) for i in range(k)]  # un-normalised, varied scales


@pytest.mark.parametrize("n, d", [(5, 7), (1, 3)])
def test_self_kd_loss_equals_st_mseloss_and_a_loop(n, d):
    s_en0, s_x0, t_en = _tensors(n, n, d, 3)
    t_en[0] = s_en0[0]  # a row the student already matches: zero error there
    leaves = [[x.clone().requires_grad_(True) for x in (s_en0, s_x0)] for _ in range(3)]
    ours = self_kd_loss(leaves[0][0], leaves[0][1], t_en)
    st = _st_mse().compute_loss_from_embeddings(leaves[1], [t_en, t_en])
    ref = 0.5 * (ref_mse(leaves[2][0], t_en) + ref_mse(leaves[2][1], t_en))
    for v in (ours, st, ref):
        v.backward()
    assert ours.item() == pytest.approx(st.item(), rel=1e-5) and ours.item() == pytest.approx(ref.item(), rel=1e-5)
    for j in range(2):
        assert torch.allclose(leaves[0][j].grad, leaves[1][j].grad, rtol=1e-5, atol=1e-14)
        assert torch.allclose(leaves[0][j].grad, leaves[2][j].grad, rtol=1e-5, atol=1e-14)
    # the gradient of ½·mean((s − t)²) over (n, d) is (s − t) / (n·d)
    assert torch.allclose(leaves[0][0].grad, (s_en0 - t_en) / (n * d), rtol=1e-12)


def test_self_kd_loss_gradient_with_respect_to_the_target():
    s_en, s_x, t0 = _tensors(3, 4, 6, 3)
    t = t0.clone().requires_grad_(True)
    self_kd_loss(s_en, s_x, t).backward()
    # the trainer passes detached targets; were they trainable, their gradient is minus the summed student errors
    assert torch.allclose(t.grad, -((s_en - t0) + (s_x - t0)) / (4 * 6), rtol=1e-12)


@pytest.mark.parametrize("n, d", [(4, 6), (1, 2)])
def test_image_kd_loss_equals_upstream_four_term_mean(n, d):
    s_en0, s_x0, t_en, o_s_en0, o_s_x0, o_t = _tensors(10 + n, n, d, 6)
    o_s_x0[0] = 0.0  # a text-only row pools its empty "others" segment to zeros
    inputs = (s_en0, s_x0, o_s_en0, o_s_x0)
    leaves = [[x.clone().requires_grad_(True) for x in inputs] for _ in range(3)]
    a, b, c = leaves
    ours = image_kd_loss(a[0], a[1], t_en, a[2], a[3], o_t)
    st = _st_mse().compute_loss_from_embeddings(b, [t_en, t_en, o_t, o_t])
    ref = (ref_mse(c[0], t_en) + ref_mse(c[1], t_en) + ref_mse(c[2], o_t) + ref_mse(c[3], o_t)) / 4
    for v in (ours, st, ref):
        v.backward()
    assert ours.item() == pytest.approx(st.item(), rel=1e-5) and ours.item() == pytest.approx(ref.item(), rel=1e-5)
    for j in range(4):
        assert torch.allclose(a[j].grad, b[j].grad, rtol=1e-5, atol=1e-14)
        assert torch.allclose(a[j].grad, c[j].grad, rtol=1e-5, atol=1e-14)
    # the image variant is not the text loss: the "others" terms carry weight ¼ each
    assert ours.item() != pytest.approx(self_kd_loss(s_en0, s_x0, t_en).item(), rel=1e-3)
