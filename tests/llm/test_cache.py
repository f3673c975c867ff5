"""The response cache: keys, hit/miss counts, what is never cached, resume after a kill, threads, processes, shards."""

from __future__ import annotations

import math
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from siftkit.llm.base import ChatModel, Generation, GenerationParams, Score, prompt_key
from siftkit.llm.cache import CachedChatModel, ResponseCache
from siftkit.llm.testing import FakeChatModel

REPO = Path(__file__).resolve().parents[2]
GREEDY = GenerationParams(max_new_tokens=8)


def _rows(path: Path) -> int:
    with sqlite3.connect(path, timeout=30) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        except sqlite3.OperationalError:  # table not created yet
            return 0


@pytest.fixture
def cache(tmp_path):
    return ResponseCache(tmp_path / "responses.sqlite")


def test_hits_and_misses_are_counted(cache):
    inner = FakeChatModel()
    llm = CachedChatModel(inner, cache)
    assert isinstance(llm, ChatModel)
    first = llm.generate(["abc", [{"role": "user", "content": "xyz"}], "abc"], GREEDY)
    assert [g.text for g in first] == ["cba", "zyx", "cba"] and not any(g.cached for g in first)
    assert inner.calls == [prompt_key("abc"), prompt_key([{"role": "user", "content": "xyz"}])]  # dedup
    second = llm.generate(["abc", [{"role": "user", "content": "xyz"}]], GREEDY)
    assert [g.text for g in second] == ["cba", "zyx"] and all(g.cached for g in second)
    assert len(inner.calls) == 2
    s = cache.stats()
    assert (s["hits"], s["misses"], s["stored"], s["rejected"]) == (2, 3, 2, 0)
    assert s["hit_rate"] == 2 / (2 + 3)
    assert len(cache) == 2


def test_key_covers_params_stop_model_and_fingerprint(cache):
    inner = FakeChatModel()
    CachedChatModel(inner, cache).generate(["abc"], GREEDY)
    CachedChatModel(inner, cache).generate(["abc"], GenerationParams(max_new_tokens=8, seed=3, top_p=0.5))
    assert len(inner.calls) == 1  # greedy ignores seed and top_p
    for params, other in [(GenerationParams(max_new_tokens=9), inner),
                          (GenerationParams(max_new_tokens=8, stop=("\n",)), inner),
                          (GREEDY, FakeChatModel(model_id="other")),
                          (GREEDY, FakeChatModel(fingerprint="fake-v2"))]:
        CachedChatModel(other, cache).generate(["abc"], params)
        assert other.calls[-1] == prompt_key("abc")
    assert cache.stats()["misses"] == 5 and cache.stats()["hits"] == 1


def test_sampled_generation_is_cached_only_with_a_seed(cache):
    inner = FakeChatModel()
    llm = CachedChatModel(inner, cache)
    unseeded = GenerationParams(temperature=0.7, n=2)
    llm.generate(["abc"], unseeded)
    llm.generate(["abc"], unseeded)
    assert len(inner.calls) == 2 and len(cache) == 0 and cache.stats()["bypassed"] == 2
    seeded = GenerationParams(temperature=0.7, n=2, seed=1)
    llm.generate(["abc"], seeded)
    g = llm.generate(["abc"], seeded)[0]
    assert len(inner.calls) == 3 and g.cached and g.texts == ["cba #0", "cba #1"]


def test_errors_and_malformed_replies_are_not_cached(cache):
    inner = FakeChatModel(error_on="BAD")
    llm = CachedChatModel(inner, cache)
    out = llm.generate(["ok", "BAD one"], GREEDY)
    assert out[1].finish_reasons == ["error"]  # returned to the caller ...
    llm.generate(["ok", "BAD one"], GREEDY)
    assert inner.calls == [prompt_key("ok"), prompt_key("BAD one"), prompt_key("BAD one")]  # ... never stored
    assert cache.stats()["rejected"] == 2 and len(cache) == 1

    class Malformed(FakeChatModel):
        def generate(self, prompts, params=None):
            self._record([prompt_key(p) for p in prompts])
            return [Generation(texts=["only one"]) for _ in prompts]  # asked for n=2

        def score(self, prompts, continuations):
            self._record(list(continuations))
            return [Score(logprob=math.nan) for _ in prompts]

    bad = Malformed(model_id="malformed")
    llm = CachedChatModel(bad, cache)
    for _ in range(2):
        llm.generate(["abc"], GenerationParams(n=2))
        llm.score(["abc"], ["x"])
    assert len(bad.calls) == 4 and len(cache) == 1


def test_an_inner_failure_keeps_finished_chunks(cache):
    class FailsOnSecondBatch(FakeChatModel):
        def generate(self, prompts, params=None):
            if self.batches:
                raise RuntimeError("boom")
            return super().generate(prompts, params)

    llm = CachedChatModel(FailsOnSecondBatch(), cache, chunk_size=2)
    with pytest.raises(RuntimeError, match="boom"):
        llm.generate(["a", "b", "c", "d"], GREEDY)
    assert len(cache) == 2
    inner = FakeChatModel()
    CachedChatModel(inner, cache, chunk_size=2).generate(["a", "b", "c", "d"], GREEDY)
    assert inner.calls == [prompt_key("c"), prompt_key("d")]


def test_bypass_and_disabled_cache_call_the_model_every_time(tmp_path, cache):
    inner = FakeChatModel()
    llm = CachedChatModel(inner, cache)
    llm.generate(["abc"], GREEDY, bypass=True)
    llm.score(["abc"], ["x"], bypass=True)
    assert len(cache) == 0 and cache.stats()["bypassed"] == 2

    off = ResponseCache(tmp_path / "off" / "r.sqlite", enabled=False)
    llm = CachedChatModel(inner, off)
    llm.generate(["abc"], GREEDY)
    llm.generate(["abc"], GREEDY)
    assert len(inner.calls) == 4 and not (tmp_path / "off").exists()
    assert CachedChatModel(inner).cache.enabled is False  # no cache given: pass-through


