"""Metadata RAG on BIRD mini-dev and the de-duplicated Spider2-lite BigQuery subset, into one results page.

    nice -n 5 python -m benchmarks run metadata_rag --profile cpu     # the cells (resumable)
    python -m benchmarks page metadata_rag --profile cpu              # benchmarks/results/metadata_rag.md

Settings: benchmarks/config/metadata_rag.yaml; prose: benchmarks/templates/metadata_rag.md; claims:
benchmarks/claims/metadata_rag.yaml. Three cell experiments, each cell holding every asset's text and scores so the
page recomputes every number:

* ``metadata_rag``, one cell per (dataset, condition, k[, seed]): the no-LLM baselines (name ``echo``,
  nearest-exemplar ``copy`` by BM25 and ``dense-copy`` by MiniLM cosine) and BIRD's ``ai_description`` (first line)
  on every scored column and Spider2 table; SmolLM2-135M-Instruct (CTranslate2 int8, greedy, at most
  ``max_new_tokens`` new tokens, first line kept) ``zero-shot``, BM25 ``rag`` (k = 1, 3, 5), ``dense`` and
  ``random`` few-shot (one cell per seed of the draw) on an evenly spaced subset of the scored columns
  (``n_llm`` per dataset); every system leave-one-database-out;
* ``metadata_rag_sft``, one cell per (dataset, k): the fine-tuned variant, a LoRA SmolLM2 per fold of databases
  (:class:`siftkit.catalog.finetune.CatalogSFTConfig` with ``sft``), zero-shot and BM25 k-shot at inference;
* ``metadata_rag_judge``, one cell per (dataset, system): SmolLM2 as grounding and toxicity judge of that system's
  outputs on the first ``n_judge`` of the subset (evenly spaced).

LLM calls go through the response cache (``$SIFTKIT_HOME/cache/metadata_rag.sqlite``), so a killed cell resumes;
fold models are saved under ``$SIFTKIT_HOME/models/catalog-sft``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmarks.runner import BenchConfig, Benchmark, Part, flag

TEMPLATE = Path(__file__).resolve().parent / "templates" / "metadata_rag.md"
BASELINES = ("echo", "copy", "dense-copy", "ai_description")
TITLES = {"bird": "BIRD mini-dev", "spider2": "Spider2-lite BigQuery (de-duplicated)"}
ROW_FIELDS = ["id", "db", "kind", "rouge1", "rougeL", "grounding", "grounded", "toxic", "text", "unsupported"]


class CatalogBench(BenchConfig):
    """Settings of the Metadata RAG benchmark (defaults: the page's run). Every field is stamped per cell (only the
    ones a cell uses), so enlarging a subset or adding a system leaves the other cells current."""

    page_fields: ClassVar[tuple[str, ...]] = ("n_resamples",)
    cell_fields: ClassVar[tuple[str, ...]] = ("model", "engine", "max_new_tokens", "embedder", "datasets", "n_llm",
                                              "n_judge", "llm_systems", "random_seeds", "sft_systems",
                                              "sft_datasets", "sft", "judged", "ablation_systems", "n_ablation",
                                              "n_sft")

    model: str = "smollm2"
    """the describing (and judging) model, a siftkit.llm.factory name."""
    engine: str = "ct2"
    """its local engine (``ct2``: CTranslate2 int8; ``torch``)."""
    max_new_tokens: int = 60
    """generation limit [spec: about 60 tokens]."""
    embedder: str = "minilm"
    """embedder of ``dense-K`` and ``dense-copy`` (siftkit.embed name)."""
    datasets: list[str] = ["bird", "spider2"]
    """catalogs scored (``bird``, ``spider2``)."""
    n_llm: dict[str, int] = {"bird": 80, "spider2": 24}
    """per dataset: scored columns (evenly spaced) the main LLM systems describe (the LLM subset)."""
    n_judge: dict[str, int] = {"bird": 40, "spider2": 24}
    """per dataset: of the LLM subset, outputs the LLM judges read (evenly spaced)."""
    llm_systems: list[str] = ["zero-shot", "rag-3", "random-3"]
    """pretrained SmolLM2 systems on the whole LLM subset (siftkit.catalog.generate names), in the order their
    cells run: the paper's central comparison."""
    ablation_systems: list[str] = ["rag-1", "rag-5", "dense-3"]
    """the spec's ablations (k, dense retrieval), on ``n_ablation`` of the LLM subset."""
    n_ablation: dict[str, int] = {"bird": 40, "spider2": 24}
    """per dataset: of the LLM subset, columns the ablation systems describe (evenly spaced)."""
    n_sft: dict[str, int] = {"bird": 40}
    """per dataset: of the LLM subset, columns the fine-tuned systems describe (evenly spaced)."""
    random_seeds: list[int] = [0]
    """seeds of the random exemplar draw (``random-K`` cells, one per seed)."""
    sft_systems: list[str] = ["sft-0", "sft-3"]
    """fine-tuned systems."""
    sft_datasets: list[str] = ["bird"]
    """datasets the fine-tuned variant runs on."""
    sft: dict[str, int] = {"folds": 2, "steps": 8, "batch_size": 4, "max_length": 192}
    """CatalogSFTConfig fields of the fold models [ours: what shared CPU cores train in minutes]."""
    judged: list[str] = ["zero-shot", "rag-3"]
    """systems whose outputs the LLM judges read."""
    n_resamples: int = 2000
    """bootstrap resamples of the page's intervals (resampling databases)."""


