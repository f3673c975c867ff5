"""Ask a chat model the queries in the paper's instruction format (cached through :func:`siftkit.llm.run_batch`).

Instruction [ours, following the reference format, spec §2 "Answering"]: a system message asking for ``k`` titles
separated by ``[SEP]`` and nothing else (``k`` = ``movieCount`` / ``bookCount`` for condition queries, 5 for
profile queries), and the query text as the user message. No user history and no group summary go into the prompt.
Greedy decoding (temperature 0). Every reply is cached, so a killed run resumes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from siftkit.core.errors import InputError
from siftkit.llm.base import ChatModel, GenerationParams
from siftkit.recbench.baselines import BASELINES, respond
from siftkit.recbench.kg import ItemKG
from siftkit.recbench.queries import Query

SYSTEM = ("You are a {domain} recommendation assistant. Recommend {k} {domain}s that satisfy the user's request. "
          "Output only the {domain} titles, separated by [SEP], with no numbering and no other text.")


def messages(q: Query) -> list[dict[str, str]]:
    """The chat prompt for one query."""
    return [{"role": "system", "content": SYSTEM.format(domain=q.domain, k=q.k)},
            {"role": "user", "content": q.text}]


def model_factory(name: str, endpoint: str | None = None, engine: str = "ct2", threads: int = 2,
                  batch_size: int | None = None, max_in_flight: int = 8) -> Callable[[], ChatModel]:
    """A picklable factory for a local model (``smollm2``, a folder, a ``.gguf``) or ``name`` at an
    OpenAI-compatible ``endpoint``; checks the engine before anything loads."""
    from siftkit.llm.batch import ModelSpec
    from siftkit.llm.factory import check_engine, make_local_model

    if endpoint:
        return ModelSpec.openai(endpoint, name, max_in_flight=max_in_flight)
    check_engine(engine)
    return functools.partial(make_local_model, name, engine, "cpu", threads, batch_size)


def answer(models: Mapping[str, Callable[[], ChatModel] | None], queries: Sequence[Query], kg: ItemKG | None,
           params: GenerationParams, cache_path: str | Path | None, seed: int = 0, progress: bool = True,
           chunk_size: int = 16, concurrency: int = 1, backend: str = "local", workers: int = 2) -> pd.DataFrame:
    """Replies of every model: a factory runs the LLM, ``None`` marks a no-LLM baseline (:data:`BASELINES`).

    Returns:
        Columns ``model, qid, text, finish_reason``.
    """
    frames = []
    llms = {m: f for m, f in models.items() if f is not None}
    for m in models:
        if models[m] is None:
            if m not in BASELINES:
                raise InputError(f"unknown baseline {m!r}", field="model")
            if kg is None and m in ("random", "popularity"):
                raise InputError(f"{m} needs an item KG (--kg)", field="kg")
            frames.append(respond(m, queries, kg, seed).assign(finish_reason="baseline"))
    if llms:
        df = run_batch_prompts(llms, queries, params, cache_path, progress, chunk_size, concurrency, backend, workers)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def run_batch_prompts(llms, queries, params, cache_path, progress, chunk_size, concurrency, backend="local",
                      workers=2) -> pd.DataFrame:
    from siftkit.llm.batch import run_batch

    df = run_batch(llms, {q.qid: messages(q) for q in queries}, params, cache_path, concurrency=concurrency,
                   chunk_size=chunk_size, progress=progress, backend=backend, workers=workers)
    return pd.DataFrame({"model": df["model"], "qid": df["prompt_id"].astype(str), "text": df["text"].fillna(""),
                         "finish_reason": df["finish_reason"]})
