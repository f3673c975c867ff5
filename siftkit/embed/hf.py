"""An embedder over any Hugging Face ``AutoModel`` folder, with explicit pooling and normalisation.

``HFEmbedder(folder, pooling="last", normalize=True)`` tokenises, runs the backbone (encoder or decoder), pools the
last hidden states (:func:`siftkit.embed.pooling.pool`: ``mean``, ``cls`` or ``last`` real token) and optionally
L2-normalises. It is an :class:`~siftkit.embed.embedder.Embedder` (``encode_queries``/``encode_passages`` return
float32 numpy without gradients) and a trainable one: ``embed_queries``/``embed_passages`` return torch tensors that
carry gradients to ``parameters()`` (self-distillation, contrastive fine-tuning).

Left padding (``padding_side="left"``, usual for decoders) gets explicit position ids that restart after the padding
[ours], so a text embeds the same alone and in a padded batch; right padding keeps the model's own positions.

Example:
    >>> emb = HFEmbedder("path/to/model", pooling="last", padding_side="left")  # doctest: +SKIP
    >>> emb.encode_queries(["capital of France"]).shape  # doctest: +SKIP
    (1, 64)
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from siftkit.core.errors import InputError
from siftkit.embed.embedder import as_texts
from siftkit.embed.pooling import POOLINGS, pool, position_ids


@contextlib.contextmanager
def quiet_transformers():
    """The transformers logger at ERROR for a block (e.g. "weights not used" when AutoModel drops a LM head)."""
    logger = logging.getLogger("transformers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class HFEmbedder(torch.nn.Module):
    """Texts → pooled hidden states of a Hugging Face ``AutoModel`` read from a local folder.

    Args:
        path: a model folder with ``config.json`` and a tokenizer (hub ids are refused: nothing downloads).
        pooling: ``"mean"``, ``"cls"`` or ``"last"`` (see :mod:`siftkit.embed.pooling`).
        normalize: L2-normalise each embedding (inner product = cosine).
        device: torch device.
        query_prefix: prepended to every query (e.g. ``"query: "``).
        passage_prefix: prepended to every passage.
        max_length: truncate inputs to this many tokens.
        padding_side: ``"right"`` or ``"left"``.
        dtype: weights dtype.

    Attributes:
        model: the backbone (``AutoModel``); ``tokenizer``: its tokenizer; ``dim``: the hidden size.
    """

    def __init__(self, path: str | Path, pooling: str = "mean", normalize: bool = True, device: str = "cpu",
                 query_prefix: str = "", passage_prefix: str = "", max_length: int = 512,
                 padding_side: str = "right", dtype: torch.dtype = torch.float32):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise InputError(f'embedder "{path}": expected a model folder with config.json', field="embedder")
        if pooling not in POOLINGS:
            raise InputError(f'pooling "{pooling}": expected one of {", ".join(POOLINGS)}', field="pooling")
        if padding_side not in ("left", "right"):
            raise InputError('padding_side must be "left" or "right"', field="padding_side")
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.tokenizer.padding_side = padding_side
        if self.tokenizer.pad_token is None:  # decoder tokenizers often have none; the mask hides it anyway
            self.tokenizer.pad_token = self.tokenizer.eos_token
        with quiet_transformers():
            self.model = AutoModel.from_pretrained(folder, dtype=dtype, local_files_only=True).to(device).eval()
        self.model_id = str(folder)
        self.pooling, self.normalize = pooling, normalize
        self.query_prefix, self.passage_prefix = query_prefix, passage_prefix
        self.max_length = max_length
        self.dim = int(self.model.config.get_text_config().hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def forward(self, texts: Sequence[str] | str, prefix: str = "") -> torch.Tensor:
        """Embed ``texts`` (each after ``prefix``) → (n, dim), with gradients."""
        batch = self.tokenizer([prefix + t for t in as_texts(texts)], padding=True, truncation=True,
                               max_length=self.max_length, return_tensors="pt").to(self.device)
        mask = batch["attention_mask"]  # (B, T)
        if self.tokenizer.padding_side == "left":
            batch["position_ids"] = position_ids(mask)  # (B, T)
        hidden = self.model(**batch).last_hidden_state  # (B, T, d)
        e = pool(hidden, mask, self.pooling)  # (B, d)
        return F.normalize(e, dim=-1) if self.normalize else e

    def embed_queries(self, texts: Sequence[str]) -> torch.Tensor:
        """Queries → (n, dim) tensor with gradients (train mode is the caller's choice)."""
        return self(texts, self.query_prefix)

    def embed_passages(self, texts: Sequence[str]) -> torch.Tensor:
        """Passages → (n, dim) tensor with gradients."""
        return self(texts, self.passage_prefix)

    def _encode(self, texts: Sequence[str], prefix: str, batch_size: int) -> np.ndarray:
        texts = as_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)  # (n, d)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for i in range(0, len(texts), max(1, batch_size)):
                    out[i:i + batch_size] = self(texts[i:i + batch_size], prefix).float().cpu().numpy()  # (b, d)
        finally:
            self.model.train(was_training)
        return out

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed queries → ``(n, dim)`` float32, no gradients."""
        return self._encode(texts, self.query_prefix, batch_size)

    def encode_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed passages → ``(n, dim)`` float32, no gradients."""
        return self._encode(texts, self.passage_prefix, batch_size)

    def __repr__(self) -> str:
        return f"HFEmbedder({self.model_id!r}, pooling={self.pooling!r}, normalize={self.normalize})"