# ------------------------------------------------------------------------------------------------------------ cells
def system_of(params: dict) -> str:
    """The siftkit.catalog.generate system name of a cell: ``{condition: rag, k: 3}`` → ``rag-3``."""
    c = params["condition"]
    return f"{c}-{params['k']}" if c in ("rag", "dense", "random", "sft") else c


def _params(dataset: str, system: str) -> dict:
    from siftkit.catalog.generate import parse_system

    how, k = parse_system(system)
    condition = "zero-shot" if system == "zero-shot" else how
    return {"dataset": dataset, "condition": condition, "k": k}


def _with_seeds(cfg: CatalogBench, p: dict) -> list[dict]:
    return [{**p, "seed": seed} for seed in cfg.random_seeds] if p["condition"] == "random" else [p]


def grid(cfg: CatalogBench) -> list[dict]:
    """Baselines (seconds, but dense-copy embeds the whole pool: last), then the LLM systems of the smaller
    dataset first, each in ``llm_systems`` order; ``random-K`` once per seed."""
    cheap = [_params(d, s) for d in cfg.datasets for s in BASELINES
             if (d, s) != ("spider2", "ai_description") and s != "dense-copy"]
    llm = [p for d in sorted(cfg.datasets, key=lambda d: cfg.n_llm[d]) for s in cfg.llm_systems
           for p in _with_seeds(cfg, _params(d, s))]
    return cheap + llm + [_params(d, "dense-copy") for d in cfg.datasets]


def ablation_grid(cfg: CatalogBench) -> list[dict]:
    return [p for d in cfg.datasets for s in cfg.ablation_systems for p in _with_seeds(cfg, _params(d, s))]


def sft_grid(cfg: CatalogBench) -> list[dict]:
    return [_params(d, s) for d in cfg.sft_datasets for s in cfg.sft_systems]


def judge_grid(cfg: CatalogBench) -> list[dict]:
    return [{"dataset": d, "system": s} for d in cfg.datasets for s in cfg.judged]


def cell_settings(cfg: CatalogBench, params: dict) -> dict:
    """What one cell used: its subset size and generation settings (LLM cells), the embedder (dense cells)."""
    system = params.get("system") or system_of(params)
    out: dict[str, Any] = {}
    if system not in BASELINES:
        out.update(model=cfg.model, engine=cfg.engine, max_new_tokens=cfg.max_new_tokens,
                   n_llm=cfg.n_llm[params["dataset"]])
    if system.startswith("dense"):
        out["embedder"] = cfg.embedder
    return out


def sft_settings(cfg: CatalogBench, params: dict) -> dict:
    return {**cell_settings(cfg, params), "sft": dict(cfg.sft), "n_sft": cfg.n_sft[params["dataset"]]}


def judge_settings(cfg: CatalogBench, params: dict) -> dict:
    return {**cell_settings(cfg, params), "n_judge": cfg.n_judge[params["dataset"]]}


def ablation_settings(cfg: CatalogBench, params: dict) -> dict:
    return {**cell_settings(cfg, params), "n_ablation": cfg.n_ablation[params["dataset"]]}


