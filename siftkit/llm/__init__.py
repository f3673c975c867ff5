"""The LLM layer: one chat-model interface, back-ends, and the shared response cache.

``LocalChatModel`` (transformers; imports torch) is loaded on first access, so importing ``siftkit.llm`` for the
interface or the cache stays cheap (e.g. in cache-merging workers).
"""

from siftkit.llm.base import ChatModel, Generation, GenerationParams, Message, Prompt, Score
from siftkit.llm.cache import CachedChatModel, ResponseCache

__all__ = ["CachedChatModel", "ChatModel", "Generation", "GenerationParams", "LocalChatModel", "Message", "Prompt",
           "ResponseCache", "Score"]


def __getattr__(name: str):
    if name == "LocalChatModel":
        from siftkit.llm.local import LocalChatModel

        return LocalChatModel
    raise AttributeError(f"module 'siftkit.llm' has no attribute {name!r}")
