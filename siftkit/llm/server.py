"""An OpenAI-compatible HTTP server over any :class:`~siftkit.llm.base.ChatModel`.

Routes: ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/completions`` (``echo`` and ``logprobs``
included, which is how :meth:`siftkit.llm.openai_client.OpenAIChatModel.score` scores text), and an unauthenticated
``GET /health``. Errors come back in OpenAI's shape, ``{"error": {"message", "type", "code"}}``:

* 422 for a request outside the caps (``n`` ≤ 16, ``max_tokens`` ≤ 4096, ≤ 4 ``stop`` strings, ≤ 64 prompts,
  ``stream`` unsupported) and 422 for a body over ``max_body_bytes`` (every cap answers 422, as the issue asks);
* 404 for a ``model`` that is not served: the field only selects one of ``models``, it never loads a path;
* 401 without ``Authorization: Bearer <api_key>`` when the app has a key.

**Logprobs need per-token information**, found by feature detection (without it ``logprobs`` gives 400):

1. an optional model method ::

       token_logprobs(text: str) -> list[tuple[str, float | None]] | list[tuple[str, float | None, int]]

   the tokens of ``text`` as the model scores raw text (no chat template), each with
   ``log p(token | tokens before)`` (``None`` for a first token that has no context) and, optionally, its character
   offset in ``text``. Without offsets the token strings must concatenate to ``text``; ``text_offset`` is then their
   running length;
2. else, a transformers model exposed as ``.model`` with a fast tokenizer as ``.tokenizer`` (such as
   :class:`~siftkit.llm.local.LocalChatModel`): one forward pass over ``text`` tokenised as a raw prompt, with the
   tokenizer's offset mapping. The echo score of ``prompt + continuation`` then equals ``score(prompt,
   continuation)`` whenever the joint tokenisation starts with the prompt's own tokens (no merge across the
   boundary).

Models are called from a thread pool, one call at a time per model unless the model sets ``thread_safe = True``
(a local torch model seeds and samples on shared state).

Example:
    >>> from siftkit.llm.local import LocalChatModel  # doctest: +SKIP
    >>> serve({"smollm2": LocalChatModel.from_pretrained("smollm2")}, port=8000)  # doctest: +SKIP
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import socket
import threading
import time
import uuid
from typing import Any, Callable, Literal, Sequence

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from siftkit.llm.base import ChatModel, Generation, GenerationParams

log = logging.getLogger(__name__)

MAX_N = 16
MAX_TOKENS = 4096
MAX_STOP = 4
MAX_PROMPTS = 64  # prompts per /v1/completions request
MAX_BODY_BYTES = 1 << 20
DEFAULT_CHAT_MAX_TOKENS = 256  # [ours] OpenAI means "up to the context"; we pick a finite default


# ---------------------------------------------------------------------------------------------- request schemas
class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")  # clients send fields we do not use (user, presence_penalty, ...)

    model: str
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=MAX_N)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False

    @field_validator("stop")
    @classmethod
    def _cap_stop(cls, v):
        if isinstance(v, list) and len(v) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop strings, got {len(v)}")
        return v

    @field_validator("stream")
    @classmethod
    def _no_stream(cls, v):
        if v:
            raise ValueError("streaming is not supported")
        return v

    def params(self, max_tokens: int) -> GenerationParams:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return GenerationParams(max_new_tokens=max_tokens, temperature=self.temperature, top_p=self.top_p, n=self.n,
                                seed=self.seed, stop=stop)


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    max_tokens: int = Field(16, ge=0, le=MAX_TOKENS)  # 0 with echo = score the prompt only
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=5)  # we return the sampled token's logprob only, whatever the value

    @field_validator("prompt")
    @classmethod
    def _cap_prompts(cls, v):
        if isinstance(v, list) and not 1 <= len(v) <= MAX_PROMPTS:
            raise ValueError(f"between 1 and {MAX_PROMPTS} prompts, got {len(v)}")
        return v


# ---------------------------------------------------------------------------------------------- app
def create_app(models: dict[str, ChatModel], api_key: str | None = None, max_body_bytes: int = MAX_BODY_BYTES
               ) -> FastAPI:
    """An OpenAI-compatible FastAPI app serving ``models`` by name.

    Args:
        models: served name → model; one object may appear under several names.
        api_key: when given, every ``/v1`` request needs ``Authorization: Bearer <api_key>``.
        max_body_bytes: larger request bodies get 422.

    Returns:
        The app; run it with :func:`serve` or :func:`start_background`.
    """
    if not models:
        raise ValueError("create_app needs at least one model")
    if api_key == "":
        raise ValueError("api_key is empty: pass None for no key")
    locks = {id(m): threading.Lock() for m in models.values()}

    app = FastAPI(title="siftkit llm server")
    app.add_middleware(_BodyCap, max_bytes=max_body_bytes)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        parts = [f"{'.'.join(str(x) for x in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()]
        return _error(422, "; ".join(parts), kind="invalid_request_error")

    def check_key(authorization: str | None = Header(None)) -> None:
        if api_key is None:
            return
        if not authorization or not hmac.compare_digest(authorization.encode(), f"Bearer {api_key}".encode()):
            raise HTTPException(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                                headers={"WWW-Authenticate": "Bearer"})

    def pick(name: str) -> ChatModel:
        if name not in models:
            raise HTTPException(404, f"model {name!r} is not served; served: {sorted(models)}")
        return models[name]

    def call(model: ChatModel, fn: Callable[[], Any]) -> Any:
        try:
            if getattr(model, "thread_safe", False):
                return fn()
            with locks[id(model)]:
                return fn()
        except HTTPException:
            raise
        except Exception as e:
            log.exception("model call failed")
            raise HTTPException(500, f"model error: {type(e).__name__}: {e}") from e

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/v1/models", dependencies=[Depends(check_key)])
    def list_models():
        return {"object": "list", "data": [{"id": k, "object": "model", "created": 0, "owned_by": "siftkit"}
                                           for k in models]}

    # Sync handlers: FastAPI runs them in its thread pool, so a slow model does not block the event loop.
    @app.post("/v1/chat/completions", dependencies=[Depends(check_key)])
    def chat_completions(req: ChatCompletionRequest):
        model = pick(req.model)
        params = req.params(req.max_tokens or DEFAULT_CHAT_MAX_TOKENS)
        prompt = [m.model_dump() for m in req.messages]
        (gen,) = call(model, lambda: model.generate([prompt], params))
        _check_generations([gen])
        choices = [{"index": j, "message": {"role": "assistant", "content": t}, "finish_reason": fr}
                   for j, (t, fr) in enumerate(zip(gen.texts, _reasons(gen)))]
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": req.model, "choices": choices, "usage": _usage([gen])}

    @app.post("/v1/completions", dependencies=[Depends(check_key)])
    def completions(req: CompletionRequest):
        model = pick(req.model)
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        per_token = _token_logprobs_fn(model) if req.logprobs is not None else None
        if req.logprobs is not None and per_token is None:
            raise HTTPException(400, f"model {req.model!r} cannot return logprobs (it has no token_logprobs method)")
        if req.max_tokens > 0:
            gens = call(model, lambda: model.generate(prompts, req.params(req.max_tokens)))
            _check_generations(gens)
        else:  # echo-only request: nothing to generate
            gens = [Generation(texts=[""] * req.n, finish_reasons=["length"] * req.n) for _ in prompts]
        choices, scored = [], {}  # scored: text -> token_logprobs output, so n echo-only samples score once
        for i, (p, gen) in enumerate(zip(prompts, gens)):
            for j, (t, fr) in enumerate(zip(gen.texts, _reasons(gen))):
                lp = None
                if req.logprobs is not None:
                    if p + t not in scored:
                        scored[p + t] = call(model, lambda: per_token(p + t))
                    lp = _logprobs(scored[p + t], p + t, len(p), req.echo)
                    if req.max_tokens == 0:
                        gen.prompt_tokens = len(lp["tokens"])
                choices.append({"index": i * req.n + j, "text": (p if req.echo else "") + t, "finish_reason": fr,
                                "logprobs": lp})
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": req.model, "choices": choices, "usage": _usage(gens)}

    return app


def _token_logprobs_fn(model) -> Callable[[str], list[tuple]] | None:
    """The model's ``token_logprobs``, or a transformers fallback, or None (see the module docstring)."""
    if hasattr(model, "token_logprobs"):
        return model.token_logprobs
    lm, tok = getattr(model, "model", None), getattr(model, "tokenizer", None)
    if lm is not None and getattr(tok, "is_fast", False):
        return lambda text: _hf_token_logprobs(lm, tok, text)
    return None


