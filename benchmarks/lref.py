"""LREF benchmark: zero-shot SmolLM2 vs SFT-all vs SFT-selected vs +Multi-CoT vs +DPO over seeds, and diagnostics.

    python -m benchmarks run lref --profile cpu                  # every part, resumable (finished steps kept)
    python -m benchmarks run lref --profile cpu --only part=dpodiag
    python -m benchmarks run lref --profile gpu                  # on a lent GPU (benchmarks/device/lref_gpu.sh)
    python -m benchmarks page lref --profile cpu --allow-stale   # benchmarks/results/lref.md from stored cells

Sizes and steps: ``benchmarks/config/lref.yaml``; page: ``benchmarks/lref_page.py``. Parts (axis ``part``):
``zero-shot``; ``chain`` per seed: Stage 1 (IM, CI, MS from the base model, keep rule), SFT on the whole pool, SFT
on the kept set, Multi-CoT from it, DPO from Multi-CoT; ``steps`` (a longer label-only SFT); ``stage1`` (the
selected-data chain with longer IM/CI/MS); ``dpolr``, ``dpolr_long`` (DPO rates from one label-only SFT model);
``dpodiag`` (what label-only DPO changes, by :mod:`siftkit.relevance.diagnostics`).
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import ClassVar

from benchmarks.runner import BenchConfig, Benchmark

AUX = ("im", "ci", "ms")
METRICS = ["macro_f1", "accuracy", "weighted_f1", "over_recall_err", "over_recall_pred"]
EXTRA = {"syn": ["recall_marginal", "precision_significant"], "wands": ["fpr", "recall_not_relevant"]}
PARTS = ("steps", "stage1", "dpolr", "dpolr_long", "dpodiag")


class LrefBench(BenchConfig):
    """The LREF benchmark's settings (defaults: none; every profile sets them in ``benchmarks/config/lref.yaml``)."""

    cell_fields: ClassVar[tuple[str, ...]] = PARTS + ("dpo_lr_extra",)
    experiment: str
    """cell folder under ``results/cells`` (one per profile)."""
    seeds: list[int]
    """training seeds of the main grid (each trains its own Stage 1 and chain)."""
    sizes: dict
    """data: the synthetic set (``n_pairs, n_queries, noise_rate, heldout``), ``pool``, test samples, ``data_seed``."""
    lref: dict
    """:class:`~siftkit.relevance.config.LrefConfig` fields (steps, samples, rates)."""
    dpo_lr_extra: list[float] = []
    """DPO rates tried besides ``dpo_lr``, each from the same Multi-CoT model (rows ``+dpo@lr=X``)."""
    steps: dict | None = None
    """part ``steps``: ``{seeds, steps}``."""
    stage1: dict | None = None
    """part ``stage1``: ``{seeds, stage1_steps}`` of IM, CI and MS."""
    dpolr: dict | None = None
    """part ``dpolr``: ``{seeds, lrs}``."""
    dpolr_long: dict | None = None
    """part ``dpolr_long``: ``{seeds, lrs, dpo_steps, dpo_scan}``."""
    dpodiag: dict | None = None
    """part ``dpodiag``: ``{seeds, lr, epochs, dpo_scan}``."""


def grid(cfg: LrefBench) -> list[dict]:
    cells = [{"part": "zero-shot"}] + [{"part": "chain", "seed": s} for s in cfg.seeds]
    cells += [{"part": "steps", "seed": s, "steps": n} for s in (cfg.steps or {}).get("seeds", [])
              for n in cfg.steps["steps"]]
    if cfg.stage1:
        n = cfg.stage1["stage1_steps"]
        cells += [{"part": "stage1", "seed": s, "stage1_steps": n} for s in cfg.stage1["seeds"]]
    return cells + [{"part": p, "seed": s} for p in ("dpolr", "dpolr_long", "dpodiag") for s in
                    (getattr(cfg, p) or {}).get("seeds", [])]


def cell_settings(cfg: LrefBench, params: dict) -> dict:
    p = params["part"]
    return {"dpo_lr_extra": cfg.dpo_lr_extra} if p == "chain" else {p: getattr(cfg, p)} if p in PARTS else {}


# ---------------------------------------------------------------------------------------------------------------------
# plumbing: data, models, evaluation
# ---------------------------------------------------------------------------------------------------------------------


