"""An OpenAI-compatible HTTP server over any :class:`~siftkit.llm.base.ChatModel`.

Routes: ``GET /v1/models``, ``POST /v1/chat/completions`` (``logprobs``/``top_logprobs`` and ``stream`` included),
``POST /v1/completions`` (``echo``, ``logprobs`` and ``stream`` included, which is how
:meth:`siftkit.llm.openai_client.OpenAIChatModel.score` scores text), and an unauthenticated ``GET /health``.
Errors come back in OpenAI's shape, ``{"error": {"message", "type", "code"}}``:

* 401 without ``Authorization: Bearer <api_key>`` when the app has a key, checked before the body is read, so a
  malformed body without the key is 401, not 422 (:class:`siftkit.core.serving.RequireKey`);
* 422 for a request outside the caps (``n`` ≤ 16, ``max_tokens`` ≤ 4096, ≤ 4 ``stop`` strings, ≤ 64 prompts,
  ``logprobs``/``top_logprobs`` ≤ 20) and for a body over ``max_body_bytes``;
* 400 (code ``context_length_exceeded``) for a prompt over ``max_prompt_tokens`` tokens, counted by the model's
  tokenizer (the chat template included); a model without ``.tokenizer`` counts UTF-8 bytes [ours: an upper bound
  on byte-level BPE tokens];
* 504 for a request not answered within ``request_timeout`` seconds, time spent waiting for the model included. A
  request still queued at its deadline never runs; a model call already running cannot be interrupted and finishes
  in its worker thread [ours], which is why prompts are capped;
* 404 for a ``model`` that is not served: the field only selects one of ``models``, it never loads a path.

**Streaming** (``stream: true``): server-sent events in OpenAI's chunk format (``chat.completion.chunk`` or
``text_completion``), ending with ``data: [DONE]``; ``stream_options.include_usage`` adds a usage chunk. [ours] The
model interface returns whole texts, so the events are sent once the answer is complete: one event per token when
log-probabilities were asked for (each with its ``logprobs``), else one content event per choice.

**Logprobs need per-token information**, found by feature detection (without it ``logprobs`` gives 400):

1. an optional model method ::

       token_logprobs(text: str) -> list[tuple[str, float | None]] | list[tuple[str, float | None, int]]

   the tokens of ``text`` as the model scores raw text (no chat template), each with
   ``log p(token | tokens before)`` (``None`` for a first token that has no context) and, optionally, its character
   offset in ``text``. Without offsets the token strings must concatenate to ``text``; ``text_offset`` is then their
   running length. Such a model offers only the chosen token as its top-1 and raw-text (completions) logprobs;
2. else, a transformers model exposed as ``.model`` with a fast tokenizer as ``.tokenizer`` (such as
   :class:`~siftkit.llm.local.LocalChatModel`): one forward pass over the text (raw, or the chat template with the
   assistant turn opened) with the tokenizer's offset mapping; ``top_logprobs`` holds the ``k`` most probable
   tokens at each generated position, under the full softmax. The generated text is re-tokenised after the
   prompt's own tokens, as :meth:`~siftkit.llm.local.LocalChatModel.score` splits a pair, so the values equal
   ``score(prompt, text)`` token by token and the first position's top-k equals ``next_token_logprobs(prompt)``.
   A completion that ended on the end-of-sequence token with no stop strings given gets one more entry for that
   token (text ``""`` in the answer), as vLLM does: a ``max_tokens: 1`` request then always reports the first
   position's top-k, which is what :meth:`~siftkit.llm.openai_client.OpenAIChatModel.next_token_logprobs` reads.

Models are called from worker threads, one call at a time per model unless the model sets ``thread_safe = True``
(a local torch model seeds and samples on shared state).

Example:
    >>> from siftkit.llm.local import LocalChatModel  # doctest: +SKIP
    >>> serve({"smollm2": LocalChatModel.from_pretrained("smollm2")}, port=8000)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal

import anyio
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from siftkit.core.errors import InputError
from siftkit.core.serving import RequireKey, check_api_key, check_bind, is_loopback, run_server, start_background
from siftkit.llm.base import ChatModel, Generation, GenerationParams, continues_reply

__all__ = ["check_bind", "create_app", "is_loopback", "serve", "start_background"]

log = logging.getLogger(__name__)

MAX_N = 16
MAX_TOKENS = 4096
MAX_STOP = 4
MAX_PROMPTS = 64  # prompts per /v1/completions request
MAX_TOP_LOGPROBS = 20  # OpenAI's chat cap; [ours] also for completions, where OpenAI allows 5
MAX_BODY_BYTES = 1 << 20
MAX_PROMPT_TOKENS = 8192  # [ours] default cap on one prompt's tokens
REQUEST_TIMEOUT = 300.0  # [ours] default seconds per request, queueing included
DEFAULT_CHAT_MAX_TOKENS = 256  # [ours] OpenAI means "up to the context"; we pick a finite default


# ---------------------------------------------------------------------------------------------- request schemas
class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")  # clients send fields we do not use (user, presence_penalty, ...)

    model: str
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=MAX_N)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def _cap_stop(cls, v):
        if isinstance(v, list) and len(v) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop strings, got {len(v)}")
        return v

    def params(self, max_tokens: int) -> GenerationParams:
        return GenerationParams(max_new_tokens=max_tokens, temperature=self.temperature, top_p=self.top_p, n=self.n,
                                seed=self.seed, stop=self.stops())

    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)  # the newer name of max_tokens
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    # vLLM's fields for a reply prefix. siftkit's engines always continue a final assistant message
    # (:func:`~siftkit.llm.base.continues_reply`), so asking for a new turn after one is refused, not ignored.
    continue_final_message: bool | None = None
    add_generation_prompt: bool | None = None

    @model_validator(mode="after")
    def _reply_prefix(self):
        ends_in_reply = self.messages[-1].role == "assistant"
        if self.continue_final_message and not ends_in_reply:
            raise ValueError("continue_final_message needs the last message to be an assistant message")
        if self.continue_final_message and self.add_generation_prompt:
            raise ValueError("continue_final_message and add_generation_prompt cannot both be true")
        if ends_in_reply and (self.continue_final_message is False or self.add_generation_prompt):
            raise ValueError("this server continues a final assistant message (continue_final_message); "
                             "it cannot open a new assistant turn after one")
        return self


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    max_tokens: int = Field(16, ge=0, le=MAX_TOKENS)  # 0 with echo = score the prompt only
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)  # top-k alternatives per token

    @field_validator("prompt")
    @classmethod
    def _cap_prompts(cls, v):
        if isinstance(v, list) and not 1 <= len(v) <= MAX_PROMPTS:
            raise ValueError(f"between 1 and {MAX_PROMPTS} prompts, got {len(v)}")
        return v


# ---------------------------------------------------------------------------------------------- app
def create_app(models: dict[str, ChatModel], api_key: str | None = None, max_body_bytes: int = MAX_BODY_BYTES,
               max_prompt_tokens: int = MAX_PROMPT_TOKENS, request_timeout: float = REQUEST_TIMEOUT) -> FastAPI:
    """An OpenAI-compatible FastAPI app serving ``models`` by name.

    Args:
        models: served name → model; one object may appear under several names.
        api_key: when given, every ``/v1`` request needs ``Authorization: Bearer <api_key>``; blank keys are
            refused (:class:`~siftkit.core.errors.InputError`).
        max_body_bytes: larger request bodies get 422.
        max_prompt_tokens: a longer prompt gets 400 before the model runs.
        request_timeout: seconds until a request gets 504, waiting for the model included.

    Returns:
        The app; run it with :func:`serve` or :func:`start_background`.
    """
    if not models:
        raise ValueError("create_app needs at least one model")
    if api_key == "":
        raise ValueError("api_key is empty: pass None for no key")
    check_api_key(api_key, field="api_key")
    if max_prompt_tokens < 1 or request_timeout <= 0:
        raise ValueError("max_prompt_tokens must be >= 1 and request_timeout > 0")
    locks = {id(m): threading.Lock() for m in models.values()}

    app = FastAPI(title="siftkit llm server")
    app.add_middleware(_BodyCap, max_bytes=max_body_bytes)
    app.add_middleware(RequireKey, api_key=api_key, prefixes=("/v1",),  # outermost: before the body is read
                       reject=lambda: _error(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                                             headers={"WWW-Authenticate": "Bearer"}))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        code = "context_length_exceeded" if exc.status_code == 400 and "max_prompt_tokens" in str(exc.detail) \
            else None
        return _error(exc.status_code, str(exc.detail), headers=exc.headers, code=code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        parts = [f"{'.'.join(str(x) for x in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()]
        return _error(422, "; ".join(parts), kind="invalid_request_error")

    def pick(name: str) -> ChatModel:
        if name not in models:
            raise HTTPException(404, f"model {name!r} is not served; served: {sorted(models)}")
        return models[name]

    async def call(model: ChatModel, fn: Callable[[], Any], deadline: float) -> Any:
        """``fn()`` in a worker thread under the model's lock; 504 past ``deadline`` (queueing included)."""
        abandoned = threading.Event()

        def locked():
            if getattr(model, "thread_safe", False):
                return fn()
            lock = locks[id(model)]
            if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise TimeoutError
            try:
                if abandoned.is_set():  # the request gave up while we queued: do not run it
                    raise TimeoutError
                return fn()
            finally:
                lock.release()

        try:
            with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                return await anyio.to_thread.run_sync(locked, abandon_on_cancel=True)
        except TimeoutError:
            abandoned.set()
            raise HTTPException(504, f"request timed out after {request_timeout:g} s (request_timeout)") from None
        except HTTPException:
            raise
        except InputError as e:
            raise HTTPException(400, e.message) from e
        except Exception as e:
            log.exception("model call failed")
            raise HTTPException(500, f"model error: {type(e).__name__}: {e}") from e

    def cap_prompt(model: ChatModel, prompt) -> None:
        n = _prompt_tokens(model, prompt, max_prompt_tokens)
        if n > max_prompt_tokens:
            unit = "tokens" if getattr(model, "tokenizer", None) is not None else "bytes (no tokenizer)"
            raise HTTPException(400, f"the prompt has {n} {unit}, over the server's cap of {max_prompt_tokens} "
                                     "(max_prompt_tokens): shorten it")

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/v1/models")
    def list_models():
        return {"object": "list", "data": [{"id": k, "object": "model", "created": 0, "owned_by": "siftkit"}
                                           for k in models]}

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatCompletionRequest):
        deadline = time.monotonic() + request_timeout
        model = pick(req.model)
        top_k = (req.top_logprobs or 0) if req.logprobs else None
        per_token = _token_info_fn(model, chat=True) if top_k is not None else None
        if top_k is not None and per_token is None:
            raise HTTPException(400, f"model {req.model!r} cannot return chat logprobs (it is not a transformers "
                                     "model with a tokenizer)")
        params = req.params(req.max_tokens or req.max_completion_tokens or DEFAULT_CHAT_MAX_TOKENS)
        prompt = [m.model_dump() for m in req.messages]

        def work():
            cap_prompt(model, prompt)
            (gen,) = model.generate([prompt], params)
            _check_generations([gen])
            lps = None
            if per_token is not None:
                lps = [per_token(prompt, t, fr == "stop" and not params.stop, top_k)
                       for t, fr in zip(gen.texts, _reasons(gen))]
            return gen, lps

        gen, lps = await call(model, work, deadline)
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if req.stream:
            return _sse(_chat_chunks(cid, created, req, gen, lps))
        choices = []
        for j, (t, fr) in enumerate(zip(gen.texts, _reasons(gen))):
            c = {"index": j, "message": {"role": "assistant", "content": t}, "finish_reason": fr}
            if lps is not None:
                c["logprobs"] = {"content": [_chat_entry(e) for e in lps[j]]}
            choices.append(c)
        return {"id": cid, "object": "chat.completion", "created": created, "model": req.model, "choices": choices,
                "usage": _usage([gen])}

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest):
        deadline = time.monotonic() + request_timeout
        model = pick(req.model)
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        per_token = _token_info_fn(model, chat=False) if req.logprobs is not None else None
        if req.logprobs is not None and per_token is None:
            raise HTTPException(400, f"model {req.model!r} cannot return logprobs (it has no token_logprobs method)")

        def work():
            for p in prompts:
                cap_prompt(model, p)
            if req.max_tokens > 0:
                gens = model.generate(prompts, req.params(req.max_tokens))
                _check_generations(gens)
            else:  # echo-only request: nothing to generate
                gens = [Generation(texts=[""] * req.n, finish_reasons=["length"] * req.n) for _ in prompts]
            lps, scored = [], {}  # scored: (prompt, text) -> entries, so n echo-only samples score once
            for p, gen in zip(prompts, gens):
                for t, fr in zip(gen.texts, _reasons(gen)):
                    if per_token is None:
                        lps.append(None)
                        continue
                    key = (p, t, fr)
                    if key not in scored:
                        eos = req.max_tokens > 0 and fr == "stop" and not req.stops()
                        scored[key] = per_token(p, t, eos, req.logprobs, echo=req.echo)
                    lps.append(scored[key])
                    if req.max_tokens == 0:
                        gen.prompt_tokens = len(scored[key])
            return gens, lps

        gens, lps = await call(model, work, deadline)
        cid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        if req.stream:
            return _sse(_completion_chunks(cid, created, req, prompts, gens, lps))
        choices = []
        for i, (p, gen) in enumerate(zip(prompts, gens)):
            for j, (t, fr) in enumerate(zip(gen.texts, _reasons(gen))):
                k = i * req.n + j
                choices.append({"index": k, "text": (p if req.echo else "") + t, "finish_reason": fr,
                                "logprobs": None if lps[k] is None else _completion_logprobs(lps[k])})
        return {"id": cid, "object": "text_completion", "created": created, "model": req.model, "choices": choices,
                "usage": _usage(gens)}

    return app