@functools.lru_cache(maxsize=None)
def _catalog(dataset: str):
    from siftkit.catalog.ingest import load_bird, load_spider2

    return load_bird() if dataset == "bird" else load_spider2()


def evenly(items: list, n: int) -> list:
    """``n`` evenly spaced items (all when ``n`` >= their number); a multiple of ``n`` keeps these inside."""
    if n >= len(items):
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def llm_subset(dataset: str, n: int):
    from siftkit.catalog.evaluate import targets

    return evenly(targets(_catalog(dataset), ["column"]), n)


@functools.cache
def _model(model: str, engine: str, threads: int, batch_size: int):
    from siftkit.llm.factory import make_local_model

    return make_local_model(model, engine, "cpu", threads, batch_size)


@functools.cache
def _embedder(name: str):
    from siftkit.embed import load_embedder

    return load_embedder(name)


def _cache() -> Path:
    from siftkit.core.paths import cache_dir

    return cache_dir("cache") / "metadata_rag.sqlite"


def _describe(cfg: CatalogBench, dataset: str, system: str, targets, seed: int = 0, sft=None):
    from siftkit.catalog.evaluate import score
    from siftkit.catalog.generate import describe, uses

    cat = _catalog(dataset)
    llm = system not in BASELINES
    df = describe(targets, cat.assets(), [system],
                  (lambda: _model(cfg.model, cfg.engine, cfg.threads, cfg.batch_size)) if llm else None, cfg.model,
                  _cache(), cfg.max_new_tokens, seed=seed, progress=False,
                  embedder=_embedder(cfg.embedder) if uses([system], "dense", "dense-copy") else None, sft=sft)
    return score(df, cat)


def _out(s) -> dict:
    rows = s[ROW_FIELDS].to_dict("records")
    return {"rows": rows, "n": len(rows), "rouge1": float(s.rouge1.mean()),
            "rouge1_by_id": {r["id"]: r["rouge1"] for r in rows},
            "grounding_by_id": {r["id"]: float(r["grounding"]) for r in rows}}


def cell(cfg: CatalogBench, params: dict) -> dict:
    """One system on one dataset: the baselines on every scored asset, an LLM system on the ``n_llm`` subset."""
    from siftkit.catalog.evaluate import targets

    dataset, system = params["dataset"], system_of(params)
    tgt = targets(_catalog(dataset)) if system in BASELINES else llm_subset(dataset, cfg.n_llm[dataset])
    return _out(_describe(cfg, dataset, system, tgt, seed=params.get("seed", 0)))


def ablation_cell(cfg: CatalogBench, params: dict) -> dict:
    """An ablation system (k, dense retrieval) on the first ``n_ablation`` of the LLM subset (evenly spaced)."""
    dataset = params["dataset"]
    tgt = evenly(llm_subset(dataset, cfg.n_llm[dataset]), cfg.n_ablation[dataset])
    return _out(_describe(cfg, dataset, system_of(params), tgt, seed=params.get("seed", 0)))


def sft_cell(cfg: CatalogBench, params: dict) -> dict:
    """The fine-tuned variant on ``n_sft`` of the LLM subset (evenly spaced); each target described by the fold
    model trained without its database. Records what each fold model was trained on and its loss log."""
    from siftkit.catalog.finetune import CatalogSFTConfig, FoldModels
    from siftkit.core.paths import cache_dir

    dataset, system = params["dataset"], system_of(params)
    cat = _catalog(dataset)
    sft = FoldModels(cat.assets(), CatalogSFTConfig(**cfg.sft), cache_dir("models") / "catalog-sft",
                     threads=cfg.threads)
    s = _describe(cfg, dataset, system, evenly(llm_subset(dataset, cfg.n_llm[dataset]), cfg.n_sft[dataset]),
                  sft=sft)
    out = _out(s)
    out["sft"] = {g: sft.log(g) for g in sorted({sft.name(d) for d in s.db})}
    return out


