"""A :class:`Retriever` that calls a Search-R1 ``/retrieve`` server (siftkit's or upstream's) over HTTP.

Unlike upstream's client (search_r1 spec §6.3) it has a timeout and retries transport errors and 5xx/429 answers with
exponential back-off [ours]. Batches larger than the server's query cap are split into several requests.

Example:
    >>> remote = RemoteRetriever("http://127.0.0.1:8000/retrieve")
    >>> remote.search(["who wrote hamlet"], k=3)[0][0].contents
"""

from __future__ import annotations

import time
from typing import Sequence

from siftkit.retrieval.base import Hit, check_k


class RemoteRetriever:
    """HTTP client for ``POST /retrieve`` (always asks for scores).

    Args:
        url: the server, with or without the ``/retrieve`` path.
        api_key: sent as ``Authorization: Bearer``; needed when the server has one.
        timeout: seconds per request.
        retries: extra attempts after a transport error or a 5xx/429 answer.
        backoff: first wait in seconds; doubles per retry.
        max_queries: queries per request (the server refuses more than its ``max_queries``, 256 by default).
    """

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 30.0, retries: int = 3,
                 backoff: float = 0.5, max_queries: int = 256):
        import httpx

        url = url.rstrip("/")
        self.url = url if url.endswith("/retrieve") else url + "/retrieve"
        self.retries, self.backoff, self.max_queries = retries, backoff, max_queries
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=timeout, headers=headers)

    def search(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        """Top-``k`` hits per query from the server, best first."""
        k = check_k(k)
        queries = list(queries)
        out: list[list[Hit]] = []
        for i in range(0, len(queries), self.max_queries):
            payload = {"queries": queries[i:i + self.max_queries], "topk": k, "return_scores": True}
            result = self._post(payload)["result"]
            out.extend([[Hit(str(it["document"]["id"]), float(it["score"]), it["document"]["contents"])
                         for it in hits] for hits in result])
        return out

    def _post(self, payload: dict) -> dict:
        """POST with retries; a 4xx other than 429 raises at once with the server's message."""
        import httpx

        for attempt in range(self.retries + 1):
            try:
                r = self.client.post(self.url, json=payload)
                if r.status_code < 500 and r.status_code != 429:
                    if r.status_code >= 400:
                        raise ValueError(f"{self.url}: HTTP {r.status_code}: {r.text[:500]}")
                    return r.json()
                err: Exception = RuntimeError(f"{self.url}: HTTP {r.status_code}: {r.text[:200]}")
            except httpx.TransportError as e:
                err = e
            if attempt < self.retries:
                time.sleep(self.backoff * 2 ** attempt)
        raise ConnectionError(f"{self.url}: failed after {self.retries + 1} attempts: {err}") from err

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "RemoteRetriever":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteRetriever({self.url!r})"
