"""HFEmbedder over AutoModel folders: pooling on padded batches, the normalise flag, gradients, load_embedder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siftkit.core.errors import InputError
from siftkit.embed import Embedder, HFEmbedder, TrainableEmbedder, load_embedder

TEXTS = ["fox", "a search engine ranks documents for a query", "the lazy dog", "Yes. No. Relevant."]


def _singles(emb):
    return np.concatenate([emb.encode_passages([t]) for t in TEXTS])  # (4, d), no padding at all


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("backbone", ["llama", "gpt2"])
def test_last_token_pooling_on_padded_batches_matches_each_text_alone(request, backbone, side):
    """Llama has rotary (shift-free) positions; GPT-2 has absolute ones, so its left padding needs restarted ids."""
    emb = HFEmbedder(request.getfixturevalue(f"tiny_{backbone}_dir"), pooling="last", padding_side=side)
    d = {"llama": 64, "gpt2": 32}[backbone]
    assert isinstance(emb, Embedder) and isinstance(emb, TrainableEmbedder) and emb.dim == d
    batch = emb.encode_passages(TEXTS, batch_size=4)  # (4, d), three rows padded
    assert batch.shape == (4, d) and batch.dtype == np.float32
    assert np.allclose(batch, _singles(emb), atol=1e-5)


def test_left_and_right_padding_give_the_same_last_token_embeddings(tiny_llama_dir):
    left = HFEmbedder(tiny_llama_dir, pooling="last", padding_side="left").encode_queries(TEXTS)
    right = HFEmbedder(tiny_llama_dir, pooling="last", padding_side="right").encode_queries(TEXTS)
    assert np.allclose(left, right, atol=1e-5)
    mean = HFEmbedder(tiny_llama_dir, pooling="mean").encode_queries(TEXTS)
    assert not np.allclose(left, mean, atol=1e-3)  # the pooling choice matters


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_encoder_pooling_on_padded_batches(tiny_bert_dir, pooling):
    emb = HFEmbedder(tiny_bert_dir, pooling=pooling)
    assert emb.dim == 32
    assert np.allclose(emb.encode_passages(TEXTS), _singles(emb), atol=1e-5)


def test_normalise_flag(tiny_llama_dir):
    on = HFEmbedder(tiny_llama_dir, pooling="last", normalize=True).encode_queries(TEXTS)
    off = HFEmbedder(tiny_llama_dir, pooling="last", normalize=False).encode_queries(TEXTS)
    assert np.linalg.norm(on, axis=1) == pytest.approx([1.0] * 4, abs=1e-5)
    norms = np.linalg.norm(off, axis=1)
    assert not np.allclose(norms, 1.0, atol=1e-2)
    assert np.allclose(off / norms[:, None], on, atol=1e-5)


def test_prefixes_and_the_trainable_handle(tiny_llama_dir):
    emb = HFEmbedder(tiny_llama_dir, pooling="last", query_prefix="query: ", passage_prefix="passage: ")
    q = emb.embed_queries(["the lazy dog"])  # (1, 64) with gradients
    assert q.requires_grad and torch.allclose(q.detach(), torch.from_numpy(emb.encode_queries(["the lazy dog"])),
                                              atol=1e-5)
    assert not np.allclose(emb.encode_queries(["x"]), emb.encode_passages(["x"]))
    opt = torch.optim.Adam(emb.parameters(), lr=1e-3)
    cos = []
    for _ in range(5):  # pull the query onto the passage: cosine similarity must rise
        loss = -(emb.embed_queries(["the lazy dog"]) * emb.embed_passages(["a quick fox"]).detach()).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        cos.append(-loss.item())
    assert cos[-1] > cos[0] + 0.05
    after = emb.encode_queries(["the lazy dog"]) @ emb.encode_passages(["a quick fox"]).T
    assert after[0, 0] > cos[0] + 0.05


def test_load_embedder_tells_automodel_folders_from_sentence_transformers(tiny_llama_dir, tmp_path):
    emb = load_embedder(tiny_llama_dir, pooling="last", padding_side="left")
    assert isinstance(emb, HFEmbedder) and emb.pooling == "last" and emb.model_id == str(tiny_llama_dir)
    with pytest.raises(InputError, match="pooling"):
        HFEmbedder(tiny_llama_dir, pooling="max")
    with pytest.raises(InputError, match="config.json"):
        HFEmbedder(tmp_path)
    with pytest.raises(InputError, match="expected"):
        load_embedder(tmp_path / "missing")
