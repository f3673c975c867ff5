"""The /retrieve server through real HTTP (uvicorn on a free loopback port) with Search-R1's request shape."""

from __future__ import annotations

import httpx
import pytest

from siftkit.core.errors import ConfigError
from siftkit.retrieval import RemoteRetriever
from siftkit.retrieval.server import BackgroundServer, ServerConfig, create_app

QUERIES = ["capital of Quillan", "volcano eruption ash"]


@pytest.fixture(scope="module")
def server(bm25):
    with BackgroundServer(create_app(bm25, ServerConfig(max_body_bytes=200_000))) as srv:
        yield srv


def _post(server, body, **kw):
    return httpx.post(server.url + "/retrieve", json=body, timeout=30, **kw)


def test_search_r1_shape_with_scores(server, bm25):
    r = _post(server, {"queries": QUERIES, "topk": 3, "return_scores": True})
    assert r.status_code == 200
    result = r.json()["result"]
    expected = bm25.search(QUERIES, k=3)
    assert result == [[{"document": {"id": h.docid, "contents": h.contents}, "score": pytest.approx(h.score)}
                       for h in hits] for hits in expected]
    assert result[0][0]["document"]["contents"].startswith('"Velmora"\n')


def test_search_r1_shape_without_scores(server, bm25):
    expected = [[{"id": h.docid, "contents": h.contents} for h in hits] for hits in bm25.search(QUERIES, k=2)]
    assert _post(server, {"queries": QUERIES, "topk": 2, "return_scores": False}).json() == {"result": expected}
    # upstream fails when return_scores is omitted (its default is false); ours answers, with the server's topk
    r = _post(server, {"queries": QUERIES})
    assert r.status_code == 200
    assert r.json() == {"result": [[{"id": h.docid, "contents": h.contents} for h in hits]
                                   for hits in bm25.search(QUERIES, k=3)]}


def test_remote_retriever_equals_in_process(server, bm25):
    qs = QUERIES + ["honey", "paper lanterns on the harbour"]
    with RemoteRetriever(server.url + "/retrieve", max_queries=3) as remote:  # 2 requests
        assert remote.search(qs, k=4) == bm25.search(qs, k=4)


@pytest.mark.parametrize("body, words", [
    ({"queries": ["q"], "topk": 101}, "less than or equal to 100"),
    ({"queries": ["q"], "topk": 0}, "greater than or equal to 1"),
    ({"queries": ["q"] * 257, "topk": 3}, "at most 256"),
    ({"queries": ["ok", ""], "topk": 3}, "queries[1] is empty"),
    ({"queries": ["ok", "   "]}, "queries[1] is empty"),
    ({"queries": []}, "at least 1"),
    ({"queries": "not a list"}, "valid array"),
    ({"queries": ["q"], "topk": "3"}, "valid integer"),
    ({"topk": 3}, "Field required"),
])
def test_invalid_input_is_422_with_a_clear_message(server, body, words):
    r = _post(server, body)
    assert r.status_code == 422
    assert words in r.text


def test_bad_json_and_large_body_are_422(server):
    r = httpx.post(server.url + "/retrieve", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = _post(server, {"queries": ["x" * 250_000]})
    assert r.status_code == 422
    assert "exceeds 200000 bytes" in r.text


def test_health(server):
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}


def test_api_key_required_when_set(bm25):
    with BackgroundServer(create_app(bm25, ServerConfig(api_key="s3cret"))) as srv:
        assert _post(srv, {"queries": ["honey"]}).status_code == 401
        assert _post(srv, {"queries": ["honey"]}, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert _post(srv, {"queries": ["honey"]}, headers={"X-API-Key": "s3cret"}).status_code == 200
        with RemoteRetriever(srv.url, api_key="s3cret") as remote:
            assert remote.search(["honey"], k=1)[0][0].docid == "d8"


def test_non_loopback_host_needs_an_api_key():
    with pytest.raises(ConfigError, match="not loopback"):
        ServerConfig(host="0.0.0.0")
    assert ServerConfig(host="0.0.0.0", api_key="k").host == "0.0.0.0"
    assert ServerConfig(host="::1").api_key is None


def test_remote_retries_then_raises_on_a_dead_port():
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    remote = RemoteRetriever(f"http://127.0.0.1:{port}", retries=1, backoff=0.01, timeout=2)
    with pytest.raises(ConnectionError, match="2 attempts"):
        remote.search(["q"], k=1)


def test_remote_raises_on_422(server):
    with pytest.raises(ValueError, match="HTTP 422"):
        RemoteRetriever(server.url).search(["q"], k=101)
