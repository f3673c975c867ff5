"""The one retry policy under injected 429/5xx/timeouts/connection errors, and both clients that use it."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest

from siftkit.core.retry import GaveUp, Retry, RetryPolicy, retry_after


def _scripted(*steps):
    """An httpx MockTransport that plays ``steps`` in order: an int status, (status, headers), or an exception."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        step = steps[len(calls)]
        calls.append(step)
        if isinstance(step, Exception):
            raise step
        status, headers = step if isinstance(step, tuple) else (step, {})
        return httpx.Response(status, headers=headers, json={"ok": status == 200})

    return httpx.MockTransport(handler), calls


def test_delay_is_backoff_times_jitter():
    p = RetryPolicy(backoff=0.5, max_delay=3.0, seed=7)
    u = random.Random(7)
    assert p.delay(1) == pytest.approx(0.5 * (1 + u.random()))
    assert p.delay(2) == pytest.approx(0.5 * 2 * (1 + u.random()))
    assert p.delay(3) == pytest.approx(0.5 * 4 * (1 + u.random()))
    assert p.delay(6) == pytest.approx(3.0 * (1 + u.random()))  # 0.5 * 32 capped at max_delay
    assert p.delay(1, at_least=9.0) == 9.0  # a Retry-After longer than the backoff wins
    delays = [RetryPolicy(backoff=1.0).delay(1) for _ in range(50)]
    assert all(1.0 <= d < 2.0 for d in delays) and len(set(delays)) > 1  # jitter spreads clients apart


def test_retry_after_header():
    def resp(value):
        return httpx.Response(429, headers={} if value is None else {"Retry-After": value})

    assert retry_after(resp("2.5")) == 2.5
    assert retry_after(resp(None)) == 0.0
    assert retry_after(resp("-3")) == 0.0
    assert retry_after(resp("Wed, 21 Oct 2015 07:28:00 GMT")) == 0.0  # an HTTP-date: use our own backoff
    assert retry_after(resp("3600"), cap=60.0) == 60.0


def test_429_and_5xx_are_retried_honouring_retry_after():
    transport, calls = _scripted((429, {"Retry-After": "0.7"}), 503, 500, 200)
    client = httpx.Client(transport=transport)
    p = RetryPolicy(max_retries=5, backoff=0.01, seed=0)
    slept = []
    r = p.run(lambda: p.check(client.get("http://x/")), sleep=slept.append)
    assert r.status_code == 200 and len(calls) == 4
    assert p.retries == 3 and p.stats() == {"http_errors": 3, "retries": 3}
    assert slept[0] == 0.7  # Retry-After beats the 0.01-0.02 s backoff
    assert 0.02 <= slept[1] < 0.04 and 0.04 <= slept[2] < 0.08  # backoff 0.01 * 2 ** (r - 1), times [1, 2)


def test_timeouts_and_connection_errors_are_retried_and_counted():
    req = httpx.Request("GET", "http://x/")
    transport, _ = _scripted(httpx.ReadTimeout("slow", request=req), httpx.ConnectError("refused", request=req),
                                 httpx.ConnectTimeout("slow", request=req), 200)
    client = httpx.Client(transport=transport)
    p = RetryPolicy(max_retries=3, backoff=0.0)
    assert p.run(lambda: p.check(client.get("http://x/")), sleep=lambda s: None).status_code == 200
    assert p.stats() == {"timeouts": 2, "connection_errors": 1, "retries": 3}


def test_gives_up_after_max_retries():
    transport, calls = _scripted(*[502] * 10)
    client = httpx.Client(transport=transport)
    p = RetryPolicy(max_retries=2, backoff=0.0)
    with pytest.raises(GaveUp, match="3 attempts") as e:
        p.run(lambda: p.check(client.get("http://x/")), sleep=lambda s: None)
    assert e.value.attempts == 3 and isinstance(e.value.last, Retry) and len(calls) == 3
    assert p.stats() == {"http_errors": 3, "retries": 2}  # every failed try counted, two re-sends


def test_other_errors_are_not_retried():
    transport, calls = _scripted(404, 200)
    client = httpx.Client(transport=transport)
    p = RetryPolicy(max_retries=5, backoff=0.0)
    assert p.run(lambda: p.check(client.get("http://x/")), sleep=lambda s: None).status_code == 404  # caller's call

    def boom():
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        p.run(boom, sleep=lambda s: None)
    assert p.retries == 0 and len(calls) == 1


def test_a_raised_retry_is_counted_under_its_kind():
    answers = iter([Retry("malformed", "bad body"), Retry("malformed", "bad body"), "fine"])

    def attempt():
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return a

    p = RetryPolicy(max_retries=4, backoff=0.0)
    assert p.run(attempt, sleep=lambda s: None) == "fine"
    assert p.stats() == {"malformed": 2, "retries": 2}


def test_async_loop():
    transport, _ = _scripted(429, (503, {"Retry-After": "0"}), 200)
    p = RetryPolicy(max_retries=3, backoff=0.001)

    async def main():
        async with httpx.AsyncClient(transport=transport) as client:
            async def attempt():
                return p.check(await client.get("http://x/"))
            return await p.arun(attempt)

    assert asyncio.run(main()).status_code == 200
    assert p.stats() == {"http_errors": 2, "retries": 2}


def test_bad_settings_refused():
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError):
        RetryPolicy(backoff=-0.1)


# ---------------------------------------------------------------------------------------------- both clients
def test_remote_retriever_retries_429_then_answers():
    from siftkit.retrieval.base import Hit
    from siftkit.retrieval.remote import RemoteRetriever

    body = {"result": [[{"document": {"id": "d1", "contents": "text"}, "score": 1.5}]]}
    answers = iter([httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(500),
                    httpx.Response(200, content=b"<html>garbage</html>"), httpx.Response(200, json={"result": 3}),
                    httpx.Response(200, json=body)])
    remote = RemoteRetriever("http://retriever", retries=4, backoff=0.001)
    remote.client = httpx.Client(transport=httpx.MockTransport(lambda request: next(answers)))
    assert remote.search(["q"], k=1) == [[Hit("d1", 1.5, "text")]]
    assert remote.retry.stats() == {"http_errors": 2, "malformed": 2, "retries": 4}


def test_openai_client_honours_retry_after():
    from starlette.responses import JSONResponse

    from siftkit.core.serving import BackgroundServer
    from siftkit.llm.openai_client import OpenAIChatModel
    from siftkit.llm.server import create_app
    from siftkit.llm.testing import FakeChatModel

    inner, seen = create_app({"fake": FakeChatModel()}), []

    async def app(scope, receive, send):  # the first /v1 request gets 429 with Retry-After: 0.4
        if scope["type"] == "http" and scope["path"].startswith("/v1/") and not seen:
            seen.append(time.monotonic())
            return await JSONResponse({"error": {"message": "slow down"}}, 429,
                                      headers={"Retry-After": "0.4"})(scope, receive, send)
        return await inner(scope, receive, send)

    with BackgroundServer(app) as srv:
        client = OpenAIChatModel(srv.url, "fake", backoff=0.001, max_retries=2)
        t0 = time.monotonic()
        assert client.generate(["abc"])[0].text == "cba"
        assert time.monotonic() - t0 >= 0.4
    s = client.stats()
    assert (s["requests"], s["retries"], s["http_errors"], s["failed"]) == (2, 1, 1, 0)
    assert client.retry.retries == 1
