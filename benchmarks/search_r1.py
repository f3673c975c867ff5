"""Search-R1 benchmark grids (resumable cells) and the results page benchmarks/results/search_r1.md.

    nice -n 10 python -m benchmarks.search_r1 rl            # part (a): 3 seeds × {GRPO, GRPO without mask}
    nice -n 10 python -m benchmarks.search_r1 ppo           # part (a): PPO, 3 seeds
    nice -n 10 python -m benchmarks.search_r1 throughput    # batched vs one-at-a-time rollouts
    python -m benchmarks.search_r1 smollm2                  # part (b): SmolLM2-135M + LoRA: warm start, then GRPO
    python -m benchmarks.search_r1 smollm2-rl-only          # part (b): the same GRPO from the raw model
    python -m benchmarks.search_r1 smollm2-sft-only         # part (b): a strong warm start alone, no RL
    nice -n 10 python -m benchmarks.search_r1 direct        # SmolLM2 direct-answer EM on the seven QA sets
    python -m benchmarks.search_r1 write                    # → benchmarks/results/search_r1.md

Every process runs with one torch thread. Cells live under benchmarks/results/cells/search_r1_*/; the warm-start
weights are cached under runs/search_r1_cache/ (shared by the cells of one seed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.cells import CELLS, RESULTS, Experiment, load_cells, run_experiment, write_markdown

SEEDS = [0, 1, 2]
CACHE = Path("runs/search_r1_cache")
PLOTS = CELLS / "search_r1_plots"


def _cfg(params: dict, **kw):
    from siftkit.search_agent.demo import SyntheticRunConfig

    return SyntheticRunConfig(seed=params["seed"], algo=params.get("algo", "grpo"),
                              mask_info=params.get("mask", True), sft_cache=str(CACHE), **kw)


def rl_cell(params: dict) -> dict:
    """Warm start (cached per seed), evaluate, RL, evaluate; keep per-question EM for the bootstrap CI."""
    import torch

    from siftkit.search_agent.demo import run_synthetic, save_run

    torch.set_num_threads(1)
    res = run_synthetic(_cfg(params, steps=params.get("steps", 60), n_eval=100), log=lambda m: print(m, flush=True))
    tag = f"{params['algo']}_mask{int(params['mask'])}_seed{params['seed']}"
    save_run(res, CACHE / tag)
    per_q = {s: {r["uid"]: r["em"] for r in recs} for s, recs in res["records_after"].items()}
    return {"sft_s": res["sft_s"], "rl_s": res["rl_s"],
            **{f"{w}_{s}_{k}": v for w in ("before", "after") for s, d in res[w].items() for k, v in d.items()},
            "reward_first10": sum(h["reward"] for h in res["history"][:10]) / 10,
            "reward_last10": sum(h["reward"] for h in res["history"][-10:]) / 10,
            "history": [{k: round(h.get(k, float("nan")), 4) for k in ("step", "reward", "searches", "kl", "coverage")}
                        for h in res["history"]],
            "per_question_after": per_q}


def throughput_cell(params: dict) -> dict:
    import torch

    from siftkit.search_agent.demo import build, load_checkpoint, throughput
    from siftkit.search_agent.rollout import RolloutConfig
    from siftkit.search_agent.synthetic import SHORT_TEMPLATE

    torch.set_num_threads(1)
    model, tok, cfg = load_checkpoint(CACHE / "grpo_mask1_seed0")
    task, _, retriever = build(cfg)
    rcfg = RolloutConfig(max_turns=cfg.max_turns, max_new_tokens=cfg.max_new_tokens, template=SHORT_TEMPLATE)
    rows = task.heldout[:params["n"]]
    res = throughput(model, tok, retriever, rows, rcfg, batch_sizes=(1, params["n"]))
    return {"one_at_a_time_qps": res[0]["questions_per_s"], "batched_qps": res[1]["questions_per_s"],
            "speedup": res[1]["questions_per_s"] / res[0]["questions_per_s"], "searches": res[1]["searches"],
            "batch_size": params["n"], "detail": res}


def direct_cell(params: dict) -> dict:
    """SmolLM2 direct-answer EM on the seven data sets' dev sample (no offline corpus for RAG / policy)."""
    import torch

    from siftkit.core.assets import shared_data_dir
    from siftkit.llm.local import LocalChatModel
    from siftkit.search_agent.data import load_qa
    from siftkit.search_agent.evaluate import evaluate_system, summarise
    from siftkit.search_agent.rollout import RolloutConfig

    torch.set_num_threads(1)
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


SMOL = {"steps": [20], "seed": [0], "prompts": [4], "n_eval": [20], "threads": [1]}  # 60 entities: 20 held out


