"""Build a cached chat model from command-line style settings: the embedded/local model or an endpoint."""

from __future__ import annotations

from pathlib import Path

from siftkit.llm.base import ChatModel


def make_chat_model(model: str = "smollm2", endpoint: str | None = None, cache: str | Path | None = None,
                    no_cache: bool = False, device: str = "cpu", threads: int | None = 2, batch_size: int = 16,
                    api_key_env: str = "OPENAI_API_KEY", max_in_flight: int = 8) -> ChatModel:
    """A :class:`~siftkit.llm.cache.CachedChatModel` around the local ``model`` (``smollm2``, a folder, a
    ``.gguf``) or, with ``endpoint``, around ``model`` served at that OpenAI-compatible base URL.

    Args:
        model: local model name/path, or the served model name with ``endpoint``.
        endpoint: OpenAI-compatible base URL; ``None`` runs the model locally.
        cache: response cache file (default: the siftkit home's cache); ``no_cache`` turns caching off.
        device, threads, batch_size: local model settings.
        api_key_env, max_in_flight: endpoint settings (the key is read from that environment variable).

    Example:
        >>> llm = make_chat_model("smollm2")  # doctest: +SKIP
    """
    from siftkit.llm.cache import CachedChatModel, ResponseCache

    if endpoint:
        from siftkit.llm.openai_client import OpenAIChatModel

        inner = OpenAIChatModel(endpoint, model, api_key_env=api_key_env, max_in_flight=max_in_flight)
    else:
        from siftkit.llm.local import LocalChatModel

        inner = LocalChatModel.from_pretrained(model, device=device, threads=threads, batch_size=batch_size)
    return CachedChatModel(inner, ResponseCache(cache, enabled=not no_cache))
