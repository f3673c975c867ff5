"""The batch runner: one row per sample, resume from the cache, errors kept but never cached, Ray shards; scoring and
next-token distributions as well as generation."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import pytest

from siftkit.llm.base import GenerationParams
from siftkit.llm.batch import ModelSpec, merge_shards, run_batch, shard_paths
from siftkit.llm.cache import ResponseCache
from siftkit.llm.testing import CharChatModel, FakeChatModel

PROMPTS = [[{"role": "user", "content": f"q{i}"}] for i in range(7)] + [f"raw {i}" for i in range(4)]


class Counting:
    """A factory that remembers the models it built (local backend: same process)."""

    def __init__(self, **kwargs):
        self.kwargs, self.built = kwargs, []

    def __call__(self):
        self.built.append(FakeChatModel(**self.kwargs))
        return self.built[-1]

    @property
    def calls(self) -> int:
        return sum(len(m.calls) for m in self.built)


def test_resume_sends_nothing(tmp_path):
    a, b = Counting(model_id="a"), Counting(model_id="b", fingerprint="fake-b")
    cache = tmp_path / "cache.sqlite"
    first = run_batch({"a": a, "b": b}, PROMPTS, cache_path=cache, concurrency=2, chunk_size=3, progress=False)
    assert list(first.columns) == ["model", "prompt_id", "sample", "text", "finish_reason", "cached"]
    assert len(first) == 2 * len(PROMPTS)
    assert first.prompt_id.tolist() == list(range(len(PROMPTS))) * 2
    assert first.text.iloc[0] == "0q" and first.text.iloc[len(PROMPTS) - 1] == "3 war"
    assert not first.cached.any()
    assert first.attrs == {"errors": 0, "stored": 2 * len(PROMPTS)}
    assert (a.calls, b.calls) == (len(PROMPTS), len(PROMPTS))

    second = run_batch({"a": a, "b": b}, PROMPTS, cache_path=cache, chunk_size=4, progress=True)
    assert (a.calls, b.calls) == (len(PROMPTS), len(PROMPTS))  # nothing new sent
    assert second.cached.all()
    assert second.attrs["stored"] == 0
    assert second.drop(columns="cached").equals(first.drop(columns="cached"))


def test_samples_and_ids(tmp_path):
    prompts = {"x": "abc", "y": [{"role": "user", "content": "de"}]}
    df = run_batch({"m": FakeChatModel}, prompts, GenerationParams(temperature=0.7, n=2, seed=1),
                   cache_path=tmp_path / "c.sqlite", progress=False)
    assert df[["prompt_id", "sample", "text"]].values.tolist() == [
        ["x", 0, "cba #0"], ["x", 1, "cba #1"], ["y", 0, "ed #0"], ["y", 1, "ed #1"]]


def test_errors_are_kept_and_retried(tmp_path):
    f = Counting(error_on="bad")
    prompts = ["good one", "bad one", "good two"]
    df = run_batch({"m": f}, prompts, cache_path=tmp_path / "c.sqlite", progress=False)
    assert df.finish_reason.tolist() == ["stop", "error", "stop"]
    assert df.attrs["errors"] == 1
    run_batch({"m": f}, prompts, cache_path=tmp_path / "c.sqlite", progress=False)
    assert f.calls == 3 + 1  # only the failed prompt went out again


def test_model_spec_is_picklable_and_builds(llm_server):
    url = llm_server({"fake": FakeChatModel()})
    spec = ModelSpec.openai(url, "fake", max_in_flight=2)
    assert pickle.loads(pickle.dumps(spec)) == spec
    df = run_batch({"remote": spec}, ["abc", "xy"], progress=False)  # no cache: nothing to resume
    assert df.text.tolist() == ["cba", "yx"]
    with pytest.raises(ValueError, match="base_url"):
        ModelSpec("openai", "fake")


@pytest.mark.slow
def test_ray_two_workers_merge_shards(tmp_path):
    log = tmp_path / "calls.log"
    factories = {"a": functools.partial(FakeChatModel, model_id="a", log_path=log),
                 "b": functools.partial(FakeChatModel, model_id="b", fingerprint="fake-b", log_path=log)}
    prompts = [f"prompt {i}" for i in range(24)]
    cache = tmp_path / "cache.sqlite"
    # warm the main cache with a few answers: the workers must read them, not recompute them
    run_batch({"a": factories["a"]}, prompts[:8], cache_path=cache, progress=False)
    assert len(log.read_text().splitlines()) == 8

    df = run_batch(factories, prompts, cache_path=cache, chunk_size=4, backend="ray", workers=2, progress=False)
    assert len(df) == 2 * 24
    assert df[df.model == "a"].cached.tolist() == [True] * 8 + [False] * 16
    assert len(log.read_text().splitlines()) == 8 + 16 + 24
    assert df.attrs["stored"] == 16 + 24  # written to the shards, then merged
    assert not any(p.exists() for p in shard_paths(cache, 2))  # merged and removed
    assert len(ResponseCache(cache)) == 2 * 24

    again = run_batch(factories, prompts, cache_path=cache, chunk_size=4, progress=False)
    assert len(log.read_text().splitlines()) == 8 + 16 + 24  # zero inner calls
    assert again.cached.all() and again.text.tolist() == df.text.tolist()
    assert merge_shards(cache) == 0


def test_score_and_next_token_locally_resume_from_the_cache(tmp_path):
    log = tmp_path / "calls.log"
    factory = functools.partial(CharChatModel, log_path=log)
    prompts = {"a": "Grade:", "b": [{"role": "user", "content": "Relevant?"}], "c": "x"}
    cache = tmp_path / "c.sqlite"
    df = run_batch({"m": factory}, prompts, cache_path=cache, chunk_size=2, progress=False, task="score",
                   continuations=[" yes", " no"])
    assert list(df.columns) == ["model", "prompt_id", "continuation", "logprob", "token_logprobs", "cached"]
    assert df[["prompt_id", "continuation"]].values.tolist() == [[p, c] for p in "abc" for c in (" yes", " no")]
    ref = CharChatModel().score([p for p in prompts.values() for _ in range(2)], [" yes", " no"] * 3)
    assert df.logprob.tolist() == [s.logprob for s in ref] and df.token_logprobs.tolist()[1] == ref[1].token_logprobs
    assert df.attrs == {"errors": 0, "stored": 6} and not df.cached.any()

    nt = run_batch({"m": factory}, prompts, cache_path=cache, progress=False, task="next_token", top_k=3)
    assert list(nt.columns) == ["model", "prompt_id", "top", "cached"] and nt.prompt_id.tolist() == ["a", "b", "c"]
    assert nt.top.tolist() == [d.top for d in CharChatModel().next_token_logprobs(list(prompts.values()), 3)]
    sent = len(log.read_text().splitlines())
    assert sent == 6 + 3

    # per-prompt continuations (a mapping by id); the pairs already scored come from the cache
    again = run_batch({"m": factory}, prompts, cache_path=cache, progress=False, task="score",
                      continuations={"a": [" yes", "7"], "b": [" no"], "c": [" yes"]})
    assert again.cached.tolist() == [True, False, True, True]
    assert run_batch({"m": factory}, prompts, cache_path=cache, progress=False, task="next_token",
                     top_k=3).cached.all()
    assert len(log.read_text().splitlines()) == sent + 1  # only the one new pair
    with pytest.raises(ValueError, match="needs continuations"):
        run_batch({"m": factory}, prompts, progress=False, task="score")
    with pytest.raises(ValueError, match="task must be"):
        run_batch({"m": factory}, prompts, progress=False, task="rank")


def test_score_and_next_token_on_a_local_model_spec(tmp_path, tiny_chat_model, tiny_llama_path):
    prompts = [[{"role": "user", "content": "Is it relevant?"}], "raw text"]
    conts = ["Label: yes", "Label: no", " 7"]
    df = run_batch({"tiny": ModelSpec.local(str(tiny_llama_path))}, prompts, cache_path=tmp_path / "c.sqlite",
                   progress=False, task="score", continuations=conts)
    plain = tiny_chat_model.score([p for p in prompts for _ in conts], conts * 2)
    assert df.logprob.tolist() == pytest.approx([s.logprob for s in plain], abs=1e-4)
    nt = run_batch({"tiny": ModelSpec.local(str(tiny_llama_path))}, prompts, cache_path=tmp_path / "c.sqlite",
                   progress=False, task="next_token", top_k=4)
    direct = tiny_chat_model.next_token_logprobs(prompts, top_k=4)
    assert [[t for t, _ in top] for top in nt.top] == [[t for t, _ in d.top] for d in direct]


@pytest.mark.slow
def test_ray_scores_and_reads_next_tokens_through_the_cache(tmp_path):
    log = tmp_path / "calls.log"
    factories = {"c": functools.partial(CharChatModel, log_path=log)}
    prompts = [f"prompt {i}" for i in range(10)]
    conts = [" yes", " no", "Label: 7"]
    cache = tmp_path / "cache.sqlite"
    run_batch(factories, prompts[:4], cache_path=cache, progress=False, task="score", continuations=conts)
    assert len(log.read_text().splitlines()) == 4 * 3

    import ray

    ray.init(num_cpus=2, include_dashboard=False,  # one cluster for both calls (run_batch leaves it running)
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}})
    try:
        df = run_batch(factories, prompts, cache_path=cache, chunk_size=3, backend="ray", workers=2, progress=False,
                       task="score", continuations=conts)
        nt = run_batch(factories, prompts, cache_path=cache, chunk_size=3, backend="ray", workers=2, progress=False,
                       task="next_token", top_k=5)
    finally:
        ray.shutdown()
    assert df.cached.tolist() == [True] * 12 + [False] * 18  # the workers read the main cache
    ref = CharChatModel().score([p for p in prompts for _ in conts], conts * len(prompts))
    assert df.logprob.tolist() == [s.logprob for s in ref]
    assert df.attrs["stored"] == 18 and not any(p.exists() for p in shard_paths(cache, 2))

    assert nt.top.tolist() == [d.top for d in CharChatModel().next_token_logprobs(prompts, 5)]
    assert len(ResponseCache(cache)) == 30 + 10
    sent = len(log.read_text().splitlines())
    assert sent == 30 + 10
    for task in ("score", "next_token"):  # a local rerun sends nothing
        again = run_batch(factories, prompts, cache_path=cache, progress=False, task=task, continuations=conts,
                          top_k=5)
        assert again.cached.all()
    assert len(log.read_text().splitlines()) == sent
