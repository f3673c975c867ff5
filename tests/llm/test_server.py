"""The OpenAI-compatible server: routes, caps (422), model selection (404), auth (401), bind policy."""

from __future__ import annotations

import httpx
import pytest

from siftkit.llm.server import check_bind, create_app, is_loopback, serve, start_background
from siftkit.llm.testing import FakeChatModel

USER = [{"role": "user", "content": "abc"}]


class CharFake(FakeChatModel):
    """FakeChatModel plus per-character ``token_logprobs``: char c costs -(ord(c) % 7 + 1) / 10."""

    def token_logprobs(self, text):
        return [(ch, None if i == 0 else -(ord(ch) % 7 + 1) / 10) for i, ch in enumerate(text)]


@pytest.fixture
def url(llm_server):
    return llm_server({"fake": CharFake(), "plain": FakeChatModel()})


def test_models_and_health(url):
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    ids = [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]]
    assert ids == ["fake", "plain"]


def test_chat_completion(url):
    r = httpx.post(f"{url}/v1/chat/completions", json={"model": "fake", "messages": USER, "temperature": 0})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    reply = {"index": 0, "message": {"role": "assistant", "content": "cba"}, "finish_reason": "stop"}
    assert body["choices"] == [reply]
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 3 + 3}


def test_completions_batch_and_samples(url):
    r = httpx.post(f"{url}/v1/completions", json={"model": "fake", "prompt": ["ab", "xyz"], "n": 2, "temperature": 1})
    texts = [(c["index"], c["text"]) for c in r.json()["choices"]]
    assert texts == [(0, "ba #0"), (1, "ba #1"), (2, "zyx #0"), (3, "zyx #1")]


def test_echo_logprobs(url):
    r = httpx.post(f"{url}/v1/completions",
                   json={"model": "fake", "prompt": "hey", "echo": True, "logprobs": 1, "max_tokens": 0})
    (choice,) = r.json()["choices"]
    assert choice["text"] == "hey"
    lp = choice["logprobs"]
    assert lp["tokens"] == ["h", "e", "y"]
    assert lp["text_offset"] == [0, 1, 2]
    assert lp["token_logprobs"] == [None, -(ord("e") % 7 + 1) / 10, -(ord("y") % 7 + 1) / 10]


def test_logprobs_need_token_logprobs(url):
    r = httpx.post(f"{url}/v1/completions",
                   json={"model": "plain", "prompt": "hey", "echo": True, "logprobs": 1, "max_tokens": 0})
    assert r.status_code == 400
    assert "token_logprobs" in r.json()["error"]["message"]


@pytest.mark.parametrize("patch, field", [
    ({"n": 17}, "n"),
    ({"max_tokens": 4097}, "max_tokens"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),  # was stream: true, which issue 16 asks to serve
    ({"messages": []}, "messages"),
    ({"temperature": -1}, "temperature"),
])
def test_caps_give_422(url, patch, field):
    r = httpx.post(f"{url}/v1/chat/completions", json={"model": "fake", "messages": USER, **patch})
    assert r.status_code == 422
    msg = r.json()["error"]["message"]
    assert msg.startswith(field), msg


def test_body_cap_gives_422(llm_server):
    url = llm_server(create_app({"fake": CharFake()}, max_body_bytes=1000))
    big = [{"role": "user", "content": "x" * 2000}]
    r = httpx.post(f"{url}/v1/chat/completions", json={"model": "fake", "messages": big})
    assert r.status_code == 422
    # the same through a chunked body without Content-Length
    r = httpx.post(f"{url}/v1/chat/completions", content=iter([b'{"model": "fake", "x": "', b"y" * 2000, b'"}']))
    assert r.status_code == 422


def test_unknown_model_gives_404_and_never_loads(url):
    r = httpx.post(f"{url}/v1/chat/completions", json={"model": "/etc/passwd", "messages": USER})
    assert r.status_code == 404
    assert "not served" in r.json()["error"]["message"]


def test_api_key(llm_server):
    url = llm_server({"fake": CharFake()}, api_key="s3cret")
    body = {"model": "fake", "messages": USER}
    assert httpx.post(f"{url}/v1/chat/completions", json=body).status_code == 401
    assert httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = httpx.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert httpx.get(f"{url}/health").status_code == 200


def test_model_error_gives_500(llm_server):
    class Broken(FakeChatModel):
        def generate(self, prompts, params=None):
            raise RuntimeError("boom")

    url = llm_server({"b": Broken()})
    r = httpx.post(f"{url}/v1/chat/completions", json={"model": "b", "messages": USER})
    assert r.status_code == 500
    assert "boom" in r.json()["error"]["message"]


def test_bind_policy():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("example.org")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "key")
    with pytest.raises(ValueError, match="API key"):
        serve({"fake": CharFake()}, host="0.0.0.0", port=1)  # refused before anything binds
    with pytest.raises(ValueError, match="API key"):
        check_bind("192.168.1.5", "")


def test_start_background_stops():
    url, stop = start_background(create_app({"fake": CharFake()}))
    assert httpx.get(f"{url}/health").status_code == 200
    stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/health", timeout=2)