# ---------------------------------------------------------------------------------------------- per-token information
# An entry is (token text, logprob or None, char offset in the scored text, top-k [(token text, logprob)]).
Entry = tuple[str, "float | None", int, list]


def _chat_text(tok, prompt) -> str:
    """The chat as the engines render it: a final assistant message is continued, otherwise a reply is opened."""
    if continues_reply(prompt):
        return tok.apply_chat_template(prompt, continue_final_message=True, tokenize=False)
    return tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)


def _prompt_tokens(model, prompt, cap: int) -> int:
    """Tokens of ``prompt`` as the model sees it, or an upper bound on them that is within ``cap`` (tokenising a
    long prompt is skipped when its UTF-8 bytes already fit); UTF-8 bytes for a model without a tokenizer."""
    tok = getattr(model, "tokenizer", None)
    if isinstance(prompt, str):
        text, special = prompt, True
    elif tok is not None and getattr(tok, "chat_template", None):
        text, special = _chat_text(tok, prompt), False
    else:
        text, special = "\n".join(m["content"] for m in prompt), True
    n_bytes = len(text.encode("utf-8"))
    if tok is None:
        return n_bytes
    if n_bytes + 8 <= cap:  # a token covers at least one byte (+ 8 for special tokens the tokenizer adds)
        return n_bytes + 8
    return len(tok(text, add_special_tokens=special)["input_ids"])


