"""LREF benchmark: zero-shot SmolLM2 vs SFT-all vs SFT-selected vs +Multi-CoT vs +DPO, 3 training seeds.

Test sets: the synthetic five-grade held-out split (whole held-out queries, clean labels) and a fixed stratified
sample of the WANDS binary test pairs after removing the 50 that overlap train/few-shot (read from ../shared; skipped
without it). Each seed trains its own chain: Stage 1 (IM, CI, MS from the base model, and the kept set), SFT on all
of the pool, SFT on the kept set, Multi-CoT from SFT-selected, DPO from Multi-CoT. Sizes are the ``LrefConfig``
defaults plus :data:`SIZES` / :data:`BENCH_CFG`.

Run (resumable: finished cells are skipped; a restarted seed keeps its Stage-1 predictions and its SFT-all result
and retrains the rest of its chain). IM, CI and MS of each seed train in their own processes, side by side; the
seed's chain starts once they are done::

    python -m benchmarks.lref all --jobs 4      # zero-shot, the three seeds, then the table
    python -m benchmarks.lref steps             # one longer label-only SFT (300 steps, seed 0)
    python -m benchmarks.lref stage1 --jobs 2   # the selected-data chain with IM/CI/MS at 200 steps each
    python -m benchmarks.lref dpolr --jobs 2    # DPO at four learning rates from label-only SFT models
    python -m benchmarks.lref dpolr --long      # the two small rates, pairs from the whole pool, 100 steps
    python -m benchmarks.lref dpodiag --jobs 2  # what label-only DPO changes: a grade prior or the grading
    python -m benchmarks.lref table             # rewrite benchmarks/results/lref.md from the cells
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.cells import CELLS, RESULTS, Experiment, load_cells, run_experiment, write_markdown
from siftkit.core.io import atomic_write_text

SIZES = {"n_pairs": 2000, "n_queries": 300, "noise_rate": 0.15, "heldout": 0.15, "pool": 600, "syn_sample": 280,
         "wands_sample": 120, "data_seed": 0}
BENCH_CFG = {"stage1_steps": 100, "sft_steps": 200, "im_sample": 400, "ci_sample": 400, "cot_steps": 15,
             "dpo_steps": 20, "dpo_scan": 200, "cot_max_new_tokens": 24, "lr": 1e-3, "judge_autocast": True}
"""Sized for about two hours of a quiet 2-core CPU (three seed processes, one torch thread each) [ours]: the
40/60-step grid of an earlier session left every model near chance, 300 label-only steps learn the grades, and
100/200 steps are what fits the time."""
CPU_SIZES, CPU_CFG = SIZES, BENCH_CFG
GPU_SIZES = {**SIZES, "pool": 1720, "syn_sample": 280}
GPU_CFG = {"stage1_steps": 200, "sft_steps": 200, "im_sample": 600, "ci_sample": 600, "cot_steps": 60,
           "dpo_steps": 60, "dpo_scan": 400, "cot_max_new_tokens": 32, "lr": 5e-4, "batch_size": 16, "dpo_lr": 5e-5}
"""The same grid on one GPU: the whole training split as pool, the whole held-out split, more steps; IM/CI/MS at the
main SFT's step count (the CPU run shows 100 steps leave them collapsed); DPO at a tenth of the SFT learning rate
[ours] (the CPU run's DPO, at the SFT rate, collapses onto the low grades). Run by ``benchmarks/device/lref_gpu.sh``
on a lent GPU machine."""
PROFILE = os.environ.get("LREF_PROFILE", "cpu")  # cpu | gpu; the gpu profile writes its own cells (lref_gpu*)
DPO_LR_EXTRA: list[float] = []
"""DPO learning rates tried besides ``dpo_lr``, each from the same Multi-CoT model and pairs (row ``+dpo@lr=X``)."""
if PROFILE == "gpu":
    SIZES, BENCH_CFG = GPU_SIZES, GPU_CFG
    DPO_LR_EXTRA = [GPU_CFG["lr"]]  # DPO at the SFT rate too, as the CPU profile runs it
BASE = os.environ.get("LREF_BASE_MODEL", "smollm2")
NAME = "lref" if PROFILE == "cpu" else "lref_gpu"
CONDITIONS = ["zero-shot", "sft-all", "sft-selected", "+multi-cot", "+dpo"]
SEEDS = [0, 1, 2]
METRICS = ["macro_f1", "accuracy", "weighted_f1", "over_recall_err", "over_recall_pred"]
EXTRA = {"syn": ["recall_marginal", "precision_significant"], "wands": ["fpr", "recall_not_relevant"]}


def _setup():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(1)
    import datasets

    datasets.disable_progress_bars()


def data(sizes: dict | None = None):
    """(pool, train, synthetic held-out, WANDS sample or [])."""
    import random

    from siftkit.core.assets import shared_data_dir
    from siftkit.relevance.data import load_wands_binary, stratified_sample, synthetic_pairs

    sizes = sizes or SIZES

    d = synthetic_pairs(sizes["n_pairs"], sizes["n_queries"], sizes["noise_rate"], sizes["heldout"],
                        seed=sizes["data_seed"])
    pool = random.Random(sizes["data_seed"]).sample(d["train"], sizes["pool"])
    syn = sorted(random.Random(sizes["data_seed"]).sample(d["test"], sizes["syn_sample"]), key=lambda x: x["pid"])
    shared = shared_data_dir()
    wands = []
    if shared is not None and (shared / "lref" / "wands_chatgpt_goes_shopping").is_dir():
        rows = load_wands_binary(shared / "lref" / "wands_chatgpt_goes_shopping", "test", dedup=True)
        wands = stratified_sample(rows, sizes["wands_sample"], seed=sizes["data_seed"])
    return pool, d["train"], syn, wands


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _eval(llm, syn, wands, cot, cfg) -> dict:
    from siftkit.relevance.pipeline import evaluate

    out = {}
    for name, rows, scale, key in (("syn", syn, "five", "gold"), ("wands", wands, "binary", "label")):
        if not rows:
            continue
        t0 = time.perf_counter()
        rep = evaluate(llm, rows, scale, cot, cfg, gold_key=key)
        for m in METRICS + EXTRA[name]:
            out[f"{name}/{m}"] = rep[m]
        out[f"{name}/n"] = rep["n"]
        out[f"{name}/confusion"] = rep["confusion"]
        out[f"{name}/example_rationale"] = rep["example_rationale"]
        _log(f"  eval {name}: macro-F1 {rep['macro_f1']:.3f} acc {rep['accuracy']:.3f} "
             f"over-recall/err {rep['over_recall_err']:.3f} ({time.perf_counter() - t0:.0f} s)")
    return out


def shared_cell(params: dict) -> dict:
    """``part=zero-shot``: the untrained model on both test sets."""
    from siftkit.relevance.config import LrefConfig
    from siftkit.relevance.pipeline import load_base

    _setup()
    cfg = LrefConfig(seed=0, base_model=BASE, **BENCH_CFG)
    _, _, syn, wands = data()
    _log(params["part"])
    return {"cfg": cfg.to_dict(), "device": _device_name(), **_eval(load_base(cfg), syn, wands, False, cfg)}


AUX = ("im", "ci", "ms")


def _cfg(seed: int, stage1_steps: int | None = None):
    from siftkit.relevance.config import LrefConfig

    over = {} if stage1_steps is None else {"stage1_steps": stage1_steps}
    return LrefConfig(seed=seed, base_model=BASE, **{**BENCH_CFG, **over})


def _settings(cfg) -> dict:
    return json.loads(json.dumps(cfg.to_dict()))  # as stored (tuples become lists)


def aux_cell(tag: str, seed: int, name: str, stage1_steps: int | None = None) -> None:
    """One Stage-1 auxiliary model (``im``, ``ci`` or ``ms``) of one seed, in its own process, so the three
    train side by side; its pool predictions go to ``<tag>_partial/seed=<seed>__aux=<name>.json``."""
    from siftkit.relevance.pipeline import stage1_model

    _setup()
    cfg = _cfg(seed, stage1_steps)
    pool, train, _, _ = data()
    path = CELLS / f"{tag}_partial" / f"seed={seed}__aux={name}.json"
    have = json.loads(path.read_text())["metrics"] if path.exists() else {}
    if have.get(f"stage1/{name}_cfg") == _settings(cfg) and have.get(f"stage1/{name}_pool_pids") == [
            x["pid"] for x in pool]:  # the same as the chain accepts
        return
    preds = stage1_model(cfg, name, train, pool, seed, log=_log)
    atomic_write_text(path, json.dumps({"params": {"seed": seed, "aux": name},
                                        "metrics": {f"stage1/{name}": preds, f"stage1/{name}_cfg": _settings(cfg),
                                                    f"stage1/{name}_pool_pids": [x["pid"] for x in pool]}}))


def seed_cell(params: dict) -> dict:
    """One seed's chain: Stage 1 (IM, CI, MS, keep rule), SFT-all, SFT-selected, +Multi-CoT, +DPO."""
    return _chain(NAME, params, _cfg(params["seed"]), sft_all=True)


def stage1_cell(params: dict) -> dict:
    """The selected-data chain with IM, CI and MS trained for ``stage1_steps`` steps each (SFT-all: the main cell
    of the same seed, whose training does not depend on Stage 1)."""
    return _chain(f"{NAME}_stage1", params, _cfg(params["seed"], params["stage1_steps"]), sft_all=False)


def _chain(tag: str, params: dict, cfg, sft_all: bool) -> dict:
    """Stage 1 (auxiliary predictions from ``aux_cell`` files when present), then the conditions.

    DPO pairs come from the Stage-2 model on the training pool (spec: "on the training samples"), not only on the
    kept subset [ours: the kept subset is small and mostly already right, so it yields few pairs].
    """
    import copy
    import dataclasses

    from siftkit.relevance.pipeline import stage1_keep, stage1_model, stage2_multicot, stage3_dpo, train_label_model, \
        wrap

    _setup()
    seed = params["seed"]
    pool, train, syn, wands = data()
    parts = CELLS / f"{tag}_partial"
    partial = parts / f"seed={seed}.json"
    out = json.loads(partial.read_text())["metrics"] if partial.exists() else {}  # resume after a restart

    def save(cond: str, res: dict) -> None:  # results so far, so an interrupted seed still reports its stages
        out.update({f"{cond}/{k}": v for k, v in res.items()})
        atomic_write_text(partial, json.dumps({"params": params, "metrics": out}, default=float))

    children: list[int] = []

    def evaluate_cond(cond: str, llm, cot: bool) -> None:  # one condition's partial cell
        res = _eval(llm, syn, wands, cot, cfg)
        atomic_write_text(parts / f"seed={seed}__cond={cond}.json",
                          json.dumps({"params": {"seed": seed, "cond": cond},
                                      "metrics": {f"{cond}/{k}": v for k, v in res.items()}}, default=float))

    def eval_async(cond: str, llm, cot: bool) -> None:
        """Evaluate in a forked child, so the next stage trains meanwhile (the child sees a frozen copy).

        On a GPU (CUDA cannot be used in a forked child) the evaluation runs in this process instead."""
        if llm.device.type != "cpu":
            evaluate_cond(cond, llm, cot)
            return
        pid = os.fork()
        if pid == 0:  # child: evaluate, write its own partial cell, leave without cleanup handlers
            code = 1
            try:
                evaluate_cond(cond, llm, cot)
                code = 0
            finally:
                os._exit(code)
        children.append(pid)

    t0 = time.perf_counter()
    pids = [x["pid"] for x in pool]
    if out.get("stage1/pool_pids", pids) != pids:
        raise RuntimeError(f"{partial} comes from another pool; delete it to retrain seed {seed}")
    settings = _settings(cfg)
    if out.get("stage1/cfg", settings) != settings:
        raise RuntimeError(f"{partial} was trained with other settings; delete it to retrain seed {seed}")
    save("stage1", {"pool_pids": pids, "cfg": settings})
    for name in AUX:  # Stage 1, trained with this seed: from an aux_cell file, else here
        aux = parts / f"seed={seed}__aux={name}.json"
        got = json.loads(aux.read_text())["metrics"] if aux.exists() else {}
        if f"stage1/{name}" not in out and got.get(f"stage1/{name}_cfg") == settings \
                and got.get(f"stage1/{name}_pool_pids") == pids:
            save("stage1", {name: got[f"stage1/{name}"]})
        if f"stage1/{name}" not in out:
            save("stage1", {name: stage1_model(cfg, name, train, pool, seed, log=_log)})
    preds = {n: out[f"stage1/{n}"] for n in AUX}
    kept_flags, stats = stage1_keep(cfg, pool, preds)
    save("selection", stats)
    kept = [x for x, k in zip(pool, kept_flags) if k]
    if sft_all and not (parts / f"seed={seed}__cond=sft-all.json").exists():  # kept from a killed run
        _log(f"seed {seed}: sft-all on {len(pool)}")
        llm, _ = train_label_model(cfg, pool, cfg.sft_steps, seed)
        eval_async("sft-all", llm, False)
    if kept:
        _log(f"seed {seed}: sft-selected on {len(kept)}")
        llm, _ = train_label_model(cfg, kept, cfg.sft_steps, seed)
        eval_async("sft-selected", llm, False)
        llm = stage2_multicot(cfg, llm, kept, seed, log=_log)
        eval_async("+multi-cot", llm, True)
        cot_model = copy.deepcopy(llm.model) if DPO_LR_EXTRA else None  # DPO merges its adapter in place
        llm, n_pairs = stage3_dpo(cfg, llm, pool, seed, log=_log)
        save("+dpo", {"pairs": n_pairs, **_eval(llm, syn, wands, True, cfg)})
        for lr in DPO_LR_EXTRA:  # the same Multi-CoT model and (deterministic) pairs, DPO at another rate
            _log(f"seed {seed}: +dpo at lr {lr:g}")
            other = wrap(copy.deepcopy(cot_model), llm.tokenizer, "lref-cot", batch_size=llm.batch_size)
            other, _ = stage3_dpo(dataclasses.replace(cfg, dpo_lr=lr), other, pool, seed, log=_log)
            save(f"+dpo@lr={lr:g}", _eval(other, syn, wands, True, cfg))
    else:  # nothing to train the selected-data chain on: its three rows have no result for this seed
        _log(f"seed {seed}: the keep rule kept no pair; no sft-selected, +multi-cot, +dpo")
        save("selection", {"empty": True, "seed": seed})
    failed = [pid for pid in children if os.waitpid(pid, 0)[1] != 0]
    if failed:  # a condition without its evaluation must not be recorded as a finished seed
        raise RuntimeError(f"seed {seed}: {len(failed)} evaluation process(es) failed; see the log")
    for f in sorted(parts.glob(f"seed={seed}__cond=*.json")):
        out.update(json.loads(f.read_text())["metrics"])
    out["seconds_total"] = time.perf_counter() - t0
    out["device"] = _device_name()
    return out


def _device_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def steps_cell(params: dict) -> dict:
    """Label-only SFT on the whole pool for ``steps`` optimiser steps: how long SmolLM2 needs to learn the grades."""
    from siftkit.relevance.config import LrefConfig
    from siftkit.relevance.pipeline import train_label_model

    _setup()
    cfg = LrefConfig(seed=params["seed"], base_model=BASE, **BENCH_CFG)
    pool, _, syn, wands = data()
    t0 = time.perf_counter()
    llm, log = train_label_model(cfg, pool, params["steps"], params["seed"])
    return {"train_s": time.perf_counter() - t0, "train_loss": log[-1].get("train_loss", float("nan")),
            "judge_autocast": cfg.judge_autocast, **_eval(llm, syn, wands, False, cfg)}


class _Partial:
    """A sweep cell's results so far, in its partial file: saved after every step and, on a rerun with the same
    settings, read back so finished steps are skipped (a killed sweep loses only the step it was in; the SFT start
    model, which is not saved, is retrained — deterministically, so the kept steps still match it)."""

    def __init__(self, path: Path, params: dict, cfg: dict):
        self.path, self.params = path, params
        old = json.loads(path.read_text())["metrics"] if path.exists() else {}
        self.out = old if old.get("cfg") == cfg else {"cfg": cfg}

    def done(self, prefix: str) -> bool:
        return any(k.startswith(prefix) for k in self.out)

    def save(self, prefix: str, res: dict) -> None:
        self.out.update({f"{prefix}{k}": v for k, v in res.items()})
        atomic_write_text(self.path, json.dumps({"params": self.params, "metrics": self.out}, default=float))


DPO_LRS = [1e-3, 1e-4, 1e-5, 1e-6]
"""The sweep's DPO learning rates: the CPU chain's shared rate (1e-3) down to TRL's full-fine-tuning default (1e-6)."""
DPO_LONG = {"lrs": [1e-5, 1e-4], "dpo_steps": 100, "dpo_scan": 600}
"""The sweep's long variant (``dpolr --long``): pairs mined on the whole pool, 5× the steps, the two small rates."""


def dpolr_cell(params: dict, long: bool = False) -> dict:
    """DPO at each rate of :data:`DPO_LRS` from one label-only SFT model (sft-all), on the same pairs; with ``long``,
    at the rates, steps and scan of :data:`DPO_LONG`.

    A diagnostic of the +dpo collapse, cheaper than the chain: label-only pairs (``dpo_cot=False``, the spec's flag
    for whether rationales are in the pairs) mined from the sft-all model on the pool, so no rationale is decoded.
    Records the chosen/rejected grade counts of the pairs, which say where DPO pushes the label prior.
    """
    import copy
    import dataclasses
    from collections import Counter

    from siftkit.relevance.pipeline import stage3_pairs, train_label_model, wrap
    from siftkit.relevance.train import dpo

    _setup()
    seed = params["seed"]
    cfg = dataclasses.replace(_cfg(seed), dpo_cot=False)
    lrs = DPO_LRS
    if long:
        cfg = dataclasses.replace(cfg, dpo_steps=DPO_LONG["dpo_steps"], dpo_scan=DPO_LONG["dpo_scan"])
        lrs = DPO_LONG["lrs"]
    pool, _, syn, wands = data()
    part = _Partial(CELLS / f"{NAME}_dpolr{'_long' if long else ''}_partial" / f"seed={seed}.json", params,
                    _settings(cfg))
    out, save = part.out, part.save

    _log(f"seed {seed}: sft-all on {len(pool)}")
    llm, _ = train_label_model(cfg, pool, cfg.sft_steps, seed)
    save("start/", _eval(llm, syn, wands, False, cfg))
    pairs = stage3_pairs(cfg, llm, pool, seed)

    def grade(text: str) -> str:
        return text.rsplit("Label: ", 1)[-1].strip()

    save("", {"pairs": len(pairs), "pairs_chosen": dict(Counter(grade(p["chosen"]) for p in pairs)),
              "pairs_rejected": dict(Counter(grade(p["rejected"]) for p in pairs))})
    _log(f"seed {seed}: {len(pairs)} label-only pairs, chosen {out['pairs_chosen']}")
    if not pairs:
        return out
    for lr in lrs:
        if part.done(f"lr={lr:g}/"):
            continue
        _log(f"seed {seed}: dpo at lr {lr:g}")
        model, hist = dpo(copy.deepcopy(llm.model), llm.tokenizer, pairs, cfg.dpo_steps,
                          dataclasses.replace(cfg, dpo_lr=lr), seed)
        res = _eval(wrap(model, llm.tokenizer, "lref-dpo", batch_size=llm.batch_size), syn, wands, False, cfg)
        save(f"lr={lr:g}/", {**res, "train_loss": hist[-1].get("train_loss")})
    return out


DPODIAG = {"lr": 1e-4, "epochs": 2, "dpo_scan": 600}
"""The DPO diagnostic's setting: ``dpolr --long``'s larger rate, pairs mined on the whole pool, and 2 epochs over
each pair set (the paper's DPO epochs; 100 steps of 4 for 200 pairs, fewer for a smaller set)."""
DIAG_VARIANTS = {"all": ("label", "all"), "over": ("label", "over"), "clean": ("gold", "all")}
"""Pair sets of the diagnostic: (label the pairs are mined against, ``dpo_errors``). ``all`` is the spec's rule on
the pool's (noisy) labels, ``over`` keeps over-estimated samples only, ``clean`` mines against the clean grade — an
oracle no real run has, which says how much the injected label noise matters."""


def dpodiag_cell(params: dict) -> dict:
    """What label-only DPO changes in the judge: a grade prior or the grading itself?

    From one label-only sft-all model, DPO (:data:`DPODIAG`) on each pair set of :data:`DIAG_VARIANTS`. Per variant,
    besides the held-out scores: δ_g (:func:`prior_shift`), measured on the pool inputs that gave no pair; how much
    of the held-out change δ is (:func:`shift_stats`); the start model plus δ only ("shift"); the DPO model minus δ
    ("corrected"); and on the pairs' own inputs, the share whose top-1 becomes the chosen grade and the mean change
    of the chosen and rejected (raw) log-probabilities.
    """
    import copy
    import dataclasses
    import math

    from siftkit.relevance import lref
    from siftkit.relevance.diagnostics import dpo_shift_report, judge_summary, pair_grades, top1
    from siftkit.relevance.pipeline import predict, stage3_pairs, train_label_model, wrap
    from siftkit.relevance.train import dpo, prompt_text

    _setup()
    seed = params["seed"]
    cfg = dataclasses.replace(_cfg(seed), dpo_cot=False, dpo_scan=DPODIAG["dpo_scan"], dpo_lr=DPODIAG["lr"])
    pool, _, syn, _ = data()
    part = _Partial(CELLS / f"{NAME}_dpodiag_partial" / f"seed={seed}.json", params, _settings(cfg))
    out, save = part.out, part.save

    _log(f"seed {seed}: sft-all on {len(pool)}")
    llm, _ = train_label_model(cfg, pool, cfg.sft_steps, seed)
    gold_s = [x["gold"] for x in syn]
    lp0_s, lp0_p = predict(llm, syn, cfg=cfg)[1], predict(llm, pool, cfg=cfg)[1]
    save("start/", judge_summary(gold_s, top1(lp0_s)))
    where: dict[str, list[int]] = {}  # prompt text → pool rows (a duplicated pair has one prompt, several rows)
    for i, x in enumerate(pool):
        where.setdefault(prompt_text(llm.tokenizer, lref.judge_prompt(x["query"], x["title"])), []).append(i)
    for name, (key, errors) in DIAG_VARIANTS.items():
        if part.done(f"{name}/"):
            continue
        rows = pool if key == "label" else [x | {"label": x["gold"]} for x in pool]
        pairs = stage3_pairs(dataclasses.replace(cfg, dpo_errors=errors), llm, rows, seed)
        idx = [where[p["prompt"]][0] for p in pairs]
        used = {i for p in pairs for i in where[p["prompt"]]}
        grade = pair_grades(pairs)
        steps = math.ceil(DPODIAG["epochs"] * len(pairs) / cfg.dpo_batch_size)
        info = {"pairs": len(pairs), "pairs_noisy": sum(pool[i]["noisy"] for i in idx), "steps": steps,
                "pairs_over": sum(c > r for c, r in grade)}  # index order is best first: c > r = rejected above
        _log(f"seed {seed}: {name}: {info}")
        if not pairs:
            save(f"{name}/", info)
            continue
        model, _ = dpo(copy.deepcopy(llm.model), llm.tokenizer, pairs, steps, cfg, seed)
        after = wrap(model, llm.tokenizer, "lref-dpo", batch_size=llm.batch_size)
        lp_s, lp_p = predict(after, syn, cfg=cfg)[1], predict(after, pool, cfg=cfg)[1]
        res = {**info, **dpo_shift_report(gold_s, lp0_s, lp_s, lp0_p, lp_p, idx, grade, used)}
        delta = list(res["delta"].values())
        _log(f"seed {seed}: {name}: macro-F1 {res['macro_f1']:.3f} over-recall {res['over_recall_err']:.3f} "
             f"explained {res['explained']:.2f} delta {[round(d, 2) for d in delta]}")
        save(f"{name}/", res)
    return out


SHARED = Experiment(f"{NAME}_shared", {"part": ["zero-shot"]}, fn=shared_cell)
STEPS = Experiment(f"{NAME}_steps", {"steps": [300], "seed": [0]}, fn=steps_cell)
MAIN = Experiment(NAME, {"seed": SEEDS}, fn=seed_cell)
STAGE1_SEEDS, STAGE1_STEPS = [0, 1, 2], 200
STAGE1 = Experiment(f"{NAME}_stage1", {"seed": STAGE1_SEEDS, "stage1_steps": [STAGE1_STEPS]}, fn=stage1_cell)
"""Stage 1 with competent auxiliary models: IM/CI/MS at the main SFT's step count (100 steps leave them collapsed)."""
DPOLR_SEEDS = [0, 1]
DPOLR = Experiment(f"{NAME}_dpolr", {"seed": DPOLR_SEEDS}, fn=dpolr_cell)
DPOLR_LONG = Experiment(f"{NAME}_dpolr_long", {"seed": DPOLR_SEEDS}, fn=lambda p: dpolr_cell(p, long=True))
DPODIAG_SEEDS = [0, 1]
DPODIAG_EXP = Experiment(f"{NAME}_dpodiag", {"seed": DPODIAG_SEEDS}, fn=dpodiag_cell)


# ---------------------------------------------------------------------------------------------------------------------
# table
# ---------------------------------------------------------------------------------------------------------------------

def _fmt(xs: list[float]) -> str:
    import statistics

    if not xs:
        return "–"
    if len(xs) == 1:
        return f"{xs[0]:.3f}"
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}"