def test_scores_are_cached(cache):
    inner = FakeChatModel()
    llm = CachedChatModel(inner, cache)
    a = llm.score(["q1", "q1", "q2"], ["yes", "no", "yes"])
    b = llm.score(["q1", "q1", "q2"], ["yes", "no", "yes"])
    assert [s.logprob for s in a] == [s.logprob for s in b] == [-3.0, -2.0, -3.0]
    assert len(inner.calls) == 3 and cache.stats()["hits"] == 3
    assert len(llm.generate(["q1"], GREEDY)) == 1 and len(inner.calls) == 4  # generate and score keys differ


def test_api_keys_never_reach_the_file(tmp_path):
    secret = "sk-test-SECRET-0123456789"

    class WithKey(FakeChatModel):
        api_key = secret

    path = tmp_path / "r.sqlite"
    llm = CachedChatModel(WithKey(), ResponseCache(path))
    llm.generate(["abc"], GREEDY)
    llm.score(["abc"], ["x"])
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret.encode() not in data and b"cba" in data


def test_threads_share_one_cache(cache):
    inner = FakeChatModel()
    llm = CachedChatModel(inner, cache, chunk_size=3)
    prompts = [f"p{i}" for i in range(20)]
    errors = []

    def work(k):
        try:
            out = llm.generate(prompts[k:] + prompts[:k], GREEDY)
            assert [g.text for g in out] == [p[::-1] for p in prompts[k:] + prompts[:k]]
        except BaseException as e:  # noqa: BLE001 - collected and re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(cache) == 20
    s = cache.stats()
    assert s["hits"] + s["misses"] == 8 * 20


_WRITER = """
import sys
from siftkit.llm.cache import CachedChatModel, ResponseCache
from siftkit.llm.testing import FakeChatModel

path, tag = sys.argv[1], sys.argv[2]
llm = CachedChatModel(FakeChatModel(), ResponseCache(path), chunk_size=1)
llm.generate([f"{tag}-{i}" for i in range(40)])
"""


def _python(script: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, str(script), *args], env=env, cwd=REPO)


def test_processes_write_one_file_concurrently(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    path = tmp_path / "shared.sqlite"
    procs = [_python(script, str(path), tag) for tag in ("a", "b", "c")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    assert _rows(path) == 3 * 40


def test_shards_merge(tmp_path):
    prompts = [f"p{i}" for i in range(10)]
    for w in range(2):  # two workers, each with its own shard, overlapping on p4 and p5
        CachedChatModel(FakeChatModel(), ResponseCache(tmp_path / f"shard{w}.sqlite")).generate(
            prompts[w * 4:w * 4 + 6], GREEDY)
    main = ResponseCache(tmp_path / "main.sqlite")
    assert main.merge_from(tmp_path / "shard0.sqlite") == 6
    assert main.merge_from(tmp_path / "shard1.sqlite") == 4
    assert main.merge_from(tmp_path / "shard1.sqlite") == 0
    inner = FakeChatModel()
    out = CachedChatModel(inner, main).generate(prompts, GREEDY)
    assert [g.text for g in out] == [p[::-1] for p in prompts]
    assert inner.calls == [] and len(main) == 10
    with pytest.raises(FileNotFoundError):
        main.merge_from(tmp_path / "missing.sqlite")


def test_cache_pickles_for_workers(cache):
    CachedChatModel(FakeChatModel(), cache).generate(["abc"], GREEDY)
    clone = pickle.loads(pickle.dumps(cache))
    inner = FakeChatModel()
    assert CachedChatModel(inner, clone).generate(["abc"], GREEDY)[0].cached and not inner.calls


_HANGS_ON_SECOND_CHUNK = """
import sys, time
from siftkit.llm.cache import CachedChatModel, ResponseCache
from siftkit.llm.testing import FakeChatModel

class HangsOnSecondChunk(FakeChatModel):
    def generate(self, prompts, params=None):
        out = super().generate(prompts, params)  # logs the prompts it received
        if len(self.batches) > 1:
            time.sleep(600)  # the test kills us here
        return out

path, log = sys.argv[1], sys.argv[2]
CachedChatModel(HangsOnSecondChunk(log_path=log), ResponseCache(path), chunk_size=3).generate(
    [f"prompt {i}" for i in range(9)])
"""


def test_a_killed_run_resumes_without_resending_finished_prompts(tmp_path):
    script, path, log = tmp_path / "run.py", tmp_path / "r.sqlite", tmp_path / "inner.log"
    script.write_text(textwrap.dedent(_HANGS_ON_SECOND_CHUNK))
    proc = _python(script, str(path), str(log))
    try:
        deadline = time.monotonic() + 60
        # the first chunk is stored, and the second has reached the inner model
        while not (path.exists() and _rows(path) >= 3 and log.exists() and len(log.read_text().splitlines()) >= 6):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the first chunk was never stored"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert _rows(path) == 3

    prompts = [f"prompt {i}" for i in range(9)]
    inner = FakeChatModel()
    cache = ResponseCache(path)
    out = CachedChatModel(inner, cache, chunk_size=3).generate(prompts)
    assert [g.text for g in out] == [p[::-1] for p in prompts]
    assert inner.calls == [prompt_key(p) for p in prompts[3:]]  # chunk 1 was never sent again
    assert cache.stats()["hits"] == 3 and _rows(path) == 9