def _token_info_fn(model, chat: bool) -> Callable[..., list[Entry]] | None:
    """``f(prompt, text, eos, top_k, echo=False)`` → entries of ``text`` after ``prompt`` (all tokens with
    ``echo``), or None when the model offers no per-token information (see the module docstring)."""
    lm, tok = getattr(model, "model", None), getattr(model, "tokenizer", None)
    if not chat and hasattr(model, "token_logprobs"):
        def from_method(prompt: str, text: str, eos: bool, top_k: int, echo: bool = False) -> list[Entry]:
            full, out, pos = prompt + text, [], 0
            for t in model.token_logprobs(full):
                off = t[2] if len(t) > 2 else pos
                pos = off + len(t[0])
                if echo or pos > len(prompt):
                    out.append((t[0], t[1], off, [] if t[1] is None else [(t[0], float(t[1]))]))
            return out
        return from_method
    if lm is not None and getattr(tok, "is_fast", False) and (not chat or getattr(tok, "chat_template", None)):
        def from_hf(prompt, text: str, eos: bool, top_k: int, echo: bool = False) -> list[Entry]:
            if isinstance(prompt, str):
                head, special = prompt, True
            else:
                head, special = _chat_text(tok, prompt), False
            return _hf_entries(lm, tok, head, text, special, top_k, eos, echo)
        return from_hf
    return None


