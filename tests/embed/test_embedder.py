"""Embedders: shapes, dtype, normalisation, the "minilm"/"e5" names, E5 prefixes not doubled, no downloads."""

from __future__ import annotations

import numpy as np
import pytest

from siftkit.core.errors import InputError
from siftkit.embed import E5Embedder, Embedder, SentenceTransformerEmbedder, load_embedder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm():
    return load_embedder("minilm")


@pytest.fixture(scope="module")
def e5():
    return load_embedder("e5")


def test_minilm_shapes_normalised_trainable(minilm):
    assert isinstance(minilm, SentenceTransformerEmbedder) and isinstance(minilm, Embedder)
    assert (minilm.dim, minilm.model_id, minilm.normalize) == (384, "minilm", True)
    X = minilm.encode_queries(["glass bridges", "a river otter"], batch_size=1)
    assert X.shape == (2, 384) and X.dtype == np.float32
    assert np.linalg.norm(X, axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)
    assert minilm.encode_passages([]).shape == (0, 384)
    assert hasattr(minilm.model, "fit") or hasattr(minilm.model, "encode")  # the SentenceTransformer itself
    assert any(p.requires_grad for p in minilm.model.parameters())


def test_minilm_batch_size_does_not_change_vectors(minilm):
    texts = ["one", "two words", "three little words"]
    a = minilm.encode_passages(texts, batch_size=1)
    b = minilm.encode_passages(texts, batch_size=3)
    assert np.allclose(a, b, atol=1e-5)


def test_folder_path_loads_the_same_model(minilm, tmp_path):
    minilm.model.save(str(tmp_path / "m"))
    again = load_embedder(tmp_path / "m")
    assert again.model_id == str(tmp_path / "m")
    assert np.allclose(again.encode_queries(["honey"]), minilm.encode_queries(["honey"]), atol=1e-5)


def test_unknown_name_is_refused_without_download():
    with pytest.raises(InputError, match="expected"):
        load_embedder("sentence-transformers/all-mpnet-base-v2")


def test_e5_prefixes_added_once(e5):
    assert isinstance(e5, E5Embedder) and (e5.dim, e5.model_id, e5.normalize) == (384, "e5", True)
    q = e5.encode_queries(["where is Velmora"])
    p = e5.encode_passages(["where is Velmora"])
    assert q.shape == (1, 384) and q.dtype == np.float32
    assert np.allclose(q, e5.e5.query(["where is Velmora"]))  # engine adds "query: " itself
    assert not np.allclose(q, p)  # the two prefixes differ
    assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-5)


def test_e5_batches_match_one_call(e5):
    texts = ["alpha", "beta gamma", "delta", "epsilon zeta"]
    assert np.allclose(e5.encode_passages(texts, batch_size=3), e5.e5.passage(texts), atol=1e-5)
