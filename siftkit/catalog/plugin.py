"""CLI: ``siftkit catalog ingest | describe | eval | write``, the quickstart step ``catalog`` and the ``siftkit
doctor`` check of the PostgreSQL server the tests start.

Every option and input file is checked (one ``siftkit:`` line, exit 2) before a model loads or an output folder
is made. Heavy modules load only when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from siftkit.core.errors import InputError, RequestsFailed
from siftkit.core.validate import (MAX_PARALLEL, MAX_RESAMPLES, check_choice, check_local_model, check_output_dir,
                                   check_output_file, check_range, check_url)

app = typer.Typer(no_args_is_help=True, help="Metadata RAG: table and column descriptions for data catalogs from "
                  "retrieved examples (Singh et al., 2025).")
_SOURCE = ("bird, spider2, a database URL (postgresql+psycopg://...), a .duckdb/.sqlite/.db file, or a catalog "
           ".json")
TARGETS = ("missing", "described", "all")
KINDS = ("column", "table", "both")


def _systems(text: str) -> list[str]:
    from siftkit.catalog.generate import parse_system

    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise InputError("--systems is empty", field="--systems")
    for s in items:
        parse_system(s)
    return items


def _load(sources: list[str]):
    from siftkit.catalog.check import check_catalog_source
    from siftkit.catalog.ingest import load_source, merge

    if not sources:
        raise InputError("give at least one source", field="--catalog")
    for s in sources:
        check_catalog_source(s)
    return merge([load_source(s) for s in sources])


def _failed_replies(e: RuntimeError, output: Path, what: str) -> RequestsFailed:
    """generate.describe / judge.add_judgements raise ``RuntimeError("N ... replies failed; ...")`` (declared
    sources of the benchmark cells, so not changed): here it becomes the one-line :class:`RequestsFailed`, exit 1,
    the output left as it was. Anything else is re-raised as it is."""
    import re

    m = re.match(r"(\d+) (LLM|judge) replies failed", str(e))
    if m is None:
        raise e
    return RequestsFailed(int(m[1]), None, what, detail=f"{output} left as it was")


def _check_model(model: str | None, endpoint: str | None, field: str, endpoint_field: str) -> None:
    """A served model needs an http(s) endpoint; a local one must exist (it loads inside the batch)."""
    if endpoint:
        check_url(endpoint, endpoint_field)
    elif model is not None:
        check_local_model(model, field)


DEVICES = ("cpu", "cuda")


def _model_factory(model: str, endpoint: str | None, engine: str, threads: int, device: str = "cpu"):
    """A picklable zero-argument builder of the served ``model`` at ``endpoint``, or of the local one on ``engine``
    and ``device`` (the engine is checked here, before anything loads)."""
    if endpoint:
        from siftkit.llm.batch import ModelSpec

        return ModelSpec.openai(endpoint, model)
    import functools

    from siftkit.llm.factory import check_engine, make_local_model

    check_engine(engine)
    return functools.partial(make_local_model, model, engine, device, threads, None)


def _pick_targets(catalog, targets: str, kind: str, limit: int):
    from siftkit.catalog.exemplars import usable

    kinds = ("column", "table") if kind == "both" else (kind,)
    out = [a for a in catalog.assets() if a.kind in kinds and
           (targets == "all" or (targets == "described") == usable(a))]
    if limit and len(out) > limit:  # [ours] evenly spaced, so every database keeps a share
        step = len(out) / limit
        out = [out[int(i * step)] for i in range(limit)]
    return out


@app.command()
def ingest(
    source: Annotated[list[str], typer.Argument(help=_SOURCE + " (several are merged).")],
    output: Annotated[Path, typer.Option("--output", help="The catalog JSON to write.")],
):
    """Read catalogs (files or live databases: introspection, sampling and profiling run in the database) and write
    one catalog JSON.

    Example: ``siftkit catalog ingest shop.duckdb postgresql+psycopg://me@localhost/sales --output catalog.json``
    """
    check_output_file(output)
    cat = _load(source)
    cat.save(output)
    assets = cat.assets()
    print(json.dumps({"databases": len(cat.databases), "tables": sum(a.kind == "table" for a in assets),
                      "columns": sum(a.kind == "column" for a in assets),
                      "described": sum(bool(a.description) for a in assets)}))


@app.command()
def describe(
    catalog: Annotated[list[str], typer.Option("--catalog", help=_SOURCE + " (repeatable).")],
    output: Annotated[Path, typer.Option("--output", help="Folder for descriptions.jsonl and run.json.")],
    systems: Annotated[str, typer.Option("--systems", help="Comma-separated: zero-shot, rag-K (BM25), dense-K, "
                                                           "random-K, sft-K (fine-tuned), copy, dense-copy, echo, "
                                                           "ai_description.")] = "rag-3",
    exemplars: Annotated[Optional[list[str]], typer.Option("--exemplars", help="Extra described catalogs for the "
                                                                               "exemplar pool (repeatable).")] = None,
    targets: Annotated[str, typer.Option("--targets", help="missing (assets without a non-trivial description), "
                                                           "described (evaluation, leave-one-database-out) or "
                                                           "all.")] = "missing",
    kind: Annotated[str, typer.Option("--kind", help="column | table | both")] = "both",
    limit: Annotated[int, typer.Option("--limit", help="At most this many targets, evenly spaced (0 = all).")] = 0,
    model: Annotated[str, typer.Option("--model", help="smollm2, a model folder, or a served model name with "
                                                       "--endpoint.")] = "smollm2",
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="OpenAI-compatible base URL.")] = None,
    engine: Annotated[str, typer.Option("--engine", help="Local engine: torch | ct2.")] = "ct2",
    threads: Annotated[int, typer.Option("--threads")] = 2,
    device: Annotated[str, typer.Option("--device", help="Device of the local model: cpu | cuda (a GPU; the "
                                        "sft-K fold models train and run on the CPU).")] = "cpu",
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 60,
    seed: Annotated[int, typer.Option("--seed", help="Seed of random-K exemplars.")] = 0,
    cache: Annotated[Optional[Path], typer.Option("--cache", help="Response cache (default: siftkit home).")] = None,
    embedder: Annotated[str, typer.Option("--embedder", help="Embedder of dense-K / dense-copy: minilm, e5, or "
                                                             "a model folder.")] = "minilm",
    sft_folds: Annotated[int, typer.Option("--sft-folds", help="sft-K: groups of databases, one LoRA model each, "
                                                               "trained without the group's databases (0 = one "
                                                               "per database).")] = 2,
    sft_steps: Annotated[int, typer.Option("--sft-steps", help="sft-K: optimiser steps per fold model.")] = 20,
):
    """Describe assets with each system; LLM calls go through the response cache (a killed run resumes).

    Example: ``siftkit catalog describe --catalog bird --targets described --kind column --systems zero-shot,rag-3
    --limit 50 --output runs/catalog``
    """
    sys_list = _systems(systems)
    check_choice(targets, TARGETS, "--targets")
    check_choice(kind, KINDS, "--kind")
    check_range(limit, "--limit", lo=0)
    check_range(threads, "--threads", lo=1, hi=MAX_PARALLEL)
    check_choice(device, DEVICES, "--device")
    check_range(max_new_tokens, "--max-new-tokens", lo=1, hi=1024)
    check_output_dir(output)
    if cache is not None:
        check_output_file(cache, "--cache")
    from siftkit.catalog.finetune import CatalogSFTConfig
    from siftkit.catalog.generate import uses

    check_range(sft_steps, "--sft-steps", lo=1, hi=100_000)  # [ours] bound
    if sft_folds < 0 or sft_folds == 1:
        raise InputError("must be 0 (one model per database) or >= 2", field="--sft-folds")
    sft_cfg = CatalogSFTConfig(folds=sft_folds, steps=sft_steps)
    needs_llm = uses(sys_list, "rag", "random", "dense")
    _check_model(model if needs_llm or uses(sys_list, "sft") else None, endpoint, "--model", "--endpoint")
    if uses(sys_list, "sft"):
        if endpoint:
            raise InputError("sft-K fine-tunes the local model: leave out --endpoint", field="--systems")
        from siftkit.llm.factory import check_engine

        check_engine(engine)
    factory = _model_factory(model, endpoint, engine, threads, device) if needs_llm else None
    cat = _load(catalog)
    pool = cat if not exemplars else _load(list(catalog) + list(exemplars))
    tgt = _pick_targets(cat, targets, kind, limit)
    if not tgt:
        raise InputError(f"no {targets} {kind} assets to describe", field="--targets")
    from siftkit.catalog.generate import describe as run_describe
    from siftkit.core.io import atomic_write_text, write_jsonl
    from siftkit.core.paths import cache_dir

    emb = None
    if uses(sys_list, "dense", "dense-copy"):
        from siftkit.embed import load_embedder

        emb = load_embedder(embedder)
    sft = None
    if uses(sys_list, "sft"):
        from siftkit.catalog.finetune import FoldModels

        sft = FoldModels(pool.assets(), sft_cfg, cache_dir("models") / "catalog-sft", base=model, engine=engine,
                         threads=threads, progress=True)
    try:
        df = run_describe(tgt, pool.assets(), sys_list, factory, model,
                          cache or cache_dir("cache") / "responses.sqlite", max_new_tokens, seed,
                          lodo=targets != "missing", embedder=emb, sft=sft)
    except RuntimeError as e:
        raise _failed_replies(e, output, "LLM description") from None
    output.mkdir(parents=True, exist_ok=True)
    from siftkit.catalog.generate import records

    write_jsonl(output / "descriptions.jsonl", records(df))
    atomic_write_text(output / "run.json", json.dumps({"catalog": catalog, "exemplars": exemplars, "systems": sys_list,
                                                       "targets": targets, "kind": kind, "limit": limit,
                                                       "model": model, "endpoint": endpoint, "engine": engine,
                                                       "device": device,
                                                       "max_new_tokens": max_new_tokens, "seed": seed,
                                                       "embedder": embedder, "sft_folds": sft_folds,
                                                       "sft_steps": sft_steps}, indent=1))
    print(df.groupby(["system", "kind"]).size().to_string())


def _read_descriptions(path: Path, catalog=None):
    import pandas as pd

    from siftkit.catalog.check import read_descriptions

    return pd.DataFrame(read_descriptions(path, catalog))


@app.command("eval")
def evaluate(
    catalog: Annotated[list[str], typer.Option("--catalog", help="The catalog(s) the descriptions were made from.")],
    descriptions: Annotated[Path, typer.Option("--descriptions", help="descriptions.jsonl from `describe`.")],
    output: Annotated[Path, typer.Option("--output", help="Folder for scored.jsonl and summary.csv.")],
    resamples: Annotated[int, typer.Option("--resamples", help="Bootstrap resamples (databases).")] = 2000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    judge: Annotated[Optional[str], typer.Option("--judge", help="Also ask an LLM judge (grounding: supported / "
                                                                 "partial / unsupported; toxic / clean): smollm2, "
                                                                 "a model folder, or a served model name with "
                                                                 "--judge-endpoint.")] = None,
    judge_endpoint: Annotated[Optional[str], typer.Option("--judge-endpoint", help="OpenAI-compatible base URL of "
                                                                                   "the judge.")] = None,
    judge_engine: Annotated[str, typer.Option("--judge-engine", help="Local judge engine: torch | ct2.")] = "ct2",
    judge_readout: Annotated[str, typer.Option("--judge-readout", help="score (the most probable label word) or "
                                                                       "generate (the first label word of a greedy "
                                                                       "reply; for endpoints that cannot "
                                                                       "score).")] = "score",
    threads: Annotated[int, typer.Option("--threads")] = 2,
    cache: Annotated[Optional[Path], typer.Option("--cache", help="Response cache (default: siftkit home).")] = None,
):
    """ROUGE-1 F1 / ROUGE-L against the human descriptions (trivial ones excluded), grounding, toxicity,
    acceptance@0.5, with bootstrap CIs by database; optionally LLM-judge verdicts of grounding and toxicity.

    Example: ``siftkit catalog eval --catalog bird --descriptions runs/catalog/descriptions.jsonl --output
    runs/catalog/eval``
    """
    check_range(resamples, "--resamples", lo=1, hi=MAX_RESAMPLES)
    check_range(threads, "--threads", lo=1, hi=MAX_PARALLEL)
    check_output_dir(output)
    if cache is not None:
        check_output_file(cache, "--cache")
    from siftkit.catalog.judge import READOUTS

    check_choice(judge_readout, READOUTS, "--judge-readout")
    if judge_endpoint and not judge:
        raise InputError("--judge-endpoint needs --judge (the served model name)", field="--judge-endpoint")
    _check_model(judge, judge_endpoint, "--judge", "--judge-endpoint")
    factory = _model_factory(judge, judge_endpoint, judge_engine, threads) if judge else None
    cat = _load(catalog)
    df = _read_descriptions(descriptions, cat)
    from siftkit.catalog.evaluate import score, summarise
    from siftkit.core.io import atomic_write_text, write_jsonl
    from siftkit.core.paths import cache_dir

    scored = score(df, cat)
    if factory is not None:
        from siftkit.catalog.judge import add_judgements

        try:
            scored = add_judgements(scored, cat, factory, judge, cache or cache_dir("cache") / "responses.sqlite",
                                    progress=True, readout=judge_readout)
        except RuntimeError as e:
            raise _failed_replies(e, output, "judge reply") from None
    summary = summarise(scored, resamples, seed)
    output.mkdir(parents=True, exist_ok=True)
    from siftkit.catalog.generate import records

    write_jsonl(output / "scored.jsonl", records(scored))
    atomic_write_text(output / "summary.csv", summary.to_csv(index=False))
    print(summary.round(3).to_string(index=False) if len(summary) else "no description has a human reference")


@app.command()
def write(
    descriptions: Annotated[Path, typer.Option("--descriptions", help="descriptions.jsonl from `describe`.")],
    to: Annotated[str, typer.Option("--to", help="A postgresql:// SQLAlchemy URL or a .duckdb file (COMMENT ON), "
                                                 "a dbt schema .yml, or a .json file.")],
    system: Annotated[Optional[str], typer.Option("--system", help="Which system's descriptions (needed when the "
                                                                   "file holds several).")] = None,
    db: Annotated[Optional[str], typer.Option("--db", help="Only this database's assets.")] = None,
    previous: Annotated[Optional[Path], typer.Option("--previous", help="Save the comments replaced here (JSONL "
                                                                        "with table, column, text: pass it back "
                                                                        "as --descriptions to revert).")] = None,
):
    """Write descriptions back: COMMENT ON (DuckDB, PostgreSQL; quoted by the driver's SQL composition), dbt
    schema.yml, or JSON.

    Example: ``siftkit catalog write --descriptions runs/catalog/descriptions.jsonl --system rag-3 --to shop.duckdb``
    """
    if previous is not None:
        check_output_file(previous, "--previous")
    if not (to.startswith("postgresql") or Path(to).suffix in (".duckdb", ".yml", ".yaml", ".json")):
        raise InputError("must be a postgresql:// URL, a .duckdb file, a dbt .yml or a .json file", field="--to")
    df = _read_descriptions(descriptions)
    systems = sorted(df.system.unique())
    if system is None and len(systems) > 1:
        raise InputError(f"the file holds several systems ({', '.join(systems)}): choose one with --system",
                         field="--system")
    if system is not None:
        check_choice(system, systems, "--system")
        df = df[df.system == system]
    if db is not None:
        check_choice(db, sorted(df.db.unique()), "--db")
        df = df[df.db == db]
    rows = [{"table": r.table, "column": r.column if isinstance(r.column, str) and r.column else None,
             "text": r.text} for r in df.itertuples()] if "column" in df else \
        [{"table": r.table, "column": None, "text": r.text} for r in df.itertuples()]
    from siftkit.catalog.writeback import write as do_write

    prev = do_write(to, rows)
    if previous is not None:
        from siftkit.core.io import write_jsonl

        write_jsonl(previous, [{"system": "previous", "id": "", "db": db or "", "table": p["table"],
                                "column": p["column"], "kind": "column" if p["column"] else "table",
                                "text": p["previous"] or ""} for p in prev])
    print(f"wrote {len(rows)} description(s) to {to}")


# ------------------------------------------------------------------------------------------------- quickstart
def quickstart_step(ctx):
    """The demo catalog (three invented DuckDB databases), ingested live; leave-one-database-out descriptions by
    the baselines and SmolLM2 zero-shot / RAG few-shot; scores with CIs; write-back read again."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from siftkit.catalog.demo import load_demo
    from siftkit.catalog.evaluate import score, summarise, targets
    from siftkit.catalog.generate import describe as run_describe
    from siftkit.catalog.ingest import load_duckdb
    from siftkit.catalog.writeback import comment_duckdb, write_dbt
    from siftkit.core.report import Section

    opts = ctx.options
    out = ctx.step_dir("catalog")
    cat = load_demo(out / "demo")
    systems = ["echo", "copy"] + [s.strip() for s in opts["llm_systems"].split(",") if s.strip()]
    factory = None
    if len(systems) > 2:
        import functools

        from siftkit.llm.factory import make_local_model

        factory = functools.partial(make_local_model, "smollm2", opts["engine"], "cpu", 2, None)
    tgt = targets(cat)
    if opts["limit"] and len(tgt) > opts["limit"]:  # evenly spaced, all systems on the same assets
        step = len(tgt) / opts["limit"]
        tgt = [tgt[int(i * step)] for i in range(int(opts["limit"]))]
    df = run_describe(tgt, cat.assets(), systems, factory, "smollm2", out / "cache.sqlite",
                      int(opts["max_new_tokens"]), ctx.seed, progress=False)
    scored = score(df, cat)
    summary = summarise(scored, int(opts["resamples"]), ctx.seed)
    best = systems[-1]
    rows = [{"table": r.table, "column": r.column, "text": r.text}
            for r in df[(df.system == best) & (df.db == "shop")].itertuples()]
    if not rows:
        raise RuntimeError("the demo subset holds no shop asset: raise catalog.limit")
    comment_duckdb(out / "demo" / "shop.duckdb", rows)
    back = {a.id: a.description for a in load_duckdb(out / "demo" / "shop.duckdb").assets()}
    verified = sum(back.get(r.id) == r.text for r in df[(df.system == best) & (df.db == "shop")].itertuples())
    write_dbt(out / "schema.yml", rows)
    fig, ax = plt.subplots(figsize=(6, 3))
    col = summary[summary.kind == "column"]
    ax.bar(col.system, col.rouge1, yerr=[col.rouge1 - col.rouge1_lo, col.rouge1_hi - col.rouge1], capsize=3)
    ax.set_ylabel("ROUGE-1 F1 (columns)")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    examples = df[df.id.isin(["shop.orders.total_amt", "clinic.visits.visit_dt", "library.loans"])][
        ["system", "id", "text"]]
    text = (f"Three invented DuckDB databases (shop, clinic, library; {len(tgt)} described assets scored) ingested live "
            "(introspection and profiling in SQL). Each asset is described leave-one-database-out: exemplars come "
            "only from the other two databases. Systems: name echo, nearest-exemplar copy, and SmolLM2-135M-Instruct "
            f"({opts['engine']} engine) {', '.join(systems[2:]) or '(off)'}. CIs resample the 3 databases, so they "
            f"are wide. {verified} of {len(rows)} '{best}' descriptions of shop were written with COMMENT ON and read "
            "back verbatim; schema.yml holds the dbt form. Full scale (BIRD, Spider2): docs/metadata_rag.md.")
    metrics = {f"{r.system}/{r.kind}/rouge1": float(r.rouge1) for r in summary.itertuples()}
    metrics["writeback_verified"] = verified
    return Section("Metadata RAG: catalog descriptions", text=text,
                   tables=[("per system and asset kind", summary.round(3)), ("examples", examples)],
                   figures=[("ROUGE-1 F1 per system, 95% CI over databases", fig)], metrics=metrics)


def _check_postgres():
    import subprocess

    from siftkit.catalog.pgserver import pg_bin, why_unavailable

    why = why_unavailable()
    if why:
        return False, why + "; the PostgreSQL tests skip"
    v = subprocess.run([str(pg_bin() / "pg_ctl"), "--version"], capture_output=True, text=True).stdout.strip()
    return True, f"{v} at {pg_bin()} (Debian server binaries; tests start a temporary server on a Unix socket)"


def register(registry) -> None:
    """Add ``siftkit catalog ...``, the quickstart step ``catalog`` and the PostgreSQL server check."""
    from siftkit.core.plugins import QuickstartOption

    registry.app.add_typer(app, name="catalog")
    registry.add_asset_check("PostgreSQL server (catalog tests)", "service", _check_postgres)
    registry.add_quickstart_step("catalog", quickstart_step, order=75, options=[
        QuickstartOption("llm_systems", str, "rag-3", "SmolLM2 systems, comma-separated (empty = "
                                                                 "baselines only)"),
        QuickstartOption("limit", int, 12, "describe this many of the 36 demo assets, evenly spaced (0 = all)"),
        QuickstartOption("max_new_tokens", int, 40, "new tokens per description"),
        QuickstartOption("engine", str, "ct2", "SmolLM2 engine", choices=("torch", "ct2")),
        QuickstartOption("resamples", int, 500, "bootstrap resamples")])
