"""CLI: ``siftkit recbench generate | eval`` and the quickstart step ``recbench``.

Every file and option is checked (one ``siftkit:`` line, exit 2) before a model loads or an output folder is made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from siftkit.core.errors import InputError
from siftkit.core.validate import (MAX_NEW_TOKENS, MAX_PARALLEL, MAX_RESAMPLES, check_choices, check_local_model,
                                   check_output_dir, check_output_file, check_range, check_unique, check_url, cut)

app = typer.Typer(no_args_is_help=True, help="RecBench+: LLM recommendation assistants on knowledge-graph queries "
                  "(Huang et al., 2025).")
KGS = ("auto", "ml1m", "ml100k", "none")
TYPES_HELP = "Condition query types: explicit, implicit, misinformed (comma-separated)."


MAX_K = 1000  # [ours] the most titles a query may ask for (the released files ask for 5 to a few dozen)
MAX_PER_CELL = 10_000  # [ours] generated queries per type x bucket (the draws are linear in it)
_QUERY_FIELDS = ("qid", "qtype", "domain", "text", "gt_titles", "gt_ids", "conditions", "source", "k", "meta")


def _check_query(q: dict, where: str, path: Path) -> None:
    """One query record (siftkit's format, or a released record as the reader converted it): every field of the
    right type and range, so a bad file is one line here, never a crash in the scoring or a silent 0."""
    from siftkit.recbench.queries import TYPES

    def bad(field: str, want: str):
        raise InputError(f"{where}.{field}: must be {want}, got {cut(q.get(field), 60)}", path,
                         field=f"{where}.{field}")

    unknown = [k for k in q if k not in _QUERY_FIELDS]
    if unknown:
        raise InputError(f"{where}: unknown field {cut(unknown[0], 40)} (known: {', '.join(_QUERY_FIELDS)})", path,
                         field=f"{where}.{unknown[0]}")
    for f in ("qid", "text"):
        if not isinstance(q.get(f), str) or not q[f].strip():
            bad(f, "a non-empty string")
    if q.get("qtype") not in TYPES:
        bad("qtype", f"one of {', '.join(TYPES)}")
    if q.get("domain", "movie") not in ("movie", "book"):
        bad("domain", "movie or book")
    titles = q.get("gt_titles")
    if not isinstance(titles, list) or not titles or not all(isinstance(t, str) and t.strip() for t in titles):
        bad("gt_titles", "a non-empty array of titles (strings)")
    ids = q.get("gt_ids", [])
    if not isinstance(ids, list) or not all(isinstance(t, str) for t in ids) or (ids and len(ids) != len(titles)):
        bad("gt_ids", f"an array of strings, empty or one per title ({len(titles)})")
    conds = q.get("conditions", [])
    if not isinstance(conds, list) or not all(isinstance(c, (list, tuple)) and len(c) == 2
                                              and all(isinstance(x, str) for x in c) for c in conds):
        bad("conditions", 'an array of [relation, value] string pairs')
    if not isinstance(q.get("source", ""), str):
        bad("source", "a string")
    k = q.get("k", 1)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        bad("k", f"an integer in [1, {MAX_K}]")
    if not isinstance(q.get("meta", {}), dict):
        bad("meta", "an object")


_TEXTS = ("direct_description_query", "situational_description_query", "query")


def _check_released(records: list, path: Path) -> None:
    """The released records' raw fields, before their reader turns every value into a string (a title string would
    become a list of letters, a null query the text "None"): subsets are arrays of titles, counts integers, queries
    strings, relationships ``[relation, value]`` pairs."""
    def bad(where: str, want: str, value):
        raise InputError(f"{where}: must be {want}, got {cut(value, 60)}", path, field=where)

    def check(rec: dict, where: str) -> None:
        for key, v in rec.items():
            w = f"{where}.{key}"
            if key.endswith("Subset") or key.endswith(" subset"):
                if not isinstance(v, list) or not v or not all(isinstance(t, str) and t.strip() for t in v):
                    bad(w, "a non-empty array of titles (strings)", v)
            elif key.endswith("SubsetId") and not isinstance(v, list):
                bad(w, "an array of ids", v)
            elif key.endswith("Count") and (isinstance(v, bool) or not isinstance(v, int)):
                bad(w, "an integer", v)
            elif key in _TEXTS and v is not None and not isinstance(v, str):  # null: the reader falls back
                bad(w, "a string or null", v)
            elif key == "sharedRelationships" and not (isinstance(v, list) and all(
                    isinstance(c, list) and len(c) == 2 and all(isinstance(x, (str, int)) for x in c) for c in v)):
                bad(w, "an array of [relation, value] pairs", v)

    def has_text(rec: dict) -> bool:
        return any(isinstance(rec.get(k), str) and rec[k].strip() for k in _TEXTS)

    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise InputError(f"[{i}]: must be an object, got {type(rec).__name__}", path, field=f"[{i}]")
        check(rec, f"[{i}]")
        if "sharedRelationships" in rec and not has_text(rec):  # a condition query the reader would call "None"
            bad(f"[{i}].direct_description_query", "a non-empty string (no query text in the record)",
                rec.get("direct_description_query"))
        children = rec.get("query & ground true")
        if children is not None:
            if not isinstance(children, list):
                bad(f"[{i}].query & ground true", "an array of objects", children)
            for j, c in enumerate(children):
                if c:  # the reader skips empty entries
                    if not isinstance(c, dict):
                        bad(f"[{i}].query & ground true[{j}]", "an object", c)
                    check(c, f"[{i}].query & ground true[{j}]")
                    if not (isinstance(c.get("query"), str) and c["query"].strip()):
                        bad(f"[{i}].query & ground true[{j}].query", "a non-empty string", c.get("query"))


def read_queries(path: Path) -> list:
    """A query file, checked through: the core JSON reader (missing, a folder, BOM, non-UTF-8, empty, bad JSON with
    its line), then each query (:func:`_check_query`) and its id (no id twice in the file)."""
    from siftkit.core.io import read_json
    from siftkit.recbench.queries import Query, load_queries

    data = read_json(path)
    if isinstance(data, dict) and data.get("format") == "siftkit-recbench":
        raw = data.get("queries")
        if not isinstance(raw, list):
            raise InputError('"queries" must be an array of query objects', path, field="queries")
        for i, q in enumerate(raw):
            if not isinstance(q, dict):
                raise InputError(f"queries[{i}]: must be an object, got {type(q).__name__}", path,
                                 field=f"queries[{i}]")
            _check_query(q, f"queries[{i}]", path)
        qs = [Query.from_json(q) for q in raw]
    else:
        if isinstance(data, list):
            _check_released(data, path)
        qs = load_queries(path)  # a released file: its reader converts the records, checked below
        for i, q in enumerate(qs):
            _check_query(q.to_json(), f"queries[{i}]", path)
    if not qs:
        raise InputError("the file holds no query", path, field="queries")
    seen: dict[str, int] = {}
    for i, q in enumerate(qs):
        if q.qid in seen:
            raise InputError(f"queries[{i}].qid: {cut(q.qid, 60)} already used by queries[{seen[q.qid]}]", path,
                             field=f"queries[{i}].qid")
        seen[q.qid] = i
    return qs


def load_kg(name: str, queries=()):
    """``ml1m`` (../shared/data/recbench_plus), ``ml100k`` (recbole wheel), ``none``, or ``auto``: ML-100K for
    generated queries, ML-1M for released movie queries when ../shared is present, else none."""
    from siftkit.recbench.kg import load_ml1m, load_ml100k

    if name == "auto":
        if queries and all(q.qid.startswith("gen-") for q in queries):
            name = "ml100k"
        elif queries and all(q.domain == "movie" for q in queries):
            from siftkit.core.assets import shared_data_dir

            d = shared_data_dir()
            name = "ml1m" if d and (d / "recbench_plus" / "movies.dat").exists() else "none"
        else:
            name = "none"
    return None if name == "none" else load_ml1m() if name == "ml1m" else load_ml100k()


@app.command()
def generate(
    output: Annotated[Path, typer.Option("--output", help="Queries JSON to write (siftkit-recbench format).")],
    per_cell: Annotated[int, typer.Option("--per-cell", help="Queries per type × condition count.")] = 50,
    types: Annotated[str, typer.Option("--types", help=TYPES_HELP)] = "explicit,implicit,misinformed",
    kg: Annotated[str, typer.Option("--kg", help="Item KG with user histories: ml100k (recbole wheel) | ml1m "
                                                 "(needs ratings.dat next to movies.dat).")] = "ml100k",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    llm: Annotated[Optional[str], typer.Option("--llm", help="Rewrite the template texts with this chat model "
                                                             "(smollm2, a folder, or a served name with "
                                                             "--endpoint); kept only when every film title "
                                                             "survives.")] = None,
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="OpenAI-compatible base URL.")] = None,
    engine: Annotated[str, typer.Option("--engine", help="Local engine: torch | ct2.")] = "ct2",
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 80,
    cache: Annotated[Optional[Path], typer.Option("--cache", help="Response cache (default: siftkit home).")] = None,
):
    """Draw condition queries from user histories: 1, 2 and 3-4 shared conditions, ground truth = the user's items
    meeting them; deterministic templates.

    Example: ``siftkit recbench generate --per-cell 50 --output runs/recbench/generated.json``
    """
    from siftkit.recbench.generate import BUCKETS, Generator
    from siftkit.recbench.queries import CONDITION_TYPES, write_queries

    tlist = check_unique(check_choices([x.strip() for x in types.split(",") if x.strip()], CONDITION_TYPES,
                                       "--types"), "--types")  # a type twice would draw the same query ids twice
    check_range(per_cell, "--per-cell", lo=1, hi=MAX_PER_CELL)
    if kg not in ("ml100k", "ml1m"):
        raise InputError(f"--kg must be ml100k or ml1m, got {kg!r}", field="--kg")
    check_range(max_new_tokens, "--max-new-tokens", lo=1, hi=MAX_NEW_TOKENS)
    if endpoint:
        check_url(endpoint, "--endpoint")
    factory = None
    if llm:
        if not endpoint:
            check_local_model(llm, "--llm")
        from siftkit.recbench.runner import model_factory

        factory = model_factory(llm, endpoint, engine)
    check_output_file(output)
    if cache is not None:
        check_output_file(cache, "--cache")
    graph = load_kg(kg)
    qs = Generator(graph, seed).generate(per_cell, tlist)
    if factory is not None:
        from siftkit.core.paths import cache_dir
        from siftkit.llm.base import GenerationParams
        from siftkit.recbench.generate import rephrase

        qs = rephrase(qs, {llm: factory}, GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0),
                      cache or cache_dir("cache") / "responses.sqlite")
    counts = {f"{t}/{b}": sum(q.qtype == t and q.condition_bucket == b for q in qs) for t in tlist for b in BUCKETS}
    info = {"kg": graph.source, "seed": seed, "per_cell": per_cell, "counts": counts, "llm": llm}
    if llm:
        info["rephrased"] = sum(bool(q.meta.get("rephrased")) for q in qs)
    write_queries(output, qs, info)
    print(json.dumps({"queries": len(qs), **{k: info[k] for k in ("counts", "llm", "rephrased") if k in info}},
                     indent=1))


@app.command("eval")
def evaluate(
    queries: Annotated[list[Path], typer.Option("--queries", help="A released query file (ExplicitQuery.json, "
                                                                  "UserBasedQuery.json, ...) or a generated one "
                                                                  "(repeatable).")],
    output: Annotated[Path, typer.Option("--output", help="Folder for replies.jsonl, scores.csv, summary.csv, "
                                                          "report.html.")],
    model: Annotated[list[str], typer.Option("--model", help="oracle | random | popularity | group-top10 | "
                                                             "group-top3 | smollm2 | a model folder / .gguf | a "
                                                             "served name with --endpoint (repeatable).")],
    kg: Annotated[str, typer.Option("--kg", help="Item KG for id matching, existence and condition match: "
                                                 "auto | ml1m | ml100k | none.")] = "auto",
    limit: Annotated[int, typer.Option("--limit", help="Evaluate only the first N queries of each file "
                                                       "(0 = all).")] = 0,
    k: Annotated[int, typer.Option("--k", help="Truncate / pad each parsed list to k (0 = keep all).")] = 0,
    ground_truth: Annotated[str, typer.Option("--ground-truth", help="history (the paper's: the source user's "
                                                                     "items) | catalogue (every KG item meeting "
                                                                     "the conditions; needs a KG).")] = "history",
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 96,
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="OpenAI-compatible base URL.")] = None,
    engine: Annotated[str, typer.Option("--engine", help="Local engine: torch | ct2.")] = "ct2",
    threads: Annotated[int, typer.Option("--threads")] = 2,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Chunks in flight per model.")] = 1,
    cache: Annotated[Optional[Path], typer.Option("--cache", help="Response cache (default: siftkit home).")] = None,
    backend: Annotated[str, typer.Option("--backend", help="local | ray (chunks over Ray workers).")] = "local",
    workers: Annotated[int, typer.Option("--workers", help="Ray workers.")] = 2,
    resamples: Annotated[int, typer.Option("--resamples", help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
):
    """Answer every query with every model, score with the reference (upstream) and corrected scorings, both
    parsers; per type × #conditions means with CIs clustered by source user; report.html with the category plot.

    Example: ``siftkit recbench eval --queries ../shared/data/recbench_plus/UserBasedQuery.json --model oracle
    --model popularity --output runs/recbench/demo``
    """
    from siftkit.recbench.baselines import BASELINES

    check_range(limit, "--limit", lo=0)
    check_range(k, "--k", lo=0, hi=MAX_K)
    check_range(max_new_tokens, "--max-new-tokens", lo=1, hi=MAX_NEW_TOKENS)
    check_range(resamples, "--resamples", lo=1, hi=MAX_RESAMPLES)
    check_range(threads, "--threads", lo=1, hi=MAX_PARALLEL)
    check_range(concurrency, "--concurrency", lo=1, hi=MAX_PARALLEL)
    check_range(workers, "--workers", lo=1, hi=MAX_PARALLEL)
    if endpoint:
        check_url(endpoint, "--endpoint")
    if backend not in ("local", "ray"):
        raise InputError(f"--backend must be local or ray, got {backend!r}", field="--backend")
    if kg not in KGS:
        raise InputError(f"--kg must be one of {', '.join(KGS)}, got {kg!r}", field="--kg")
    if ground_truth not in ("history", "catalogue"):
        raise InputError(f"--ground-truth must be history or catalogue, got {ground_truth!r}",
                         field="--ground-truth")
    if ground_truth == "catalogue" and kg == "none":
        raise InputError("--ground-truth catalogue needs a KG (--kg)", field="--ground-truth")
    check_unique(model, "--model")  # a model given twice would be answered and reported twice
    if not endpoint:  # a local model loads inside the batch: check its name now (a mistyped baseline lands here)
        for m in model:
            check_local_model(m, "--model", others=tuple(BASELINES))
    from siftkit.recbench.runner import model_factory

    models = {m: None if m in BASELINES else model_factory(m, endpoint, engine, threads) for m in model}
    qs = []
    for path in queries:
        got = read_queries(path)
        qs += got[:limit] if limit else got
    if len({q.qid for q in qs}) != len(qs):
        raise InputError("query ids repeat across the --queries files; evaluate them separately", field="--queries")
    check_output_dir(output)
    if cache is not None:
        check_output_file(cache, "--cache")
    graph = load_kg(kg, qs)
    if ground_truth == "catalogue":
        from siftkit.recbench.generate import catalogue_variant

        if graph is None:
            raise InputError("--ground-truth catalogue needs a KG; none found for these queries", field="--kg")
        qs = catalogue_variant(qs, graph)
    _evaluate(qs, models, graph, output, max_new_tokens, cache, resamples, seed, k, concurrency, backend, workers)


def _evaluate(qs, models, graph, output, max_new_tokens, cache, resamples, seed, k, concurrency=1, backend="local",
              workers=2, progress=True):
    from siftkit.core.io import atomic_write_text, write_jsonl
    from siftkit.core.paths import cache_dir
    from siftkit.core.report import render_html
    from siftkit.llm.base import GenerationParams
    from siftkit.recbench.report import build_section
    from siftkit.recbench.runner import answer
    from siftkit.recbench.scoring import score_all, summarise

    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0)
    cache = cache or cache_dir("cache") / "responses.sqlite"
    replies = answer(models, qs, graph, params, cache, seed, progress=progress, concurrency=concurrency,
                     backend=backend, workers=workers)
    scores = score_all(replies, qs, graph, k=k)
    summary = summarise(scores, n_resamples=resamples, seed=seed)
    output.mkdir(parents=True, exist_ok=True)
    write_jsonl(output / "replies.jsonl", replies.to_dict("records"))
    atomic_write_text(output / "scores.csv", scores.to_csv(index=False))
    atomic_write_text(output / "summary.csv", summary.to_csv(index=False))
    text = (f"{len(qs)} queries, models {', '.join(models)}, KG {graph.source if graph else 'none'}. Scorings: "
            "reference = upstream (years stripped from predictions only, first match), corrected = years and "
            "articles normalised on both sides, best match, each ground-truth title once; corrected-first = the "
            "variant behind spec §7. FTR = no [SEP] in the reply.")
    atomic_write_text(output / "report.html", render_html("RecBench+", [build_section(summary, text)]))
    cols = ["model", "mode", "parser", "qtype", "conditions", "n", "recall", "precision", "ndcg", "ftr",
            "existence", "satisfied"]
    print(summary[summary["parser"] == "sep"][cols].round(3).to_string(index=False))
    return summary


def quickstart_step(ctx):
    """Generated ML-100K condition queries (``recbench.per_cell`` per type × #conditions): oracle, random and
    popularity on all, SmolLM2 (ct2) on the first ``recbench.llm_queries``; both scorings, CIs, category plot."""
    import pandas as pd

    from siftkit.llm.base import GenerationParams
    from siftkit.recbench.generate import Generator
    from siftkit.recbench.kg import load_ml100k
    from siftkit.recbench.report import build_section
    from siftkit.recbench.runner import answer, model_factory
    from siftkit.recbench.scoring import score_all, summarise

    opts = ctx.options
    out = ctx.step_dir("recbench")
    from siftkit.core.assets import movielens100k_dir

    ctx.record_input(movielens100k_dir())
    graph = load_ml100k()
    qs = Generator(graph, ctx.seed).generate(int(opts["per_cell"]))
    params = GenerationParams(max_new_tokens=int(opts["max_new_tokens"]), temperature=0.0)
    replies = answer({"oracle": None, "random": None, "popularity": None}, qs, graph, params, None, ctx.seed,
                     progress=False)
    n_llm = int(opts["llm_queries"])
    if n_llm > 0:
        step = max(1, len(qs) // n_llm)
        few = qs[::step][:n_llm]
        llm = answer({"smollm2": model_factory("smollm2", engine=opts["engine"], threads=2)}, few, graph, params,
                     out / "cache.sqlite", ctx.seed, progress=False)
        replies = pd.concat([replies, llm], ignore_index=True)
    scores = score_all(replies, qs, graph, modes=("reference", "corrected"))
    summary = summarise(scores, n_resamples=int(opts["resamples"]), seed=ctx.seed, ci_metrics=("recall", "ndcg"))
    text = (f"{len(qs)} condition queries generated from MovieLens-100K user histories and the Freebase KG in the "
            "recbole wheel (explicit / implicit / misinformed × 1, 2, 3-4 conditions; ground truth = the user's own "
            "items meeting all conditions). Oracle echoes the ground truth (upper bound: 1 in corrected scoring, "
            "lower in the upstream reference scoring because of its one-sided year stripping), random and "
            f"popularity are the floors; SmolLM2-135M ({opts['engine']}) answers {n_llm} of them as a wiring check "
            "(expect FTR near 1: it rarely emits [SEP]). Full scale and the released queries: docs/recbench.md.")
    return build_section(summary, text, "RecBench+ (LLM recommendation assistants)")


def register(registry) -> None:
    """Add ``siftkit recbench ...`` and the quickstart step ``recbench``."""
    from siftkit.core.plugins import QuickstartOption

    registry.app.add_typer(app, name="recbench")
    registry.add_quickstart_step("recbench", quickstart_step, order=77, options=[
        QuickstartOption("per_cell", int, 6, "generated queries per type × condition count"),
        QuickstartOption("llm_queries", int, 4, "SmolLM2 answers this many of them (0 = no LLM)"),
        QuickstartOption("max_new_tokens", int, 40, "new tokens per reply"),
        QuickstartOption("engine", str, "ct2", "SmolLM2 engine", choices=("torch", "ct2")),
        QuickstartOption("resamples", int, 200, "bootstrap resamples")])