def _hf_token_logprobs(lm, tokenizer, text: str) -> list[tuple[str, float | None, int]]:
    """Per-token (text piece, logprob, char offset) of raw ``text`` under a causal LM (special tokens as for a raw
    prompt)."""
    import torch

    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    if not ids:
        return []
    device = next(lm.parameters()).device
    with torch.no_grad():
        logits = lm(input_ids=torch.tensor([ids], device=device)).logits[0]  # (T, V)
    logp = torch.log_softmax(logits.float(), dim=-1)  # (T, V)
    nxt = torch.tensor(ids[1:], device=device)  # (T-1,)
    lps = [None] + logp[:-1].gather(-1, nxt[:, None])[:, 0].tolist()  # (T,): token t is predicted at t-1
    return [(text[s:e], lp, s) for (s, e), lp in zip(offsets, lps)]


def _reasons(gen: Generation) -> list[str]:
    return gen.finish_reasons or ["stop"] * len(gen.texts)


def _check_generations(gens: Sequence[Generation]) -> None:
    # A served model that is itself a remote client may give up on a prompt; tell our client to retry.
    if any("error" in _reasons(g) for g in gens):
        raise HTTPException(502, "the model returned no answer (upstream error)")


def _usage(gens: Sequence[Generation]) -> dict[str, int]:
    p, c = sum(g.prompt_tokens for g in gens), sum(g.completion_tokens for g in gens)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _logprobs(tokens: Sequence[tuple], text: str, prompt_len: int, echo: bool) -> dict[str, list]:
    """OpenAI's completion ``logprobs`` object from ``token_logprobs`` output; without echo, completion tokens only."""
    out: dict[str, list] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    pos = 0
    for tok in tokens:
        t, lp = tok[0], tok[1]
        off = tok[2] if len(tok) > 2 else pos
        pos = off + len(t)
        if not echo and pos <= prompt_len:
            continue
        out["tokens"].append(t)
        out["token_logprobs"].append(None if lp is None else float(lp))
        out["top_logprobs"].append(None if lp is None else {t: float(lp)})
        out["text_offset"].append(off)
    if pos != len(text) and len(tokens) and len(tokens[0]) == 2:
        log.warning("token strings do not concatenate to the text (%d vs %d chars): offsets are approximate",
                    pos, len(text))
    return out


