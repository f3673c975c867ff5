import numpy as np
import pytest
import torch

from siftkit.curation.evaluate import draws, kxn_eval
from siftkit.curation.model import DualEncoder, embed, info_nce, train


def test_random_embeddings_near_chance():
    rng = np.random.default_rng(0)
    r = kxn_eval(rng.normal(size=(500, 16)), rng.normal(size=(500, 16)), k=30, n=100, seed=0)
    for d in ("a2v", "v2a"):
        assert r[f"{d}@1"] == pytest.approx(1, abs=0.7)
        assert r[f"{d}@3"] == pytest.approx(3, abs=1.2)
        assert r[f"{d}@10"] == pytest.approx(10, abs=2.5)
        assert r[f"{d}@1_std"] > 0


def test_identical_embeddings_perfect():
    x = np.random.default_rng(1).normal(size=(300, 8))
    r = kxn_eval(x, x.copy(), k=10, n=100)
    assert all(r[f"{d}@{c}"] == 100.0 for d in ("a2v", "v2a") for c in (1, 3, 10))
    assert r["a2v@1_std"] == 0.0


def test_constant_embeddings_k_over_n():
    c = np.ones((200, 4))
    r = kxn_eval(c, c, k=5, n=100)
    assert r["a2v@1"] == pytest.approx(1.0) and r["v2a@3"] == pytest.approx(3.0) and r["a2v@10"] == pytest.approx(10.0)


def test_draws_seeded_and_distinct():
    d = draws(50, k=4, n=20, seed=3)
    assert d.shape == (4, 20) and all(len(set(row)) == 20 for row in d)
    assert (d == draws(50, k=4, n=20, seed=3)).all() and not (d == draws(50, k=4, n=20, seed=4)).all()
    with pytest.raises(ValueError):
        draws(10, n=20)


def test_info_nce_hand_value():
    z = torch.eye(2)
    # logits diag 1/tau, off 0: loss = log(1 + exp(-1/tau))
    assert float(info_nce(z, z, 0.5)) == pytest.approx(np.log(1 + np.exp(-2.0)), rel=1e-5)


def test_heads_shapes_and_pairwise_mode():
    m = DualEncoder(6, 5, hidden=16, dim=8, heads=2)
    a, v = torch.randn(3, 4, 6), torch.randn(3, 2, 5)
    za, zv, ca, cv = m(a, v)
    assert za.shape == zv.shape == ca.shape == cv.shape == (3, 8)
    assert torch.allclose(za.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert m.pair_scores(a, v).shape == (3, 3)


def test_overfits_tiny_aligned_set():
    rng = np.random.default_rng(0)
    n = 24
    lat = rng.normal(size=(n, 6))  # a shared latent per clip, seen through different random maps per modality
    audio = np.einsum("nd,tde->nte", lat, rng.normal(size=(3, 6, 10))) + 0.05 * rng.normal(size=(n, 3, 10))
    video = np.einsum("nd,tde->nte", lat, rng.normal(size=(4, 6, 12))) + 0.05 * rng.normal(size=(n, 4, 12))
    before = kxn_eval(*embed(DualEncoder(10, 12, 32, 16, 2), audio, video), k=1, n=n)
    res = train(audio, video, epochs=40, batch_size=n, lr=1e-2, hidden=32, dim=16, heads=2, dropout=0.0, seed=0)
    after = kxn_eval(*embed(res.model, audio, video), k=1, n=n)
    assert res.history[-1]["train_loss"] < 0.2 * res.history[0]["train_loss"]
    assert after["a2v@1"] >= 95 and after["v2a@1"] >= 95 and before["a2v@1"] < 50
    assert res.best_epoch == int(np.argmin([h["train_loss"] for h in res.history]))


def test_best_validation_checkpoint_kept():
    rng = np.random.default_rng(1)
    a, v = rng.normal(size=(16, 2, 4)), rng.normal(size=(16, 2, 4))
    res = train(a, v, rng.normal(size=(8, 2, 4)), rng.normal(size=(8, 2, 4)), epochs=6, batch_size=8, hidden=8,
                dim=8, heads=2, seed=0)
    vals = [h["val_loss"] for h in res.history]
    assert res.best_epoch == int(np.argmin(vals))
