"""The self-KD losses against sentence-transformers' MSELoss (``compute_loss_from_embeddings``) and an independent
float64 loop, value and gradient with respect to every student input.

References: sentence-transformers' MSELoss averages one ``mse_loss`` per input column against the (broadcast)
teacher embedding, i.e. ½ [MSE(S(en), T(en)) + MSE(S(x), T(en))] for two columns (xvlm2vec spec, Loss [code]); the
image variant is upstream's ``DistillationTrainerWithImageLoss.compute_loss`` (swapUniba/xVLM2Vec): the four MSEs
(output en/lang vs teacher en; "others" en/lang vs teacher "others" en) divided by 4, which is the same MSELoss
mean over four columns with targets (T, T, O_T, O_T). The loop reference sums squared differences element by element.
"""

from __future__ import annotations

import numpy as np
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


# ---------------------------------------------------------------------------------------------------------------------
# the trainer's wiring: the loss of the first step of ``distill`` is the objective on that batch
# ---------------------------------------------------------------------------------------------------------------------

def _np_mse(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.mean((a - b) ** 2))


@pytest.fixture(scope="module")
def two_vlms(tmp_path_factory):
    from siftkit.embed import make_tiny_vlm

    root = tmp_path_factory.mktemp("eqv")
    return make_tiny_vlm(root / "student", seed=0), make_tiny_vlm(root / "teacher", seed=1)


@pytest.mark.parametrize("image_loss", [False, True], ids=["text", "image-loss"])
def test_first_distill_step_loss_is_the_objective_on_the_shuffled_batch(two_vlms, tmp_path, image_loss):
    """A teacher different from the student (another seed), one step over one shuffled batch holding every pair:
    the logged loss equals ½ [MSE(S(en), T(en)) + MSE(S(x), T(en))] (image variant: the four-term mean) computed
    pair by pair beforehand, so targets stay aligned with their pairs after the shuffle."""
    from PIL import Image

    from siftkit.multilingual.data import Pair
    from siftkit.multilingual.encoder import kd_encoder
    from siftkit.multilingual.train import DistillConfig, distill

    imgs = []
    for i, c in enumerate([(255, 0, 0), (0, 0, 255), (0, 200, 0)]):
        p = tmp_path / f"{i}.png"
        Image.new("RGB", (32, 32), c).save(p)
        imgs.append(str(p))
    words = ["cat", "dog", "tree", "house", "car", "bird", "fish"]
    pairs = [Pair(f"a {words[i]} number {i}", f"un {words[(i * 3) % 7]} numero {i} e altro", "it",
                  imgs[i % 3] if image_loss else None) for i in range(7)]
    student, teacher = kd_encoder(two_vlms[0]), kd_encoder(two_vlms[1])
    teacher.module.eval()
    with torch.no_grad():
        per_pair = []
        for p in pairs:
            im = [p.image] if image_loss else None
            if image_loss:
                t, o_t = teacher.image_segment([p.en], im)
                s_en, o_s_en = student.image_segment([p.en], im)
                s_x, o_s_x = student.image_segment([p.x], im)
                per_pair.append((s_en, s_x, t, o_s_en, o_s_x, o_t))
            else:
                per_pair.append((student.train_embed([p.en]), student.train_embed([p.x]), teacher.train_embed([p.en])))
    cols = [np.concatenate([row[j].numpy() for row in per_pair]) for j in range(len(per_pair[0]))]
    if image_loss:
        ref = (_np_mse(cols[0], cols[2]) + _np_mse(cols[1], cols[2]) + _np_mse(cols[3], cols[5])
               + _np_mse(cols[4], cols[5])) / 4
    else:
        ref = 0.5 * (_np_mse(cols[0], cols[2]) + _np_mse(cols[1], cols[2]))
    res = distill(student, pairs, DistillConfig(batch_size=len(pairs), max_steps=1, seed=3, image_loss=image_loss),
                  teacher=teacher, progress=False)
    assert len(res.losses) == 1
    assert res.losses[0] == pytest.approx(ref, rel=1e-5)
    # the pairing matters: the same columns with the teacher targets rolled by one pair give another value
    rolled = 0.5 * (_np_mse(cols[0], np.roll(cols[2], 1, 0)) + _np_mse(cols[1], np.roll(cols[2], 1, 0)))
    assert abs(rolled - ref) > 1e-3 * ref
