"""Image + text embedders: one protocol, and a VLM2Vec-style model whose image patches are tokens before the text.

An :class:`ImageTextEmbedder` maps (text, optional image) pairs to one vector each:

* ``encode(texts, images=None, batch_size)`` → ``(n, d)`` float32 numpy, no gradients;
* ``embed(texts, images=None)`` → ``(n, d)`` torch tensor with gradients (self-distillation, contrastive training);
* ``dim``, ``model_id``, ``normalize`` as for text :class:`~siftkit.embed.embedder.Embedder` s.

``images[i]`` is a file path, a ``PIL.Image`` or ``None`` (a text-only row). Files are read with Pillow through
:func:`siftkit.core.media.load_image` and converted to RGB.

:class:`PatchPrefixEmbedder` is the VLM2Vec recipe (Jiang et al. 2024, arXiv 2410.05160, §3) at any size: the image
is cut into ``p × p`` patches, each patch is projected to one token embedding, the patch tokens go before the text
tokens of a causal LM, and the embedding is the last token's final hidden state, L2-normalised. Departures [ours]:
the vision encoder is a single linear patch projection (VLM2Vec uses Phi-3.5-V's CLIP tower and its image-token
placeholders in the prompt); images are resized to a square ``image_size`` and scaled to [−1, 1].
:func:`make_tiny_vlm` writes a tiny random-initialised one (the tiny Llama of :mod:`siftkit.llm.testing` plus a
random patch projection), so every image path runs offline in tests.

Example:
    >>> emb = PatchPrefixEmbedder.from_pretrained(make_tiny_vlm(tmp_path / "vlm"))  # doctest: +SKIP
    >>> emb.encode(["A dog."], ["dog.jpg"]).shape  # doctest: +SKIP
    (1, 64)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol, Sequence, Union, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from siftkit.core.errors import InputError
from siftkit.core.io import atomic_output, atomic_write_text
from siftkit.core.media import load_image
from siftkit.embed.embedder import as_texts
from siftkit.embed.hf import quiet_transformers
from siftkit.embed.pooling import pool, position_ids

ImageInput = Union[str, Path, Any, None]  # a path, a PIL.Image.Image, or None (text only)
TINY_VLM_VERSION = "1"
_CONFIG = "siftkit-vlm.json"
_PATCH_WEIGHTS = "patch_embed.pt"


@runtime_checkable
class ImageTextEmbedder(Protocol):
    """What every image+text embedder offers; see the module docstring."""

    dim: int
    model_id: str
    normalize: bool

    def encode(self, texts: Sequence[str], images: Sequence[ImageInput] | None = None,
               batch_size: int = 32) -> np.ndarray: ...

    def embed(self, texts: Sequence[str], images: Sequence[ImageInput] | None = None) -> torch.Tensor: ...


def load_rgb(image: ImageInput):
    """A ``PIL.Image`` in RGB from a path (:func:`siftkit.core.media.load_image`: a missing or unreadable file is an
    :class:`InputError`) or from an image."""
    from PIL import Image

    return image.convert("RGB") if isinstance(image, Image.Image) else load_image(image)


def pixels(image: ImageInput, size: int) -> torch.Tensor:
    """An image as a (3, size, size) float tensor in [−1, 1] (bicubic resize to a square [ours])."""
    from PIL import Image

    im = load_rgb(image).resize((size, size), Image.Resampling.BICUBIC)
    x = torch.from_numpy(np.asarray(im, dtype=np.float32).copy())  # (size, size, 3) in [0, 255]
    return (x / 127.5 - 1.0).permute(2, 0, 1)  # (3, size, size)


# ---------------------------------------------------------------------------------------------------------------------
# method: patch tokens before the text, last-token pooling
# ---------------------------------------------------------------------------------------------------------------------

class PatchPrefixEmbedder(torch.nn.Module):
    """A causal LM that reads ``[image patch tokens] + [text tokens]`` and embeds with its last token.

    Args:
        text_model: a ``transformers`` decoder body (``AutoModel``, e.g. ``LlamaModel``) taking ``inputs_embeds``.
        tokenizer: its tokenizer.
        image_size: images are resized to ``image_size × image_size``.
        patch_size: patch side ``p``; an image gives ``(image_size / p)²`` tokens.
        normalize: L2-normalise the embeddings.
        model_id: the name reported to run metadata.

    Attributes:
        patch_embed: ``Conv2d(3, d, p, stride=p)``, one token embedding per patch.
    """

    def __init__(self, text_model, tokenizer, image_size: int = 32, patch_size: int = 8, normalize: bool = True,
                 model_id: str = "patch-prefix"):
        super().__init__()
        if image_size % patch_size:
            raise InputError("image_size must be a multiple of patch_size", field="patch_size")
        self.text_model, self.tokenizer = text_model, tokenizer
        self.tokenizer.padding_side = "right"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.dim = int(text_model.config.hidden_size)
        self.image_size, self.patch_size = image_size, patch_size
        self.n_patches = (image_size // patch_size) ** 2
        self.patch_embed = torch.nn.Conv2d(3, self.dim, patch_size, stride=patch_size)
        self.normalize, self.model_id = normalize, model_id

    @property
    def device(self) -> torch.device:
        return next(self.text_model.parameters()).device

    def _image_tokens(self, images: Sequence[ImageInput]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, P, d) patch embeddings and their (B, P) mask (0 for a text-only row)."""
        B, P = len(images), self.n_patches
        x = torch.zeros(B, 3, self.image_size, self.image_size)  # (B, 3, S, S)
        has = torch.tensor([im is not None for im in images], dtype=torch.long)  # (B,)
        for b, im in enumerate(images):
            if im is not None:
                x[b] = pixels(im, self.image_size)
        x = x.to(self.device, self.patch_embed.weight.dtype)
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, d, S/p, S/p) → (B, P, d)
        return tokens, has[:, None].expand(B, P).to(self.device)  # (B, P, d), (B, P)

    def embed(self, texts: Sequence[str], images: Sequence[ImageInput] | None = None) -> torch.Tensor:
        """(n, dim) embeddings with gradients; ``images`` (same length as ``texts``) may hold ``None``."""
        hidden, mask = self.hidden_states(texts, images)  # (B, P + T, d), (B, P + T)
        e = pool(hidden, mask, "last")  # (B, d): the last text token
        return F.normalize(e, dim=-1) if self.normalize else e

    def hidden_states(self, texts: Sequence[str],
                      images: Sequence[ImageInput] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The final hidden states ``(B, P + T, d)`` and their mask ``(B, P + T)``, with gradients; the first
        ``n_patches`` positions are the image segment (masked out on a text-only row)."""
        texts = as_texts(texts)
        images = list(images) if images is not None else [None] * len(texts)
        if len(images) != len(texts):
            raise InputError(f"{len(texts)} texts but {len(images)} images", field="images")
        tok = self.tokenizer(texts, padding=True, return_tensors="pt").to(self.device)
        text_emb = self.text_model.get_input_embeddings()(tok["input_ids"])  # (B, T, d)
        img_emb, img_mask = self._image_tokens(images)  # (B, P, d), (B, P)
        inputs = torch.cat([img_emb.to(text_emb.dtype), text_emb], dim=1)  # (B, P + T, d)
        mask = torch.cat([img_mask, tok["attention_mask"]], dim=1)  # (B, P + T)
        hidden = self.text_model(inputs_embeds=inputs, attention_mask=mask,
                                 position_ids=position_ids(mask)).last_hidden_state  # (B, P + T, d)
        return hidden, mask

    def forward(self, texts: Sequence[str], images: Sequence[ImageInput] | None = None) -> torch.Tensor:
        return self.embed(texts, images)

    def encode(self, texts: Sequence[str], images: Sequence[ImageInput] | None = None,
               batch_size: int = 32) -> np.ndarray:
        """(n, dim) float32 embeddings, no gradients, in eval mode."""
        texts = as_texts(texts)
        images = list(images) if images is not None else [None] * len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)  # (n, d)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                for i in range(0, len(texts), max(1, batch_size)):
                    e = self.embed(texts[i:i + batch_size], images[i:i + batch_size])  # (b, d)
                    out[i:i + batch_size] = e.float().cpu().numpy()
        finally:
            self.train(was_training)
        return out

    # -- plumbing: folders ------------------------------------------------------------------------------------------

    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``text/`` (the decoder body and tokenizer), the patch projection and the config to ``path``."""
        path = Path(path)
        self.text_model.save_pretrained(path / "text")
        self.tokenizer.save_pretrained(path / "text")
        return self._save_head(path)

    def _save_head(self, path: Path) -> Path:
        """The patch projection, then the config (its presence marks a loadable folder); each file atomically."""
        with atomic_output(path / _PATCH_WEIGHTS) as tmp:
            torch.save(self.patch_embed.state_dict(), tmp)
        atomic_write_text(path / _CONFIG, json.dumps({"image_size": self.image_size, "patch_size": self.patch_size,
                                                      "normalize": self.normalize}))
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu") -> "PatchPrefixEmbedder":
        """Load a folder written by :meth:`save_pretrained` (or :func:`make_tiny_vlm`)."""
        from transformers import AutoModel, AutoTokenizer

        path = Path(path)
        if not (path / _CONFIG).is_file():
            raise InputError(f"not an image+text embedder folder (no {_CONFIG})", path=path)
        cfg = json.loads((path / _CONFIG).read_text())
        tokenizer = AutoTokenizer.from_pretrained(path / "text", local_files_only=True)
        with quiet_transformers():  # AutoModel drops the LM head of a causal-LM folder
            body = AutoModel.from_pretrained(path / "text", local_files_only=True)
        emb = cls(body, tokenizer, cfg["image_size"], cfg["patch_size"], cfg["normalize"], model_id=str(path))
        emb.patch_embed.load_state_dict(torch.load(path / _PATCH_WEIGHTS, weights_only=True))
        return emb.to(device).eval()


def make_tiny_vlm(path: str | Path, seed: int = 0, image_size: int = 32, patch_size: int = 8) -> Path:
    """Build (once) a tiny random-init :class:`PatchPrefixEmbedder` folder at ``path``, for tests.

    The text body is :func:`siftkit.llm.testing.make_tiny_llama` (hidden 64, 2 layers) in ``path/text``; the patch
    projection is drawn from a local generator seeded with ``seed`` (the global RNG is untouched). Every file is
    written atomically and the recipe stamp last, so a folder with this recipe's stamp is complete and is reused.

    Returns:
        ``path``, ready for :meth:`PatchPrefixEmbedder.from_pretrained`.
    """
    from transformers import AutoModel, AutoTokenizer

    from siftkit.llm.testing import make_tiny_llama

    path = Path(path)
    stamp = {"recipe": "siftkit-tiny-vlm", "version": TINY_VLM_VERSION, "seed": seed, "image_size": image_size,
             "patch_size": patch_size}
    marker = path / "siftkit-tiny.json"
    if marker.exists() and json.loads(marker.read_text()) == stamp:
        return path
    text = make_tiny_llama(path / "text", seed=seed)
    with quiet_transformers():
        body = AutoModel.from_pretrained(text, local_files_only=True)
    emb = PatchPrefixEmbedder(body, AutoTokenizer.from_pretrained(text, local_files_only=True), image_size,
                              patch_size, model_id=str(path))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in emb.patch_embed.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    emb._save_head(path)
    atomic_write_text(marker, json.dumps(stamp))
    return path
