"""The one serving layer: loopback check, blank keys, public binds, the key check before the body, background server."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import pytest

from siftkit.core.errors import InputError
from siftkit.core.serving import (
    BackgroundServer,
    check_api_key,
    check_bind,
    is_loopback,
    key_matches,
    start_background,
)


@pytest.mark.parametrize("host, loop", [
    ("127.0.0.1", True), ("127.255.0.7", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("LocalHost", True), ("0:0:0:0:0:0:0:1", True),
    ("0.0.0.0", False), ("::", False), ("10.1.2.3", False), ("192.168.1.5", False), ("fe80::1", False),
    ("128.0.0.1", False), ("example.org", False), ("localhost.example.org", False), ("", False),
])
def test_is_loopback(host, loop):
    assert is_loopback(host) is loop


@pytest.mark.parametrize("key", ["", " ", "\t\n  "])
def test_blank_keys_refused(key):
    with pytest.raises(InputError, match="blank"):
        check_api_key(key)
    with pytest.raises(InputError, match="blank"):
        check_bind("127.0.0.1", key)  # even on loopback: a blank key protects nothing
    with pytest.raises(InputError, match="blank"):
        check_bind("0.0.0.0", key)


def test_bind_policy():
    assert check_api_key(None) is None and check_api_key("k") == "k"
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", "k")
    check_bind("::", "k")
    for host in ("0.0.0.0", "::", "10.0.0.1"):
        with pytest.raises(InputError) as e:
            check_bind(host, None)
        assert str(e.value).startswith("siftkit: --host: ") and "not loopback" in str(e.value)
        assert "\n" not in str(e.value)


def test_key_matches():
    assert key_matches({}, None)  # no key on the server: everyone passes
    assert key_matches({"authorization": "Bearer s3cret"}, "s3cret")
    assert key_matches({"authorization": "bearer s3cret"}, "s3cret")  # the scheme is case-insensitive
    assert not key_matches({"authorization": "Bearer s3cre"}, "s3cret")
    assert not key_matches({"authorization": "Bearer s3cret "}, "s3cret")
    assert not key_matches({"authorization": "s3cret"}, "s3cret")
    assert not key_matches({"authorization": "Bearer "}, "s3cret")
    assert not key_matches({}, "s3cret")
    assert not key_matches({"x-api-key": "s3cret"}, "s3cret")  # only where the server allows it
    assert key_matches({"x-api-key": "s3cret"}, "s3cret", x_api_key=True)
    assert key_matches({"authorization": "Bearer s3cret", "x-api-key": "no"}, "s3cret", x_api_key=True)


def _llm_app(api_key):
    from siftkit.llm.server import create_app
    from siftkit.llm.testing import FakeChatModel

    return create_app({"fake": FakeChatModel()}, api_key=api_key)


def _retrieval_app(api_key):
    from siftkit.retrieval.server import ServerConfig, create_app

    class NoRetriever:
        def search(self, queries, k):
            raise AssertionError("never reached")

    return create_app(NoRetriever(), ServerConfig(api_key=api_key))


@pytest.mark.parametrize("make, path", [(_llm_app, "/v1/chat/completions"), (_retrieval_app, "/retrieve")])
def test_key_is_checked_before_the_body(make, path):
    bad = b'{"model": "fake", "messages": [ {not json'
    with BackgroundServer(make("s3cret")) as srv:
        assert httpx.post(srv.url + path, content=bad).status_code == 401  # not 422: the body is never read
        r = httpx.post(srv.url + path, content=bad, headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 422
        assert httpx.get(srv.url + "/health").status_code == 200  # open without a key
    with pytest.raises(InputError, match="blank"):
        make("   ")


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_background_server_ipv4_and_ipv6():
    app = _llm_app(None)
    url, stop = start_background(app)
    assert httpx.get(url + "/health").json() == {"status": "ok"}
    stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/health", timeout=2)
    if not _ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    with BackgroundServer(app, host="::1") as srv:
        assert srv.url.startswith("http://[::1]:") and srv.port > 0
        assert httpx.get(srv.url + "/health").status_code == 200


def _main(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-c", "from siftkit.cli import main; main()", *args], capture_output=True,
                          check=False, text=True, timeout=120, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args, env, words", [
    (["serve", "llm", "--model", "/no/such/model", "--host", "0.0.0.0"], {}, "not loopback"),
    (["serve", "llm", "--model", "/no/such/model", "--host", "::", "--api-key-env", "SK_BLANK"], {"SK_BLANK": "  "},
     "blank"),
    (["serve", "retrieval", "--corpus", "/no/such.jsonl", "--host", "0.0.0.0"], {}, "not loopback"),
    (["serve", "retrieval", "--corpus", "/no/such.jsonl", "--host", "0.0.0.0", "--api-key", " "], {}, "blank"),
])
def test_cli_refuses_public_bind_without_a_key(args, env, words):
    r = _main(*args, env=env)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("siftkit: ") and words in lines[0], r.stderr