def _seeds(exp: str, seeds: list[int]) -> dict[int, dict]:
    """Per seed: its finished cell, else its partial files (the chain's own file plus the forked evaluations)."""
    full = {c["params"]["seed"]: c["metrics"] for c in load_cells(exp)}
    part: dict[int, dict] = {}
    for c in load_cells(f"{exp}_partial"):
        part.setdefault(c["params"]["seed"], {}).update(c["metrics"])
    return {s: full.get(s) or part[s] for s in seeds if s in full or s in part}


def _condition_tables(seeds: list[dict], shared: dict, conditions: list[str], level: str = "###") -> list[str]:
    """One table per test set: a row per condition, mean ± std over the seeds that have it."""
    parts = []
    for name, title in (("syn", "Synthetic five-grade held-out split"), ("wands", "WANDS binary test pairs")):
        cols = METRICS + EXTRA[name]
        lines = [f"{level} {title}", "", "| condition | seeds | " + " | ".join(cols) + " | grades predicted |",
                 "|---|---|" + "---|" * len(cols) + "---|"]
        missing = []
        n = None
        for cond in conditions:
            if cond == "zero-shot":
                runs = [shared["zero-shot"]] if "zero-shot" in shared else []
                get = lambda r, m: r.get(f"{name}/{m}")  # noqa: E731
            else:
                runs = [s for s in seeds if f"{cond}/{name}/macro_f1" in s]
                get = lambda r, m, c=cond: r.get(f"{c}/{name}/{m}")  # noqa: E731
            if not runs:
                missing.append(cond)
                continue
            n = n or get(runs[0], "n")
            vals = [_fmt([get(r, m) for r in runs if get(r, m) is not None]) for m in cols]
            used = [sum(1 for col in zip(*get(r, "confusion")) if sum(col)) for r in runs if get(r, "confusion")]
            lines.append(f"| {cond} | {len(runs)} | " + " | ".join(vals) + f" | {used} |")
        if n:
            gone = f" No results (not finished in this session): {', '.join(missing)}." if missing else ""
            parts.append("\n".join(lines) + f"\n\nn = {n} pairs. \"grades predicted\": distinct predicted labels "
                         f"per run (a collapsed model predicts one).{gone}\n")
    return parts