def data(sizes: dict):
    """(pool, train, synthetic held-out sample, WANDS sample or []) of the profile's ``sizes``."""
    import random

    from siftkit.relevance.data import load_wands_binary, stratified_sample, synthetic_pairs

    d = synthetic_pairs(sizes["n_pairs"], sizes["n_queries"], sizes["noise_rate"], sizes["heldout"],
                        seed=sizes["data_seed"])
    pool = random.Random(sizes["data_seed"]).sample(d["train"], sizes["pool"])
    syn = sorted(random.Random(sizes["data_seed"]).sample(d["test"], sizes["syn_sample"]), key=lambda x: x["pid"])
    wands, folder = [], wands_dir()
    if folder is not None:
        rows = load_wands_binary(folder, "test", dedup=True)
        wands = stratified_sample(rows, sizes["wands_sample"], seed=sizes["data_seed"])
    return pool, d["train"], syn, wands


def wands_dir():
    """The WANDS pairs under ../shared (read in place: no licence to copy them), or None without ../shared."""
    from siftkit.core.assets import shared_data_dir

    folder = (shared_data_dir() or Path("/nonexistent")) / "lref" / "wands_chatgpt_goes_shopping"
    return folder if folder.is_dir() else None


def _lref_cfg(cfg: LrefBench, seed: int, **over):
    import torch

    from siftkit.relevance.config import LrefConfig

    torch.set_num_threads(cfg.threads)
    return LrefConfig(seed=seed, device=cfg.device, **{**cfg.lref, **over})


def _eval(llm, syn, wands, cot: bool, lcfg, prefix: str = "") -> dict:
    from siftkit.relevance.pipeline import evaluate

    out = {}
    for name, rows, scale, key in (("syn", syn, "five", "gold"), ("wands", wands, "binary", "label")):
        if rows:
            rep = evaluate(llm, rows, scale, cot, lcfg, gold_key=key)
            keys = METRICS + EXTRA[name] + ["n", "confusion", "example_rationale"]
            out |= {f"{prefix}{name}/{m}": rep[m] for m in keys}
    return out


def _settings(lcfg) -> dict:
    return json.loads(json.dumps(lcfg.to_dict()))  # as stored (tuples become lists)


def _merged(partial) -> dict:
    return {k: v for step in partial.state.values() for k, v in step.items()}


# ---------------------------------------------------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------------------------------------------------


def cell(cfg: LrefBench, params: dict, partial) -> dict:
    """One cell of any part. Every finished step is kept in ``partial``; models are not saved, so a resumed cell
    retrains (deterministically, same seed) up to its first missing step."""
    import torch

    from siftkit.relevance.pipeline import load_base, train_label_model

    part, seed = params["part"], params.get("seed", 0)
    pool, train, syn, wands = data(cfg.sizes)
    if part == "zero-shot":
        lcfg = _lref_cfg(cfg, 0)
        out = {"cfg": _settings(lcfg), **_eval(load_base(lcfg), syn, wands, False, lcfg)}
    elif part in ("chain", "stage1"):
        out = _chain(cfg, params, partial, pool, train, syn, wands)
    elif part == "steps":
        lcfg, t0 = _lref_cfg(cfg, seed), time.perf_counter()
        llm, log = train_label_model(lcfg, pool, params["steps"], seed)
        out = {"train_s": time.perf_counter() - t0, "train_loss": log[-1].get("train_loss", float("nan")),
               "judge_autocast": lcfg.judge_autocast, **_eval(llm, syn, wands, False, lcfg)}
    else:
        out = (_dpolr if part.startswith("dpolr") else _dpodiag)(cfg, params, partial, pool, syn, wands)
    return out | {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}


