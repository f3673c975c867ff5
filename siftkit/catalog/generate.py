"""Systems that describe assets: the LLM (zero-shot, RAG few-shot, random few-shot) and the no-LLM baselines.

System names: ``zero-shot``, ``rag-K`` (BM25 top-K exemplars), ``dense-K`` (top-K exemplars by cosine of embedded
keys, spec retriever b), ``random-K`` (K exemplars drawn at random, the paper's claim is retrieved > random),
``sft-K`` (a LoRA fine-tuned SmolLM2 per fold of databases, prompted with BM25 top-K exemplars, K = 0 allowed;
:mod:`siftkit.catalog.finetune`), ``copy`` / ``dense-copy`` (the top-1 BM25 / dense exemplar's description
unchanged, spec pitfall 6), ``echo`` (the expanded name), ``ai_description`` (BIRD's third-party LLM output, first
line only).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import pandas as pd

from siftkit.catalog.exemplars import ExemplarPool, build_prompt, prompt_text
from siftkit.catalog.model import Asset, expand_name, first_line
from siftkit.core.errors import InputError

if TYPE_CHECKING:
    from siftkit.catalog.finetune import FoldModels
    from siftkit.embed import Embedder

BASELINES = ("echo", "copy", "dense-copy", "ai_description")
COLUMNS = ["system", "id", "db", "table", "column", "kind", "exemplars", "prompt_chars", "text"]


def parse_system(name: str) -> tuple[str, int]:
    """``"rag-3"`` → ``("rag", 3)``; ``"zero-shot"`` → ``("rag", 0)``; ``"sft-0"`` → ``("sft", 0)``; a baseline
    → ``(name, 0)``."""
    if name in BASELINES:
        return name, 0
    if name == "zero-shot":
        return "rag", 0
    m = re.fullmatch(r"(rag|random|dense|sft)-(\d+)", name)
    if not m or not (0 if m.group(1) == "sft" else 1) <= int(m.group(2)) <= 20:
        raise InputError(f"unknown system {name!r}: zero-shot, rag-K, dense-K, random-K (K in 1..20), sft-K (K in "
                         "0..20), echo, copy, dense-copy or ai_description", field="--systems")
    return m.group(1), int(m.group(2))


def uses(systems: Sequence[str], *how: str) -> bool:
    """Whether any of ``systems`` is of one of the kinds ``how`` (e.g. ``uses(s, "dense", "dense-copy")``)."""
    return any(parse_system(s)[0] in how for s in systems)


def clean(text: str) -> str:
    """The first non-empty line of a reply, without a leading ``Description:`` label or wrapping quotes."""
    line = next((x.strip() for x in (text or "").splitlines() if x.strip()), "")
    line = re.sub(r"^(\*\*)?description:?(\*\*)?\s*", "", line, flags=re.I)
    return line.strip().strip('"').strip()


def echo(a: Asset) -> str:
    return expand_name(a.name).capitalize()


def plan(targets: Sequence[Asset], pools: dict[str, ExemplarPool], systems: Sequence[str], seed: int = 0):
    """Per (system, target): the exemplars used and, for LLM systems, the prompt. Returns a list of dicts with
    ``system, id, db, kind, exemplars (ids), prompt (or None), text (baselines; None for LLM systems)``."""
    rows = []
    if uses(systems, "dense", "dense-copy"):
        for kind, pool in pools.items():  # one embedding batch per kind instead of one call per target
            pool.embed_targets([a for a in targets if a.kind == kind])
    for s in systems:
        how, k = parse_system(s)
        for a in targets:
            pool = pools[a.kind]
            row = {"system": s, "id": a.id, "db": a.db, "table": a.table, "column": a.column, "kind": a.kind,
                   "exemplars": [], "prompt": None, "text": None}
            if how == "echo":
                row["text"] = echo(a)
            elif how == "ai_description":
                row["text"] = first_line(a.ai_description) if a.ai_description else None
            elif how in ("copy", "dense-copy"):
                ex = pool.retrieve(a, 1) if how == "copy" else pool.dense(a, 1)
                row["exemplars"], row["text"] = [e.id for e in ex], (ex[0].description.strip() if ex else "")
            else:
                ex = pool.random(a, k, seed) if how == "random" else pool.dense(a, k) if how == "dense" else \
                    pool.retrieve(a, k)  # rag and sft: BM25
                row["exemplars"], row["prompt"] = [e.id for e in ex], build_prompt(a, ex)
            rows.append(row)
    return rows


def describe(targets: Sequence[Asset], pool_assets: Sequence[Asset], systems: Sequence[str],
             model_factory: Callable | None = None, model_name: str = "smollm2", cache: str | Path | None = None,
             max_new_tokens: int = 60, seed: int = 0, progress: bool = True, chunk_size: int = 32,
             lodo: bool = True, embedder: "Embedder | None" = None, sft: "FoldModels | None" = None) -> pd.DataFrame:
    """Describe every target with every system; LLM prompts go through :func:`siftkit.llm.batch.run_batch` (the
    response cache makes a killed run resume). ``lodo``: see :class:`~siftkit.catalog.exemplars.ExemplarPool`.

    Args:
        embedder: the embedder of ``dense-K`` and ``dense-copy`` (e.g. ``load_embedder("minilm")``).
        sft: the fine-tuned models of ``sft-K`` (:class:`~siftkit.catalog.finetune.FoldModels`): each target is
            described by the model of its fold, trained without its database.

    Returns:
        Columns :data:`COLUMNS`; ``ai_description`` rows without a value
        are left out.
    """
    if uses(systems, "dense", "dense-copy") and embedder is None:
        raise InputError("dense-K and dense-copy need an embedder", field="--embedder")
    if uses(systems, "sft") and sft is None:
        raise InputError("sft-K needs fine-tuned fold models", field="--systems")
    pools = {k: ExemplarPool(pool_assets, k, lodo, embedder) for k in ("column", "table")}
    rows = plan(targets, pools, systems, seed)
    groups: dict[str, dict[int, list]] = {}  # model name → prompt id → prompt
    for i, r in enumerate(rows):
        if r["prompt"] is not None:
            name = sft.name(r["db"]) if parse_system(r["system"])[0] == "sft" else model_name
            groups.setdefault(name, {})[i] = r["prompt"]
    if groups:
        if model_name in groups and model_factory is None:
            raise InputError("an LLM system needs a model", field="--model")
        from siftkit.llm.base import GenerationParams
        from siftkit.llm.batch import run_batch

        # [ours] only the first line is kept (clean), so generation stops at the first newline
        params = GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0, stop=("\n",))
        for name, todo in groups.items():
            factory = model_factory if name == model_name else sft.factory(name)
            out = run_batch({name: factory}, todo, params, cache_path=cache, progress=progress,
                            chunk_size=chunk_size)
            if out.attrs.get("errors"):
                raise RuntimeError(f"{out.attrs['errors']} LLM replies failed; rerun to retry (answers are cached)")
            for pid, text in zip(out.prompt_id, out.text):
                rows[pid]["text"] = clean(text)
    df = pd.DataFrame(rows)
    df["prompt_chars"] = [len(prompt_text(p)) if p else 0 for p in df.prompt]
    df = df[df.text.notna()].drop(columns=["prompt"]).reset_index(drop=True)
    return df[COLUMNS]


def records(df: pd.DataFrame) -> list[dict]:
    """Rows as dicts for JSONL, missing values (a table's ``column``) as ``None`` (JSON null), never NaN."""
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in df.to_dict("records")]