def _body(exp: str, sizes: dict, bench_cfg: dict, machine: str) -> str:
    """The results section of one profile: cells named ``exp*``, sized by ``sizes`` and ``bench_cfg``."""
    from siftkit.relevance.config import LrefConfig

    shared = {c["params"]["part"]: c["metrics"] for c in load_cells(f"{exp}_shared")}
    seeds = list(_seeds(exp, SEEDS).values())
    cfg = LrefConfig(**bench_cfg)
    extra = sorted({k.split("/")[0] for s in seeds for k in s if k.startswith("+dpo@lr=")})
    parts = _condition_tables(seeds, shared, CONDITIONS + extra)
    if not parts:
        return ""
    parts += [_stage1_section(seeds, sizes), _ablation_section(seeds, sizes), _steps_section(exp, cfg, sizes)]
    later = _stage1_budget_section(exp, sizes, shared)  # after the notes, which describe the main grid
    done = {c["params"]["seed"] for c in load_cells(exp)}
    partial = sorted(s for s in _seeds(exp, SEEDS) if s not in done)
    if partial:
        machine += (f" Seeds {partial} did not finish their chain; their rows come from the stages they "
                    "finished.")
    sweep = "\n".join(x for x in (_dpolr_section(exp), _dpolr_section(exp, long=True), _dpodiag_section(exp)) if x)
    return ("\n".join(p for p in parts if p) + "\n" + _notes(cfg, sizes, seeds, machine) + "\n"
            + (f"\n{later}" if later else "") + (f"\n{sweep}" if sweep else ""))


