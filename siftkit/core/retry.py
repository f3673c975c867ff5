"""The one retry policy for siftkit's HTTP clients (the OpenAI-compatible chat model, the remote retriever).

What is retried: timeouts, connection errors, HTTP 429 and 5xx, and whatever an attempt raises as :class:`Retry`
(e.g. a 200 answer whose body is unusable). Anything else (a 4xx, a bug) propagates at once.

How long to wait before retry ``r`` (1-based)::

    delay_r = max(min(backoff * 2 ** (r - 1), max_delay) * (1 + u), retry_after),   u ~ U[0, 1)

exponential backoff with multiplicative jitter [ours: the factor in [1, 2) keeps the exponential floor while
spreading clients apart], never shorter than the server's ``Retry-After`` (seconds; capped at ``max_retry_after``;
an HTTP-date falls back to the backoff).

Every failed try is counted by cause (``timeouts``, ``connection_errors``, ``http_errors``, ``malformed`` or the
kind a :class:`Retry` names), the last one of a request that gave up included; :attr:`RetryPolicy.retries` counts
the re-sends and :meth:`RetryPolicy.stats` returns them all.

Example:
    >>> policy = RetryPolicy(max_retries=3, backoff=0.1)
    >>> policy.run(lambda: policy.check(httpx.get(url)))  # doctest: +SKIP
    >>> policy.retries  # doctest: +SKIP
    0
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

T = TypeVar("T")

RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))


class Retry(Exception):
    """Raised inside an attempt to have it retried.

    Args:
        kind: the counter it is counted under (e.g. ``"http_errors"``, ``"malformed"``).
        message: what went wrong (kept for the final error).
        after: wait at least this long (seconds) before the next try, e.g. a ``Retry-After``.
    """

    def __init__(self, kind: str, message: str = "", after: float = 0.0):
        super().__init__(message or kind)
        self.kind, self.after = kind, after


class GaveUp(Exception):
    """Every try failed with a retryable error; ``last`` is the last one, ``attempts`` how many tries were made."""

    def __init__(self, attempts: int, last: BaseException):
        super().__init__(f"failed after {attempts} attempts: {last}")
        self.attempts, self.last = attempts, last


def retry_after(response: httpx.Response, cap: float = 60.0) -> float:
    """The response's ``Retry-After`` in seconds (0 when absent, negative or an HTTP-date), at most ``cap``."""
    try:
        return max(0.0, min(float(response.headers.get("retry-after", 0)), cap))
    except ValueError:
        return 0.0


class RetryPolicy:
    """Retry an HTTP attempt with exponential backoff, jitter and ``Retry-After``; count every retry.

    Args:
        max_retries: retries after the first try (so at most ``max_retries + 1`` tries).
        backoff: first delay in seconds; doubles per retry.
        max_delay: cap on the exponential part, in seconds.
        max_retry_after: cap on a server's ``Retry-After``, in seconds.
        seed: seeds the private jitter RNG (None: OS entropy); the global RNG is never touched.

    One policy may serve many concurrent attempts (threads or coroutines): the counters are locked.
    """

    def __init__(self, max_retries: int = 6, backoff: float = 0.5, max_delay: float = 30.0,
                 max_retry_after: float = 60.0, seed: int | None = None):
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if backoff < 0 or max_delay < 0 or max_retry_after < 0:
            raise ValueError("backoff, max_delay and max_retry_after must be >= 0")
        self.max_retries, self.backoff = max_retries, backoff
        self.max_delay, self.max_retry_after = max_delay, max_retry_after
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._counts: Counter = Counter()  # failed tries by cause
        self._retries = 0

    def __repr__(self) -> str:
        return f"RetryPolicy(max_retries={self.max_retries}, backoff={self.backoff}, max_delay={self.max_delay})"

    # ------------------------------------------------------------------ counters
    @property
    def retries(self) -> int:
        """Re-sends made so far (all causes)."""
        with self._lock:
            return self._retries

    def stats(self) -> dict[str, int]:
        """Failed tries by cause, plus the re-sends under ``"retries"``."""
        with self._lock:
            return {**self._counts, "retries": self._retries}

    # ------------------------------------------------------------------ policy
    def delay(self, retry: int, at_least: float = 0.0) -> float:
        """Seconds to wait before retry number ``retry`` (1-based); see the module docstring."""
        with self._lock:
            u = self._rng.random()
        return max(min(self.backoff * 2 ** (retry - 1), self.max_delay) * (1 + u), at_least)

    def check(self, response: httpx.Response) -> httpx.Response:
        """``response`` unchanged, or :class:`Retry` (``http_errors``) for 429 and 5xx with its ``Retry-After``."""
        if response.status_code in RETRY_STATUSES:
            raise Retry("http_errors", f"HTTP {response.status_code}: {response.text[:200]}",
                        after=retry_after(response, self.max_retry_after))
        return response

    @staticmethod
    def classify(exc: BaseException) -> Retry | None:
        """The :class:`Retry` an exception amounts to, or None when it must not be retried."""
        if isinstance(exc, Retry):
            return exc
        if isinstance(exc, httpx.TimeoutException):
            return Retry("timeouts", f"timeout: {exc!r}")
        if isinstance(exc, httpx.TransportError):
            return Retry("connection_errors", f"{type(exc).__name__}: {exc}")
        return None

    def _failed(self, exc: Exception, attempt: int) -> Retry:
        """The retry to make after try ``attempt`` (0-based) failed with ``exc``; re-raises what is not retried."""
        r = self.classify(exc)
        if r is None:
            raise exc
        with self._lock:
            self._counts[r.kind] += 1
            if attempt < self.max_retries:
                self._retries += 1
                return r
        raise GaveUp(attempt + 1, exc) from exc

    # ------------------------------------------------------------------ loops
    def run(self, attempt: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
        """Call ``attempt()`` until it returns; raises :class:`GaveUp` after ``max_retries`` retries."""
        for i in range(self.max_retries + 1):
            try:
                return attempt()
            except Exception as e:  # noqa: BLE001 - _failed re-raises what is not retryable
                r = self._failed(e, i)
            sleep(self.delay(i + 1, r.after))
        raise AssertionError("unreachable")

    async def arun(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """:meth:`run` for coroutines (waits with ``asyncio.sleep``)."""
        for i in range(self.max_retries + 1):
            try:
                return await attempt()
            except Exception as e:  # noqa: BLE001 - _failed re-raises what is not retryable
                r = self._failed(e, i)
            await asyncio.sleep(self.delay(i + 1, r.after))
        raise AssertionError("unreachable")
