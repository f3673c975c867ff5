"""CLI: ``siftkit usefulness label | eval | published`` and the quickstart step ``usefulness``.

Heavy modules (torch, transformers) load only when a command runs. Option defaults come from
:class:`~siftkit.usefulness.config.UsefulnessConfig`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from siftkit.core.errors import InputError, RequestsFailed
from siftkit.llm.factory import INFERENCE_ENGINE
from siftkit.usefulness.config import UsefulnessConfig

_D = UsefulnessConfig()
app = typer.Typer(no_args_is_help=True, help="LLM usefulness labelling of clicked documents (Dewan et al., "
                  "SIGIR 2025).")
FIXTURES = Path(__file__).with_name("fixtures") / "sessions.jsonl"


def _input_help() -> str:
    return "THUIR CSV (or the ../shared/data folder) or a JSONL session log."


@app.command()
def label(
    input: Annotated[Path, typer.Option("--input", help=_input_help())],
    output: Annotated[Path, typer.Option("--output", help="Labels as a JSON object {id: score}.")],
    mode: Annotated[str, typer.Option("--mode", help="baseline | session")] = _D.mode,
    features: Annotated[str, typer.Option("--features", help="all | relevance | satisfaction | behaviour | "
                                                             "relevance+satisfaction | content")] = _D.features,
    groups: Annotated[Optional[list[str]], typer.Option("--group", help="Feature group to keep (repeatable; "
                                                                        "default all four).")] = None,
    readout: Annotated[str, typer.Option("--readout", help="generate | logprob")] = _D.readout,
    model: Annotated[str, typer.Option("--model", help="smollm2, a model folder or .gguf; with --endpoint the "
                                                       "served model name.")] = "smollm2",
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="OpenAI-compatible base URL.")] = None,
    api_key_env: Annotated[str, typer.Option("--api-key-env")] = "OPENAI_API_KEY",
    max_in_flight: Annotated[int, typer.Option("--max-in-flight", help="Concurrent endpoint requests.")] = 8,
    cache: Annotated[Optional[Path], typer.Option("--cache", help="Response cache file (default: siftkit home).")]
    = None,
    no_cache: Annotated[bool, typer.Option("--no-cache")] = False,
    device: Annotated[str, typer.Option("--device")] = "cpu",
    threads: Annotated[int, typer.Option("--threads")] = 2,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 16,
    engine: Annotated[str, typer.Option("--engine", help="Local engine: ct2 (CTranslate2 int8) | torch (fp32).")]
    = INFERENCE_ENGINE,
    rows_per_group: Annotated[int, typer.Option("--rows-per-group", help="Stratified sample: this many clicks per "
                                                                         "divergence group (0 = all).")] = 0,
    n_sessions: Annotated[int, typer.Option("--sessions", help="Sample this many sessions (0 = all).")] = 0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    max_prompt_tokens: Annotated[int, typer.Option("--max-prompt-tokens")] = _D.max_prompt_tokens,
    clamp: Annotated[bool, typer.Option("--clamp", help="Clamp out-of-range scores instead of recording them as "
                                                        "invalid.")] = _D.clamp,
):
    """Label clicked documents with an LLM (temperature 0, cached: a re-run re-queries nothing).

    Example: ``siftkit usefulness label --input sessions.jsonl --output labels.json --mode session``
    """
    from siftkit.core.io import atomic_write_text
    from siftkit.core.validate import check_device, check_output_file, check_range, check_url
    from siftkit.usefulness.data import load_clicks
    from siftkit.usefulness.run import label_clicks, make_model, sample_sessions, stratified_rows

    from siftkit.llm.factory import check_engine

    check_engine(engine)
    cfg = UsefulnessConfig(mode=mode, features=features, groups=tuple(groups) if groups else _D.groups,
                           readout=readout, max_prompt_tokens=max_prompt_tokens, clamp=clamp)
    for value, name in ((max_in_flight, "--max-in-flight"), (threads, "--threads"), (batch_size, "--batch-size")):
        check_range(value, name, lo=1)
    check_range(rows_per_group, "--rows-per-group", lo=0)
    check_range(n_sessions, "--sessions", lo=0)
    check_device(device)
    if endpoint:
        check_url(endpoint, "--endpoint")
    check_output_file(output)  # checked before any LLM call, so no labelling is thrown away
    check_output_file(output.with_suffix(".meta.json"))
    if cache is not None:
        check_output_file(cache, "--cache")
    clicks = load_clicks(input)
    if rows_per_group:
        clicks = stratified_rows(clicks, rows_per_group, seed)
    if n_sessions:
        clicks = sample_sessions(clicks, n_sessions, seed)
    llm = make_model(model, endpoint, cache, no_cache, device, threads, batch_size, api_key_env, max_in_flight,
                     engine=engine)
    res = label_clicks(llm, clicks, cfg)
    failed = _failed_requests(llm)
    if failed:  # [ours] an output is replaced only by a run whose every request was answered
        raise RequestsFailed(failed, res.calls, detail=f"{output} left as it was", cached=not no_cache)
    atomic_write_text(output, json.dumps(res.scores, indent=1))
    meta = {"config": {k: v for k, v in cfg.__dict__.items() if k != "extra"}, "model": llm.model_id,
            "summary": res.summary(), "invalid": res.invalid, "missing": res.missing, "clamped": res.clamped,
            "cache": llm.cache.stats()}
    atomic_write_text(output.with_suffix(".meta.json"), json.dumps(meta, indent=1, default=str))
    print(json.dumps(res.summary()))


def _failed_requests(llm) -> int:
    """Requests an endpoint model gave up on (``failed`` in its counters); 0 for models that cannot fail so."""
    inner = getattr(llm, "inner", llm)
    stats = getattr(inner, "stats", None)
    return int(stats().get("failed", 0)) if callable(stats) else 0


@app.command("eval")
def eval_cmd(
    input: Annotated[Path, typer.Option("--input", help=_input_help() + " Must hold gold usefulness.")],
    labels: Annotated[list[Path], typer.Option("--labels", help="{id: score} JSON (repeatable).")],
    policy: Annotated[str, typer.Option("--policy", help="Out-of-range scores: exclude | keep | clamp")]
    = "exclude",
    cluster: Annotated[str, typer.Option("--cluster", help="Bootstrap unit: query | session | none")] = "query",
    resamples: Annotated[int, typer.Option("--resamples")] = 1000,
    output: Annotated[Optional[Path], typer.Option("--output", help="Write the metrics as JSON here.")] = None,
):
    """Agreement of LLM labels with the users' labels: Spearman, accuracy, κ, QWK, per divergence group, CIs.

    Example: ``siftkit usefulness eval --input sessions.jsonl --labels labels.json``
    """
    from rich.console import Console
    from rich.table import Table

    from siftkit.core.io import atomic_write_text
    from siftkit.usefulness.data import GROUPS, load_clicks, load_labels_json
    from siftkit.core.validate import check_output_file, check_range, cut
    from siftkit.usefulness.evaluate import check_options, evaluate_labels

    check_options(policy, cluster)
    check_range(resamples, "--resamples", lo=0)
    if output:
        check_output_file(output)
    clicks = load_clicks(input)
    ids = {c.id for c in clicks}
    label_sets = []
    for path in labels:  # every file is read and matched before any metric is computed or written
        scores = load_labels_json(path)
        if not ids & set(scores):
            example = next(iter(scores), None)
            raise InputError(f"no id in common with {input} ({len(scores)} ids here, e.g. {cut(example)}; "
                             f"{len(ids)} there)", path, field="--labels")
        label_sets.append((path, scores))
    rows = []
    for path, scores in label_sets:
        m = evaluate_labels(clicks, scores, policy, cluster, resamples)
        rows.append({"labels": str(path), **m})
    t = Table(title=f"usefulness agreement ({policy}, CIs by {cluster})")
    cols = ["n", "n_invalid", "spearman", "accuracy", "kappa", "qwk", "kendall", *(f"acc_{g}" for g in GROUPS)]
    t.add_column("labels")
    for c in cols:
        t.add_column(c, justify="right")
    for r in rows:
        t.add_row(r["labels"], *[f"{r[c]:.3f}" if isinstance(r.get(c), float) else str(r.get(c, "—")) for c in cols])
    Console().print(t)
    if output:
        atomic_write_text(output, json.dumps(rows, indent=1, default=str))


@app.command()
def published(
    shared: Annotated[Optional[Path], typer.Option("--shared", help="The ../shared/data folder.")] = None,
    resamples: Annotated[int, typer.Option("--resamples")] = 1000,
    output: Annotated[Optional[Path], typer.Option("--output", help="Write the markdown table here.")] = None,
):
    """Score the authors' published THUIR outputs and check them against the spec's table (exit 1 on a FAIL).

    Example: ``siftkit usefulness published``
    """
    from siftkit.core.assets import shared_data_dir
    from siftkit.core.errors import InputError
    from siftkit.core.io import atomic_write_text
    from siftkit.core.validate import check_output_file, check_range
    from siftkit.usefulness.evaluate import published_markdown, published_table

    check_range(resamples, "--resamples", lo=0)
    if output:
        check_output_file(output)
    if shared is not None and not shared.is_dir():
        raise InputError("not a folder", shared, field="--shared")
    shared = shared or shared_data_dir()
    if shared is None:
        raise InputError("../shared/data not found; pass --shared DIR")
    df = published_table(shared, n_resamples=resamples)
    md = published_markdown(df)
    print(md)
    if output:
        atomic_write_text(output, md + "\n")
    fails = int((df["status"] == "FAIL").sum())
    print(f"{int((df['status'] == 'OK').sum())} OK, {fails} FAIL, {int((df['status'] == 'n/a').sum())} n/a")
    raise typer.Exit(1 if fails else 0)


def quickstart_step(ctx):
    """Label the invented fixture clicks with SmolLM2 (baseline prompt, label log-probabilities) and score them."""
    import pandas as pd

    from siftkit.core.io import atomic_write_text
    from siftkit.core.report import Section
    from siftkit.usefulness.data import load_sessions_jsonl
    from siftkit.usefulness.evaluate import evaluate_labels
    from siftkit.usefulness.run import label_clicks, make_model

    clicks = load_sessions_jsonl(FIXTURES)
    out = ctx.step_dir("usefulness")
    llm = make_model("smollm2", cache=out / "cache.sqlite", threads=2, engine=INFERENCE_ENGINE)
    cfg = UsefulnessConfig(mode="baseline", readout="logprob")  # a 135M model rarely writes the JSON itself
    res = label_clicks(llm, clicks, cfg)
    atomic_write_text(out / "labels.json", json.dumps(res.scores, indent=1))
    m = evaluate_labels(clicks, res.scores, cluster="session", n_resamples=0) if res.scores else {"n": 0}
    summary = res.summary()
    table = pd.DataFrame([{"click": c.id, "gold": c.usefulness, "SmolLM2": res.scores.get(c.id, "—"),
                           "parse": "ok" if c.id in res.scores else ("invalid" if c.id in res.invalid else "missing")}
                          for c in clicks])
    metrics = {k: summary[k] for k in ("ids", "calls", "valid", "invalid", "missing", "recovered_calls")}
    metrics.update({k: m[k] for k in ("spearman", "accuracy", "kappa", "qwk") if k in m})
    text = ("Three invented search sessions (siftkit/usefulness/fixtures, 9 clicked documents) labelled 0-3 by the "
            "embedded SmolLM2-135M-Instruct (CTranslate2 int8 engine) with the baseline prompt (one click per call, "
            "all feature groups). Each "
            "label is the one whose continuation of the JSON answer {\"<id>\": <label>} has the highest "
            "log-probability (4 scored continuations per click), so every click gets a valid label. A 135M model is "
            "a wiring check: expect agreement near 0. Full scale with generated JSON output: `siftkit usefulness "
            "label --endpoint URL --model NAME --mode session` (see docs/usefulness.md).")
    return Section("LLM usefulness labelling", text=text, tables=[("labels per click", table),
                                                                  ("parse and agreement", pd.DataFrame([metrics]))],
                   metrics=metrics)


def register(registry) -> None:
    """Add ``siftkit usefulness ...`` and the quickstart step."""
    registry.app.add_typer(app, name="usefulness")
    registry.add_quickstart_step("usefulness", quickstart_step, order=60)