def _chain(cfg, params, partial, pool, train, syn, wands) -> dict:
    """Stage 1 (IM, CI, MS, keep rule), SFT-all (part ``chain`` only), SFT-selected, +Multi-CoT, +DPO and DPO at
    ``dpo_lr_extra`` from the same Multi-CoT model. DPO pairs come from the Stage-2 model on the whole pool (spec:
    "on the training samples") [ours: the kept subset is small and mostly already right, so it yields few pairs]."""
    import dataclasses

    from siftkit.relevance.pipeline import stage1_keep, stage1_model, stage2_multicot, stage3_dpo, train_label_model
    from siftkit.relevance.pipeline import wrap

    seed = params["seed"]
    lcfg = _lref_cfg(cfg, seed, **{k: v for k, v in params.items() if k == "stage1_steps"})

    def step(key: str, fn) -> dict:
        if key not in partial:
            partial.save(key, fn())
        return partial.get(key)

    def ev(key: str, llm, cot: bool, **more) -> None:
        step(key, lambda: {f"{key}/{k}": v for k, v in {**more, **_eval(llm, syn, wands, cot, lcfg)}.items()})

    step("stage1", lambda: {"stage1/pool_pids": [x["pid"] for x in pool], "stage1/cfg": _settings(lcfg)})
    for n in AUX:  # each auxiliary model's grades on the pool, kept once trained
        step(f"stage1/{n}", lambda n=n: {f"stage1/{n}": stage1_model(lcfg, n, train, pool, seed)})
    flags, stats = stage1_keep(lcfg, pool, {n: partial.get(f"stage1/{n}")[f"stage1/{n}"] for n in AUX})
    kept = [x for x, k in zip(pool, flags) if k]
    stats |= {} if kept else {"empty": True, "seed": seed}  # no selected-data rows for this seed
    step("selection", lambda: {f"selection/{k}": v for k, v in stats.items()})
    if params["part"] == "chain" and "sft-all" not in partial:
        ev("sft-all", train_label_model(lcfg, pool, lcfg.sft_steps, seed)[0], False)
    extra = [f"+dpo@lr={lr:g}" for lr in cfg.dpo_lr_extra] if params["part"] == "chain" else []
    if kept and any(k not in partial for k in ["sft-selected", "+multi-cot", "+dpo"] + extra):
        llm, _ = train_label_model(lcfg, kept, lcfg.sft_steps, seed)
        ev("sft-selected", llm, False)
        llm = stage2_multicot(lcfg, llm, kept, seed)
        ev("+multi-cot", llm, True)
        cot_model = copy.deepcopy(llm.model) if extra else None  # DPO merges its adapter in place
        if "+dpo" not in partial:
            dpo_llm, n_pairs = stage3_dpo(lcfg, llm, pool, seed)
            ev("+dpo", dpo_llm, True, pairs=n_pairs)
        for key, lr in zip(extra, cfg.dpo_lr_extra):  # same Multi-CoT model and (deterministic) pairs, another rate
            if key not in partial:
                other = wrap(copy.deepcopy(cot_model), llm.tokenizer, "lref-cot", batch_size=llm.batch_size)
                ev(key, stage3_dpo(dataclasses.replace(lcfg, dpo_lr=lr), other, pool, seed)[0], True)
    return _merged(partial)


def _dpolr(cfg, params, partial, pool, syn, wands) -> dict:
    """DPO at each rate of the part's ``lrs`` from one label-only sft-all model, on the same label-only pairs
    (``dpo_cot=False``: no rationale decoded); records the pairs' grade counts (where DPO pushes the prior)."""
    import dataclasses
    from collections import Counter

    from siftkit.relevance.diagnostics import pair_grades
    from siftkit.relevance.lref import GRADES
    from siftkit.relevance.pipeline import stage3_pairs, train_label_model, wrap
    from siftkit.relevance.train import dpo

    seed, sw = params["seed"], getattr(cfg, params["part"])
    lcfg = _lref_cfg(cfg, seed, dpo_cot=False, **{k: sw[k] for k in ("dpo_steps", "dpo_scan") if k in sw})
    llm, _ = train_label_model(lcfg, pool, lcfg.sft_steps, seed)
    partial.save("cfg", {"cfg": _settings(lcfg)})
    if "start" not in partial:
        partial.save("start", _eval(llm, syn, wands, False, lcfg, "start/"))
    pairs = stage3_pairs(lcfg, llm, pool, seed)
    g = pair_grades(pairs)
    partial.save("pairs", {"pairs": len(pairs), "pairs_chosen": dict(Counter(GRADES[c] for c, _ in g)),
                           "pairs_rejected": dict(Counter(GRADES[r] for _, r in g))})
    for lr in sw["lrs"] if pairs else []:
        if f"lr={lr:g}" not in partial:
            model, hist = dpo(copy.deepcopy(llm.model), llm.tokenizer, pairs, lcfg.dpo_steps,
                              dataclasses.replace(lcfg, dpo_lr=lr), seed)
            res = _eval(wrap(model, llm.tokenizer, "lref-dpo", batch_size=llm.batch_size), syn, wands, False, lcfg,
                        f"lr={lr:g}/")
            partial.save(f"lr={lr:g}", res | {f"lr={lr:g}/train_loss": hist[-1].get("train_loss")})
    return _merged(partial)


