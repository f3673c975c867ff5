"""`siftkit serve llm`'s app through the official ``openai`` client: streaming, chat logprobs, echo, n > 1, limits,
the key before the body, SIGTERM; and OpenAIChatModel.next_token_logprobs against it."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest

from siftkit.llm.base import GenerationParams
from siftkit.llm.openai_client import OpenAIChatModel
from siftkit.llm.server import create_app
from siftkit.llm.testing import FakeChatModel

USER = [{"role": "user", "content": "abc def"}]


class CharFake(FakeChatModel):
    """FakeChatModel plus per-character ``token_logprobs``: char c costs -(ord(c) % 7 + 1) / 10."""

    def token_logprobs(self, text):
        return [(ch, None if i == 0 else -(ord(ch) % 7 + 1) / 10) for i, ch in enumerate(text)]


def _cost(ch: str) -> float:
    return -(ord(ch) % 7 + 1) / 10


def _client(url: str, key: str = "none", **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, **kw)


# ---------------------------------------------------------------------------------------------- fake model (fast)
def test_chat_plain_and_streamed(llm_server):
    client = _client(llm_server({"fake": FakeChatModel()}))
    r = client.chat.completions.create(model="fake", messages=USER, temperature=0)
    assert r.choices[0].message.content == "fed cba" and r.choices[0].finish_reason == "stop"

    chunks = list(client.chat.completions.create(model="fake", messages=USER, temperature=0, stream=True,
                                                 stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "fed cba"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.prompt_tokens == len("abc def") and chunks[-1].usage.completion_tokens == 7


def test_stream_n_samples_and_done_line(llm_server):
    url = llm_server({"fake": FakeChatModel()})
    chunks = list(_client(url).chat.completions.create(model="fake", messages=USER, n=3, temperature=1, seed=1,
                                                       stream=True))
    texts = {j: "".join(c.choices[0].delta.content or "" for c in chunks if c.choices[0].index == j)
             for j in range(3)}
    assert texts == {j: f"fed cba #{j}" for j in range(3)}
    # on the wire: server-sent events ending with the [DONE] line
    with httpx.stream("POST", url + "/v1/chat/completions",
                      json={"model": "fake", "messages": USER, "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [x for x in r.iter_lines() if x]
    assert all(x.startswith("data: ") for x in lines) and lines[-1] == "data: [DONE]"


def test_completions_echo_logprobs_n_and_stream(llm_server):
    client = _client(llm_server({"char": CharFake()}))
    r = client.completions.create(model="char", prompt="hey", echo=True, logprobs=1, max_tokens=0)
    lp = r.choices[0].logprobs
    assert r.choices[0].text == "hey" and lp.tokens == ["h", "e", "y"] and lp.text_offset == [0, 1, 2]
    assert lp.token_logprobs == [None, _cost("e"), _cost("y")]

    r = client.completions.create(model="char", prompt=["ab", "xyz"], n=2, temperature=1, max_tokens=8)
    assert [(c.index, c.text) for c in r.choices] == [(0, "ba #0"), (1, "ba #1"), (2, "zyx #0"), (3, "zyx #1")]

    # streamed with logprobs: one event per token, each with its logprob; the pieces rebuild the text
    chunks = list(client.completions.create(model="char", prompt="ab", logprobs=1, max_tokens=8, temperature=0,
                                                 stream=True))
    pieces = [c.choices[0] for c in chunks if c.choices[0].text]
    assert "".join(p.text for p in pieces) == "ba"
    assert [p.logprobs.token_logprobs for p in pieces] == [[_cost("b")], [_cost("a")]]
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_chat_logprobs_need_a_tokenizer(llm_server):
    client = _client(llm_server({"fake": CharFake()}))
    with pytest.raises(openai.BadRequestError, match="chat logprobs"):
        client.chat.completions.create(model="fake", messages=USER, logprobs=True, top_logprobs=3)


def test_key_is_checked_before_the_body(llm_server):
    url = llm_server({"fake": FakeChatModel()}, api_key="s3cret")
    assert httpx.post(url + "/v1/chat/completions", content=b"{not json").status_code == 401
    assert httpx.post(url + "/v1/chat/completions", content=b"{not json",
                      headers={"Authorization": "Bearer s3cret"}).status_code == 422
    with pytest.raises(openai.AuthenticationError):
        _client(url, key="wrong").chat.completions.create(model="fake", messages=USER)
    assert _client(url, key="s3cret").chat.completions.create(model="fake", messages=USER).choices[0].message.content
    with pytest.raises(ValueError, match="blank"):
        create_app({"fake": FakeChatModel()}, api_key=" \t")


def test_prompt_cap(llm_server):
    model = FakeChatModel()
    client = _client(llm_server(create_app({"fake": model}, max_prompt_tokens=100)))
    ok = [{"role": "user", "content": "x" * 100}]  # no tokenizer: UTF-8 bytes count
    assert client.chat.completions.create(model="fake", messages=ok, temperature=0).choices[0].message.content \
        == "x" * 100
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="fake", messages=[{"role": "user", "content": "é" * 51}])
    assert e.value.code == "context_length_exceeded" and "102 bytes" in e.value.message
    with pytest.raises(openai.BadRequestError, match="max_prompt_tokens"):
        client.completions.create(model="fake", prompt=["short", "y" * 101])
    assert len(model.calls) == 1  # refused prompts never reach the model


def test_request_timeout_and_queue(llm_server):
    slow = FakeChatModel(delay_s=1.5)
    url = llm_server(create_app({"slow": slow}, request_timeout=0.5))
    results = []

    def ask(text):
        r = httpx.post(url + "/v1/chat/completions", timeout=10,
                       json={"model": "slow", "messages": [{"role": "user", "content": text}]})
        results.append((text, r.status_code, r.json()["error"]["code"]))

    threads = [threading.Thread(target=ask, args=(t,)) for t in ("first", "second")]
    t0 = time.monotonic()
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join()
    assert sorted(results) == [("first", 504, "timeout"), ("second", 504, "timeout")]
    assert time.monotonic() - t0 < 1.5  # both answered at their deadline, not after the model call
    time.sleep(1.6)
    assert len(slow.calls) == 1  # whichever came second queued behind the first, timed out, and never ran


def test_sigterm_stops_during_a_long_request():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = ("from siftkit.llm.server import serve; from siftkit.llm.testing import FakeChatModel; "
            f"serve({{'slow': FakeChatModel(delay_s=120)}}, port={port}, log_level='warning')")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.2)
        body = {"model": "slow", "messages": USER}
        threading.Thread(target=lambda: httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body,
                                                   timeout=150), daemon=True).start()
        time.sleep(1.0)  # the request is inside the 120 s model call now
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        assert time.monotonic() - t0 < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------------------------- tiny Llama
def test_tiny_llama_chat_logprobs_match_the_model(llm_server, tiny_chat_model):
    llm = tiny_chat_model
    client = _client(llm_server({"tiny": llm}))
    messages = [{"role": "user", "content": "Is this passage relevant?"}]
    r = client.chat.completions.create(model="tiny", messages=messages, temperature=0, max_tokens=6, logprobs=True,
                                       top_logprobs=5)
    text, content = r.choices[0].message.content, r.choices[0].logprobs.content
    assert text == llm.generate([messages], GenerationParams(max_new_tokens=6))[0].text
    assert "".join(e.token for e in content) == text
    # each token's logprob is what the model scores, and the first position's top-5 is its next-token call
    direct = llm.score([messages], [text])[0]
    assert [e.logprob for e in content][:len(direct.token_logprobs)] == pytest.approx(direct.token_logprobs,
                                                                                       abs=1e-4)
    (dist,) = llm.next_token_logprobs([messages], top_k=5)
    assert [(t.token, t.logprob) for t in content[0].top_logprobs] == [(t, pytest.approx(v, abs=1e-4))
                                                                       for t, v in dist.top]
    for e in content:  # top-k sorted, the chosen greedy token is the most probable one
        lps = [t.logprob for t in e.top_logprobs]
        assert len(lps) == 5 and lps == sorted(lps, reverse=True) and e.logprob <= lps[0] + 1e-6

    # streamed: the same tokens and logprobs, one event each
    chunks = list(client.chat.completions.create(model="tiny", messages=messages, temperature=0, max_tokens=6,
                                                 logprobs=True, top_logprobs=5, stream=True))
    streamed = [e for c in chunks if c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in content]


def test_tiny_llama_prompt_cap_counts_tokens(llm_server, tiny_chat_model):
    url = llm_server(create_app({"tiny": tiny_chat_model}, max_prompt_tokens=64))
    n_tokens = len(tiny_chat_model.tokenizer("relevance " * 40)["input_ids"])
    assert n_tokens > 64
    with pytest.raises(openai.BadRequestError, match=f"has {n_tokens} tokens"):
        _client(url).completions.create(model="tiny", prompt="relevance " * 40, max_tokens=1)


def test_next_token_logprobs_over_http_equals_local(llm_server, tiny_chat_model):
    llm = tiny_chat_model
    remote = OpenAIChatModel(llm_server({"tiny": llm}), "tiny")
    prompts = [[{"role": "user", "content": "Grade this passage from 0 to 10:"}], "The score is 1", "Relevance:"]
    got = remote.next_token_logprobs(prompts, top_k=8)
    want = llm.next_token_logprobs(prompts, top_k=8)
    for i, (g, w) in enumerate(zip(got, want)):
        if isinstance(prompts[i], str):  # completions' top_logprobs is a dict: tokens that decode alike collapse
            first: dict[str, float] = {}
            for t, v in w.top:  # most probable first: keep each text's first (most probable) value
                first.setdefault(t, v)
            w.top = list(first.items())
        assert [t for t, _ in g.top] == [t for t, _ in w.top]
        assert [v for _, v in g.top] == pytest.approx([v for _, v in w.top], abs=1e-4)
    # a grade as an expectation over digit probabilities reads the same through HTTP
    digits = [str(d) for d in range(10)]
    assert sum(math.exp(got[1].logprob(d, -math.inf)) for d in digits) == pytest.approx(
        sum(math.exp(want[1].logprob(d, -math.inf)) for d in digits), abs=1e-4)
    assert remote.stats()["failed"] == 0


def test_tiny_llama_reply_prefix_is_continued_with_matching_logprobs(llm_server, tiny_chat_model):
    """A chat ending in an assistant message is continued (vLLM's continue_final_message), and the chat log-probs
    are read after that same rendering, not after a newly opened turn."""
    llm = tiny_chat_model
    client = _client(llm_server({"tiny": llm}))
    messages = [{"role": "user", "content": "Grade the passage."}, {"role": "assistant", "content": "Score: "}]
    r = client.chat.completions.create(model="tiny", messages=messages, temperature=0, max_tokens=4, logprobs=True,
                                       top_logprobs=3,
                                       extra_body={"continue_final_message": True, "add_generation_prompt": False})
    text, content = r.choices[0].message.content, r.choices[0].logprobs.content
    assert text == llm.generate([messages], GenerationParams(max_new_tokens=4))[0].text
    (dist,) = llm.next_token_logprobs([messages], top_k=3)
    assert [(t.token, t.logprob) for t in content[0].top_logprobs] == [(t, pytest.approx(v, abs=1e-4))
                                                                       for t, v in dist.top]
    direct = llm.score([messages], [text])[0]
    assert [e.logprob for e in content][:len(direct.token_logprobs)] == pytest.approx(direct.token_logprobs,
                                                                                       abs=1e-4)


@pytest.mark.parametrize("messages, fields, needle", [
    ([{"role": "user", "content": "hi"}], {"continue_final_message": True}, "last message"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "A"}], {"add_generation_prompt": True},
     "new assistant turn"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "A"}], {"continue_final_message": False},
     "new assistant turn"),
])
def test_reply_prefix_fields_that_cannot_be_served_give_422(llm_server, messages, fields, needle):
    url = llm_server({"fake": FakeChatModel()})
    r = httpx.post(f"{url}/v1/chat/completions", json={"model": "fake", "messages": messages, **fields})
    assert r.status_code == 422 and needle in r.json()["error"]["message"], r.text