def _dpolr_section(exp: str, long: bool = False) -> str:
    """The DPO learning-rate sweep (the ``dpolr`` command): one row per rate, mean ± std over seeds."""
    runs = list(_seeds(f"{exp}_dpolr{'_long' if long else ''}", DPOLR_SEEDS).values())
    if not runs:
        return ""
    cols = [("syn", "macro_f1"), ("syn", "accuracy"), ("syn", "over_recall_err"), ("syn", "over_recall_pred"),
            ("wands", "macro_f1"), ("wands", "fpr")]
    title = ("DPO learning rate, longer (`python -m benchmarks.lref dpolr --long`: pairs from the whole pool, more "
             "steps)" if long else
             "DPO learning rate (`python -m benchmarks.lref dpolr`: label-only pairs from sft-all)")
    lines = [f"### {title}", "",
             "| DPO lr | seeds | " + " | ".join(f"{a} {m}" for a, m in cols) + " | syn grades predicted |",
             "|---|---|" + "---|" * len(cols) + "---|"]
    for name, key in [("none (sft-all)", "start")] + [(f"{lr:g}", f"lr={lr:g}") for lr in sorted(set(
            DPO_LRS + DPO_LONG["lrs"]), reverse=True)]:
        have = [r for r in runs if f"{key}/syn/macro_f1" in r]
        if not have:
            continue
        vals = [_fmt([r[f"{key}/{a}/{m}"] for r in have if f"{key}/{a}/{m}" in r]) for a, m in cols]
        used = [sum(1 for col in zip(*r[f"{key}/syn/confusion"]) if sum(col)) for r in have]
        lines.append(f"| {name} | {len(have)} | " + " | ".join(vals) + f" | {used} |")
    pairs = "; ".join(f"{r.get('pairs', 0)} pairs, chosen {r.get('pairs_chosen')}, rejected {r.get('pairs_rejected')}"
                      for r in runs)
    cfg = runs[0].get("cfg", {})
    return ("\n".join(lines) + "\n\nEach rate starts from the same sft-all model "
            f"({cfg.get('sft_steps')} steps on the "
            f"pool) and trains {cfg.get('dpo_steps')} DPO steps × {cfg.get('dpo_batch_size')} pairs (β "
            f"{cfg.get('beta')}, RPO α {cfg.get('rpo_alpha')}) on the same pairs, mined from that model's label "
            f"ranking on {cfg.get('dpo_scan')} pool pairs. Pairs per seed: {pairs}.\n")


