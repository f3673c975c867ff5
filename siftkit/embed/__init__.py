"""Text embedders: one interface (:class:`Embedder`), MiniLM (trainable) and E5 (frozen), see :mod:`.embedder`."""

from siftkit.embed.embedder import E5Embedder, Embedder, SentenceTransformerEmbedder, load_embedder

__all__ = ["Embedder", "SentenceTransformerEmbedder", "E5Embedder", "load_embedder"]
