"""A :class:`~siftkit.llm.base.ChatModel` over any OpenAI-compatible HTTP endpoint (vLLM, Ollama, llama.cpp server,
``siftkit serve llm``).

* ``generate``: message prompts go to ``/v1/chat/completions``, raw strings to ``/v1/completions``; one request per
  prompt, at most ``max_in_flight`` at a time (asyncio + ``httpx.AsyncClient``).
* ``score``: ``/v1/completions`` with ``echo: true, logprobs: 1, max_tokens: 0`` on ``prompt + continuation``; the
  continuation's tokens are those that end after ``len(prompt)`` (found through ``text_offset``).
* ``next_token_logprobs``: one token at temperature 0 with the top-k of its position, through
  ``/v1/completions`` (``max_tokens: 1, logprobs: k``) for raw strings and ``/v1/chat/completions``
  (``max_tokens: 1, logprobs: true, top_logprobs: k``) for messages, so the server applies its chat template.
  OpenAI's own API caps ``k`` at 5 (completions) and 20 (chat); ``siftkit serve llm`` allows 20 for both.
* A chat prompt ending in an assistant message (a reply prefix, :func:`~siftkit.llm.base.continues_reply`) is sent
  with vLLM's ``continue_final_message: true, add_generation_prompt: false``; servers without these fields open a
  new assistant turn instead.
* Timeouts, connection errors, 429 and 5xx are retried by the core :class:`~siftkit.core.retry.RetryPolicy`
  (exponential backoff plus jitter, ``Retry-After`` honoured); a malformed body (bad JSON, missing ``choices``) is
  retried too. Other 4xx fail fast with :class:`OpenAIError`. A prompt still without a
  valid answer after ``max_retries`` retries comes back as a :class:`Generation` with finish reason ``"error"``
  (never dropped, never cached) and is counted in :meth:`OpenAIChatModel.stats`.

The API key is read from the environment variable *named* by ``api_key_env`` at request time; the key itself is
never stored on the object, so it cannot reach a fingerprint, a cache key, a repr or a log line.

Example:
    >>> m = OpenAIChatModel("http://127.0.0.1:8000", "smollm2")  # doctest: +SKIP
    >>> m.generate([[{"role": "user", "content": "Say hi"}]])[0].text  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from typing import Any, Callable, Sequence

import httpx

from siftkit.core.retry import GaveUp, Retry, RetryPolicy
from siftkit.llm.base import (Generation, GenerationParams, Prompt, Score, TokenDistribution, continues_reply,
                              sha256_text)

log = logging.getLogger(__name__)

ERROR = "error"  # finish reason of a prompt that got no valid answer


class OpenAIError(RuntimeError):
    """A request the server refused for good (4xx other than 429): retrying would not help."""

    def __init__(self, status: int, url: str, detail: str):
        self.status = status
        super().__init__(f"{url} returned HTTP {status}: {detail}")


class _Malformed(Exception):
    """A 200 response whose body is not the JSON we need (retried like a 5xx)."""


def _run_sync(coro):
    """Run a coroutine to completion from sync code, also when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # A running loop (Jupyter, an async server) cannot be re-entered: run ours in a fresh thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class OpenAIChatModel:
    """A chat model behind an OpenAI-compatible endpoint.

    Args:
        base_url: server root such as ``http://127.0.0.1:8000`` (a trailing ``/v1`` is accepted).
        model: the ``model`` field sent with every request; also :attr:`model_id`.
        api_key_env: name of the environment variable that holds the API key (sent as ``Authorization: Bearer``);
            unset or empty means no key.
        max_in_flight: most requests in flight at once within one ``generate``/``score`` call.
        timeout: seconds per HTTP request.
        max_retries: retries per prompt after the first try (timeouts, connection errors, 429, 5xx, malformed).
        backoff: first retry delay in seconds; doubles per retry, times a random factor in [1, 2).
        retry: the :class:`~siftkit.core.retry.RetryPolicy` to use instead of one built from ``max_retries`` and
            ``backoff`` (it counts the retries; :meth:`stats` reports them).
        render: turns a message prompt into the served model's raw text (e.g. its tokenizer's chat template), so
            ``score`` accepts message prompts too [ours: ``/v1/completions`` scores raw text only]; None: ``score``
            refuses message prompts.
        revision: a string that names the remote weights (e.g. a checkpoint tag). Remote weights cannot be hashed,
            so :attr:`fingerprint` is only ``("openai", model, revision)``: bump ``revision`` when the server's model
            changes under the same name, or cached answers will be reused.

    ``params.n`` is sent as ``n``; a server that ignores it (llama.cpp, Ollama) answers with one choice, which
    counts as malformed: there, ask for ``n=1`` with distinct seeds instead.

    Example:
        >>> m = OpenAIChatModel("http://127.0.0.1:8000", "smollm2", max_in_flight=8)  # doctest: +SKIP
        >>> m.score(["The capital of France is"], [" Paris"])[0].logprob  # doctest: +SKIP
    """

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", max_in_flight: int = 8,
                 timeout: float = 60, max_retries: int = 6, backoff: float = 0.5, revision: str = "",
                 retry: RetryPolicy | None = None, render: Callable[[Prompt], str] | None = None):
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        root = base_url.rstrip("/")
        self.base_url = root[: -len("/v1")] if root.endswith("/v1") else root
        self.model_id = model
        self.api_key_env = api_key_env
        self.max_in_flight = max_in_flight
        self.timeout = timeout
        self.revision = revision
        self.render = render
        self.retry = retry or RetryPolicy(max_retries=max_retries, backoff=backoff)
        self._lock = threading.Lock()
        self._stats = dict.fromkeys(["requests", "failed"], 0)

    def __repr__(self) -> str:
        return (f"OpenAIChatModel(base_url={self.base_url!r}, model={self.model_id!r}, "
                f"api_key_env={self.api_key_env!r}, revision={self.revision!r})")

    @property
    def fingerprint(self) -> str:
        """``sha256("openai", model, revision)``; independent of ``base_url`` so a moved server keeps its cache."""
        return sha256_text("openai", self.model_id, self.revision)

    def stats(self) -> dict[str, int]:
        """Counters since construction.

        ``requests`` HTTP requests sent (retries included); ``retries`` re-sends; ``timeouts``,
        ``connection_errors``, ``http_errors`` (429 and 5xx) and ``malformed`` (unusable 200 bodies) count the
        failed tries by cause; ``failed`` counts prompts that returned finish reason ``"error"``.
        """
        counts = dict.fromkeys(["timeouts", "connection_errors", "http_errors", "malformed"], 0)
        counts.update(self.retry.stats())
        with self._lock:
            return {"requests": self._stats["requests"], **counts, "failed": self._stats["failed"]}

    # ------------------------------------------------------------------ public API
    def generate(self, prompts: Sequence[Prompt], params: GenerationParams | None = None) -> list[Generation]:
        """One :class:`Generation` per prompt (sync wrapper over :meth:`agenerate`)."""
        return _run_sync(self.agenerate(prompts, params))

    def score(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[Score]:
        """Log-probability of each continuation after its raw-string prompt (sync wrapper over :meth:`ascore`).

        A pair that got no valid answer after all retries scores ``nan`` (counted in ``stats()["failed"]``; the
        cache never stores it).
        """
        return _run_sync(self.ascore(prompts, continuations))

    def next_token_logprobs(self, prompts: Sequence[Prompt], top_k: int = 20) -> list[TokenDistribution]:
        """The top-``k`` of the first generated token's distribution after each prompt (see
        :mod:`siftkit.llm.base`); a prompt with no valid answer after all retries gets an empty distribution
        (counted in ``stats()["failed"]``; the cache never stores it).

        Example:
            >>> m.next_token_logprobs([[{"role": "user", "content": "Grade 0-10:"}]], top_k=5)[0].top  # doctest: +SKIP
            [('7', -0.9), ('8', -1.4), ...]
        """
        return _run_sync(self.anext_token_logprobs(prompts, top_k))

    async def anext_token_logprobs(self, prompts: Sequence[Prompt], top_k: int = 20) -> list[TokenDistribution]:
        """:meth:`next_token_logprobs` for callers that already run an event loop."""
        if top_k < 1:
            raise ValueError("top_k must be >= 1")
        return await self._gather(lambda conn: [self._next_token_one(conn, p, top_k) for p in prompts])

    async def agenerate(self, prompts: Sequence[Prompt], params: GenerationParams | None = None) -> list[Generation]:
        """:meth:`generate` for callers that already run an event loop."""
        params = params or GenerationParams()
        return await self._gather(lambda conn: [self._generate_one(conn, p, params) for p in prompts])

    async def ascore(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[Score]:
        """:meth:`score` for callers that already run an event loop."""
        if len(prompts) != len(continuations):
            raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
        if self.render is not None:
            prompts = [p if isinstance(p, str) else self.render(p) for p in prompts]
        for p in prompts:
            if not isinstance(p, str):
                # [ours] the chat template lives on the server side and /v1/completions takes raw text only.
                raise TypeError("OpenAIChatModel.score needs raw-string prompts: render the chat template first")
        return await self._gather(lambda conn: [self._score_one(conn, p, c) for p, c in zip(prompts, continuations)])

    # ------------------------------------------------------------------ plumbing
    async def _gather(self, make_jobs) -> list:
        """Run ``make_jobs(conn)``'s coroutines on one client; a fresh client per call, as clients bind to a loop."""
        limits = httpx.Limits(max_connections=self.max_in_flight, max_keepalive_connections=self.max_in_flight)
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as client:
            conn = (client, asyncio.Semaphore(self.max_in_flight))
            try:
                async with asyncio.TaskGroup() as tg:  # a fail-fast error cancels the other requests
                    tasks = [tg.create_task(job) for job in make_jobs(conn)]
            except* OpenAIError as eg:
                raise eg.exceptions[0] from None
        return [t.result() for t in tasks]

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _count(self, name: str) -> None:
        with self._lock:
            self._stats[name] += 1

    async def _post(self, conn, path: str, body: dict[str, Any], check) -> Any | None:
        """POST under :attr:`retry`; ``check(json)`` extracts the result or raises :class:`_Malformed`. None = gave
        up."""
        client, sem = conn
        url = self.base_url + path

        async def attempt():
            async with sem:  # held for the request only, not for the wait before a retry
                self._count("requests")
                r = await client.post(url, json=body, headers=self._headers())
            self.retry.check(r)  # 429/5xx: retried, honouring Retry-After
            if r.status_code >= 400:
                hint = f" (is ${self.api_key_env} set?)" if r.status_code in (401, 403) else ""
                raise OpenAIError(r.status_code, url, _error_detail(r) + hint)
            try:
                return check(r.json())
            except (ValueError, KeyError, TypeError, IndexError, _Malformed) as e:
                raise Retry("malformed", f"unusable body: {e!r}") from None

        try:
            return await self.retry.arun(attempt)
        except GaveUp as e:
            self._count("failed")
            log.warning("%s: gave up on a request to %s after %d tries: %s", self.model_id, url, e.attempts, e.last)
            return None

    async def _generate_one(self, conn, prompt: Prompt, params: GenerationParams) -> Generation:
        body: dict[str, Any] = {"model": self.model_id, "max_tokens": params.max_new_tokens,
                                "temperature": params.temperature, "top_p": params.top_p, "n": params.n}
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        chat = not isinstance(prompt, str)
        if chat:
            body["messages"] = prompt
            body.update(_reply_prefix(prompt))
        else:
            body["prompt"] = prompt

        def check(data: dict) -> Generation:
            choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
            if len(choices) != params.n:
                raise _Malformed(f"{len(choices)} choices for n={params.n}")
            texts = [c["message"]["content"] if chat else c["text"] for c in choices]
            if not all(isinstance(t, str) for t in texts):
                raise _Malformed("non-string text")
            usage = data.get("usage") or {}
            return Generation(texts=texts, finish_reasons=[c.get("finish_reason") or "stop" for c in choices],
                              prompt_tokens=int(usage.get("prompt_tokens") or 0),
                              completion_tokens=int(usage.get("completion_tokens") or 0))

        gen = await self._post(conn, "/v1/chat/completions" if chat else "/v1/completions", body, check)
        return gen if gen is not None else Generation(texts=[""] * params.n, finish_reasons=[ERROR] * params.n)

    async def _next_token_one(self, conn, prompt: Prompt, top_k: int) -> TokenDistribution:
        chat = not isinstance(prompt, str)
        body: dict[str, Any] = {"model": self.model_id, "max_tokens": 1, "temperature": 0.0}
        if chat:
            body.update(messages=prompt, logprobs=True, top_logprobs=top_k, **_reply_prefix(prompt))
        else:
            body.update(prompt=prompt, logprobs=top_k)

        def check(data: dict) -> TokenDistribution:
            lp = data["choices"][0]["logprobs"]
            if chat:
                top = [(t["token"], float(t["logprob"])) for t in lp["content"][0]["top_logprobs"]]
            else:
                top = [(t, float(v)) for t, v in lp["top_logprobs"][0].items()]
            if not top or not all(isinstance(t, str) for t, _ in top):
                raise _Malformed("no top_logprobs for the first token")
            return TokenDistribution(top=sorted(top, key=lambda kv: -kv[1])[:top_k])

        dist = await self._post(conn, "/v1/chat/completions" if chat else "/v1/completions", body, check)
        return dist if dist is not None else TokenDistribution(top=[])

    async def _score_one(self, conn, prompt: str, continuation: str) -> Score:
        body = {"model": self.model_id, "prompt": prompt + continuation, "echo": True, "logprobs": 1,
                "max_tokens": 0, "temperature": 0.0}

        def check(data: dict) -> Score:
            lp = data["choices"][0]["logprobs"]
            tokens, values, offsets = lp["tokens"], lp["token_logprobs"], lp["text_offset"]
            if not len(tokens) == len(values) == len(offsets):
                raise _Malformed("logprobs arrays differ in length")
            # A token belongs to the continuation when it ends after the prompt (a straddling token counts too).
            # The first token of the text has no logprob (None); it can only be a continuation token when the
            # prompt is empty, and then counts 0.
            picked = [float(v or 0.0) for t, v, o in zip(tokens, values, offsets) if o + len(t) > len(prompt)]
            return Score(logprob=sum(picked), token_logprobs=picked)

        score = await self._post(conn, "/v1/completions", body, check)
        return score if score is not None else Score(logprob=float("nan"))


def _reply_prefix(prompt: Prompt) -> dict[str, Any]:
    """vLLM's request fields that continue a final assistant message (a reply prefix) instead of opening a turn."""
    return {"continue_final_message": True, "add_generation_prompt": False} if continues_reply(prompt) else {}


def _error_detail(r: httpx.Response) -> str:
    try:
        err = r.json().get("error") or r.json().get("detail")
        msg = err.get("message") if isinstance(err, dict) else err
        return str(msg)[:500]
    except Exception:
        return r.text[:500]