def _error(status: int, message: str, kind: str | None = None, headers: dict | None = None,
           code: str | None = None) -> JSONResponse:
    kind = kind or ("invalid_request_error" if status < 500 else "server_error")
    code = code or {401: "invalid_api_key", 404: "model_not_found"}.get(status)
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
def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IPs (127.0.0.0/8, ::1); False for ``0.0.0.0`` and host names."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to expose models beyond this machine without an API key."""
    if not is_loopback(host) and not api_key:
        raise ValueError(f"refusing to serve on {host!r} without an API key: a non-loopback address needs one "
                         "(pass api_key=..., or --api-key-env NAME on the command line), or bind 127.0.0.1")


def serve(models: dict[str, ChatModel], host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          log_level: str = "info") -> None:
    """Serve ``models`` with uvicorn until interrupted.

    Args:
        models: served name → model.
        host: bind address; anything but loopback requires ``api_key``.
        port: TCP port.
        api_key: required bearer token (None: no auth, loopback only).
        log_level: uvicorn log level.

    Raises:
        ValueError: a non-loopback ``host`` without ``api_key``.
    """
    check_bind(host, api_key)
    import uvicorn

    uvicorn.run(create_app(models, api_key), host=host, port=port, log_level=log_level)


def start_background(app, host: str = "127.0.0.1", timeout: float = 20.0) -> tuple[str, Callable[[], None]]:
    """Serve an ASGI ``app`` from a daemon thread on a free port of ``host``; for tests and notebooks.

    Returns:
        ``(url, stop)``: the base URL such as ``http://127.0.0.1:54321`` and a function that shuts the server down.

    Example:
        >>> url, stop = start_background(create_app({"echo": EchoModel()}))  # doctest: +SKIP
        >>> stop()  # doctest: +SKIP
    """
    import uvicorn

    # proto must be IPPROTO_TCP (not 0): asyncio only sets TCP_NODELAY on such sockets, and without it every
    # response waits ~40 ms for a delayed ACK
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))  # the OS picks a free port; we keep the socket, so nothing can take it meanwhile
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"uvicorn:{port}")
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"background server on {host}:{port} did not start")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return f"http://{'[' + host + ']' if ':' in host else host}:{port}", stop