def _dpodiag_section(exp: str) -> str:
    """The DPO diagnostic (the ``dpodiag`` command): per pair set, what DPO changed and how much is a grade prior."""
    from siftkit.relevance.lref import GRADES

    runs = list(_seeds(f"{exp}_dpodiag", DPODIAG_SEEDS).values())
    if not runs or "start/macro_f1" not in runs[0]:
        return ""
    names = [n for n in DIAG_VARIANTS if any(f"{n}/macro_f1" in r for r in runs)]

    def col(prefix: str, key: str) -> str:
        return _fmt([r[f"{prefix}/{key}"] for r in runs if f"{prefix}/{key}" in r])

    def each(prefix: str, key: str) -> str:  # counts: one value per seed
        return str([r[f"{prefix}/{key}"] for r in runs if f"{prefix}/{key}" in r])

    head = ["macro_f1", "accuracy", "over_recall_err", "over_recall_pred", "recall_marginal", "precision_significant"]
    a = ["| pair set | seeds | pairs | DPO steps | on noisy labels | over-estimated | " + " | ".join(head)
         + " | grades predicted |", "|---|---|---|---|---|---|" + "---|" * len(head) + "---|",
         f"| none (sft-all) | {len(runs)} | | | | | " + " | ".join(col("start", k) for k in head)
         + f" | {each('start', 'grades')} |"]
    for n in names:
        have = sum(f"{n}/macro_f1" in r for r in runs)
        a.append(f"| {n} | {have} | {each(n, 'pairs')} | {each(n, 'steps')} | {each(n, 'pairs_noisy')} | "
                 f"{each(n, 'pairs_over')} | " + " | ".join(col(n, k) for k in head) + f" | {each(n, 'grades')} |")
    b = ["| pair set | share of the change that is δ | same sign as δ | top-1 of start + δ = DPO's | train pairs "
         "fixed | Δ log p chosen | Δ log p rejected | " + " | ".join(f"δ {g}" for g in GRADES) + " |",
         "|---|---|---|---|---|---|---|" + "---|" * len(GRADES)]
    for n in names:
        b.append(f"| {n} | {col(n, 'explained')} | {col(n, 'same_sign')} | {col(n, 'top1_agree')} | "
                 f"{col(n, 'fixed')} | {col(n, 'd_chosen')} | {col(n, 'd_rejected')} | "
                 + " | ".join(_fmt([r[f"{n}/delta"][g] for r in runs if f"{n}/delta" in r]) for g in GRADES) + " |")
    c = ["| pair set | DPO macro_f1 | start + δ macro_f1 | DPO − δ macro_f1 | DPO over_recall_err | start + δ "
         "over_recall_err | DPO − δ over_recall_err | DPO − δ grades |", "|---|---|---|---|---|---|---|---|"]
    for n in names:
        c.append(f"| {n} | {col(n, 'macro_f1')} | {col(f'{n}/shift', 'macro_f1')} | "
                 f"{col(f'{n}/corrected', 'macro_f1')} | {col(n, 'over_recall_err')} | "
                 f"{col(f'{n}/shift', 'over_recall_err')} | {col(f'{n}/corrected', 'over_recall_err')} | "
                 f"{each(f'{n}/corrected', 'grades')} |")
    cfg = runs[0].get("cfg", {})
    return (f"### What label-only DPO changes (`python -m benchmarks.lref dpodiag`, seeds {DPODIAG_SEEDS})\n\n"
            f"From one label-only sft-all model per seed ({cfg.get('sft_steps')} steps on the pool), DPO for "
            f"{DPODIAG['epochs']} epochs of {cfg.get('dpo_batch_size')} preference pairs per step at lr "
            f"{cfg.get('dpo_lr')} (β {cfg.get('beta')}, RPO α {cfg.get('rpo_alpha')}) on each pair set, mined from "
            "that model's label ranking on the whole pool: **all** = the spec's rule on the pool's noisy labels, "
            "**over** = over-estimated samples only (`dpo_errors=\"over\"`), **clean** = the spec's rule against the "
            "clean grades (an oracle: how much does the injected label noise matter?). Synthetic held-out split "
            "only; counts per seed.\n\n" + "\n".join(a)
            + "\n\nLog-probabilities are centred per input (each grade's minus the mean over the five), so a change "
            "shared by all grades of an input, which cannot move the ranking, drops out. δ_g: the mean change of "
            "grade g over the pool inputs that gave no preference pair (a per-grade constant, i.e. a shift of the "
            "grade prior). \"Share of the change that is δ\": 1 − Σ(Δ − δ)² / ΣΔ² over the held-out inputs × grades; "
            "\"same sign\": share of those changes with δ_g's sign; \"top-1\": share of held-out inputs where the "
            "start model plus δ picks the DPO model's grade. \"Train pairs fixed\": share of the pairs' own inputs "
            "whose top-1 after DPO is the chosen grade (0 before); Δ log p: the mean raw change there.\n\n"
            + "\n".join(b) + "\n\nThe DPO model against the start model plus δ only, and against the DPO model "
            "minus δ (δ from the pool, never from the held-out split):\n\n" + "\n".join(c) + "\n")


