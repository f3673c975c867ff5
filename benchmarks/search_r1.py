"""Search-R1 benchmark: the RL effect on a synthetic task (part a), SmolLM2 + LoRA (part b), direct answers on real QA.

    nice -n 10 python -m benchmarks run search_r1 --profile cpu             # every part the profile lists
    python -m benchmarks run search_r1 --profile cpu --only part=rl         # one part (see PARTS)
    python -m benchmarks run search_r1 --profile gpu                        # part (b) on a lent GPU
    python -m benchmarks page search_r1 --profile cpu --allow-stale         # → benchmarks/results/search_r1.md

Settings: ``benchmarks/config/search_r1.yaml``; page text: ``benchmarks/templates/search_r1.md``. Every process runs
with ``threads`` torch threads. The warm-start weights are cached under ``runs/search_r1_cache/`` (shared by the
cells of one seed); ``throughput`` reads the seed-0 GRPO policy an ``rl`` cell saved there.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from benchmarks.runner import BenchConfig, Benchmark

CACHE = Path("runs/search_r1_cache")
PARTS = ("rl", "ppo", "throughput", "direct")
"""Parts besides the SmolLM2 variants (each variant of ``smollm2`` is a part of its own)."""


class SearchR1Bench(BenchConfig):
    """The Search-R1 benchmark's settings (``benchmarks/config/search_r1.yaml``)."""

    cell_fields: ClassVar[tuple[str, ...]] = ("rl", "throughput", "direct", "smollm2", "parts")
    seeds: list[int]
    """training seeds of part (a) (``rl``: GRPO with and without the mask, ``ppo``)."""
    rl: dict
    """part (a): :class:`~siftkit.search_agent.demo.SyntheticRunConfig` ``steps`` and ``n_eval``."""
    throughput: dict
    """``n``: questions per batched rollout (the other arm rolls them out one at a time)."""
    direct: dict
    """``per_source`` questions per data set of the dev sample, ``max_new_tokens`` of SmolLM2's answer."""
    smollm2: dict[str, dict]
    """part (b): variant name → the cell's parameters (:func:`benchmarks.search_r1_smollm2.smollm2_cell`)."""
    parts: list[str]
    """which parts (``PARTS`` and ``smollm2`` variant names) this profile runs; not a result setting."""


def grid(cfg: SearchR1Bench) -> list[dict]:
    cells = []
    for part in cfg.parts:
        if part in ("rl", "ppo"):
            masks = [True, False] if part == "rl" else [True]
            algo = "grpo" if part == "rl" else "ppo"
            cells += [{"part": part, "algo": algo, "mask": m, "seed": s} for m in masks for s in cfg.seeds]
        elif part == "throughput":
            cells += [{"part": part, "n": n} for n in cfg.throughput["n"]]
        elif part == "direct":
            cells.append({"part": part, **cfg.direct})
        else:
            cells.append({"part": part, **cfg.smollm2[part]})
    return cells


def cell_settings(cfg: SearchR1Bench, params: dict) -> dict:
    return {"rl": cfg.rl} if params["part"] in ("rl", "ppo") else {}  # the other parts' params are their settings


def cell(cfg: SearchR1Bench, params: dict, partial) -> dict:
    import torch

    torch.set_num_threads(params.get("threads", cfg.threads))
    part = params["part"]
    if part in ("rl", "ppo"):
        return rl_cell(cfg, params)
    if part == "throughput":
        return throughput_cell(params)
    if part == "direct":
        return direct_cell(params)
    from benchmarks.search_r1_smollm2 import smollm2_cell

    return smollm2_cell({k: v for k, v in params.items() if k != "part"} | {"device": cfg.device})


