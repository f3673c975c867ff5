"""Search-R1's retrieval server API (search_r1 spec §3) over any siftkit :class:`Retriever`.

``POST /retrieve``::

    request:  {"queries": ["q1", "q2"], "topk": 3, "return_scores": true}
    response: {"result": [[{"document": {"id": "123", "contents": "\\"Title\\"\\ntext"}, "score": 0.83}, ...], ...]}
    without scores (return_scores false, the default): {"result": [[{"id": "123", "contents": "..."}, ...], ...]}

A missing ``topk`` falls back to the server's (:attr:`ServerConfig.topk`). Departures from upstream [ours], spec §6.3:

* ``return_scores: false`` (and omitting it) works; upstream always unpacks scores and fails.
* Binds 127.0.0.1 by default; any other address needs an API key (``Authorization: Bearer KEY`` or ``X-API-Key``),
  checked before the body is read; a blank key is refused (:mod:`siftkit.core.serving`).
* Input is validated: 1..``max_queries`` non-blank strings, ``topk`` in 1..``max_topk`` → 422 with the field and
  the reason; a body over ``max_body_bytes`` → 422 (the issue asks every cap to answer 422).

The index is loaded once at start and never written, so replicas behind a load balancer are interchangeable.
``GET /health`` answers ``{"status": "ok"}``.

Example:
    >>> app = create_app(BM25Retriever(corpus))          # then: uvicorn.run(app, host="127.0.0.1", port=8000)
    >>> with BackgroundServer(app) as srv:                # tests / in-process use, free loopback port
    ...     RemoteRetriever(srv.url).search(["q"], k=3)
"""

# No `from __future__ import annotations`: FastAPI must resolve the locally imported `Request` annotation.
import threading
from dataclasses import dataclass

from siftkit.core.errors import ConfigError, InputError
from siftkit.core.serving import BackgroundServer, RequireKey, check_bind, run_server
from siftkit.retrieval.base import Retriever

__all__ = ["BackgroundServer", "ServerConfig", "create_app", "serve"]


@dataclass
class ServerConfig:
    """Settings of the ``/retrieve`` server.

    Attributes:
        host: bind address [ours: loopback; upstream binds 0.0.0.0].
        port: TCP port [code: retrieval_launch.sh uses 8000].
        topk: hits per query when a request has no ``topk`` [code: Search-R1 retrieves top 3].
        max_topk: largest accepted ``topk``.
        max_queries: most queries in one request.
        max_body_bytes: largest request body.
        api_key: required on every ``/retrieve`` call when set; must be set for a non-loopback ``host``.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    topk: int = 3
    max_topk: int = 100
    max_queries: int = 256
    max_body_bytes: int = 1_000_000
    api_key: str | None = None

    def __post_init__(self):
        if not 1 <= self.topk <= self.max_topk:
            raise ConfigError(f"topk must be in 1..{self.max_topk}, got {self.topk}", field="topk")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, got {self.port}", field="port")
        if self.max_queries < 1 or self.max_body_bytes < 1:
            raise ConfigError("max_queries and max_body_bytes must be >= 1")
        try:
            check_bind(self.host, self.api_key)  # a blank key, or a public host without a key
        except InputError as e:
            raise ConfigError(e.message + " (--api-key or SIFTKIT_RETRIEVAL_API_KEY)", field="--api-key") from None


def create_app(retriever: Retriever, config: ServerConfig | None = None):
    """A FastAPI app serving ``retriever`` with Search-R1's ``/retrieve`` shape (see the module docstring).

    Args:
        retriever: any object with ``search(queries, k)``; searches are serialised by a lock.
        config: limits, default ``topk`` and API key; ``ServerConfig()`` by default.

    Returns:
        ``fastapi.FastAPI``.
    """
    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field, ValidationError, field_validator

    cfg = config or ServerConfig()
    lock = threading.Lock()

    class RetrieveRequest(BaseModel):
        queries: list[str] = Field(min_length=1, max_length=cfg.max_queries, strict=True)
        topk: int | None = Field(default=None, ge=1, le=cfg.max_topk, strict=True)
        return_scores: bool = Field(default=False, strict=True)

        @field_validator("queries")
        @classmethod
        def _non_blank(cls, queries: list[str]) -> list[str]:
            for i, q in enumerate(queries):
                if not q.strip():
                    raise ValueError(f"queries[{i}] is empty; every query must be a non-blank string")
            return queries

    app = FastAPI(title="siftkit retrieval", summary="Search-R1 compatible /retrieve")
    # the key is checked before the body is read (Bearer or X-API-Key); /health stays open
    app.add_middleware(RequireKey, api_key=cfg.api_key, prefixes=("/retrieve",), x_api_key=True,
                       reject=lambda: JSONResponse({"detail": "missing or wrong API key"}, status_code=401))

    def _too_large() -> JSONResponse:
        return JSONResponse({"detail": f"request body exceeds {cfg.max_body_bytes} bytes"}, status_code=422)

    def _search(queries: list[str], k: int):
        with lock:
            return retriever.search(queries, k)

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.post("/retrieve", openapi_extra={"requestBody": {"content": {"application/json": {
        "schema": RetrieveRequest.model_json_schema()}}, "required": True}})
    async def retrieve(request: Request):
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cfg.max_body_bytes:
            return _too_large()
        body = bytearray()
        async for chunk in request.stream():  # also bounds chunked bodies, which declare no length
            body += chunk
            if len(body) > cfg.max_body_bytes:
                return _too_large()
        try:
            req = RetrieveRequest.model_validate_json(bytes(body))
        except ValidationError as e:
            raise RequestValidationError(e.errors(include_url=False, include_context=False,
                                                  include_input=False)) from None
        k = req.topk or cfg.topk
        results = await run_in_threadpool(_search, req.queries, k)
        if req.return_scores:
            out = [[{"document": h.document(), "score": h.score} for h in hits] for hits in results]
        else:
            out = [[h.document() for h in hits] for hits in results]
        return {"result": out}

    return app


def serve(retriever: Retriever, config: ServerConfig | None = None) -> None:
    """Run the app with uvicorn in this process until SIGINT/SIGTERM (see :func:`siftkit.core.serving.run_server`)."""
    cfg = config or ServerConfig()
    run_server(create_app(retriever, cfg), cfg.host, cfg.port)
