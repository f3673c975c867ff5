"""CLI: ``siftkit bias grid | run | analyze`` and the quickstart step ``bias``.

Every option is checked (one ``siftkit:`` line, exit 2) before a model loads or an output folder is made. Heavy
modules load only when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from siftkit.core.errors import InputError, RequestsFailed
from siftkit.core.validate import (MAX_BATCH, MAX_NEW_TOKENS, MAX_PARALLEL, MAX_RESAMPLES, check_choice,
                                   check_local_model, check_output_dir, check_output_file, check_range, check_unique,
                                   check_url)

MAX_SAMPLES = 1_000  # [ours] samples per prompt

app = typer.Typer(no_args_is_help=True, help="Product-bias audit of LLM investment recommendations (Zhi et al., "
                  "2025).")
_ASSET = "Asset class: stocks, mutual_funds, crypto, savings, portfolios (comma-separated for several)."


def _split(text: str, field: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise InputError(f"{field} is empty", field=field)
    return check_unique(items, field)  # a class, template or variant given twice would be asked and counted twice


def _templates(text: str) -> list[int]:
    items = _split(text, "--templates")
    try:
        values = [int(x) for x in items]
    except ValueError:
        raise InputError(f"--templates must be comma-separated integers, got {text!r:.80}", field="--templates") from None
    return check_unique(values, "--templates")  # "0,00"


def _check_currency(currency: str) -> str:
    """A currency code or symbol as the prompts show it: non-empty, one short line."""
    if not currency.strip() or len(currency) > 12 or not currency.isprintable():
        raise InputError(f"must be a currency code such as USD or EUR, got {currency!r:.40}", field="--currency")
    return currency


def _prompts(asset_classes, design, templates, debias, pairs, currency):
    from siftkit.bias.grid import build_grid, check_grid_options, stratified_subset

    for a in asset_classes:
        check_grid_options(a, design, templates, debias)
    if pairs < 0:
        raise InputError("--pairs must be >= 0", field="--pairs")
    out = []
    for a in asset_classes:
        grid = build_grid(a, design, templates, debias, currency)
        out += stratified_subset(grid, pairs) if pairs else grid
    return out


def _print_grid(prompts, asset_classes, design, templates, debias, samples, n_models, max_new_tokens) -> dict:
    from siftkit.bias.grid import estimate_tokens, full_grid_size, profiles

    tokens = estimate_tokens(prompts, max_new_tokens, samples)
    info = {"asset_classes": asset_classes, "design": design, "profiles": len(profiles(design)),
            "templates": len(templates), "debias": debias, "prompts": len(prompts), "samples_per_prompt": samples,
            "models": n_models, "calls": len(prompts) * n_models, "samples": len(prompts) * samples * n_models,
            "full_grid_samples_5_classes": full_grid_size(["x"] * 5, design, len(templates), len(debias), samples,
                                                          n_models),
            **{f"estimated_{k}": v * n_models for k, v in tokens.items()}}
    print(json.dumps(info, indent=1))
    return info


@app.command()
def grid(
    asset_class: Annotated[str, typer.Option("--asset-class", help=_ASSET)] = "stocks",
    design: Annotated[str, typer.Option("--design", help="factorial (288 profiles) | subsets (719)")] = "factorial",
    templates: Annotated[str, typer.Option("--templates", help="Template indices, e.g. 0,1,2.")] = "0",
    debias: Annotated[str, typer.Option("--debias", help="none, system, alternatives, randomise (comma-separated).")]
    = "none,system",
    samples: Annotated[int, typer.Option("--samples", help="Samples per prompt.")] = 3,
    models: Annotated[int, typer.Option("--models", help="Models, for the full-grid size.")] = 1,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 64,
    currency: Annotated[str, typer.Option("--currency")] = "USD",
    output: Annotated[Optional[Path], typer.Option("--output", help="Write the prompts as JSONL here.")] = None,
):
    """Print the grid size, the full five-class grid size and the estimated tokens; optionally write the prompts.

    Example: ``siftkit bias grid --asset-class stocks --design subsets --debias none,system --models 7``
    """
    classes = _split(asset_class, "--asset-class")
    tpl, dbs = _templates(templates), _split(debias, "--debias")
    if samples < 1 or models < 1 or max_new_tokens < 1:
        raise InputError("--samples, --models and --max-new-tokens must be >= 1", field="--samples")
    check_range(samples, "--samples", hi=MAX_SAMPLES)
    check_range(max_new_tokens, "--max-new-tokens", hi=MAX_NEW_TOKENS)
    _check_currency(currency)
    if output:
        check_output_file(output)
    prompts = _prompts(classes, design, tpl, dbs, 0, currency)
    _print_grid(prompts, classes, design, tpl, dbs, samples, models, max_new_tokens)
    if output:
        from siftkit.core.io import write_jsonl

        write_jsonl(output, [p.__dict__ for p in prompts])


@app.command()
def run(
    output: Annotated[Path, typer.Option("--output", help="Folder for responses.jsonl and run.json.")],
    model: Annotated[list[str], typer.Option("--model", help="smollm2, a model folder or .gguf, a served model "
                                                             "name with --endpoint, or synthetic:always-one | "
                                                             "synthetic:uniform | synthetic:market-cap "
                                                             "(repeatable).")],
    asset_class: Annotated[str, typer.Option("--asset-class", help=_ASSET)] = "stocks",
    design: Annotated[str, typer.Option("--design")] = "factorial",
    templates: Annotated[str, typer.Option("--templates")] = "0",
    debias: Annotated[str, typer.Option("--debias")] = "none,system",
    pairs: Annotated[int, typer.Option("--pairs", help="Stratified subset: this many profile/template pairs per "
                                                       "class (0 = all).")] = 0,
    samples: Annotated[int, typer.Option("--samples")] = 3,
    temperature: Annotated[float, typer.Option("--temperature")] = 0.7,
    top_p: Annotated[float, typer.Option("--top-p")] = 0.95,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 64,
    currency: Annotated[str, typer.Option("--currency")] = "USD",
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="OpenAI-compatible base URL.")] = None,
    engine: Annotated[str, typer.Option("--engine", help="Local engine: torch | ct2.")] = "torch",
    threads: Annotated[int, typer.Option("--threads")] = 2,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 16,
    max_in_flight: Annotated[int, typer.Option("--max-in-flight")] = 8,
    cache: Annotated[Optional[Path], typer.Option("--cache", help="Response cache (default: siftkit home).")] = None,
    backend: Annotated[str, typer.Option("--backend", help="local | ray")] = "local",
    workers: Annotated[int, typer.Option("--workers", help="Ray workers.")] = 2,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Chunks in flight per model (endpoints).")] = 1,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the grid size and estimated tokens, run "
                                                            "nothing.")] = False,
):
    """Ask every model every prompt of the grid (cached, resumable), parse the replies, write responses.jsonl.

    Example: ``siftkit bias run --model smollm2 --asset-class stocks --pairs 12 --output runs/bias``
    """
    from siftkit.bias.runner import model_factory

    classes = _split(asset_class, "--asset-class")
    tpl, dbs = _templates(templates), _split(debias, "--debias")
    if samples < 1 or max_new_tokens < 1 or workers < 1 or concurrency < 1 or threads < 1 or batch_size < 1:
        raise InputError("--samples, --max-new-tokens, --workers, --concurrency, --threads and --batch-size must "
                         "be >= 1", field="--samples")
    check_range(max_in_flight, "--max-in-flight", lo=1, hi=MAX_PARALLEL)
    check_range(samples, "--samples", hi=MAX_SAMPLES)
    check_range(max_new_tokens, "--max-new-tokens", hi=MAX_NEW_TOKENS)
    for v, name in ((threads, "--threads"), (workers, "--workers"), (concurrency, "--concurrency")):
        check_range(v, name, hi=MAX_PARALLEL)
    check_range(batch_size, "--batch-size", hi=MAX_BATCH)
    if endpoint:
        check_url(endpoint, "--endpoint")
    check_range(pairs, "--pairs", lo=0)
    check_range(temperature, "--temperature", lo=0)  # NaN and inf refused too
    check_range(top_p, "--top-p", lo=0, hi=1, lo_open=True)
    if backend not in ("local", "ray"):
        raise InputError(f"--backend must be local or ray, got {backend!r}", field="--backend")
    check_choice(engine, ("torch", "ct2"), "--engine")  # also when only synthetic responders run
    _check_currency(currency)
    check_unique(model, "--model")  # a model given twice would be asked twice and counted once
    if not endpoint:  # a local model is loaded inside the batch: check its name now
        for m in model:
            if not m.startswith("synthetic:"):
                check_local_model(m, "--model", others=("synthetic:always-one", "synthetic:uniform",
                                                        "synthetic:market-cap"))
    check_output_dir(output)  # before any model loads
    if cache is not None:
        check_output_file(cache, "--cache")
    prompts = _prompts(classes, design, tpl, dbs, pairs, currency)
    factories = {}
    for a in classes:
        for m in model:
            factories[(m, a)] = model_factory(m, a, endpoint, engine, threads, batch_size, max_in_flight)
    _print_grid(prompts, classes, design, tpl, dbs, samples, len(model), max_new_tokens)
    if dry_run:
        return
    from siftkit.bias.runner import parse_responses, run_grid
    from siftkit.core.io import atomic_write_text, write_jsonl
    from siftkit.core.paths import cache_dir
    from siftkit.llm.base import GenerationParams

    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, n=samples,
                              seed=seed)
    cache = cache or cache_dir("cache") / "responses.sqlite"
    frames = []
    for a in classes:
        mine = [p for p in prompts if p.asset_class == a]
        frames.append(run_grid({m: factories[(m, a)] for m in model}, mine, params, cache, backend, workers,
                               concurrency=concurrency))
    import pandas as pd

    raw = pd.concat(frames, ignore_index=True)
    failed = int((raw["finish_reason"] == "error").sum())
    if failed:  # [ours] outputs are replaced only by a run whose every request was answered
        raise RequestsFailed(failed, len(raw), "response", detail=f"{output} left as it was")
    parsed = parse_responses(raw)
    output.mkdir(parents=True, exist_ok=True)
    write_jsonl(output / "responses.jsonl", parsed.to_dict("records"))
    atomic_write_text(output / "run.json", json.dumps({"models": model, "asset_classes": classes, "design": design,
                                                       "templates": tpl, "debias": dbs, "pairs": pairs,
                                                       "params": params.to_dict(), "endpoint": endpoint,
                                                       "engine": engine, "backend": backend}, indent=1))
    print(parsed.groupby(["model", "asset_class", "debias"]).status.value_counts(normalize=True).round(3).to_string())


def _read_responses(path: Path, schema: dict) -> list[dict]:
    """The rows of responses.jsonl, each checked beyond its types: a known de-biasing variant, ``sample >= 0`` and
    no (model, prompt_id, sample) twice (a repeated row would be counted twice in every measure)."""
    from siftkit.bias.grid import DEBIAS
    from siftkit.core.io import iter_jsonl

    rows, seen = [], {}
    for line, r in iter_jsonl(path, schema):
        check_choice(r["debias"], DEBIAS, "debias", path, line)
        if r["sample"] < 0:
            raise InputError(f'field "sample" must be >= 0, got {r["sample"]}', path, line, "sample")
        key = (r["model"], r["prompt_id"], r["sample"])
        if key in seen:
            raise InputError(f"model {r['model']!r:.60}, prompt {r['prompt_id']!r:.60}, sample {r['sample']} "
                             f"already on line {seen[key]}", path, line, "sample")
        seen[key] = line
        rows.append(r)
    if not rows:
        raise InputError("no responses", path)
    return rows


@app.command()
def analyze(
    responses: Annotated[Path, typer.Option("--responses", help="responses.jsonl written by `siftkit bias run`.")],
    output: Annotated[Path, typer.Option("--output", help="Folder for summary.csv, delta.csv, sectors_<class>.csv "
                                                          "and report.html.")],
    resamples: Annotated[int, typer.Option("--resamples", help="Bootstrap and permutation resamples.")] = 1000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
):
    """Gini (own and universe support, with n), HHI, entropy, top-k, CIs, tests, Δ-Gini; report.html with charts.

    Example: ``siftkit bias analyze --responses runs/bias/responses.jsonl --output runs/bias/analysis``
    """
    import pandas as pd

    from siftkit.bias.report import build_sections, sector_table
    from siftkit.bias.runner import parse_responses
    from siftkit.bias.universe import load_universe
    from siftkit.core.io import atomic_write_text
    from siftkit.core.report import render_html

    check_range(resamples, "--resamples", lo=1, hi=MAX_RESAMPLES)
    check_output_dir(output)
    schema = {f: ((str,), True) for f in ("model", "prompt_id", "pair_id", "asset_class", "debias")}
    schema.update({"text": ((str,), True), "sample": ((int,), True), "finish_reason": ((str,), True)})
    rows = _read_responses(responses, schema)
    universes = {}
    for i, r in enumerate(rows, start=1):
        if r["asset_class"] not in universes:
            try:
                universes[r["asset_class"]] = load_universe(r["asset_class"])
            except InputError as e:
                raise InputError(e.message, responses, i, field="asset_class") from None
    parsed = parse_responses(pd.DataFrame(rows), universes)  # re-parse: the current parser decides
    sections, summary, deltas = build_sections(parsed, universes, resamples, seed)
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output / "summary.csv", summary.to_csv(index=False))
    atomic_write_text(output / "delta.csv", deltas.to_csv(index=False))
    atomic_write_text(output / "report.html", render_html("Product-bias audit", sections))
    for asset, u in universes.items():
        atomic_write_text(output / f"sectors_{asset}.csv", sector_table(parsed, u).to_csv(index=False))
    cols = ["model", "asset_class", "debias", "gini_own", "n_own", "gini_universe", "n_universe", "hhi"]
    print(summary[cols].round(3).to_string(index=False))
    if len(deltas):
        print(deltas.round(4).to_string(index=False))


def quickstart_step(ctx):
    """The three synthetic responders on the full 288-prompt stock factorial (3 samples, plain and de-biased), and
    SmolLM2 on ``bias.pairs`` evenly spaced profiles; Gini, HHI, tests and Lorenz curves."""
    import pandas as pd

    from siftkit.bias.report import build_sections
    from siftkit.bias.runner import model_factory, parse_responses, run_grid
    from siftkit.bias.universe import load_universe
    from siftkit.core.report import Section
    from siftkit.llm.base import GenerationParams

    opts = ctx.options
    out = ctx.step_dir("bias")
    cache = out / "cache.sqlite"
    prompts = _prompts(["stocks"], "factorial", [0], ["none", "system"], 0, "USD")
    params = GenerationParams(max_new_tokens=int(opts["max_new_tokens"]), temperature=0.7, top_p=0.95, n=3,
                              seed=ctx.seed)
    synth = {f"synthetic:{m}": model_factory(f"synthetic:{m}", "stocks") for m in ("always-one", "uniform",
                                                                                      "market-cap")}
    frames = [run_grid(synth, prompts, params, cache, progress=False)]
    if opts["pairs"] > 0:
        small = _prompts(["stocks"], "factorial", [0], ["none", "system"], int(opts["pairs"]), "USD")
        llm = {"smollm2": model_factory("smollm2", "stocks", engine=opts["engine"], threads=2, batch_size=32)}
        frames.append(run_grid(llm, small, params, cache, chunk_size=32, progress=False))
    parsed = parse_responses(pd.concat(frames, ignore_index=True))
    universes = {"stocks": load_universe("stocks")}
    sections, summary, deltas = build_sections(parsed, universes, n_resamples=int(opts["resamples"]), seed=ctx.seed)
    table = summary[["model", "debias", "responses", "rate_valid", "rate_refusal", "rate_unparseable", "gini_own",
                     "n_own", "gini_universe", "gini_universe_lo", "gini_universe_hi", "n_universe", "hhi",
                     "p_gini_uniform", "p_gini_market_cap"]]
    metrics = {f"{r.model}/{r.debias}/gini_universe": float(r.gini_universe) for r in summary.itertuples()}
    text = ("Stocks, 288-profile factorial grid (template 0), 3 samples per prompt, without and with the 'system' "
            "de-biasing prompt. Synthetic responders: always AAPL (universe Gini (n-1)/n = 66/67 = 0.985, own-support "
            "Gini 0 with n = 1), uniform (near 0 plus small-sample noise), market-cap weighted (in between). "
            f"SmolLM2-135M-Instruct answers {int(opts['pairs'])} evenly spaced profiles ({opts['engine']} engine): a "
            "wiring check, expect many unparseable replies and invented names. Full scale: docs/product_bias.md.")
    figures = [f for s in sections for f in s.figures]
    tables = [("per model and variant", table)] + ([("Δ-Gini (system − none)", deltas)] if len(deltas) else [])
    return Section("Product bias in LLM investment recommendations", text=text, tables=tables, figures=figures,
                   metrics=metrics)


def register(registry) -> None:
    """Add ``siftkit bias ...`` and the quickstart step ``bias``."""
    from siftkit.core.plugins import QuickstartOption

    registry.app.add_typer(app, name="bias")
    registry.add_quickstart_step("bias", quickstart_step, order=70, options=[
        QuickstartOption("pairs", int, 6, "SmolLM2 answers this many evenly spaced profiles (0 = synthetic only)"),
        QuickstartOption("max_new_tokens", int, 32, "new tokens per sample"),
        QuickstartOption("engine", str, "ct2", "SmolLM2 engine", choices=("torch", "ct2")),
        QuickstartOption("resamples", int, 300, "bootstrap and permutation resamples")])
