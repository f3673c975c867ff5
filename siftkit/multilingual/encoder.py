"""A backbone-agnostic handle on a trainable embedder for self-distillation: raw (un-normalised) pooled embeddings
with gradients for training, L2-normalised embeddings for evaluation, the image segment for the image-loss
variant, a frozen deep copy for the teacher, LoRA, and saving.

:func:`kd_encoder` wraps what :mod:`siftkit.embed` builds:

* :class:`~siftkit.embed.SentenceTransformerEmbedder` (``"minilm"`` or a folder): the modules up to, not including,
  a final ``Normalize`` — the pooled state of the model's own pooling (mean for MiniLM);
* :class:`~siftkit.embed.HFEmbedder` (any ``AutoModel`` folder): its explicit pooling (``mean``/``cls``/``last``);
* :class:`~siftkit.embed.PatchPrefixEmbedder` (image+text, VLM2Vec-style): last real token, right padding; its
  "others" segment is the image patch positions.

The spec distils un-normalised states (all-MiniLM-L6-v2 ends in ``Normalize``; MSE on unit vectors is tiny and
learns poorly), so ``target="raw"`` is the default; ``target="normalized"`` distils unit vectors.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from siftkit.core.errors import InputError
from siftkit.embed import HFEmbedder, PatchPrefixEmbedder, SentenceTransformerEmbedder

TARGETS = ("raw", "normalized")


class KDEncoder:
    """One trainable embedder seen by the self-distillation trainer.

    Args:
        embedder: a :class:`SentenceTransformerEmbedder`, :class:`HFEmbedder` or :class:`PatchPrefixEmbedder`.
        target: ``"raw"`` (un-normalised pooled states, the spec) or ``"normalized"``.

    Attributes:
        module: the ``torch.nn.Module`` whose parameters train (deep-copied for the teacher).
        kind: ``"st"``, ``"hf"`` or ``"vlm"``.
    """

    def __init__(self, embedder, target: str = "raw"):
        if target not in TARGETS:
            raise InputError(f'target "{target}": expected one of {", ".join(TARGETS)}', field="--target")
        self.embedder, self.target = embedder, target
        if isinstance(embedder, SentenceTransformerEmbedder):
            self.kind, self.module = "st", embedder.model
        elif isinstance(embedder, HFEmbedder):
            self.kind, self.module = "hf", embedder
        elif isinstance(embedder, PatchPrefixEmbedder):
            self.kind, self.module = "vlm", embedder
        else:
            raise InputError(f"{type(embedder).__name__} is not trainable here: expected a sentence-transformers, "
                             "Hugging Face or image+text (PatchPrefixEmbedder) model", field="--model")
        self.lora = False

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    # -- embeddings --------------------------------------------------------------------------------------------------

    def pooled(self, texts: Sequence[str], images: Sequence | None = None) -> torch.Tensor:
        """(n, d) pooled states with gradients, before any normalisation."""
        texts = list(texts)
        if self.kind == "st":
            feats = self.module.tokenize(texts)
            feats = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in feats.items()}
            from sentence_transformers.models import Normalize

            for m in self.module:  # the pipeline up to a final Normalize
                if isinstance(m, Normalize):
                    break
                feats = m(feats)
            return feats["sentence_embedding"]
        if images is not None and self.kind != "vlm":
            raise InputError("images need an image+text model", field="images")
        old = self.embedder.normalize
        self.embedder.normalize = False
        try:
            return self.embedder.embed(texts, images) if self.kind == "vlm" else self.embedder(texts)
        finally:
            self.embedder.normalize = old

    def train_embed(self, texts: Sequence[str], images: Sequence | None = None) -> torch.Tensor:
        """The training target space: raw pooled states, or unit vectors for ``target="normalized"``."""
        e = self.pooled(texts, images)
        return F.normalize(e, dim=-1) if self.target == "normalized" else e

    def image_segment(self, texts: Sequence[str], images: Sequence | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The image-loss variant's two pools: (last-token embedding, mean of the "others" segment), each (n, d).

        The spec splits at the last BOS token; here the segment rule is explicit [ours]: "others" is the image patch
        positions of :class:`PatchPrefixEmbedder` (a text-only row has an empty segment and pools to zeros)."""
        if self.kind != "vlm":
            raise InputError("the image-loss variant needs an image+text model", field="--image-loss")
        from siftkit.embed.pooling import pool

        hidden, mask = self.embedder.hidden_states(list(texts), images)  # (B, P + T, d), (B, P + T)
        P = self.embedder.n_patches
        last = pool(hidden, mask, "last")  # (B, d)
        m = mask[:, :P].to(hidden.dtype).unsqueeze(-1)  # (B, P, 1)
        others = (hidden[:, :P] * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, d)
        if self.target == "normalized":
            last = F.normalize(last, dim=-1)
        return last, others

    def encode(self, texts: Sequence[str], images: Sequence | None = None, batch_size: int = 64) -> np.ndarray:
        """(n, d) L2-normalised float32, no gradients, eval mode (the evaluation space); row i for ``texts[i]``.

        Texts are embedded longest first in batches of ``batch_size`` (little padding, as sentence-transformers'
        ``encode``) and put back in their order [ours: an efficiency choice]."""
        texts = list(texts)
        images = None if images is None else list(images)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        was = self.module.training
        self.module.eval()
        try:
            with torch.no_grad():
                for i in range(0, len(order), batch_size):
                    idx = order[i:i + batch_size]
                    im = None if images is None else [images[j] for j in idx]
                    e = F.normalize(self.pooled([texts[j] for j in idx], im).float(), dim=-1)
                    out[idx] = e.cpu().numpy()
        finally:
            self.module.train(was)
        return out

    @property
    def dim(self) -> int:
        return int(self.embedder.dim)

    # -- teacher, LoRA, saving ---------------------------------------------------------------------------------------

    def frozen_copy(self) -> "KDEncoder":
        """A deep copy in eval mode with ``requires_grad=False`` everywhere: the teacher (no shared parameters)."""
        twin = KDEncoder(copy.deepcopy(self.embedder), self.target)
        twin.module.eval()
        for p in twin.module.parameters():
            p.requires_grad_(False)
        return twin

    def _backbone_owner(self):
        """(object, attribute) holding the transformer that LoRA wraps."""
        if self.kind == "st":
            return self.module[0], "auto_model"
        if self.kind == "hf":
            return self.embedder, "model"
        return self.embedder, "text_model"

    def add_lora(self, r: int = 8, alpha: int = 16, dropout: float = 0.0) -> None:
        """Wrap the backbone in LoRA adapters on every linear layer; only the adapters train."""
        from peft import LoraConfig, get_peft_model

        owner, attr = self._backbone_owner()
        cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules="all-linear")
        setattr(owner, attr, get_peft_model(getattr(owner, attr), cfg))
        if self.kind == "vlm":  # the patch projection stays frozen with LoRA [ours]
            for p in self.embedder.patch_embed.parameters():
                p.requires_grad_(False)
        self.lora = True

    def merge_lora(self) -> None:
        if self.lora:
            owner, attr = self._backbone_owner()
            setattr(owner, attr, getattr(owner, attr).merge_and_unload())
            self.lora = False

    def save(self, path: str | Path) -> Path:
        """Write the student (LoRA merged first) as a folder its embedder class loads again."""
        from siftkit.core.io import atomic_output_dir

        self.merge_lora()
        path = Path(path)
        with atomic_output_dir(path) as tmp:
            if self.kind == "st":
                self.module.save(str(tmp))
            elif self.kind == "hf":
                self.embedder.model.save_pretrained(tmp)
                self.embedder.tokenizer.save_pretrained(tmp)
            else:
                self.embedder.save_pretrained(tmp)
        return path


def kd_encoder(model: str | Path | object, target: str = "raw", device: str = "cpu", pooling: str = "mean") -> KDEncoder:
    """A :class:`KDEncoder` from an embedder object, ``"minilm"``, a sentence-transformers folder, an image+text
    folder (``siftkit-vlm.json``) or a Hugging Face ``AutoModel`` folder (with ``pooling``)."""
    if not isinstance(model, (str, Path)):
        return KDEncoder(model, target)
    name = str(model)
    folder = Path(name)
    if (folder / "siftkit-vlm.json").is_file():
        return KDEncoder(PatchPrefixEmbedder.from_pretrained(folder, device=device), target)
    if name == "minilm" or (folder / "modules.json").is_file():
        return KDEncoder(SentenceTransformerEmbedder(name, device=device), target)
    if (folder / "config.json").is_file():
        return KDEncoder(HFEmbedder(folder, pooling=pooling, normalize=False, device=device), target)
    raise InputError(f'model "{name}": expected "minilm", a sentence-transformers, Hugging Face or image+text '
                     "model folder", field="--model")
