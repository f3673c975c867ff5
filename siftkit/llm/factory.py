"""Build a cached chat model from command-line style settings: the embedded/local model or an endpoint."""

from __future__ import annotations

from pathlib import Path

from siftkit.core.errors import InputError
from siftkit.llm.base import ChatModel

ENGINES = ("torch", "ct2")
INFERENCE_ENGINE = "ct2"
"""The default engine of inference-only commands on the local model (``siftkit serve llm``, ``siftkit usefulness
label``) and of the usefulness quickstart step, chosen from the measurements in benchmarks/results/backends.md (see
docs/core/ct2.md for why). Training, and judging fine-tuned torch folders (``siftkit relevance judge|eval``), stay on
``torch``."""
COMPUTE_TYPES = ("int8", "int8_float32", "int16", "float32", "bfloat16", "float16", "int8_float16",
                 "int8_bfloat16")  # CTranslate2's quantisations


def check_engine(engine: str, compute_type: str = "int8") -> None:
    """Raise :class:`~siftkit.core.errors.InputError` for an unknown engine or CTranslate2 compute type (call it
    before any model loads)."""
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}", field="engine")
    if engine == "ct2" and compute_type not in COMPUTE_TYPES:
        raise InputError(f"compute_type must be one of {', '.join(COMPUTE_TYPES)}; got {compute_type!r}",
                         field="compute-type")


def make_local_model(model: str = "smollm2", engine: str = "torch", device: str = "cpu", threads: int | None = 2,
                     batch_size: int | None = None, compute_type: str = "int8"):
    """The local chat model ``model`` (``smollm2``, a folder, a ``.gguf``) on the ``torch`` engine
    (:class:`~siftkit.llm.local.LocalChatModel`, fp32) or the ``ct2`` engine (:class:`~siftkit.llm.ct2.CT2ChatModel`,
    converted once to ``compute_type``); ``batch_size`` defaults to 16 (torch) or 32 (ct2)."""
    check_engine(engine, compute_type)
    if engine == "ct2":
        from siftkit.llm.ct2 import CT2ChatModel

        return CT2ChatModel.from_pretrained(model, compute_type=compute_type, threads=threads, device=device,
                                            batch_size=batch_size or 32)
    from siftkit.llm.local import LocalChatModel

    return LocalChatModel.from_pretrained(model, device=device, threads=threads, batch_size=batch_size or 16)


def make_chat_model(model: str = "smollm2", endpoint: str | None = None, cache: str | Path | None = None,
                    no_cache: bool = False, device: str = "cpu", threads: int | None = 2,
                    batch_size: int | None = None, api_key_env: str = "OPENAI_API_KEY", max_in_flight: int = 8,
                    engine: str = "torch", compute_type: str = "int8") -> ChatModel:
    """A :class:`~siftkit.llm.cache.CachedChatModel` around the local ``model`` (``smollm2``, a folder, a
    ``.gguf``) or, with ``endpoint``, around ``model`` served at that OpenAI-compatible base URL.

    Args:
        model: local model name/path, or the served model name with ``endpoint``.
        endpoint: OpenAI-compatible base URL; ``None`` runs the model locally.
        cache: response cache file (default: the siftkit home's cache); ``no_cache`` turns caching off.
        device, threads, batch_size: local model settings (``batch_size`` default: 16 torch, 32 ct2).
        api_key_env, max_in_flight: endpoint settings (the key is read from that environment variable).
        engine: local engine, ``torch`` (transformers, fp32) or ``ct2`` (CTranslate2, see docs/core/ct2.md).
        compute_type: the ``ct2`` engine's quantisation (``int8``, ``float32``, ...).

    Example:
        >>> llm = make_chat_model("smollm2", engine="ct2")  # doctest: +SKIP
    """
    from siftkit.llm.cache import CachedChatModel, ResponseCache

    check_engine(engine, compute_type)
    if endpoint:
        from siftkit.llm.openai_client import OpenAIChatModel

        inner = OpenAIChatModel(endpoint, model, api_key_env=api_key_env, max_in_flight=max_in_flight)
    else:
        inner = make_local_model(model, engine, device, threads, batch_size, compute_type)
    return CachedChatModel(inner, ResponseCache(cache, enabled=not no_cache))
