"""The one chat-model interface every method composes.

A chat model does two things:

* ``generate(prompts, params)`` — batched generation. A prompt is either a list of chat messages
  (``[{"role": "user", "content": "..."}]``) or a raw string (sent without a chat template).
  Returns one :class:`Generation` per prompt, holding ``params.n`` samples.
* ``score(prompts, continuations)`` — log-probabilities of given continuations after each prompt
  (e.g. the label words of a relevance judge). Returns one :class:`Score` per (prompt, continuation) pair.
* ``next_token_logprobs(prompts, top_k)`` — the distribution of the first generated token after each prompt (chat
  template applied and the assistant turn opened, as for ``generate``), in one forward pass per prompt: one
  :class:`TokenDistribution` each. A judge reads a 0–10 grade as an expectation over digit probabilities with it.
  Back-ends that cannot answer it do not define it.

A chat prompt whose last message is the assistant's is a **reply prefix**: the model continues that message instead
of opening a new turn (``[..., {"role": "assistant", "content": "Score: "}]`` makes the next token the grade). The
local engines render it with the chat template's ``continue_final_message``; the ``openai`` client sends vLLM's
``continue_final_message`` / ``add_generation_prompt`` request fields.

Back-ends: ``local`` (transformers, embedded SmolLM2 by default, see :mod:`siftkit.llm.local`) and
``openai`` (any OpenAI-compatible endpoint, see :mod:`siftkit.llm.openai_client`). The response cache
(:mod:`siftkit.llm.cache`) wraps any of them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, Sequence, Union, runtime_checkable

Message = dict[str, str]
Prompt = Union[str, list[Message]]


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters; part of every cache key.

    Attributes:
        max_new_tokens: upper bound on generated tokens per sample.
        temperature: 0 means greedy decoding.
        top_p: nucleus sampling mass (ignored when greedy).
        n: samples per prompt.
        seed: RNG seed for sampling; sampled output is cached only when a seed is given.
        stop: stop sequences; generation ends at the first one, which is kept out of the text.
    """

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.n < 1:
            raise ValueError("n must be >= 1")
        if isinstance(self.stop, (list, str)):
            object.__setattr__(self, "stop", (self.stop,) if isinstance(self.stop, str) else tuple(self.stop))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


@dataclass
class Generation:
    """The output for one prompt: ``texts[i]`` is sample i; ``finish_reasons[i]`` is "stop" or "length"."""

    texts: list[str]
    finish_reasons: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False

    @property
    def text(self) -> str:
        return self.texts[0]


@dataclass
class Score:
    """Log-probability of a continuation given a prompt: the sum and the per-token values (``cached``: answered by
    the response cache; not part of equality)."""

    logprob: float
    token_logprobs: list[float] = field(default_factory=list)
    cached: bool = field(default=False, compare=False)


@dataclass
class TokenDistribution:
    """The top-k of the next-token distribution after a prompt.

    Attributes:
        top: ``(token_text, logprob)`` pairs, most probable first; ``token_text`` is the decoded token as it would
            appear in the generated text (e.g. ``"7"``, ``" Yes"``), log-probabilities are natural logs under the
            full softmax (not renormalised over the top-k).
        cached: True when the response cache answered (not part of equality).
    """

    top: list[tuple[str, float]]
    cached: bool = field(default=False, compare=False)

    def logprob(self, text: str, default: float = float("-inf")) -> float:
        """The log-probability of the token whose text is ``text`` (leading/trailing whitespace ignored; the most
        probable such token when several decode to the same stripped text), or ``default`` when it is not in the top-k."""
        best = default
        for tok, lp in self.top:
            if tok.strip() == text.strip() and lp > best:
                best = lp
        return best


@runtime_checkable
class ChatModel(Protocol):
    """What every back-end implements.

    ``model_id`` names the model; ``fingerprint`` is a hash of everything that changes its output
    (weights and adapter, chat template, back-end), used by the response cache.
    """

    model_id: str

    @property
    def fingerprint(self) -> str: ...

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams | None = None) -> list[Generation]: ...

    def score(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[Score]: ...


def continues_reply(prompt: Prompt) -> bool:
    """True when ``prompt`` is a chat ending in an assistant message (a reply prefix to continue, not a new turn).

    Example:
        >>> continues_reply([{"role": "user", "content": "Grade?"}, {"role": "assistant", "content": "Grade: "}])
        True
        >>> continues_reply([{"role": "user", "content": "Grade?"}]), continues_reply("raw text")
        (False, False)
    """
    return not isinstance(prompt, str) and bool(prompt) and prompt[-1].get("role") == "assistant"


def prompt_key(prompt: Prompt) -> str:
    """A canonical JSON string for a prompt (messages or raw text)."""
    return json.dumps(prompt, sort_keys=True, ensure_ascii=False)


def sha256_text(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()
