"""Run a prompt grid over chat models through :func:`siftkit.llm.batch.run_batch` and parse the replies.

Cached and resumable: every chunk goes to the response cache as it returns, so a killed run resumes where it stopped.
Sampled prompts carry ``GenerationParams.seed`` (sampling without a seed is refused: the cache could not serve it).
``backend="ray"`` spreads the chunks over Ray workers (grids of the paper's size against an endpoint).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from siftkit.bias.grid import GridPrompt
from siftkit.bias.parser import Parser
from siftkit.bias.responders import RESPONDERS
from siftkit.bias.universe import Universe, load_universe
from siftkit.core.errors import InputError
from siftkit.llm.base import ChatModel, GenerationParams
from siftkit.llm.batch import run_batch

SYNTHETIC_PREFIX = "synthetic:"


def model_factory(name: str, asset_class: str, endpoint: str | None = None, engine: str = "torch",
                  threads: int = 2, batch_size: int | None = None, max_in_flight: int = 8) -> Callable[[], ChatModel]:
    """A picklable zero-argument factory: ``synthetic:<always-one|uniform|market-cap>``, a local model (``smollm2``,
    a folder, a ``.gguf``) on the ``torch`` or ``ct2`` engine, or ``name`` served at an OpenAI-compatible
    ``endpoint``. Checks the name before anything loads."""
    if name.startswith(SYNTHETIC_PREFIX):
        kind = name[len(SYNTHETIC_PREFIX):]
        if kind not in RESPONDERS:
            raise InputError(f"unknown synthetic responder {kind!r}; choose from {', '.join(RESPONDERS)}",
                             field="model")
        RESPONDERS[kind](asset_class)  # fails now (InputError) when e.g. the universe has no weights
        return functools.partial(RESPONDERS[kind], asset_class)
    if endpoint:
        from siftkit.llm.batch import ModelSpec

        return ModelSpec.openai(endpoint, name, max_in_flight=max_in_flight)
    from siftkit.llm.factory import check_engine, make_local_model

    check_engine(engine)
    return functools.partial(make_local_model, name, engine, "cpu", threads, batch_size)


def run_grid(models: Mapping[str, Callable[[], ChatModel]], prompts: Sequence[GridPrompt],
             params: GenerationParams, cache_path: str | Path | None, backend: str = "local", workers: int = 2,
             chunk_size: int = 32, concurrency: int = 1, progress: bool = True) -> pd.DataFrame:
    """Generate every (model, prompt, sample) and return one row per sample with the prompt's grid coordinates.

    Returns:
        Columns ``model, prompt_id, pair_id, asset_class, template, debias, budget, risk, term, market, sample,
        text, finish_reason, cached``.
    """
    if not params.greedy and params.seed is None:
        raise InputError("sampling (temperature > 0) needs a seed, or the cache cannot serve the replies",
                         field="seed")
    by_id = {p.prompt_id: p for p in prompts}
    if len(by_id) != len(prompts):
        raise InputError("prompt ids are not unique", field="prompt_id")
    df = run_batch(models, {p.prompt_id: p.messages for p in prompts}, params, cache_path, concurrency=concurrency,
                   chunk_size=chunk_size, progress=progress, backend=backend, workers=workers)
    meta = pd.DataFrame([{"prompt_id": p.prompt_id, "pair_id": p.pair_id, "asset_class": p.asset_class,
                          "template": p.template, "debias": p.debias, **p.profile} for p in prompts])
    out = df.merge(meta, on="prompt_id", how="left")
    cols = ["model", "prompt_id", "pair_id", "asset_class", "template", "debias", "budget", "risk", "term", "market",
            "sample", "text", "finish_reason", "cached"]
    out = out[cols]
    out.attrs.update(df.attrs)
    return out


def parse_responses(df: pd.DataFrame, universes: Mapping[str, Universe] | None = None) -> pd.DataFrame:
    """Add ``status``, ``products`` (list of ids, unknown as ``?TOKEN``), ``n_products`` and ``n_unknown`` to the
    rows of :func:`run_grid` (each row parsed with the universe of its ``asset_class``)."""
    universes = dict(universes or {})
    parsers: dict[str, Parser] = {}
    status, products = [], []
    for asset, text, reason in zip(df["asset_class"], df["text"], df["finish_reason"]):
        if asset not in parsers:
            parsers[asset] = Parser(universes.get(asset) or load_universe(asset))
        if reason == "error":
            status.append("error")
            products.append([])
            continue
        parsed = parsers[asset](text or "")
        status.append(parsed.status)
        products.append(parsed.products)
    out = df.copy()
    out["status"] = status
    out["products"] = products
    out["n_products"] = [len(p) for p in products]
    out["n_unknown"] = [sum(x.startswith("?") for x in p) for p in products]
    return out
