"""Fault injection: the judges through `siftkit serve llm`'s app with 30 % injected faults lose nothing and agree
with a clean run; the injector's own behaviour."""

import httpx
import pytest

from benchmarks.security import both_work, fault_run, n_labels, plain_render
from siftkit.core.faults import FaultInjector
from siftkit.core.serving import BackgroundServer
from siftkit.llm.server import create_app
from siftkit.llm.testing import FakeChatModel, HashChatModel
from siftkit.usefulness.data import Click


PAIRS = [{"query": f"navy sofa {i}", "title": f"Ashby sofa model {i}"} for i in range(4)]
CLICKS = [Click(id=f"c{i}", user="u", task_id="t", task="Fix a bike.", query="bike", url=f"https://e.org/{i}",
                title=f"Doc {i}", summary=f"Summary {i}.", query_position=1, rank=i) for i in range(3)]


work = both_work(PAIRS, CLICKS)


def test_judges_lose_nothing_under_30pc_faults():
    model = HashChatModel()
    clean, c0 = fault_run(model, plain_render, work, rate=0.0, seed=0, timeout=2.0)
    faulty, c1 = fault_run(model, plain_render, work, rate=0.3, seed=3, timeout=2.0)
    # 5 grades, 4 labels; a clean request may still time out on a loaded machine (2 s): then it is sent again
    assert c0["server"]["requests"] == 4 * 5 + 3 * 4 + c0["client"]["retries"] and c0["client"]["failed"] == 0
    assert c0["client"]["retries"] == c0["client"]["timeouts"]  # nothing else fails without faults
    s, cl = c1["server"], c1["client"]
    injected = s["timeout"] + s["429"] + s["5xx"] + s["garbage"]
    assert injected >= 5 and s["requests"] == s["passed"] + injected
    assert cl["failed"] == 0 and n_labels(faulty) == n_labels(clean) == 4 + 3  # no label lost
    assert cl["http_errors"] == s["429"] + s["5xx"] and cl["malformed"] == s["garbage"]
    assert cl["timeouts"] >= s["timeout"] and cl["retries"] >= injected
    assert faulty == clean  # every log-probability and every label identical
    assert len({max(range(5), key=row.__getitem__) for row in clean["relevance"]}) > 1  # labels do vary


def test_injector_kinds_and_health():
    app = FaultInjector(create_app({"m": FakeChatModel()}), rate=1.0, kinds=("429",), retry_after="7")
    with BackgroundServer(app) as srv:
        assert httpx.get(srv.url + "/health").status_code == 200  # outside /v1: never faulted
        r = httpx.post(srv.url + "/v1/completions", json={"model": "m", "prompt": "hi", "max_tokens": 2})
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert app.stats() == {"requests": 1, "passed": 0, "429": 1}
    app = FaultInjector(create_app({"m": FakeChatModel()}), rate=1.0, kinds=("garbage",), seed=0)
    with BackgroundServer(app) as srv:
        bodies = [httpx.post(srv.url + "/v1/completions", json={"model": "m", "prompt": "hi"}) for _ in range(6)]
    assert all(b.status_code == 200 for b in bodies)
    for b in bodies:
        with pytest.raises((ValueError, KeyError)):
            b.json()["choices"][0]
    with pytest.raises(ValueError):
        FaultInjector(None, rate=1.5)
    with pytest.raises(ValueError):
        FaultInjector(None, kinds=("meteor",))
