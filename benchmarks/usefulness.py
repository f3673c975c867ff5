"""LLM usefulness labelling: the published-output check and the SmolLM2 ablation, into one results page.

    python -m benchmarks run usefulness --profile gpu       # the cells (resumable)
    python -m benchmarks page usefulness --profile gpu      # benchmarks/results/usefulness.md from stored cells

Three cell experiments: ``usefulness_ablation`` (the SmolLM2 grid), ``usefulness_published`` (the authors'
published outputs scored by siftkit.metrics, one cell per condition of the known-answer matrix,
siftkit/usefulness/published.yaml) and ``usefulness_session_delta`` (session − baseline prompt, paired cluster
bootstrap, on the published outputs and on the SmolLM2 session sample). The gold labels are not copied into cells;
the cells hold estimates.

Needs ../shared/data/usefulness (read in place, never copied). The ablation labels a fixed sample with the embedded
SmolLM2-135M-Instruct, reading each label from label log-probabilities (``readout=logprob``); the variants (sample,
prompt, features, groups switched off, read-out) are listed in benchmarks/config/usefulness.yaml. Each cell stores
its predictions; the page computes the metrics from them (so a cell computed on another machine is scored here).
The page's prose is benchmarks/templates/usefulness.md.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from benchmarks.runner import BenchConfig, Benchmark, Part, flag, md_table

ALL_GROUPS = ("task", "query", "document", "behaviour")
TEMPLATE = Path(__file__).resolve().parent / "templates" / "usefulness.md"


class Variant(BaseModel):
    """One ablation cell: which sample, prompt and features, and how the label is read."""

    model_config = ConfigDict(extra="forbid")

    sample: Literal["rows", "sessions"]
    """``rows``: per_group clicks per divergence group; ``sessions``: all clicks of n_sessions task sessions."""
    mode: Literal["baseline", "session"]
    """baseline (one click per call) or session prompt (one session per call, spec §3)."""
    features: str
    """feature preset of siftkit.usefulness (``all``, ``relevance``, ``content``, ...)."""
    groups_off: list[str] = []
    """feature groups switched off (of task, query, document, behaviour)."""
    options: dict[str, Any] = {}
    """further UsefulnessConfig fields (e.g. ``readout: generate``); the default read-out is ``logprob``."""


class UsefulnessBench(BenchConfig):
    """Settings of the SmolLM2 ablation (defaults: the page's run)."""

    page_fields: ClassVar[tuple[str, ...]] = ("n_resamples",)
    cell_fields: ClassVar[tuple[str, ...]] = ("variants",)

    model: str = "smollm2"
    """embedded model (siftkit.llm.factory name)."""
    per_group: int = 25
    """row sample: clicks per relevance/usefulness divergence group."""
    n_sessions: int = 20
    """session sample: task sessions drawn."""
    seed: int = 0
    """seed of both samples."""
    n_resamples: int = 1000
    """bootstrap resamples of the ablation table's CIs (page only)."""
    cell_resamples: int = 1000
    """bootstrap resamples of the CIs stored in the published and session-delta cells."""
    delta_models: list[str] = ["Llama-3.3-70B", "Llama-3.1-8B", "Llama-3.2-3B"]
    """published models whose session − baseline difference is estimated (the GPT session files do not align)."""
    variants: dict[str, Variant]
    """the cells: name → variant."""


# ---------------------------------------------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------------------------------------------

@functools.cache
def _samples(per_group: int, n_sessions: int, seed: int) -> dict[str, list]:
    from siftkit.usefulness.run import sample_sessions, stratified_rows

    clicks = _clicks()
    return {"rows": stratified_rows(clicks, per_group, seed), "sessions": sample_sessions(clicks, n_sessions, seed)}


@functools.cache
def _model(name: str, device: str, threads: int, batch_size: int):
    from siftkit.usefulness.run import make_model

    return make_model(name, device=device, threads=threads, batch_size=batch_size)


def cell(cfg: UsefulnessBench, params: dict) -> dict:
    """Label one variant's sample; returns the label summary and the predictions (``{id: score}``)."""
    import platform
    import time

    from siftkit.usefulness.config import UsefulnessConfig
    from siftkit.usefulness.run import label_clicks

    v = cfg.variants[params["variant"]]
    samples = _samples(cfg.per_group, cfg.n_sessions, cfg.seed)
    model = _model(cfg.model, cfg.device, cfg.threads, cfg.batch_size)
    groups = tuple(g for g in ALL_GROUPS if g not in v.groups_off)
    ucfg = UsefulnessConfig(mode=v.mode, features=v.features, groups=groups, **{"readout": "logprob", **v.options})
    t0 = time.perf_counter()
    res = label_clicks(model, samples[v.sample], ucfg)
    if cfg.device.startswith("cuda"):
        import torch

        device_name = torch.cuda.get_device_name()
    else:
        device_name = platform.processor()
    return {**res.summary(), "label_seconds": round(time.perf_counter() - t0, 2), "device": cfg.device,
            "device_name": device_name, "model": model.model_id, "predictions": res.scores}


def _conditions() -> dict[tuple[str, str, str], dict]:
    """The known-answer matrix's conditions by (model, prompt, policy)."""
    from siftkit.usefulness.evaluate import load_reproduction

    return {(c["model"], c["prompt"], c.get("policy", "exclude")): c for c in load_reproduction()}


def _published_labels(file: str) -> dict:
    from siftkit.usefulness.data import load_labels_json

    return load_labels_json(_published_dir() / file)


@functools.cache
def _clicks() -> list:
    from siftkit.usefulness.data import load_thuir

    return load_thuir(_thuir_csv())


def published_cell(cfg: UsefulnessBench, params: dict) -> dict:
    """The measures of one published output file against the users' labels (CIs over whole queries)."""
    from siftkit.usefulness.evaluate import PUBLISHED_KEYS, evaluate_labels

    cond = _conditions()[(params["model"], params["prompt"], params["policy"])]
    m = evaluate_labels(_clicks(), _published_labels(cond["file"]), params["policy"], "query", cfg.cell_resamples)
    return {k: m.get(k) for k in PUBLISHED_KEYS}


def _delta_grid(cfg: UsefulnessBench) -> list[dict]:
    return [{"source": "published", "model": m} for m in cfg.delta_models] + [
        {"source": "smollm2", "model": "SmolLM2-135M-Instruct"}]


def _ablation_cells() -> dict[str, Path]:
    from benchmarks.cells import CELLS, cell_key

    return {v: CELLS / "usefulness_ablation" / f"{cell_key({'variant': v})}.json"
            for v in ("sessions|session|all", "sessions|baseline|all")}


def _delta_settings(cfg: UsefulnessBench, params: dict) -> dict:
    """Per cell: the published files compared, or the hashes of the two SmolLM2 ablation cells read."""
    from benchmarks.cells import input_hash

    if params["source"] == "published":
        c = _conditions()
        return {"session": c[(params["model"], "session", "exclude")]["file"],
                "baseline": c[(params["model"], "baseline", "exclude")]["file"]}
    return {"ablation_cells": {v: input_hash(p) if p.exists() else None for v, p in _ablation_cells().items()}}


def delta_cell(cfg: UsefulnessBench, params: dict) -> dict:
    """ρ and κ of the session prompt minus the baseline prompt on the same clicks, paired cluster bootstrap (whole
    queries for the published outputs, whole sessions for the SmolLM2 sample)."""
    from siftkit.usefulness.evaluate import paired_difference

    unverified: list[str] = []
    if params["source"] == "published":
        c = _conditions()
        clicks, cluster = _clicks(), "query"
        pred_a = _published_labels(c[(params["model"], "session", "exclude")]["file"])
        pred_b = _published_labels(c[(params["model"], "baseline", "exclude")]["file"])
    else:
        cells = {r["params"]["variant"]: r for r in BENCHMARK.experiment_for(cfg).load()}
        a, b = cells["sessions|session|all"], cells["sessions|baseline|all"]
        unverified = [f"usefulness_ablation/{r['params']['variant']}" for r in (a, b) if r["status"] != "fresh"]
        clicks, cluster = _samples(cfg.per_group, cfg.n_sessions, cfg.seed)["sessions"], "session"
        pred_a, pred_b = a["metrics"]["predictions"], b["metrics"]["predictions"]
    out: dict[str, Any] = {}
    for measure in ("spearman", "kappa"):
        d = paired_difference(clicks, pred_a, pred_b, measure, "exclude", cluster, cfg.cell_resamples, seed=0)
        out.update({f"delta_{measure}": d["delta"], f"delta_{measure}_lo": d["lo"], f"delta_{measure}_hi": d["hi"]})
        out["n"], out["clusters"] = d["n"], d["clusters"]
    if unverified:
        out["unverified_inputs"] = unverified
    return out


# ---------------------------------------------------------------------------------------------------------------
# page
# ---------------------------------------------------------------------------------------------------------------

def ablation_markdown(cfg: UsefulnessBench, cells: list[dict]) -> str:
    from siftkit.usefulness.data import GROUPS
    from siftkit.usefulness.evaluate import _fmt, evaluate_labels

    samples = _samples(cfg.per_group, cfg.n_sessions, cfg.seed)
    by_name = {c["params"]["variant"]: c for c in cells}
    head = ["sample", "prompt", "features", "groups off", "read-out", "valid/invalid/missing", "Spearman ρ [CI]",
            "accuracy [CI]", "κ", "QWK", *GROUPS, "labels 0/1/2/3", "device, s"]
    rows = []
    for name, v in cfg.variants.items():
        readout = v.options.get("readout", "logprob")
        if name not in by_name:
            rows.append([v.sample, v.mode, v.features, "", readout, "not run"] + [""] * 10)
            continue
        c = by_name[name]
        m = c["metrics"]
        r = evaluate_labels(samples[v.sample], m["predictions"], cluster="query" if v.sample == "rows" else "session",
                            n_resamples=cfg.n_resamples, ci=("spearman", "accuracy"))
        off = ",".join(g for g in ALL_GROUPS if g in v.groups_off) or "—"
        dist = "/".join(str(m["label_distribution"][str(k)]) for k in range(4))
        rows.append([
            v.sample + flag(c), v.mode, v.features, off, readout, f"{m['valid']}/{m['invalid']}/{m['missing']}",
            f"{_fmt(r.get('spearman'))} [{_fmt(r.get('spearman_lo'))}, {_fmt(r.get('spearman_hi'))}]",
            f"{_fmt(r.get('accuracy'))} [{_fmt(r.get('accuracy_lo'))}, {_fmt(r.get('accuracy_hi'))}]",
            _fmt(r.get("kappa")), _fmt(r.get("qwk")), *(_fmt(r.get(f"acc_{g}")) for g in GROUPS), dist,
            f"{m['device']}, {m['label_seconds']:.0f}"])
    return md_table(head, rows)


def _provenance(cfg: UsefulnessBench, cells: list[dict]) -> str:
    if not cells:
        return ""
    by_device: dict[str, list[float]] = {}
    for c in cells:
        by_device.setdefault(c["metrics"].get("device_name") or c["metrics"]["device"], []).append(
            c["metrics"]["label_seconds"])
    where = "; ".join(f"{len(v)} on {d} ({sum(v):.0f} s of labelling)" for d, v in sorted(by_device.items()))
    sess = [c["metrics"] for c in cells if c["params"]["variant"] == "sessions|session|all"]
    split = (f" The {cfg.n_sessions} sessions hold {sess[0]['ids']} clicks and took {sess[0]['calls']} session "
             f"calls (longer sessions split by query)." if sess else "")
    return f"Where they ran: {where}.{split}"


def published_frame(cells: list[dict]):
    """The published table (:func:`siftkit.usefulness.evaluate.published_table`'s rows) from the stored cells."""
    import pandas as pd

    from siftkit.usefulness.evaluate import known_answer_row

    by = {(c["params"]["model"], c["params"]["prompt"], c["params"]["policy"]): c for c in cells}
    rows = []
    for key, cond in _conditions().items():
        if key in by:
            row = known_answer_row(cond, by[key]["metrics"])
            row["model"] += flag(by[key])
            rows.append(row)
    return pd.DataFrame(rows)


def page(cfg: UsefulnessBench, cells: list[dict]) -> str:
    from benchmarks.claims import claims_section
    from siftkit.usefulness.evaluate import groups_markdown, published_markdown

    def of(experiment: str) -> list[dict]:
        return [c for c in cells if c["experiment"] == experiment]

    pub = published_frame(of("usefulness_published"))
    l32 = pub[(pub["model"].str.startswith("Llama-3.2-3B")) & (pub["prompt"] == "baseline")].set_index("policy")
    return TEMPLATE.read_text().format(
        n_resamples=cfg.cell_resamples, n_ok=int((pub["status"] == "OK").sum()),
        n_known=int((pub["status"] != "n/a").sum()),
        l32_rho=f"{l32.loc['exclude', 'expected']['spearman']:.3f}", l32_invalid=int(l32.loc["keep", "n_invalid"]),
        l32_acc=f"{l32.loc['keep', 'expected']['accuracy']:.3f}",
        published=published_markdown(pub), groups=groups_markdown(pub), n_rows=4 * cfg.per_group,
        per_group=cfg.per_group, seed=cfg.seed, n_sessions=cfg.n_sessions,
        ablation=ablation_markdown(cfg, of("usefulness_ablation")),
        provenance=_provenance(cfg, of("usefulness_ablation")),
        ablation_resamples=cfg.n_resamples, claims=claims_section("usefulness", load=of)).rstrip()


_PUBLISHED_SOURCES = ["siftkit/usefulness/evaluate.py", "siftkit/usefulness/data.py", "siftkit/metrics/agreement.py",
                      "siftkit/metrics/stats.py",
                      "benchmarks/usefulness.py::published_cell,_conditions,_published_labels"]

BENCHMARK = Benchmark(
    name="usefulness", title="LLM usefulness labelling (Dewan, Liu, Shah, SIGIR 2025)", config=UsefulnessBench,
    grid=lambda cfg: {"variant": list(cfg.variants)}, cell=cell, page=page,
    cell_settings=lambda cfg, params: cfg.variants[params["variant"]].model_dump(),
    sources=["siftkit/usefulness/config.py", "siftkit/usefulness/data.py", "siftkit/usefulness/labeler.py",
             "siftkit/usefulness/run.py", "siftkit/llm/base.py", "siftkit/llm/local.py", "siftkit/llm/factory.py",
             "siftkit/llm/untrusted.py", "benchmarks/usefulness.py::cell,_samples,_model,ALL_GROUPS"],
    inputs=lambda cfg: {"thuir": _thuir_csv()},
    experiment="usefulness_ablation",
    parts=[Part("usefulness_published", grid=lambda cfg: [dict(zip(("model", "prompt", "policy"), k))
                                                          for k in _conditions()],
                cell=published_cell, cell_settings=lambda cfg, params: {"file": _conditions()[
                    (params["model"], params["prompt"], params["policy"])]["file"]},
                sources=_PUBLISHED_SOURCES, inputs=lambda cfg: {"thuir": _thuir_csv(), "published": _published_dir()}),
           Part("usefulness_session_delta", grid=_delta_grid, cell=delta_cell, cell_settings=_delta_settings,
                sources=_PUBLISHED_SOURCES + ["benchmarks/usefulness.py::delta_cell,_samples"],
                inputs=lambda cfg: {"thuir": _thuir_csv(), "published": _published_dir()})],
    # before the port onto the runner: the old module and the method code the legacy cells must match
    legacy_at="ca004797bee203c35ed7bcadad483973876d5d57",
    legacy_files=["siftkit/usefulness", "siftkit/llm", "benchmarks/usefulness.py"],
)


def _thuir_csv() -> Path:
    from siftkit.usefulness.data import THUIR_CSV

    return _shared() / THUIR_CSV


def _published_dir() -> Path:
    from siftkit.usefulness.data import RESULTS_DIR

    return _shared() / RESULTS_DIR


def _shared() -> Path:
    from siftkit.core.assets import shared_data_dir

    from siftkit.core.errors import InputError

    shared = shared_data_dir()
    if shared is None:  # before anything runs: one line, exit 2
        raise InputError("not found: this benchmark reads ../shared/data/usefulness (or $SIFTKIT_SHARED/data)",
                         field="shared data")
    return shared
