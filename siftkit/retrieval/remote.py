"""A :class:`Retriever` that calls a Search-R1 ``/retrieve`` server (siftkit's or upstream's) over HTTP.

Unlike upstream's client (search_r1 spec §6.3) it has a timeout and retries timeouts, connection errors and 5xx/429
answers, and 200 answers whose body is unusable, under the core :class:`~siftkit.core.retry.RetryPolicy` (exponential backoff with jitter, ``Retry-After``
honoured, retries counted in :attr:`RemoteRetriever.retry`) [ours]. Batches larger than the server's query cap are split into several requests.

Example:
    >>> remote = RemoteRetriever("http://127.0.0.1:8000/retrieve")
    >>> remote.search(["who wrote hamlet"], k=3)[0][0].contents
"""

from __future__ import annotations

from typing import Sequence

from siftkit.core.retry import GaveUp, Retry, RetryPolicy
from siftkit.retrieval.base import Hit, check_k


class RemoteRetriever:
    """HTTP client for ``POST /retrieve`` (always asks for scores).

    Args:
        url: the server, with or without the ``/retrieve`` path.
        api_key: sent as ``Authorization: Bearer``; needed when the server has one.
        timeout: seconds per request.
        retries: extra attempts after a timeout, a connection error or a 5xx/429 answer.
        backoff: first wait in seconds; doubles per retry (times a jitter factor in [1, 2)).
        max_queries: queries per request (the server refuses more than its ``max_queries``, 256 by default).
        retry: a :class:`~siftkit.core.retry.RetryPolicy` to use instead of one built from ``retries`` and
            ``backoff``.
    """

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 30.0, retries: int = 3,
                 backoff: float = 0.5, max_queries: int = 256, retry: RetryPolicy | None = None):
        import httpx

        url = url.rstrip("/")
        self.url = url if url.endswith("/retrieve") else url + "/retrieve"
        self.max_queries = max_queries
        self.retry = retry or RetryPolicy(max_retries=retries, backoff=backoff)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=timeout, headers=headers)

    def search(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        """Top-``k`` hits per query from the server, best first."""
        k = check_k(k)
        queries = list(queries)
        out: list[list[Hit]] = []
        for i in range(0, len(queries), self.max_queries):
            payload = {"queries": queries[i:i + self.max_queries], "topk": k, "return_scores": True}
            out.extend(self._post(payload))
        return out

    def _post(self, payload: dict) -> list[list[Hit]]:
        """POST under :attr:`retry`: a 4xx other than 429 raises at once with the server's message; a 200 whose
        body is not the expected JSON is retried (counted as ``malformed``)."""

        def attempt() -> list[list[Hit]]:
            r = self.retry.check(self.client.post(self.url, json=payload))
            if r.status_code >= 400:
                raise ValueError(f"{self.url}: HTTP {r.status_code}: {r.text[:500]}")
            try:
                return [[Hit(str(it["document"]["id"]), float(it["score"]), it["document"]["contents"])
                         for it in hits] for hits in r.json()["result"]]
            except (ValueError, KeyError, TypeError) as e:
                raise Retry("malformed", f"unusable body: {e!r}") from None

        try:
            return self.retry.run(attempt)
        except GaveUp as e:
            raise ConnectionError(f"{self.url}: {e}") from e.last

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "RemoteRetriever":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteRetriever({self.url!r})"
