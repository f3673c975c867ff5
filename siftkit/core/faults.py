"""Fault injection for siftkit's HTTP servers: an ASGI layer that answers a share of requests with a fault.

:class:`FaultInjector` wraps any ASGI app (``siftkit serve llm``'s, the retrieval server's). Each request under
``prefixes`` is, with probability ``rate``, not passed to the app but answered with one fault drawn uniformly from
``kinds``:

* ``timeout`` — the layer holds the request ``hang_s`` seconds (longer than the client's timeout), then answers 504;
* ``429`` — ``429 Too Many Requests`` with ``Retry-After: <retry_after>``;
* ``5xx`` — 500, 502 or 503 with a JSON error body;
* ``garbage`` — ``200 OK`` whose body is unusable: cut-off JSON, HTML, or JSON without ``choices``.

The draws come from a private ``random.Random(seed)`` under a lock, so a sequential client sees the same faults on
every run; :attr:`counts` holds the faults injected per kind, :attr:`requests` every request seen and
:attr:`passed` those handed to the app (benchmarks kill a client after ``passed`` reaches some N).

Example:
    >>> app = FaultInjector(create_app({"smollm2": llm}), rate=0.3, seed=0)  # doctest: +SKIP
    >>> with BackgroundServer(app) as srv: ...  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import Counter

KINDS = ("timeout", "429", "5xx", "garbage")
GARBAGE_BODIES = (b'{"id": "cmpl-x", "choices": [{"text": "', b"<html><body>502 Bad Gateway</body></html>",
                  b'{"id": "cmpl-x", "object": "text_completion"}')


class FaultInjector:
    """ASGI middleware that replaces a share ``rate`` of requests with injected faults.

    Args:
        app: the wrapped ASGI app.
        rate: probability in [0, 1] that a request gets a fault.
        kinds: the fault kinds to draw from (a subset of :data:`KINDS`).
        seed: seeds the private RNG.
        hang_s: seconds a ``timeout`` fault holds the request before answering 504.
        retry_after: the ``Retry-After`` of a 429, in seconds (sent as given, e.g. ``"1"``).
        prefixes: only requests whose path starts with one of these are eligible (``/health`` stays clean).
    """

    def __init__(self, app, rate: float = 0.3, kinds: tuple[str, ...] = KINDS, seed: int = 0, hang_s: float = 5.0,
                 retry_after: str = "1", prefixes: tuple[str, ...] = ("/v1",)):
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be in [0, 1]")
        bad = [k for k in kinds if k not in KINDS]
        if bad or not kinds:
            raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {kinds}")
        self.app, self.rate, self.kinds, self.hang_s = app, rate, tuple(kinds), hang_s
        self.retry_after, self.prefixes = retry_after, prefixes
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.counts: Counter = Counter()
        self.requests = 0
        self.passed = 0

    def _draw(self) -> tuple[str | None, int]:
        with self._lock:
            self.requests += 1
            hit = self._rng.random() < self.rate
            kind = self._rng.choice(self.kinds) if hit else None
            variant = self._rng.randrange(3)
            if kind is None:
                self.passed += 1
            else:
                self.counts[kind] += 1
            return kind, variant

    def stats(self) -> dict[str, int]:
        """``requests``, ``passed`` and the faults injected per kind (every kind listed, 0 when none)."""
        with self._lock:
            return {"requests": self.requests, "passed": self.passed, **{k: self.counts[k] for k in self.kinds}}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            return await self.app(scope, receive, send)
        kind, variant = self._draw()
        if kind is None:
            return await self.app(scope, receive, send)
        while (await receive()).get("more_body"):  # drain the request body first
            pass
        headers = [(b"content-type", b"application/json")]
        if kind == "timeout":
            await asyncio.sleep(self.hang_s)
            status, body = 504, _error("injected timeout")
        elif kind == "429":
            status, body = 429, _error("injected rate limit")
            headers.append((b"retry-after", self.retry_after.encode()))
        elif kind == "5xx":
            status, body = (500, 502, 503)[variant], _error("injected server error")
        else:
            status, body = 200, GARBAGE_BODIES[variant]
        await send({"type": "http.response.start", "status": status,
                    "headers": headers + [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _error(message: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "injected_fault"}}).encode()