def judge_cell(cfg: CatalogBench, params: dict) -> dict:
    """SmolLM2 as grounding and toxicity judge of one system's outputs (read from the response cache when the
    system's cell ran) on the first ``n_judge`` of the subset (evenly spaced)."""
    from siftkit.catalog.judge import add_judgements

    dataset, system = params["dataset"], params["system"]
    tgt = evenly(llm_subset(dataset, cfg.n_llm[dataset]), cfg.n_judge[dataset])
    s = _describe(cfg, dataset, system, tgt)
    s = add_judgements(s, _catalog(dataset), lambda: _model(cfg.model, cfg.engine, cfg.threads, cfg.batch_size),
                       cfg.model, _cache())
    rows = s[ROW_FIELDS + ["judge_grounding", "judge_toxic"]].to_dict("records")
    return {"rows": rows, "n": len(rows)}


# ------------------------------------------------------------------------------------------------------------- page
def _fmt(x, lo=None, hi=None, d=3) -> str:
    if x != x:
        return "–"
    return f"{x:.{d}f}" + (f" [{lo:.{d}f}, {hi:.{d}f}]" if lo is not None and lo == lo else "")


def _table(rows: list[dict], cols: list[str]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    out += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(out)


def _frame(cells: list[dict]):
    """Every cell's rows as one frame with ``dataset, system, seed, flag, seconds``; toxicity re-read with the
    current word list."""
    import pandas as pd

    from siftkit.catalog.evaluate import toxic_words

    frames = []
    for c in cells:
        p = c["params"]
        f = pd.DataFrame(c["metrics"]["rows"])
        f["dataset"], f["seed"] = p["dataset"], p.get("seed", 0)
        f["system"] = p.get("system") or system_of(p)
        f["flag"], f["seconds"] = flag(c), c.get("seconds", 0.0)
        f["toxic"] = [bool(toxic_words(t)) for t in f.text]
        frames.append(f)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["dataset", "system"])


def _summary_rows(part, scope: str, order: dict, n_resamples: int) -> list[dict]:
    from siftkit.catalog.evaluate import ACCEPT_AT
    from siftkit.metrics.stats import bootstrap_ci

    rows = []
    keyed = sorted(part.groupby(["system", "kind"]), key=lambda x: (x[0][1], order.get(x[0][0], 99), x[0][0]))
    for (system, kind), g in keyed:
        seeds = g.seed.nunique()
        r1 = bootstrap_ci(g.rouge1.to_numpy(), clusters=g.db.to_numpy(), n_resamples=n_resamples)
        rl = bootstrap_ci(g.rougeL.to_numpy(), clusters=g.db.to_numpy(), n_resamples=n_resamples)
        rows.append({"scope": scope, "kind": kind,
                     "system": system + (f" ({seeds} seeds)" if seeds > 1 else "") + "".join(sorted(set(g.flag))),
                     "n": len(g) // seeds, "dbs": g.db.nunique(),
                     "ROUGE-1 F1 [95% CI]": _fmt(r1.estimate, r1.low, r1.high),
                     "ROUGE-L [95% CI]": _fmt(rl.estimate, rl.low, rl.high),
                     "grounded": _fmt(float(g.grounded.mean())), "toxic": int(g.toxic.sum()),
                     f"accept@{ACCEPT_AT}": _fmt(float((g.rouge1 >= ACCEPT_AT).mean()))})
    return rows


def _judge_rows(judged) -> list[dict]:
    """Per judged system: the LLM judges' verdict shares and their agreement with the offline grounding proxy."""
    from siftkit.catalog.judge import GROUNDING_LABELS

    rows = []
    for system, g in judged.groupby("system", sort=False):
        jg, jt = g.judge_grounding, g.judge_toxic
        parsed = jg.notna()
        agree = ((jg[parsed] == "supported") == g.grounded[parsed].astype(bool)).mean() if parsed.any() else np.nan
        rows.append({"system": system + "".join(sorted(set(g.flag))), "n": len(g),
                     **{f"judge: {lab}": _fmt(float((jg == lab).mean())) for lab in GROUNDING_LABELS},
                     "no label": _fmt(float((~parsed).mean())), "agrees with offline grounded": _fmt(float(agree)),
                     "judge: toxic": int(jt.fillna(False).astype(bool).sum()),
                     "toxicity: no label": int(jt.isna().sum())})
    return rows


