"""The trainable handle of the sentence-transformers embedder: same vectors as encode_*, with gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siftkit.embed import TrainableEmbedder, load_embedder

pytestmark = pytest.mark.slow


def test_minilm_embeddings_carry_gradients():
    emb = load_embedder("minilm")
    assert isinstance(emb, TrainableEmbedder)
    emb.model.eval()  # no dropout: the handle must then match encode_*
    q = emb.embed_queries(["glass bridges", "a river otter"])  # (2, 384)
    assert q.requires_grad and q.shape == (2, 384)
    assert np.allclose(q.detach().numpy(), emb.encode_queries(["glass bridges", "a river otter"]), atol=1e-5)
    assert torch.linalg.norm(q, dim=1).detach().numpy() == pytest.approx([1.0, 1.0], abs=1e-5)
    (q @ emb.embed_passages(["bridges made of glass"]).T).sum().backward()
    grads = [p.grad for p in emb.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