def _hf_entries(lm, tokenizer, head: str, text: str, special: bool, top_k: int, eos: bool,
                echo: bool) -> list[Entry]:
    """Entries of ``head + text`` under a causal LM: the tokens ending after ``head`` (all with ``echo``), their
    log-probabilities and top-k, plus the end-of-sequence entry when ``eos`` (see the module docstring)."""
    import torch

    full = head + text
    enc = tokenizer(full, add_special_tokens=special, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    if echo:
        first = 1
    else:  # the prompt's own tokens, then the text's, as LocalChatModel.score splits a (prompt, continuation) pair
        head_ids = tokenizer(head, add_special_tokens=special)["input_ids"]
        if ids[:len(head_ids)] != head_ids:  # a merge across the boundary: tokenise the text alone
            alone = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            ids = head_ids + alone["input_ids"]
            offsets = [(0, 0)] * len(head_ids) + [(s + len(head), e + len(head)) for s, e in alone["offset_mapping"]]
        first = max(1, len(head_ids))
    T = len(ids)
    if not T:
        return []
    lo = first - 1  # position lo predicts token first; the last position (T-1) predicts what follows the text
    device = next(lm.parameters()).device
    with torch.no_grad():
        logits = lm(input_ids=torch.tensor([ids], device=device), logits_to_keep=T - lo).logits[0]  # (T-lo, V)
    logp = torch.log_softmax(logits.float(), dim=-1)  # (T-lo, V): row r is position lo + r
    out: list[Entry] = []
    if echo:  # token 0 has no context
        s, e = offsets[0]
        out.append((full[s:e], None, s, []))
    for i in range(first, T):
        row = logp[i - 1 - lo]  # (V,): token i is predicted at position i - 1
        s, e = offsets[i]
        out.append((full[s:e], float(row[ids[i]]), s, _top(tokenizer, row, top_k)))
    if eos:
        row = logp[-1]  # (V,): after the whole text
        eos_ids = [i for i in {tokenizer.eos_token_id, *_as_list(getattr(getattr(lm, "generation_config", None),
                                                                      "eos_token_id", None))} if i is not None]
        if eos_ids:
            best = max(eos_ids, key=lambda i: float(row[i]))
            out.append(("", float(row[best]), len(full), _top(tokenizer, row, top_k)))
    return out


def _as_list(x) -> list:
    return x if isinstance(x, list) else [x]


def _top(tokenizer, row, k: int) -> list[tuple[str, float]]:
    """The ``k`` most probable next tokens of a log-softmax ``row`` (V,), decoded, most probable first."""
    if not k:
        return []
    import torch

    vals, idx = torch.topk(row, k)  # (k,), (k,)
    return [(tokenizer.decode([i]), float(v)) for v, i in zip(vals.tolist(), idx.tolist())]


# ---------------------------------------------------------------------------------------------- response bodies
def _reasons(gen: Generation) -> list[str]:
    return gen.finish_reasons or ["stop"] * len(gen.texts)


def _check_generations(gens: Sequence[Generation]) -> None:
    # A served model that is itself a remote client may give up on a prompt; tell our client to retry.
    if any("error" in _reasons(g) for g in gens):
        raise HTTPException(502, "the model returned no answer (upstream error)")


def _usage(gens: Sequence[Generation]) -> dict[str, int]:
    p, c = sum(g.prompt_tokens for g in gens), sum(g.completion_tokens for g in gens)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _completion_logprobs(entries: Sequence[Entry]) -> dict[str, list]:
    """OpenAI's completion ``logprobs`` object (tokens, token_logprobs, top_logprobs, text_offset)."""
    out: dict[str, list] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for t, lp, off, top in entries:
        out["tokens"].append(t)
        out["token_logprobs"].append(None if lp is None else float(lp))
        alts: dict[str, float] = {}
        for a, v in top:  # two tokens may decode alike: keep the more probable
            alts[a] = max(v, alts.get(a, float("-inf")))
        out["top_logprobs"].append(None if lp is None else alts)
        out["text_offset"].append(off)
    return out


def _chat_entry(e: Entry) -> dict[str, Any]:
    t, lp, _, top = e
    return {"token": t, "logprob": lp, "bytes": list(t.encode("utf-8")),
            "top_logprobs": [{"token": a, "logprob": v, "bytes": list(a.encode("utf-8"))} for a, v in top]}


def _pieces(text: str, entries: Sequence[Entry] | None, base: int) -> list[tuple[str, Entry | None]]:
    """``text`` cut at the entries' offsets (relative to ``base``): one streamed piece per token, or the whole
    text when there are no entries; the pieces concatenate to ``text``."""
    if not entries:
        return [(text, None)] if text else []
    cuts = [max(0, min(len(text), e[2] - base)) for e in entries] + [len(text)]
    cuts[0] = 0
    return [(text[cuts[i]:cuts[i + 1]], e) for i, e in enumerate(entries)]


def _sse(events) -> StreamingResponse:
    async def body():
        for ev in events:
            yield f"data: {json.dumps(ev, ensure_ascii=False)}\n\n"
        yield "data: [DONE]\n\n"
    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _chat_chunks(cid: str, created: int, req: ChatCompletionRequest, gen: Generation, lps):
    def chunk(choices, usage=None):
        c = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": req.model, "choices": choices}
        return c if usage is None else {**c, "usage": usage}

    for j, (t, fr) in enumerate(zip(gen.texts, _reasons(gen))):
        yield chunk([{"index": j, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                      "finish_reason": None}])
        for piece, e in _pieces(t, None if lps is None else lps[j], 0):
            lp = None if e is None else {"content": [_chat_entry(e)]}
            yield chunk([{"index": j, "delta": {"content": piece}, "logprobs": lp, "finish_reason": None}])
        yield chunk([{"index": j, "delta": {}, "logprobs": None, "finish_reason": fr}])
    if req.stream_options and req.stream_options.include_usage:
        yield chunk([], usage=_usage([gen]))


def _completion_chunks(cid: str, created: int, req: CompletionRequest, prompts, gens, lps):
    def chunk(choices, usage=None):
        c = {"id": cid, "object": "text_completion", "created": created, "model": req.model, "choices": choices}
        return c if usage is None else {**c, "usage": usage}

    for i, (p, gen) in enumerate(zip(prompts, gens)):
        for j, (t, fr) in enumerate(zip(gen.texts, _reasons(gen))):
            k = i * req.n + j
            text = (p if req.echo else "") + t
            base = 0 if req.echo else len(p)
            for piece, e in _pieces(text, lps[k], base):
                lp = None if e is None else _completion_logprobs([e])
                yield chunk([{"index": k, "text": piece, "logprobs": lp, "finish_reason": None}])
            yield chunk([{"index": k, "text": "", "logprobs": None, "finish_reason": fr}])
    if req.stream_options and req.stream_options.include_usage:
        yield chunk([], usage=_usage(gens))


def _error(status: int, message: str, kind: str | None = None, headers: dict | None = None,
           code: str | None = None) -> JSONResponse:
    kind = kind or ("invalid_request_error" if status < 500 else "server_error")
    code = code or {401: "invalid_api_key", 404: "model_not_found", 504: "timeout"}.get(status)
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}},
                        status_code=status, headers=headers)