def _sft_lines(cells: list[dict], dataset: str) -> str:
    """What each fold model was trained on (the ``sft-K`` cells of a dataset share their fold models)."""
    out, seen = [], []
    for c in cells:
        folds = c["metrics"].get("sft", {})
        if c["params"]["dataset"] != dataset or folds in seen:
            continue
        seen.append(folds)
        names = ", ".join(f"`{system_of(x['params'])}`" for x in cells
                          if x["params"]["dataset"] == dataset and x["metrics"].get("sft") == folds)
        out.append(f"Fold models of {names}{flag(c)}: " + "; ".join(
            f"{name}: trained without {', '.join(v['held_out'])} on {v['rows']} rows in "
            f"{v['log'][-1]['train_runtime'] / 60:.0f} min, batch loss {v['log'][0]['loss']:.2f} (step 1) → "
            f"{v['log'][-2]['loss']:.2f} (last step)" for name, v in sorted(folds.items())))
    return "\n\n".join(out)


def dataset_section(cfg: CatalogBench, dataset: str, d, judged, sft_cells: list[dict]) -> str:
    """One dataset's tables: the baselines on every scored asset; the baselines and the main LLM systems on the
    LLM subset; and, where the ablations and the fine-tuned systems cover a smaller part of it, everything on that
    part (so each row is compared with the others on the same columns)."""
    gen = [s for s in d.system.unique() if s not in BASELINES]
    main = [s for s in cfg.llm_systems if s in gen]
    order = {s: i for i, s in enumerate(list(BASELINES) + main + sorted(set(gen) - set(main)))}
    sub_ids = set(d[d.system.isin(main)].id) or set(d[d.system.isin(gen)].id)
    half_ids = set(d[d.system.isin(set(gen) - set(main))].id) & sub_ids
    rows = _summary_rows(d[d.system.isin(BASELINES)], "all scored", order, cfg.n_resamples)
    rows += _summary_rows(d[d.id.isin(sub_ids) & d.system.isin(list(BASELINES) + main)],
                          f"LLM subset ({len(sub_ids)})", order, cfg.n_resamples)
    if half_ids and half_ids != sub_ids:
        rows += _summary_rows(d[d.id.isin(half_ids)], f"half of it ({len(half_ids)})", order, cfg.n_resamples)
    elif half_ids:
        rows += _summary_rows(d[d.id.isin(half_ids) & ~d.system.isin(list(BASELINES) + main)],
                              f"LLM subset ({len(sub_ids)})", order, cfg.n_resamples)
    minutes = d[d.system.isin(gen)].drop_duplicates(["system", "seed"]).seconds.sum() / 60
    ref = {a.id: a.description for a in _catalog(dataset).assets()}
    shown = [s for s in ("copy", "zero-shot", "rag-3", "random-3", "dense-3", "sft-3") if (d.system == s).any()]
    ex = d[d.id.isin(sorted(half_ids or sub_ids)[:3]) & (d.seed == 0)]
    ex_rows = [{"id": i, "human": ref[i], **{s: g[g.system == s].text.iloc[0] if (g.system == s).any() else ""
                                             for s in shown}} for i, g in ex.groupby("id")]
    parts = [f"## {TITLES[dataset]}", _table(rows, list(rows[0])),
             f"SmolLM2 cell time: {minutes:.0f} min on one CPU thread (answers already in the response cache, e.g. "
             "from the previous page's subset, cost nothing)."]
    sft = _sft_lines(sft_cells, dataset)
    if sft:
        parts.append(sft)
    j = judged[judged.dataset == dataset] if len(judged) else judged
    if len(j):
        jr = _judge_rows(j)
        parts += ["LLM judges (SmolLM2-135M-Instruct, the same engine; verdict = the most probable label word, each "
                  f"scored as the judge's reply) on {j.id.nunique()} columns of the LLM subset:", _table(jr, list(jr[0]))]
    if ex_rows:
        parts += ["Examples (the first three columns every system described):", _table(ex_rows, ["id", "human"] + shown)]
    return "\n\n".join(parts)