def _stage1_budget_section(exp: str, sizes: dict, shared: dict) -> str:
    """The selected-data chain again, with IM/CI/MS trained for ``STAGE1_STEPS`` (the ``stage1`` command)."""
    runs = _seeds(f"{exp}_stage1", STAGE1_SEEDS)
    if not runs:
        return ""
    main = _seeds(exp, list(runs))
    # sft-all of the same seed from the main grid: its training does not depend on Stage 1
    rows = [{**{k: v for k, v in main.get(s, {}).items() if k.startswith("sft-all/")}, **r} for s, r in runs.items()]
    seeds = list(runs)
    steps = next(iter(runs.values()))["stage1/cfg"]["stage1_steps"]
    head = (f"### Stage 1 with IM/CI/MS at {steps} steps each (`python -m benchmarks.lref stage1`, seeds {seeds})"
            f"\n\nThe same chain as above with only the auxiliary models' step count changed; the sft-all row is the "
            f"main grid's cell of the same seeds. Everything else (pool, samples, main SFT, CoT, DPO) as above.\n")
    tables = _condition_tables(rows, shared, CONDITIONS, level="####")  # (this command has no extra DPO rates)
    sel = _stage1_section(rows, sizes).replace("### Stage 1: kept subset", "#### Kept subset")
    pairs = [int(r["+dpo/pairs"]) for r in rows if "+dpo/pairs" in r]
    grades = {n: [len(set(r[f"stage1/{n}"])) for r in rows if f"stage1/{n}" in r] for n in AUX}
    tail = (f"DPO pairs per seed: {pairs}. Distinct grades predicted on the pool per seed: "
            + ", ".join(f"{n.upper()} {g}" for n, g in grades.items()) + ".\n")
    return "\n".join([head, *tables, sel, _ablation_section(rows, sizes, "####"), tail])