def experiments() -> dict[str, Experiment]:
    from benchmarks.search_r1_smollm2 import smollm2_cell

    return {
        "rl": Experiment("search_r1_rl", {"algo": ["grpo"], "mask": [True, False], "seed": SEEDS}, rl_cell),
        "ppo": Experiment("search_r1_ppo", {"algo": ["ppo"], "mask": [True], "seed": SEEDS}, rl_cell),
        "throughput": Experiment("search_r1_throughput", {"n": [64]}, throughput_cell),
        "direct": Experiment("search_r1_direct", {"per_source": [10], "max_new_tokens": [48]}, direct_cell),
        # part (b), sized for a quiet 2-core CPU: 4 questions × group 4 per step, 20 held-out questions
        # the spec's noisy policy (search 0.5 / entity 0.7 / copy 0.5) on 64 trajectories leaves RL room to improve
        "smollm2": Experiment("search_r1_smollm2", {**SMOL, "warm": [True], "n_sft": [64], "sft_epochs": [2],
                                                    "p_search": [0.5], "p_entity": [0.7], "p_copy": [0.5]},
                              smollm2_cell),
        # a strong warm start alone (no RL): what imitation of a near-perfect policy reaches
        "smollm2-sft-only": Experiment("search_r1_smollm2_sft_only", {**SMOL, "steps": [0], "warm": [True],
                                                                      "n_sft": [160], "sft_epochs": [2]},
                                       smollm2_cell),
        "smollm2-rl-only": Experiment("search_r1_smollm2_rl_only", {**SMOL, "warm": [False],
                                                                    "reward": ["em"]}, smollm2_cell),
    }


# ---------------------------------------------------------------------------------------------------------------------
# results page
# ---------------------------------------------------------------------------------------------------------------------

def _ms(xs):
    import numpy as np

    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    return f"{np.mean(xs):.3f} ± {np.std(xs, ddof=1) if len(xs) > 1 else 0.0:.3f}"


def part_a() -> str:
    import numpy as np

    from siftkit.metrics.stats import bootstrap_ci

    recs = load_cells("search_r1_rl") + load_cells("search_r1_ppo")
    if not recs:
        return "_(no part (a) cells yet)_\n"
    lines = ["| run | seeds | when | system | EM all | EM 1-hop | EM 2-hop | searches / q | answer in RAG context "
             "(1-hop / 2-hop) |", "|---|---|---|---|---|---|---|---|---|"]
    groups: dict[str, list[dict]] = {}
    for r in sorted(recs, key=lambda r: (r["params"]["algo"] != "grpo", not r["params"]["mask"],
                                         r["params"]["seed"])):
        p = r["params"]
        groups.setdefault(f"{p['algo'].upper()}{'' if p['mask'] else ', no mask'}", []).append(r)
    for name, rs in groups.items():
        for w in ("before", "after"):
            for s in ("direct", "rag", "policy"):
                m = lambda k: _ms([r["metrics"].get(f"{w}_{s}_{k}") for r in rs])  # noqa: E731
                ctx = f"{m('answer_in_context_1hop')} / {m('answer_in_context_2hop')}" if s == "rag" else ""
                lines.append(f"| {name} | {len(rs)} | {w} | {s} | {m('em')} | {m('em_1hop')} | {m('em_2hop')} | "
                             f"{m('searches')} | {ctx} |")
    out = "\n".join(lines) + "\n"
    # sampled reward, first vs last 10 steps
    out += ("\n| run | reward, first 10 steps | reward, last 10 steps | KL to reference, last 10 steps | "
            "coverage (generated / response tokens) | warm start s (0 = reused) | RL s |\n"
            "|---|---|---|---|---|---|---|\n")

    def last10(r, k):
        h = r["metrics"]["history"][-10:]
        return sum(x[k] for x in h) / len(h)

    for name, rs in groups.items():
        out += (f"| {name} | {_ms([r['metrics']['reward_first10'] for r in rs])} | "
                f"{_ms([r['metrics']['reward_last10'] for r in rs])} | {_ms([last10(r, 'kl') for r in rs])} | "
                f"{_ms([last10(r, 'coverage') for r in rs])} | {_ms([r['metrics']['sft_s'] for r in rs])} | "
                f"{_ms([r['metrics']['rl_s'] for r in rs])} |\n")
    # policy − RAG on two-hop, paired per question, pooled over seeds, questions resampled
    for name, rs in groups.items():
        diffs, clusters = [], []
        for r in rs:
            pq = r["metrics"]["per_question_after"]
            for uid, em in pq["policy"].items():
                if "-2hop-" in uid:
                    diffs.append(em - pq["rag"][uid])
                    clusters.append(uid)
        if diffs:
            ci = bootstrap_ci(np.array(diffs), clusters=clusters, n_resamples=2000, seed=0)
            out += (f"\n{name}: EM(policy) − EM(RAG) on held-out two-hop questions = {ci.estimate:.3f}, 95% "
                    f"bootstrap CI [{ci.low:.3f}, {ci.high:.3f}] ({len(diffs)} question-seed pairs, questions "
                    f"resampled as clusters); {'excludes' if ci.low > 0 or ci.high < 0 else 'includes'} 0.\n")
    _plot(groups)
    out += f"\n![reward vs step](cells/search_r1_plots/reward.png)\n"
    return out


