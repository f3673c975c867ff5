"""Embedders: one text interface (:class:`Embedder`), MiniLM (trainable), E5 (frozen), any ``AutoModel`` folder
(:class:`HFEmbedder`, explicit pooling), and image+text embedders (:mod:`.image_text`)."""

from siftkit.embed.embedder import (
    E5Embedder, Embedder, SentenceTransformerEmbedder, TrainableEmbedder, load_embedder,
)
from siftkit.embed.hf import HFEmbedder
from siftkit.embed.image_text import ImageTextEmbedder, PatchPrefixEmbedder, make_tiny_vlm
from siftkit.embed.pooling import pool

__all__ = ["Embedder", "TrainableEmbedder", "SentenceTransformerEmbedder", "E5Embedder", "HFEmbedder",
           "load_embedder", "pool", "ImageTextEmbedder", "PatchPrefixEmbedder", "make_tiny_vlm"]