def _ablation_section(runs: list[dict], sizes: dict, level: str = "###") -> str:
    """Each keep-rule term's part in removing the injected noise, and each auxiliary model's accuracy."""
    from siftkit.relevance.diagnostics import aux_accuracy, keep_rule_ablation

    pool = data(sizes)[0]
    pids = [x["pid"] for x in pool]  # predictions are re-filtered only against the pool they were made on
    runs = [r for r in runs if all(f"stage1/{n}" in r for n in AUX) and r.get("stage1/pool_pids") == pids]
    if not runs:
        return ""
    cols = ["kept", "kept_noise_rate", "drop_precision", "drop_recall", "keep_recall"]
    lines = [f"{level} Which term removes the noise (the same predictions, re-filtered; no training)", "",
             "| terms | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    stats = [keep_rule_ablation(pool, {n: r[f"stage1/{n}"] for n in AUX}) for r in runs]
    for label in stats[0]:
        lines.append(f"| {label} | " + " | ".join(_fmt([float(x[label][c]) for x in stats]) for c in cols) + " |")
    accs = [aux_accuracy(pool, {n: r[f"stage1/{n}"] for n in AUX}) for r in runs]
    acc = [f"{n.upper()} {_fmt([a[n][0] for a in accs])} (clean grade {_fmt([a[n][1] for a in accs])})" for n in AUX]
    return ("\n".join(lines) + f"\n\nAccuracy on the {len(pool)} pool pairs against each model's training target "
            "(pool label; MS: label′): " + "; ".join(acc) + ".\n")


SELECTION = ["n", "kept", "kept_share", "noise_rate", "kept_noise_rate", "drop_precision", "drop_recall",
             "keep_precision", "keep_recall", "kept_share_head", "kept_share_torso", "kept_share_tail",
             "im_agreement", "ci_agreement", "ms_agreement"]


def _stage1_section(seeds: list[dict], sizes: dict) -> str:
    stats = [s for s in seeds if "selection/kept" in s]
    if not stats:
        return ""
    vals = [_fmt([float(s[f"selection/{k}"]) for s in stats if s.get(f"selection/{k}") is not None])
            for k in SELECTION]
    return (f"### Stage 1: kept subset and the keep rule against the injected noise (seeds: {len(stats)})\n\n"
            f"| {' | '.join(SELECTION)} |\n|{'---|' * len(SELECTION)}\n| {' | '.join(vals)} |\n\n"
            f"Kept per seed: {[int(s['selection/kept']) for s in stats]} of {sizes['pool']}.\n")


def _steps_section(exp: str, cfg, sizes: dict) -> str:
    longer = load_cells(f"{exp}_steps")
    if not longer:
        return ""
    rows = ["### Longer label-only SFT on the whole pool (is the budget the limit?)", "",
            "| steps | seed | epochs | train loss | syn macro_f1 | syn accuracy | syn grades predicted | "
            "wands macro_f1 | wands accuracy | train s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in longer:
        p, m = c["params"], c["metrics"]
        used = sum(1 for col in zip(*m["syn/confusion"]) if sum(col))
        rows.append(f"| {p['steps']} | {p['seed']} | {p['steps'] * cfg.batch_size / sizes['pool']:.1f} | "
                    f"{m['train_loss']:.3f} | {m['syn/macro_f1']:.3f} | {m['syn/accuracy']:.3f} | {used} | "
                    f"{m.get('wands/macro_f1', float('nan')):.3f} | {m.get('wands/accuracy', float('nan')):.3f} | "
                    f"{m['train_s']:.0f} |")
    old = ", ".join(str(c["params"]["steps"]) for c in longer if "judge_autocast" not in c["metrics"])
    note = (f" The {old}-step row comes from an earlier session's run of this command: judged in fp32 (before "
            "`judge_autocast`), with gradient checkpointing on; the training is otherwise the same." if old else "")
    return "\n".join(rows) + f"\n\nCompare with the sft-all row above ({cfg.sft_steps} steps, three seeds).{note}\n"


def _notes(cfg, sizes: dict, seeds: list[dict], machine: str) -> str:
    pairs = [s.get("+dpo/pairs") for s in seeds if "+dpo/pairs" in s]
    empty = [s["selection/seed"] for s in seeds if s.get("selection/empty")]
    empty_note = (f" Seeds {empty}: the keep rule kept no pair, so their selected-data chain (sft-selected, "
                  "+multi-cot, +dpo) has nothing to train on and no rows." if empty else "")
    judging = ", judging under bf16 autocast too" if cfg.judge_autocast else ""
    return (f"Model: embedded SmolLM2-135M-Instruct, LoRA r={cfg.lora_r} on all linear layers, lr {cfg.lr}, "
            f"batch {cfg.batch_size}, warm-up {cfg.warmup_ratio}. Steps: IM/CI/MS {cfg.stage1_steps} each "
            f"(samples of {cfg.im_sample}/{cfg.ci_sample}), main SFT {cfg.sft_steps}, CoT {cfg.cot_steps} per "
            f"format ({'→'.join(cfg.cot_order)}, rule-based teacher), DPO {cfg.dpo_steps} steps × "
            f"{cfg.dpo_batch_size} pairs at lr {cfg.dpo_lr or cfg.lr} (β {cfg.beta}, RPO α {cfg.rpo_alpha}; pairs per "
            f"seed: {pairs}). "
            f"Data: synthetic set {sizes['n_pairs']} pairs / {sizes['n_queries']} queries, noise "
            f"{sizes['noise_rate']} on train, main models trained on a fixed pool of {sizes['pool']} train pairs "
            f"(Stage 1 selects within it); training under the Trainer's bf16 autocast without gradient "
            f"checkpointing{judging}; test: a fixed sample of {sizes['syn_sample']} of the 280 held-out "
            f"synthetic pairs and a stratified sample of {sizes['wands_sample']} of the 2,750 deduplicated WANDS "
            f"test pairs (data seed {sizes['data_seed']}). Five-grade predictions are mapped to "
            "binary with Exact/Significant → Relevant. Over-recall per error = share of errors graded above gold "
            "(spec); per prediction = share of all predictions above gold. Each seed trains its own Stage 1 "
            "(IM, CI, MS) and chain; DPO pairs are mined on the training pool; mean ± sample std over seeds. "
            f"{machine}{empty_note}")


def table() -> Path:
    """benchmarks/results/lref.md from the GPU-profile cells (if any) and the CPU-profile cells."""
    devices = sorted({c["metrics"]["device"] for e in ("lref_gpu", "lref_gpu_shared") for c in load_cells(e)
                      if "device" in c["metrics"]}) or ["name not recorded"]
    gpu = _body("lref_gpu", GPU_SIZES, GPU_CFG, f"One GPU ({', '.join(devices)}), lent for one session; the zero-shot "
                "cell and the seeds' processes (IM, CI, MS side by side, then the chain) sharing it.")
    cpu = _body("lref", CPU_SIZES, CPU_CFG, "One 2-core CPU machine, one torch thread per process, the three "
                "seeds run side by side. A row with fewer than 3 seeds lacks a seed that did not finish or, as "
                "noted below, had nothing to train on.")
    body = ""
    if gpu:
        body += ("## GPU profile (`benchmarks/device/lref_gpu.sh`: `LREF_PROFILE=gpu python -m benchmarks.lref all`)"
                 "\n\n" + gpu + ("" if "### WANDS" in gpu else
                                   "\nWANDS rows are absent here: the WANDS subset was not "
                                   "on the GPU machine.\n") + "\n")
    if cpu:
        body += "## CPU profile (`python -m benchmarks.lref all --jobs 4`)\n\n" + cpu
    return write_markdown(RESULTS / "lref.md", "LREF on SmolLM2-135M", body,
                          command="python -m benchmarks.lref all --jobs 4 && python -m benchmarks.lref steps && "
                          "python -m benchmarks.lref stage1 --jobs 2 && python -m benchmarks.lref dpolr --jobs 2 && "
                          "python -m benchmarks.lref dpolr --long --jobs 2 && "
                          "python -m benchmarks.lref dpodiag --jobs 2",
                          notes="")


# ---------------------------------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------------------------------

def _schedule(jobs: list[tuple[list[str], list[int]]], n: int, log_dir: Path,
              cmd: list[str] | None = None, poll: float = 5.0) -> list[int]:
    """Run ``benchmarks.lref cell <args>`` jobs, at most ``n`` at a time, each after the jobs it depends on.

    ``jobs``: (cell arguments, indices of earlier jobs it needs). A job whose dependency failed still runs: the cell
    then does the missing work itself. ``cmd`` replaces the command before the arguments. Returns the exit codes.
    """
    cmd = cmd or [sys.executable, "-m", "benchmarks.lref", "cell"]
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: dict[int, subprocess.Popen] = {}
    todo = list(range(len(jobs)))
    while todo or any(p.poll() is None for p in procs.values()):
        running = sum(1 for p in procs.values() if p.poll() is None)
        ready = [i for i in todo if all(d in procs and procs[d].poll() is not None for d in jobs[i][1])]
        if ready and running < n:
            i = ready[0]
            todo.remove(i)
            args = jobs[i][0]
            name = "_".join(args).strip("-").replace("--", "")
            with open(log_dir / f"{name}.log", "a") as f:  # the child keeps its own copy of the handle
                procs[i] = subprocess.Popen([*cmd, *args], stdout=f, stderr=subprocess.STDOUT)
            continue
        time.sleep(poll)
    return [procs[i].wait() for i in range(len(jobs))]


def _seed_jobs(seeds: list[int], extra: list[str]) -> list[tuple[list[str], list[int]]]:
    """Per seed: three auxiliary-model jobs, then the chain that needs them."""
    jobs: list[tuple[list[str], list[int]]] = []
    for s in seeds:
        for name in AUX:
            jobs.append(([*extra, "--seed", str(s), "--aux", name], []))
    for k, s in enumerate(seeds):
        jobs.append(([*extra, "--seed", str(s)], [3 * k, 3 * k + 1, 3 * k + 2]))
    return jobs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("all")
    a.add_argument("--jobs", type=int, default=4)
    b = sub.add_parser("stage1", help="the selected-data chain with IM/CI/MS at STAGE1_STEPS steps")
    b.add_argument("--jobs", type=int, default=2)
    c = sub.add_parser("cell")
    c.add_argument("--part")
    c.add_argument("--seed", type=int)
    c.add_argument("--aux", choices=AUX, help="train only this Stage-1 model of the seed")
    c.add_argument("--stage1", action="store_true", help="a cell of the stage1 experiment")
    c.add_argument("--dpolr", action="store_true", help="a cell of the DPO learning-rate sweep")
    c.add_argument("--long", action="store_true", help="with --dpolr: the DPO_LONG variant")
    c.add_argument("--dpodiag", action="store_true", help="a cell of the DPO diagnostic")
    d = sub.add_parser("dpolr", help="DPO at DPO_LRS from label-only SFT models, seeds DPOLR_SEEDS")
    d.add_argument("--jobs", type=int, default=2)
    d.add_argument("--long", action="store_true", help="DPO_LONG: pairs from the whole pool, more steps")
    e = sub.add_parser("dpodiag", help="what label-only DPO changes: pair sets of DIAG_VARIANTS, seeds DPODIAG_SEEDS")
    e.add_argument("--jobs", type=int, default=2)
    sub.add_parser("table")
    sub.add_parser("steps")
    args = ap.parse_args(argv)
    if args.cmd == "cell" and (args.part is None) == (args.seed is None):
        ap.error("cell takes --part or --seed (with --aux for one Stage-1 model)")
    if args.cmd == "cell" and args.dpodiag and (args.dpolr or args.stage1 or args.aux or args.seed is None):
        ap.error("--dpodiag takes --seed only")
    if args.cmd == "cell" and args.long and not args.dpolr:
        ap.error("--long goes with --dpolr")
    if args.cmd == "cell" and args.aux and args.seed is None:
        ap.error("--aux needs --seed")
    logs = RESULTS / "cells" / f"{NAME}_logs"
    if args.cmd == "table":
        print(table())
    elif args.cmd == "steps":
        run_experiment(STEPS, progress=False)
        print(table())
    elif args.cmd == "cell":
        exp = STAGE1 if args.stage1 else MAIN
        if args.dpodiag:
            run_experiment(DPODIAG_EXP, progress=False, only=lambda p: p["seed"] == args.seed)
        elif args.dpolr:
            run_experiment(DPOLR_LONG if args.long else DPOLR, progress=False, only=lambda p: p["seed"] == args.seed)
        elif args.part:
            run_experiment(SHARED, progress=False, only=lambda p: p["part"] == args.part)
        elif args.aux:  # not needed once the seed's cell is finished
            if not any(exp.path(p).exists() for p in exp.cells() if p["seed"] == args.seed):
                aux_cell(exp.name, args.seed, args.aux, STAGE1_STEPS if args.stage1 else None)
        else:
            run_experiment(exp, progress=False, only=lambda p: p["seed"] == args.seed)
    elif args.cmd == "dpodiag":
        codes = _schedule([(["--dpodiag", "--seed", str(s)], []) for s in DPODIAG_SEEDS], args.jobs, logs)
        print(table())
        if any(codes):
            sys.exit(1)
    elif args.cmd == "dpolr":
        extra = ["--long"] if args.long else []
        codes = _schedule([(["--dpolr", *extra, "--seed", str(s)], []) for s in DPOLR_SEEDS], args.jobs, logs)
        print(table())
        if any(codes):
            sys.exit(1)
    elif args.cmd == "stage1":
        codes = _schedule(_seed_jobs(STAGE1_SEEDS, ["--stage1"]), args.jobs, logs)
        print(table())
        if any(codes):
            sys.exit(1)
    else:
        codes = _schedule([(["--part", "zero-shot"], [])] + _seed_jobs(SEEDS, []), args.jobs, logs)
        print(table())
        if any(codes):
            sys.exit(1)


if __name__ == "__main__":
    main()