def page(cfg: CatalogBench, cells: list[dict]) -> str:
    from benchmarks.claims import claims_section, paper

    def of(experiment: str) -> list[dict]:
        return [c for c in cells if c["experiment"] == experiment]

    df = _frame(of("metadata_rag") + of("metadata_rag_ablation") + of("metadata_rag_sft"))
    judged = _frame(of("metadata_rag_judge"))
    sections = [dataset_section(cfg, ds, df[df.dataset == ds], judged, of("metadata_rag_sft"))
                for ds in cfg.datasets if (df.dataset == ds).any()]
    head = paper("metadata_rag")["headline"]
    missing = _missing_cells(cfg, cells)
    return TEMPLATE.read_text().format(
        embedder=cfg.embedder, sft=", ".join(f"{k} {v}" for k, v in cfg.sft.items()),
        sft_datasets=", ".join(TITLES[d].split(" (")[0] for d in cfg.sft_datasets), n_resamples=cfg.n_resamples,
        max_new_tokens=cfg.max_new_tokens, engine=cfg.engine,
        n_llm=", ".join(f"{n} {TITLES[d].split(' ')[0]}" for d, n in cfg.n_llm.items()),
        seeds=len(cfg.random_seeds), paper_rouge=f"{head['rouge1_f1']:.2f}",
        paper_accept=f"{head['steward_accept_low']:.0%}–{head['steward_accept_high']:.0%}",
        sections="\n\n".join(sections), claims=claims_section("metadata_rag", load=of),
        missing=("**Cells of the grid not computed** (no CPU time left in this run; their rows and claims are absent, "
                 "not filled from older runs): " + ", ".join(f"`{m}`" for m in missing) + ".") if missing else
        "Every cell of the grid is computed.").rstrip()


def _missing_cells(cfg: CatalogBench, cells: list[dict]) -> list[str]:
    """``experiment/key`` of every cell the config's grids name that has no stored record."""
    from benchmarks.cells import cell_key

    have = {(c["experiment"], cell_key(c["params"])) for c in cells}
    grids = [("metadata_rag", grid), ("metadata_rag_ablation", ablation_grid), ("metadata_rag_sft", sft_grid),
             ("metadata_rag_judge", judge_grid)]
    return [f"{e}/{cell_key(p)}" for e, g in grids for p in g(cfg) if (e, cell_key(p)) not in have]


_CATALOG = ["siftkit/catalog/model.py", "siftkit/catalog/ingest.py", "siftkit/catalog/exemplars.py",
            "siftkit/catalog/generate.py", "siftkit/catalog/evaluate.py", "siftkit/retrieval/bm25.py",
            "siftkit/metrics/text.py", "siftkit/embed/embedder.py", "siftkit/embed/hf.py", "siftkit/embed/pooling.py"]
_LLM = ["siftkit/llm/base.py", "siftkit/llm/ct2.py", "siftkit/llm/batch.py", "siftkit/llm/factory.py",
        "siftkit/llm/cache.py"]
_CELL = "benchmarks/metadata_rag.py::cell,system_of,_catalog,evenly,llm_subset,_model,_embedder,_cache,_describe,_out"


def _inputs(cfg: CatalogBench) -> dict:
    from siftkit.catalog.ingest import shared_dir

    d = shared_dir()
    if d is None:
        raise FileNotFoundError("needs ../shared/data/metadata_rag (or $SIFTKIT_SHARED)")
    return {"bird": d / "bird_mini_dev" / "dev_metadata.json", "spider2": d / "spider2_lite_bigquery"}


BENCHMARK = Benchmark(
    name="metadata_rag", title="Metadata RAG: catalog descriptions from retrieved examples (Singh et al., 2025)",
    config=CatalogBench, grid=grid, cell=cell, page=page, cell_settings=cell_settings,
    sources=_CATALOG + _LLM + [_CELL], inputs=_inputs,
    parts=[Part("metadata_rag_ablation", grid=ablation_grid, cell=ablation_cell, cell_settings=ablation_settings,
                inputs=_inputs, sources=_CATALOG + _LLM + [_CELL + ",ablation_cell"]),
           Part("metadata_rag_sft", grid=sft_grid, cell=sft_cell, cell_settings=sft_settings, inputs=_inputs,
                sources=_CATALOG + _LLM + ["siftkit/catalog/finetune.py", "siftkit/llm/finetune.py",
                                           "siftkit/llm/local.py", _CELL + ",sft_cell"]),
           Part("metadata_rag_judge", grid=judge_grid, cell=judge_cell, cell_settings=judge_settings, inputs=_inputs,
                sources=_CATALOG + _LLM + ["siftkit/catalog/judge.py", "siftkit/llm/untrusted.py",
                                           _CELL + ",judge_cell"])],
)