def rl_cell(cfg: SearchR1Bench, params: dict) -> dict:
    """Warm start (cached per seed), evaluate, RL, evaluate; keep per-question EM for the bootstrap CI."""
    from siftkit.search_agent.demo import SyntheticRunConfig, run_synthetic, save_run

    rcfg = SyntheticRunConfig(seed=params["seed"], algo=params["algo"], mask_info=params["mask"],
                              sft_cache=str(CACHE), steps=cfg.rl["steps"], n_eval=cfg.rl["n_eval"])
    res = run_synthetic(rcfg)
    save_run(res, CACHE / f"{params['algo']}_mask{int(params['mask'])}_seed{params['seed']}")
    per_q = {s: {r["uid"]: r["em"] for r in recs} for s, recs in res["records_after"].items()}
    return {"sft_s": res["sft_s"], "rl_s": res["rl_s"],
            **{f"{w}_{s}_{k}": v for w in ("before", "after") for s, d in res[w].items() for k, v in d.items()},
            "reward_first10": sum(h["reward"] for h in res["history"][:10]) / 10,
            "reward_last10": sum(h["reward"] for h in res["history"][-10:]) / 10,
            "history": [{k: round(h.get(k, float("nan")), 4) for k in ("step", "reward", "searches", "kl", "coverage")}
                        for h in res["history"]],
            "per_question_after": per_q}


def throughput_cell(params: dict) -> dict:
    """Questions per second of the seed-0 GRPO policy, one question at a time vs ``n`` in one batch."""
    from siftkit.search_agent.demo import build, load_checkpoint, throughput
    from siftkit.search_agent.rollout import RolloutConfig
    from siftkit.search_agent.synthetic import SHORT_TEMPLATE

    model, tok, cfg = load_checkpoint(CACHE / "grpo_mask1_seed0")
    task, _, retriever = build(cfg)
    rcfg = RolloutConfig(max_turns=cfg.max_turns, max_new_tokens=cfg.max_new_tokens, template=SHORT_TEMPLATE)
    res = throughput(model, tok, retriever, task.heldout[:params["n"]], rcfg, batch_sizes=(1, params["n"]))
    return {"one_at_a_time_qps": res[0]["questions_per_s"], "batched_qps": res[1]["questions_per_s"],
            "speedup": res[1]["questions_per_s"] / res[0]["questions_per_s"], "searches": res[1]["searches"],
            "batch_size": params["n"], "detail": res}


def direct_cell(params: dict) -> dict:
    """SmolLM2 direct-answer EM on the seven data sets' dev sample (no offline corpus for RAG / policy)."""
    from siftkit.core.assets import shared_data_dir
    from siftkit.llm.local import LocalChatModel
    from siftkit.search_agent.data import load_qa
    from siftkit.search_agent.evaluate import evaluate_system, summarise
    from siftkit.search_agent.rollout import RolloutConfig

    root = shared_data_dir()
    if root is None:
        raise FileNotFoundError("needs ../shared/data/search_r1")
    rows, seen = [], {}
    for r in load_qa(root / "search_r1" / "deepresearcher_7ds" / "dev.parquet"):
        if seen.get(r["data_source"], 0) < params["per_source"]:
            seen[r["data_source"]] = seen.get(r["data_source"], 0) + 1
            rows.append(r)
    llm = LocalChatModel.from_pretrained("smollm2")
    recs = evaluate_system("direct", llm.model, llm.tokenizer, None, rows,
                           RolloutConfig(max_turns=0, max_new_tokens=params["max_new_tokens"], batch_size=16))
    return {"table": summarise(recs), "examples": [r["answer"] for r in recs[:: max(1, len(recs) // 7)]]}


def page(cfg: SearchR1Bench, cells: list[dict]) -> str:
    from benchmarks.search_r1_page import render

    return render(cfg, cells)


BENCHMARK = Benchmark(
    name="search_r1", title="Search-R1 (siftkit.search_agent)", config=SearchR1Bench, grid=grid, cell=cell,
    page=page, cell_settings=cell_settings,
    # no declared inputs [ours]: only part direct reads ../shared/data/search_r1, and an input is stamped into every
    # cell, so the synthetic parts would turn stale wherever ../shared is absent
    sources=["siftkit/search_agent", "siftkit/retrieval/bm25.py", "siftkit/llm/local.py",
             "benchmarks/search_r1.py::CACHE,cell,rl_cell,throughput_cell,direct_cell",
             "benchmarks/search_r1_smollm2.py"],
    legacy_files=["siftkit/search_agent", "siftkit/retrieval/bm25.py", "siftkit/llm/local.py",
                  "benchmarks/search_r1.py", "benchmarks/search_r1_smollm2.py"])
