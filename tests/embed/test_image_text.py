"""The tiny VLM2Vec-style image+text embedder: real JPEGs, a generated image, text-only rows, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from siftkit.core.errors import InputError
from siftkit.embed.image_text import ImageTextEmbedder, PatchPrefixEmbedder, make_tiny_vlm, pixels


@pytest.fixture(scope="module")
def vlm(tmp_path_factory):
    return PatchPrefixEmbedder.from_pretrained(make_tiny_vlm(tmp_path_factory.mktemp("vlm") / "tiny-vlm"))


def _generated(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))  # not square, not 32 × 32


def test_real_jpegs_embed_in_one_batch(vlm, shared_data):
    jpgs = sorted((shared_data / "avva").rglob("*.jpg"))
    assert len(jpgs) >= 3
    texts = [p.stem.split("_")[0] for p in jpgs]
    X = vlm.encode(texts, jpgs, batch_size=len(jpgs))  # (n, 64), rows padded to the longest text
    assert isinstance(vlm, ImageTextEmbedder) and X.shape == (len(jpgs), 64) and X.dtype == np.float32
    assert np.linalg.norm(X, axis=1) == pytest.approx([1.0] * len(jpgs), abs=1e-5)
    assert np.allclose(X, np.concatenate([vlm.encode([t], [p]) for t, p in zip(texts, jpgs)]), atol=1e-5)
    same_text = vlm.encode(["a photo"] * len(jpgs), jpgs)
    assert len({tuple(np.round(r, 4)) for r in same_text}) == len(jpgs)  # the image changes the embedding


def test_generated_image_path_and_text_only_rows(vlm, tmp_path):
    im = _generated()
    im.save(tmp_path / "g.png")
    a = vlm.encode(["noise", "noise", "noise"], [im, tmp_path / "g.png", None])  # (3, 64)
    assert np.allclose(a[0], a[1], atol=1e-5)  # an image and its (lossless) file embed alike
    assert not np.allclose(a[0], a[2], atol=1e-3)  # the image tokens matter
    assert np.allclose(a[2], vlm.encode(["noise"])[0], atol=1e-5)  # text-only rows: image part masked out
    assert pixels(im, 32).shape == (3, 32, 32) and float(pixels(im, 32).abs().max()) <= 1.0


def test_embeddings_carry_gradients_to_the_patch_projection(vlm):
    e = vlm.embed(["noise"], [_generated(1)])  # (1, 64)
    assert e.requires_grad
    e.sum().backward()
    assert vlm.patch_embed.weight.grad is not None and vlm.patch_embed.weight.grad.abs().sum() > 0
    vlm.zero_grad()


def test_bad_images_are_input_errors(vlm, tmp_path):
    (tmp_path / "x.jpg").write_text("not an image")
    with pytest.raises(InputError, match="cannot read image"):
        vlm.encode(["t"], [tmp_path / "x.jpg"])
    with pytest.raises(InputError, match="images"):
        vlm.encode(["t", "u"], [None])
    with pytest.raises(InputError, match="siftkit-vlm.json"):
        PatchPrefixEmbedder.from_pretrained(tmp_path)


def test_builder_is_deterministic(tmp_path):
    a = PatchPrefixEmbedder.from_pretrained(make_tiny_vlm(tmp_path / "a"))
    b = PatchPrefixEmbedder.from_pretrained(make_tiny_vlm(tmp_path / "b"))
    assert torch.equal(a.patch_embed.weight, b.patch_embed.weight)
    assert np.allclose(a.encode(["x"], [_generated()]), b.encode(["x"], [_generated()]))


def test_save_and_load_round_trip(vlm, tmp_path):
    again = PatchPrefixEmbedder.from_pretrained(vlm.save_pretrained(tmp_path / "copy"))
    assert np.allclose(again.encode(["x", "y"], [_generated(), None]), vlm.encode(["x", "y"], [_generated(), None]),
                       atol=1e-6)
