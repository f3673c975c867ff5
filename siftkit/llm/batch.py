"""Run a large grid of prompts × models through the response cache, locally or on a local Ray cluster.

:func:`run_batch` generates (one row per model, prompt and sample), scores continuations (``task="score"``: one row
per model, prompt and continuation, through the shared-prefix path where the model has one) or reads next-token
distributions (``task="next_token"``: one row per model and prompt). It resumes from the cache: every chunk is
stored as soon as it returns (:class:`~siftkit.llm.cache.CachedChatModel`), so a rerun, or a run after a crash, only
sends what is missing.

* ``backend="local"``: models run one after the other in this process; ``concurrency`` chunks of one model are in
  flight at once (threads; worth it for remote endpoints, keep 1 for a local torch model).
* ``backend="ray"``: ``workers`` Ray actors (a local cluster, ``ray.init(num_cpus=2, include_dashboard=False)``
  unless one is already running) pull chunks from a shared queue. Each worker reads the main cache but writes only
  its own SQLite **shard** (``<cache>.shard<i>.sqlite`` next to the main file, so SQLite never sees W writers on
  one file); the driver folds the shards into the main cache with
  :meth:`~siftkit.llm.cache.ResponseCache.merge_from` and deletes them. Shards left by a killed run are merged at
  the start of the next one. Run one Ray batch per cache file at a time.

Model factories are called inside the workers, so for Ray they must be picklable: a :class:`ModelSpec`, a
``functools.partial`` of an importable class, or any importable function.

Example:
    >>> specs = {"smollm2": ModelSpec.local("smollm2"), "vllm": ModelSpec.openai("http://gpu:8000", "qwen")}
    >>> df = run_batch(specs, prompts, GenerationParams(max_new_tokens=32), "runs/cache.sqlite")  # doctest: +SKIP
    >>> df.groupby("model").cached.mean()  # doctest: +SKIP
    >>> run_batch(specs, prompts, task="score", continuations=[" yes", " no"])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from siftkit.llm.base import ChatModel, GenerationParams, Prompt
from siftkit.llm.cache import CachedChatModel, ResponseCache

log = logging.getLogger(__name__)

COLUMNS = ["model", "prompt_id", "sample", "text", "finish_reason", "cached"]
SCORE_COLUMNS = ["model", "prompt_id", "continuation", "logprob", "token_logprobs", "cached"]
NEXT_TOKEN_COLUMNS = ["model", "prompt_id", "top", "cached"]
TASKS = ("generate", "score", "next_token")


@dataclass(frozen=True)
class ModelSpec:
    """A picklable recipe for a chat model, built where it runs (e.g. in a Ray worker).

    Attributes:
        backend: ``"local"`` (:meth:`LocalChatModel.from_pretrained(name, **kwargs)`) or ``"openai"``
            (:class:`OpenAIChatModel(base_url, name, **kwargs)`).
        name: ``"smollm2"`` or a model folder (local), or the served model name (openai).
        base_url: the endpoint (openai only).
        kwargs: extra constructor arguments as ``((key, value), ...)``; use :meth:`local` / :meth:`openai`.
    """

    backend: str
    name: str
    base_url: str | None = None
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self):
        if self.backend not in ("local", "openai"):
            raise ValueError(f"backend must be 'local' or 'openai', got {self.backend!r}")
        if self.backend == "openai" and not self.base_url:
            raise ValueError("an openai ModelSpec needs base_url")

    @classmethod
    def local(cls, name: str = "smollm2", **kwargs) -> "ModelSpec":
        return cls("local", str(name), None, tuple(sorted(kwargs.items())))

    @classmethod
    def openai(cls, base_url: str, name: str, **kwargs) -> "ModelSpec":
        return cls("openai", name, base_url, tuple(sorted(kwargs.items())))

    def __call__(self) -> ChatModel:
        if self.backend == "local":
            from siftkit.llm.local import LocalChatModel

            return LocalChatModel.from_pretrained(self.name, **dict(self.kwargs))
        from siftkit.llm.openai_client import OpenAIChatModel

        return OpenAIChatModel(self.base_url, self.name, **dict(self.kwargs))


@dataclass(frozen=True)
class _Task:
    """What a chunk of items asks of a (cached) model; picklable, so a Ray worker runs the same call."""

    kind: str
    params: GenerationParams
    top_k: int

    def __call__(self, model: CachedChatModel, items: list) -> list:
        if self.kind == "generate":
            return model.generate(items, self.params)
        if self.kind == "next_token":
            return model.next_token_logprobs(items, self.top_k)
        return model.score_groups([p for p, _ in items], [list(c) for _, c in items])  # items: (prompt, conts)


def _continuation_groups(continuations, ids: list, plist: list) -> list[list[str]]:
    """Per prompt, the continuations to score: one shared list, a list aligned with the prompts, or a mapping by id."""
    if continuations is None:
        raise ValueError("task='score' needs continuations")
    if isinstance(continuations, Mapping):
        missing = [i for i in ids if i not in continuations]
        if missing:
            raise ValueError(f"no continuations for prompt ids {missing[:5]}")
        return [list(continuations[i]) for i in ids]
    if isinstance(continuations, str):
        raise ValueError("continuations must be a list of strings, not one string")
    continuations = list(continuations)
    if all(isinstance(c, str) for c in continuations):
        return [continuations] * len(plist)
    if len(continuations) != len(plist):
        raise ValueError(f"{len(plist)} prompts but {len(continuations)} continuation lists")
    return [list(c) for c in continuations]


def run_batch(model_factories: Mapping[str, Callable[[], ChatModel]], prompts: Sequence[Prompt] | Mapping[Any, Prompt],
              params: GenerationParams | None = None, cache_path: str | Path | None = None, concurrency: int = 1,
              chunk_size: int = 32, progress: bool = True, backend: str = "local", workers: int = 2,
              ray_init: dict[str, Any] | None = None, task: str = "generate",
              continuations: Sequence[str] | Sequence[Sequence[str]] | Mapping[Any, Sequence[str]] | None = None,
              top_k: int = 20) -> pd.DataFrame:
    """Generate, score or read next-token distributions for every (model, prompt) pair, cache first.

    Args:
        model_factories: name → zero-argument callable that builds the model (picklable for Ray).
        prompts: a list (ids 0..N-1) or a mapping id → prompt; a prompt is chat messages or a raw string.
        params: decoding parameters (default greedy); sampled output is cached only with a ``seed``.
        cache_path: the SQLite response cache; ``None`` runs without a cache (and cannot resume).
        concurrency: chunks in flight at once per model (local backend).
        chunk_size: prompts per ``generate`` call; the unit of progress, of caching and of Ray work.
        progress: show a rich progress bar on stderr.
        backend: ``"local"`` or ``"ray"``.
        workers: Ray actors (ray backend).
        ray_init: keyword arguments for ``ray.init`` when no cluster is running
            (default ``num_cpus=2, include_dashboard=False``).
        task: ``"generate"``, ``"score"`` (log-probability of each continuation after each prompt) or
            ``"next_token"`` (top-``top_k`` distribution of the first generated token).
        continuations: for ``"score"``: one list scored after every prompt (e.g. a judge's labels), a list of
            lists aligned with ``prompts``, or a mapping prompt id → list.
        top_k: for ``"next_token"``: tokens kept per prompt (part of the cache key).

    Returns:
        ``"generate"``: columns ``model, prompt_id, sample, text, finish_reason, cached``, one row per sample.
        ``"score"``: ``model, prompt_id, continuation, logprob, token_logprobs, cached``, one row per continuation.
        ``"next_token"``: ``model, prompt_id, top, cached``, one row per prompt; ``top`` holds the
        ``(token_text, logprob)`` pairs (``TokenDistribution(top)`` gives the object back).
        Rows are ordered by model, prompt and sample/continuation. Failed replies (finish reason ``"error"``, a
        non-finite score, an empty distribution) are kept, never cached, and counted in ``df.attrs["errors"]``;
        ``df.attrs["stored"]`` counts the replies this run added to the cache.
    """
    if backend not in ("local", "ray"):
        raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if concurrency < 1 or chunk_size < 1 or workers < 1 or top_k < 1:
        raise ValueError("concurrency, chunk_size, workers and top_k must be >= 1")
    params = params or GenerationParams()
    if task == "generate" and not params.greedy and params.seed is None:
        log.warning("sampled generation without a seed is not cached: a rerun will send every prompt again")
    ids, plist = (list(prompts.keys()), list(prompts.values())) if isinstance(prompts, Mapping) else \
        (list(range(len(prompts))), list(prompts))
    items = list(zip(plist, _continuation_groups(continuations, ids, plist))) if task == "score" else plist
    jobs = [(name, start, items[start:start + chunk_size]) for name in model_factories
            for start in range(0, len(items), chunk_size)]
    run = _Task(task, params, top_k)

    with _Bar(len(model_factories) * len(plist), progress) as bar:
        if backend == "local":
            done, stored = _run_local(model_factories, jobs, run, cache_path, concurrency, chunk_size, bar)
        else:
            done, stored = _run_ray(model_factories, jobs, run, cache_path, chunk_size, workers, ray_init, bar)

    rows = []
    for name, start, chunk in jobs:
        for k, reply in enumerate(done[(name, start)]):
            pid = ids[start + k]
            if task == "generate":
                for j, text in enumerate(reply.texts):
                    reason = reply.finish_reasons[j] if reply.finish_reasons else "stop"
                    rows.append((name, pid, j, text, reason, reply.cached))
            elif task == "score":
                rows += [(name, pid, c, s.logprob, s.token_logprobs, s.cached) for c, s in zip(chunk[k][1], reply)]
            else:
                rows.append((name, pid, list(reply.top), reply.cached))
    df = pd.DataFrame(rows, columns={"generate": COLUMNS, "score": SCORE_COLUMNS,
                                     "next_token": NEXT_TOKEN_COLUMNS}[task])
    if task == "generate":
        df.attrs["errors"] = int((df.finish_reason == "error").sum())
    elif task == "score":
        df.attrs["errors"] = int(sum(not math.isfinite(x) for x in df.logprob))
    else:
        df.attrs["errors"] = int(sum(not top for top in df["top"]))
    df.attrs["stored"] = stored
    if df.attrs["errors"]:
        log.warning("%d replies failed; rerun to retry them", df.attrs["errors"])
    return df


# ---------------------------------------------------------------------------------------------- plumbing: local
def _run_local(factories, jobs, run: _Task, cache_path, concurrency, chunk_size, bar) -> tuple[dict, int]:
    cache = ResponseCache(cache_path) if cache_path is not None else ResponseCache(enabled=False)
    done: dict[tuple[str, int], list] = {}
    try:
        for name, factory in factories.items():  # one model at a time: two local models need not fit together
            model = CachedChatModel(factory(), cache, chunk_size=chunk_size)
            mine = [(start, chunk) for n, start, chunk in jobs if n == name]
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                futures = {pool.submit(run, model, chunk): start for start, chunk in mine}
                for fut in as_completed(futures):
                    done[(name, futures[fut])] = fut.result()
                    bar.advance(len(done[(name, futures[fut])]))
            del model
    finally:
        cache.close()
    return done, cache.stats()["stored"]


# ---------------------------------------------------------------------------------------------- plumbing: Ray
class _ReadOnlyCache(ResponseCache):
    """The main cache as a Ray worker sees it: lookups only; new replies go to the worker's shard."""

    def put_many(self, rows) -> int:
        return 0


class _ShardWorker:
    """A Ray actor: answers chunks through main cache (read) → own shard (read/write) → model."""

    def __init__(self, factories, task: _Task, main_path: str | None, shard_path: str | None, chunk_size: int):
        self.factories, self.task, self.chunk_size = factories, task, chunk_size
        self.main = _ReadOnlyCache(main_path) if main_path else ResponseCache(enabled=False)
        self.shard = ResponseCache(shard_path) if shard_path else ResponseCache(enabled=False)
        self.name, self.model = None, None

    def run(self, name: str, start: int, items: list) -> tuple[str, int, list]:
        if name != self.name:  # jobs arrive grouped by model: keep one model loaded at a time
            self.model = None
            inner = CachedChatModel(self.factories[name](), self.shard, chunk_size=self.chunk_size)
            self.name, self.model = name, CachedChatModel(inner, self.main, chunk_size=self.chunk_size)
        return name, start, self.task(self.model, items)

    def close(self) -> dict:
        self.main.close()
        self.shard.close()
        return self.shard.stats()


def shard_paths(cache_path: str | Path, workers: int) -> list[Path]:
    """The shard files of a Ray batch over ``cache_path``: ``<stem>.shard<i><suffix>`` beside it."""
    p = Path(cache_path)
    return [p.with_name(f"{p.stem}.shard{i}{p.suffix or '.sqlite'}") for i in range(workers)]


def merge_shards(cache_path: str | Path) -> int:
    """Fold every shard file beside ``cache_path`` into it and delete the shards; returns rows added."""
    p = Path(cache_path)
    main, added = ResponseCache(p), 0
    try:
        for shard in sorted(p.parent.glob(f"{p.stem}.shard*{p.suffix or '.sqlite'}")):
            added += main.merge_from(shard)
            for f in (shard, Path(f"{shard}-wal"), Path(f"{shard}-shm")):
                f.unlink(missing_ok=True)
    finally:
        main.close()
    return added


def _run_ray(factories, jobs, run: _Task, cache_path, chunk_size, workers, ray_init, bar) -> tuple[dict, int]:
    import ray
    from ray.util import ActorPool

    if cache_path is not None:
        merge_shards(cache_path)  # leftovers of a killed run, and creates the main file for the workers to read
    started = not ray.is_initialized()
    if started:
        root = str(Path(__file__).resolve().parents[2])  # so workers import this siftkit, installed or not
        env = {"PYTHONPATH": os.pathsep.join(x for x in (root, os.environ.get("PYTHONPATH")) if x)}
        ray.init(**{"num_cpus": 2, "include_dashboard": False, "runtime_env": {"env_vars": env}, **(ray_init or {})})
    try:
        shards = shard_paths(cache_path, workers) if cache_path is not None else [None] * workers
        actor = ray.remote(_ShardWorker)
        actors = [actor.remote(dict(factories), run, str(cache_path) if cache_path is not None else None,
                               str(s) if s is not None else None, chunk_size) for s in shards]
        done = {}
        try:
            pool = ActorPool(actors)
            for name, start, replies in pool.map_unordered(lambda a, job: a.run.remote(*job), jobs):
                done[(name, start)] = replies
                bar.advance(len(replies))
            stored = sum(s["stored"] for s in ray.get([a.close.remote() for a in actors]))
        finally:
            for a in actors:
                ray.kill(a)
        if cache_path is not None:
            merge_shards(cache_path)
        return done, stored
    finally:
        if started:
            ray.shutdown()


class _Bar:
    """A rich progress bar over prompts, or nothing."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.progress = total, enabled, None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("llm batch"), BarColumn(), MofNCompleteColumn(),
                                     TimeRemainingColumn(), console=Console(stderr=True))
            self.progress.start()
            self.task = self.progress.add_task("prompts", total=self.total)
        return self

    def advance(self, n: int) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, n)

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()
