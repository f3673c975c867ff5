"""The runner: cached and resumable through run_batch, seeded sampling required, Ray scale-out on two workers."""

import functools

import pytest

from siftkit.bias.grid import build_grid, stratified_subset
from siftkit.bias.responders import MarketCapResponder, UniformResponder
from siftkit.bias.runner import model_factory, parse_responses, run_grid
from siftkit.core.errors import InputError
from siftkit.llm.base import GenerationParams
from siftkit.llm.batch import shard_paths
from siftkit.llm.cache import ResponseCache

PARAMS = GenerationParams(temperature=0.7, n=3, seed=1)


class Counting(UniformResponder):
    """A uniform responder that counts the prompts it was sent."""

    sent = 0

    def generate(self, prompts, params=None):
        Counting.sent += len(prompts)
        return super().generate(prompts, params)


def test_resume_and_columns(tmp_path):
    full = build_grid("crypto", debias=("none", "system"))
    grid = full[:20]  # 10 profile pairs × 2 variants
    cache = tmp_path / "c.sqlite"
    factory = functools.partial(Counting, "crypto")
    Counting.sent = 0
    first = run_grid({"u": factory}, grid, PARAMS, cache, chunk_size=7, progress=False)
    assert Counting.sent == 20 and len(first) == 20 * 3
    assert list(first.columns[:6]) == ["model", "prompt_id", "pair_id", "asset_class", "template", "debias"]
    assert first.groupby("pair_id").debias.nunique().eq(2).all()
    # a killed run: the cache keeps what was done; a rerun sends only the rest
    partial = ResponseCache(cache)
    assert len(partial) == 20
    second = run_grid({"u": factory}, full[:40], PARAMS, cache, chunk_size=7, progress=False)
    assert Counting.sent == 20 + 20  # the 20 new prompts only
    assert second.cached.sum() == 20 * 3
    assert parse_responses(second).status.eq("valid").all()


def test_sampling_needs_a_seed():
    with pytest.raises(InputError, match="seed"):
        run_grid({"u": UniformResponder}, build_grid("stocks")[:2], GenerationParams(temperature=0.7), None,
                 progress=False)


def test_model_factory_names():
    assert isinstance(model_factory("synthetic:uniform", "savings")(), UniformResponder)
    assert model_factory("served", "stocks", endpoint="http://127.0.0.1:9").base_url == "http://127.0.0.1:9"
    with pytest.raises(InputError):
        model_factory("synthetic:market-cap", "portfolios")


@pytest.mark.slow
def test_ray_two_workers(tmp_path):
    grid = stratified_subset(build_grid("stocks", debias=("none", "system")), 24)
    cache = tmp_path / "cache.sqlite"
    models = {"cap": functools.partial(MarketCapResponder, "stocks"), "u": functools.partial(UniformResponder,
                                                                                           "stocks")}
    local = run_grid(models, grid, PARAMS, None, progress=False)
    ray = run_grid(models, grid, PARAMS, cache, backend="ray", workers=2, chunk_size=8, progress=False)
    assert ray.attrs["stored"] == 2 * 48
    assert not any(p.exists() for p in shard_paths(cache, 2))  # shards merged into the main cache
    assert ray.drop(columns="cached").equals(local.drop(columns="cached"))  # same replies as one process
    again = run_grid(models, grid, PARAMS, cache, progress=False)
    assert again.cached.all()