def _plot(groups, filename: str = "reward.png"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, rs in groups.items():
        for i, r in enumerate(rs):
            h = r["metrics"]["history"]
            ax.plot([x["step"] for x in h], [x["reward"] for x in h], alpha=0.7,
                    label=f"{name}, seed {r['params']['seed']}")
    ax.set_xlabel("RL step")
    ax.set_ylabel("sampled EM reward")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    PLOTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOTS / filename, dpi=100)
    plt.close(fig)


def part_throughput() -> str:
    recs = load_cells("search_r1_throughput")
    if not recs:
        return "_(no throughput cell yet)_\n"
    m = recs[0]["metrics"]
    return (f"| rollout | questions/s |\n|---|---|\n| one question at a time | {m['one_at_a_time_qps']:.2f} |\n"
            f"| batched ({m['batch_size']} questions) | {m['batched_qps']:.2f} |\n\nSpeed-up {m['speedup']:.1f}× "
            f"(goal ≥ 3×); trained seed-0 GRPO policy, greedy, same {m['batch_size']} held-out questions, "
            f"{m['searches']:.2f} searches per question, one torch thread.\n")


def part_direct() -> str:
    recs = load_cells("search_r1_direct")
    if not recs:
        return "_(not run: `python -m benchmarks.search_r1 direct`, needs ../shared/data)_\n"
    p, rows = recs[0]["params"], recs[0]["metrics"]["table"]
    out = ("| data source | n | EM | F1 | answered (has an `<answer>` block) |\n|---|---|---|---|---|\n"
           + "".join(f"| {r['data_source']} | {r['n']} | {r['em']:.3f} | {r['f1']:.3f} | "
                     f"{r.get('answered', float('nan')):.2f} |\n" for r in rows))
    return out + (f"\nSmolLM2-135M-Instruct, zero-shot, greedy, Search-R1 template with no search allowed, ≤ "
                  f"{p['max_new_tokens']} new tokens; the first {p['per_source']} questions per data source of "
                  "DeepResearcher's seven-data-set dev sample. There is no offline wiki-18, so RAG and the policy are "
                  "not run on these sets (`siftkit search-agent eval --retriever-url` does, given a server).\n")


def part_b() -> str:
    recs = (load_cells("search_r1_smollm2_sft_only") + load_cells("search_r1_smollm2")
            + load_cells("search_r1_smollm2_rl_only"))
    if not recs:
        return ("_(part (b) not run yet: `python -m benchmarks.search_r1 smollm2`; opt-in, see "
                "docs/search_r1.md)_\n")
    from benchmarks.search_r1_smollm2 import markdown

    trained = [r for r in recs if "history" in r["metrics"]]
    if trained:
        _plot({("warm start + GRPO" if r["params"].get("warm", True) else "GRPO only"): [r] for r in trained},
              "smollm2_reward.png")
    return markdown(recs) + "\n![SmolLM2 reward vs step](cells/search_r1_plots/smollm2_reward.png)\n"


def write() -> Path:
    body = ("## (a) The RL effect: tiny from-scratch policy on the synthetic task\n\n" + part_a()
            + "\n## Batched vs one-at-a-time rollouts\n\n" + part_throughput()
            + "\n## (b) The real LLM: SmolLM2-135M-Instruct + LoRA\n\n" + part_b()
            + "\n## Direct-answer EM on the real QA data sets\n\n" + part_direct())
    notes = RESULTS / "search_r1_notes.md"
    return write_markdown(RESULTS / "search_r1.md", "Search-R1 (siftkit.search_agent)", body,
                          command="python -m benchmarks.search_r1 rl && python -m benchmarks.search_r1 ppo && "
                                  "python -m benchmarks.search_r1 throughput && python -m benchmarks.search_r1 "
                                  "smollm2 && python -m benchmarks.search_r1 smollm2-rl-only && "
                                  "python -m benchmarks.search_r1 smollm2-sft-only && "
                                  "python -m benchmarks.search_r1 direct && "
                                  "python -m benchmarks.search_r1 write",
                          notes=notes.read_text() if notes.exists() else "")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["rl", "ppo", "throughput", "smollm2", "smollm2-rl-only", "smollm2-sft-only", "direct",
                                       "write"])
    ap.add_argument("--only-seed", type=int)
    a = ap.parse_args(argv)
    if a.what == "write":
        print(write())
        return
    exp = experiments()[a.what]
    only = (lambda c: c.get("seed") == a.only_seed) if a.only_seed is not None else None
    print(json.dumps(run_experiment(exp, progress=False, only=only)), file=sys.stderr)


if __name__ == "__main__":
    main()