DIAG_VARIANTS = {"all": ("label", "all"), "over": ("label", "over"), "clean": ("gold", "all")}
"""Pair sets of the DPO diagnostic: (label the pairs are mined against, ``dpo_errors``). ``all``: the spec's rule on
the pool's (noisy) labels; ``over``: over-estimated samples only; ``clean``: mined against the clean grade (an
oracle, which says how much the injected label noise matters)."""


def _dpodiag(cfg, params, partial, pool, syn, wands) -> dict:
    """From one label-only sft-all model, DPO on each pair set of :data:`DIAG_VARIANTS`, then
    :func:`~siftkit.relevance.diagnostics.dpo_shift_report` on the synthetic held-out split."""
    import dataclasses

    from siftkit.relevance import lref
    from siftkit.relevance.diagnostics import dpo_shift_report, judge_summary, pair_grades, top1
    from siftkit.relevance.pipeline import predict, stage3_pairs, train_label_model, wrap
    from siftkit.relevance.train import dpo, prompt_text

    seed, dd = params["seed"], cfg.dpodiag
    lcfg = _lref_cfg(cfg, seed, dpo_cot=False, dpo_scan=dd["dpo_scan"], dpo_lr=dd["lr"])
    llm, _ = train_label_model(lcfg, pool, lcfg.sft_steps, seed)
    gold = [x["gold"] for x in syn]
    lp0_s, lp0_p = predict(llm, syn, cfg=lcfg)[1], predict(llm, pool, cfg=lcfg)[1]
    partial.save("cfg", {"cfg": _settings(lcfg)})
    partial.save("start", {f"start/{k}": v for k, v in judge_summary(gold, top1(lp0_s)).items()})
    where: dict[str, list[int]] = {}  # prompt text → pool rows (a duplicated pair has one prompt, several rows)
    for i, x in enumerate(pool):
        where.setdefault(prompt_text(llm.tokenizer, lref.judge_prompt(x["query"], x["title"])), []).append(i)
    for name, (key, errors) in DIAG_VARIANTS.items():
        if name in partial:
            continue
        rows = pool if key == "label" else [x | {"label": x["gold"]} for x in pool]
        pairs = stage3_pairs(dataclasses.replace(lcfg, dpo_errors=errors), llm, rows, seed)
        idx, grade = [where[p["prompt"]][0] for p in pairs], pair_grades(pairs)
        steps = math.ceil(dd["epochs"] * len(pairs) / lcfg.dpo_batch_size)
        res = {"pairs": len(pairs), "pairs_noisy": sum(pool[i]["noisy"] for i in idx), "steps": steps,
               "pairs_over": sum(c > r for c, r in grade)}  # grades best first: c > r = rejected above chosen
        if pairs:
            after = wrap(dpo(copy.deepcopy(llm.model), llm.tokenizer, pairs, steps, lcfg, seed)[0], llm.tokenizer,
                         "lref-dpo", batch_size=llm.batch_size)
            lp_s, lp_p = predict(after, syn, cfg=lcfg)[1], predict(after, pool, cfg=lcfg)[1]
            used = {i for p in pairs for i in where[p["prompt"]]}
            res |= dpo_shift_report(gold, lp0_s, lp_s, lp0_p, lp_p, idx, grade, used)
        partial.save(name, {f"{name}/{k}": v for k, v in res.items()})
    return _merged(partial)



def page(cfg: LrefBench, cells: list[dict]) -> str:
    from benchmarks.lref_page import render

    return render(cfg, cells)


BENCHMARK = Benchmark(
    name="lref", title="LREF on SmolLM2-135M", config=LrefBench, grid=grid, cell=cell, page=page,
    cell_settings=cell_settings, experiment=lambda cfg: cfg.experiment,
    inputs=lambda cfg: {"wands": wands_dir()} if wands_dir() else {},
    sources=[*(f"siftkit/relevance/{f}.py" for f in ("config", "data", "diagnostics", "lref", "metrics", "pipeline",
                                                     "train")),
             "siftkit/llm/finetune.py", "siftkit/llm/local.py", "siftkit/llm/fastscore.py", "siftkit/llm/untrusted.py",
             "benchmarks/lref.py::data,_lref_cfg,_eval,_settings,_merged,cell,_chain,_dpolr,_dpodiag,DIAG_VARIANTS"],
    legacy_files=["siftkit/relevance", "siftkit/llm", "benchmarks/lref.py"])
