"""OpenAIChatModel over real HTTP against siftkit's own server: equivalence, faults, concurrency, scoring."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections import Counter

import pytest
from starlette.responses import JSONResponse, PlainTextResponse, Response

from siftkit.llm.base import GenerationParams
from siftkit.llm.openai_client import OpenAIChatModel, OpenAIError
from siftkit.llm.server import create_app
from siftkit.llm.testing import FakeChatModel

PROMPTS = [[{"role": "user", "content": f"question {i}"}] for i in range(6)] + [f"raw text {i}" for i in range(6)]


class CharFake(FakeChatModel):
    """FakeChatModel with per-character logprobs, so echo scoring has something to check."""

    def token_logprobs(self, text):
        return [(ch, None if i == 0 else -(ord(ch) % 7 + 1) / 10) for i, ch in enumerate(text)]

    def score(self, prompts, continuations):
        from siftkit.llm.base import Score

        out = []
        for p, c in zip(prompts, continuations):
            lps = [lp for _, lp in self.token_logprobs(p + c)[len(p):]]
            out.append(Score(logprob=sum(lps), token_logprobs=lps))
        return out


class Recorder(FakeChatModel):
    def generate(self, prompts, params=None):
        self.last_params = params
        return super().generate(prompts, params)


class FaultInjector:
    """ASGI wrapper: a seeded share ``rate`` of /v1 requests hang, get 500, 429 or a garbage 200 body."""

    KINDS = ["timeout", "500", "429", "garbage"]
    GARBAGE = [b'{"choices": [', b'{"id": "x", "object": "chat.completion"}', b"<html>502</html>", b'{"choices": []}']

    def __init__(self, app, rate: float = 0.3, seed: int = 0, hang_s: float = 0.6):
        self.app, self.rate, self.hang_s = app, rate, hang_s
        self.rng = random.Random(seed)
        self.counts: Counter = Counter()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        u = self.rng.random()
        kind = self.KINDS[int(u / self.rate * 4)] if u < self.rate else "ok"
        self.counts[kind] += 1
        if kind == "timeout":
            await asyncio.sleep(self.hang_s)  # the client has given up by now
            resp = JSONResponse({"late": True})
        elif kind == "500":
            resp = PlainTextResponse("internal error", status_code=500)
        elif kind == "429":
            resp = JSONResponse({"error": {"message": "slow down"}}, status_code=429, headers={"Retry-After": "0"})
        elif kind == "garbage":
            resp = Response(self.rng.choice(self.GARBAGE), media_type="application/json")
        else:
            return await self.app(scope, receive, send)
        await resp(scope, receive, send)


def _texts(gens):
    return [(g.texts, g.finish_reasons) for g in gens]


def test_generate_matches_direct(llm_server):
    url = llm_server({"fake": FakeChatModel()})
    client = OpenAIChatModel(url, "fake")
    for params in [GenerationParams(), GenerationParams(temperature=0.7, n=3, seed=1)]:
        assert _texts(client.generate(PROMPTS, params)) == _texts(FakeChatModel().generate(PROMPTS, params))
    assert client.stats()["requests"] == 2 * len(PROMPTS)
    assert client.stats()["failed"] == 0


def test_params_reach_the_model(llm_server):
    rec = Recorder()
    url = llm_server({"rec": rec})
    params = GenerationParams(max_new_tokens=7, temperature=0.5, top_p=0.9, n=2, seed=42, stop=("\n", "END"))
    OpenAIChatModel(url + "/v1/", "rec").generate(["hi"], params)  # a trailing /v1/ is accepted
    assert rec.last_params == params


def test_score_roundtrip_equals_direct(llm_server):
    model = CharFake()
    url = llm_server({"char": model})
    prompts, conts = ["The answer is", "Q: relevant? A:", "x"], [" yes", " no", "yz"]
    remote = OpenAIChatModel(url, "char").score(prompts, conts)
    direct = model.score(prompts, conts)
    assert [s.logprob for s in remote] == pytest.approx([s.logprob for s in direct])
    assert [s.token_logprobs for s in remote] == [s.token_logprobs for s in direct]
    with pytest.raises(TypeError, match="raw-string"):
        OpenAIChatModel(url, "char").score([[{"role": "user", "content": "q"}]], [" yes"])


def test_faults_lose_nothing(llm_server):
    prompts = PROMPTS * 3
    clean = OpenAIChatModel(llm_server({"fake": FakeChatModel()}), "fake").generate(prompts)
    faulty = FaultInjector(create_app({"fake": FakeChatModel()}))
    client = OpenAIChatModel(llm_server(faulty), "fake", timeout=0.3, max_retries=12, backoff=0.01)
    got = client.generate(prompts)
    assert _texts(got) == _texts(clean)
    s = client.stats()
    assert s["failed"] == 0
    assert s["timeouts"] > 0 and s["http_errors"] > 0 and s["malformed"] > 0
    assert s["retries"] == s["timeouts"] + s["http_errors"] + s["malformed"]
    assert s["requests"] == len(prompts) + s["retries"]
    assert s["http_errors"] == faulty.counts["500"] + faulty.counts["429"]


def test_malformed_is_reported_not_dropped(llm_server):
    always_bad = FaultInjector(create_app({"fake": FakeChatModel()}), rate=1.0)
    always_bad.KINDS = ["garbage"] * 4
    client = OpenAIChatModel(llm_server(always_bad), "fake", max_retries=2, backoff=0.001)
    gens = client.generate(["a", "b"], GenerationParams(n=2))
    assert [g.finish_reasons for g in gens] == [["error", "error"]] * 2
    assert [g.texts for g in gens] == [["", ""]] * 2
    s = client.stats()
    assert (s["malformed"], s["failed"], s["requests"]) == (2 * 3, 2, 2 * 3)


def test_unreachable_server_counts_connection_errors():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = OpenAIChatModel(f"http://127.0.0.1:{port}", "m", max_retries=1, backoff=0.001)
    (gen,) = client.generate(["hi"])
    assert gen.finish_reasons == ["error"]
    assert client.stats()["connection_errors"] == 2


def test_4xx_fails_fast_and_key_stays_secret(llm_server, monkeypatch):
    url = llm_server({"fake": FakeChatModel()}, api_key="s3cret-key")
    monkeypatch.delenv("SIFTKIT_TEST_KEY", raising=False)
    client = OpenAIChatModel(url, "fake", api_key_env="SIFTKIT_TEST_KEY", backoff=0.001)
    with pytest.raises(OpenAIError, match=r"401.*SIFTKIT_TEST_KEY"):
        client.generate(PROMPTS)
    assert client.stats()["retries"] == 0

    monkeypatch.setenv("SIFTKIT_TEST_KEY", "s3cret-key")
    assert client.generate(["ab"])[0].text == "ba"
    assert "s3cret" not in repr(client) + client.fingerprint + repr(vars(client))
    assert client.fingerprint == OpenAIChatModel("http://elsewhere:1", "fake").fingerprint
    assert client.fingerprint != OpenAIChatModel(url, "fake", revision="v2").fingerprint


def test_in_flight_beats_sequential(llm_server):
    slow = FakeChatModel(delay_s=0.05)
    slow.thread_safe = True  # let the server run requests side by side
    url = llm_server({"slow": slow})
    prompts = [f"p{i}" for i in range(24)]
    times = {}
    for k in (1, 8):
        client = OpenAIChatModel(url, "slow", max_in_flight=k)
        t0 = time.perf_counter()
        client.generate(prompts)
        times[k] = time.perf_counter() - t0
    assert times[1] > 3 * times[8], times


def test_generate_inside_running_loop(llm_server):
    client = OpenAIChatModel(llm_server({"fake": FakeChatModel()}), "fake")

    async def main():
        sync_result = client.generate(["abc"])  # a sync call from a coroutine must not deadlock
        async_result = await client.agenerate(["xyz"])
        return sync_result[0].text, async_result[0].text

    assert asyncio.run(main()) == ("cba", "zyx")


def test_tiny_llama_served_equals_direct(llm_server, tiny_chat_model):
    llm = tiny_chat_model
    client = OpenAIChatModel(llm_server({"tiny": llm}), "tiny")
    prompts = [[{"role": "user", "content": "Is this passage relevant?"}], "The quick brown fox"]
    greedy, sampled = GenerationParams(max_new_tokens=8), GenerationParams(max_new_tokens=8, temperature=0.8, n=2, seed=3)
    for params in [greedy, sampled]:
        direct = [llm.generate([p], params)[0] for p in prompts]  # one prompt per call, as the server sees them
        assert _texts(client.generate(prompts, params)) == _texts(direct)

    ctx, conts = ["Relevance judgements come from", "A search engine ranks"], [" assessors", " documents for"]
    remote = [s.logprob for s in client.score(ctx, conts)]
    assert remote == pytest.approx([s.logprob for s in llm.score(ctx, conts)], rel=1e-4, abs=1e-4)