class _BodyCap:
    """ASGI middleware: 422 for bodies over ``max_bytes`` (declared or streamed), before any parsing."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = _error(422, f"request body over {self.max_bytes} bytes", code="body_too_large")
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await too_big(scope, receive, send)
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":  # client went away
                return
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await too_big(scope, receive, send)
            if not msg.get("more_body"):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# ---------------------------------------------------------------------------------------------- running it
def serve(models: dict[str, ChatModel], host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          log_level: str = "info", max_prompt_tokens: int = MAX_PROMPT_TOKENS,
          request_timeout: float = REQUEST_TIMEOUT) -> None:
    """Serve ``models`` with uvicorn until SIGINT/SIGTERM (a running request gets a few seconds, then is dropped).

    Args:
        models: served name → model.
        host: bind address; anything but loopback requires ``api_key``.
        port: TCP port.
        api_key: required bearer token (None: no auth, loopback only); blank keys are refused.
        log_level: uvicorn log level.
        max_prompt_tokens: a longer prompt gets 400.
        request_timeout: seconds until a request gets 504.

    Raises:
        InputError: a non-loopback ``host`` without ``api_key``, or a blank key (before anything binds).
    """
    check_bind(host, api_key)
    run_server(create_app(models, api_key, max_prompt_tokens=max_prompt_tokens, request_timeout=request_timeout),
               host, port, log_level=log_level)
