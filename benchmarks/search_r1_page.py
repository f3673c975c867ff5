"""The Search-R1 results page (benchmarks/results/search_r1.md) from the stored cells.

Tables and the reward plots are built here; every sentence with a number in it is in
``benchmarks/templates/search_r1.md``, filled with values from the cells, the config and the paper's table
(``benchmarks.claims.paper("search_r1")``).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.cells import CELLS
from benchmarks.runner import flag, mean_sd, md_table

TEMPLATE = Path(__file__).resolve().parent / "templates" / "search_r1.md"
PLOTS = CELLS / "search_r1_plots"
STAGES = [("zero-shot", "zero_shot", "zero_shot_s"), ("after LoRA SFT warm start", "warm_start", "sft_s"),
          ("after GRPO", "after_rl", "rl_s")]


def _ms(xs: list) -> str:
    return mean_sd(xs, sd_of_one=True)


def _mean(xs: list) -> float:
    return sum(xs) / len(xs)


def _plot(groups: dict[str, list[dict]], filename: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, rs in groups.items():
        for r in rs:
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


def part_a(cells: list[dict]) -> dict:
    """EM before/after RL per system, the reward and KL over training, and policy − RAG on two-hop questions."""
    import numpy as np

    from siftkit.metrics.stats import bootstrap_ci

    recs = sorted((c for c in cells if c["params"]["part"] in ("rl", "ppo")),
                  key=lambda r: (r["params"]["algo"] != "grpo", not r["params"]["mask"], r["params"]["seed"]))
    groups: dict[str, list[dict]] = {}
    for r in recs:
        groups.setdefault(f"{r['params']['algo'].upper()}{'' if r['params']['mask'] else ', no mask'}", []).append(r)
    em, reward, ci = [], [], []
    for name, rs in groups.items():
        seeds = f"{len(rs)}{''.join(sorted({flag(r) for r in rs}))}"
        for w in ("before", "after"):
            for s in ("direct", "rag", "policy"):
                m = lambda k: _ms([r["metrics"].get(f"{w}_{s}_{k}") for r in rs])  # noqa: E731
                ctx = f"{m('answer_in_context_1hop')} / {m('answer_in_context_2hop')}" if s == "rag" else ""
                em.append([name, seeds, w, s, m("em"), m("em_1hop"), m("em_2hop"), m("searches"), ctx])
        last10 = lambda r, k: _mean([x[k] for x in r["metrics"]["history"][-10:]])  # noqa: E731
        reward.append([name] + [_ms([r["metrics"][k] for r in rs]) for k in ("reward_first10", "reward_last10")]
                      + [_ms([last10(r, k) for r in rs]) for k in ("kl", "coverage")]
                      + [_ms([r["metrics"][k] for r in rs]) for k in ("sft_s", "rl_s")])
        diffs, clusters = [], []  # paired per question, pooled over seeds, questions resampled
        for r in rs:
            pq = r["metrics"]["per_question_after"]
            for uid, v in pq["policy"].items():
                if "-2hop-" in uid:
                    diffs.append(v - pq["rag"][uid])
                    clusters.append(uid)
        if diffs:
            b = bootstrap_ci(np.array(diffs), clusters=clusters, n_resamples=2000, seed=0)
            ci.append([name, f"{b.estimate:.3f}", f"[{b.low:.3f}, {b.high:.3f}]", len(diffs),
                       "excludes" if b.low > 0 or b.high < 0 else "includes"])
    if groups:
        _plot(groups, "reward.png")
    return {"a_em": md_table(["run", "seeds", "when", "system", "EM all", "EM 1-hop", "EM 2-hop", "searches / q",
                            "answer in RAG context (1-hop / 2-hop)"], em),
            "a_reward": md_table(["run", "reward, first 10 steps", "reward, last 10 steps",
                                "KL to reference, last 10 steps", "coverage (generated / response tokens)",
                                "warm start s (0 = reused)", "RL s"], reward),
            "a_ci": md_table(["run", "EM(policy) − EM(RAG), held-out two-hop", "95% bootstrap CI",
                            "question-seed pairs", "0 in the CI"], ci)}


def part_throughput(cells: list[dict]) -> dict:
    c = next((c for c in cells if c["params"]["part"] == "throughput"), None)
    if c is None:
        return {"tp_table": "_(no throughput cell)_", "tp_speedup": "–", "tp_n": "–", "tp_searches": "–"}
    m = c["metrics"]
    rows = [["one question at a time", f"{m['one_at_a_time_qps']:.2f}"],
            [f"batched ({m['batch_size']} questions){flag(c)}", f"{m['batched_qps']:.2f}"]]
    return {"tp_table": md_table(["rollout", "questions/s"], rows),
            "tp_speedup": f"{m['speedup']:.1f}", "tp_n": m["batch_size"], "tp_searches": f"{m['searches']:.2f}"}


def part_direct(cells: list[dict]) -> dict:
    c = next((c for c in cells if c["params"]["part"] == "direct"), None)
    if c is None:
        return {"direct_table": "_(not run: needs ../shared/data)_", "direct_tokens": "–",
                "direct_per_source": "–"}
    return {"direct_table": md_table(["data source", "n", "EM", "F1", "answered (has an `<answer>` block)"],
                                   [[f"{r['data_source']}{flag(c) if r['data_source'] == 'all' else ''}", r["n"],
                                     f"{r['em']:.3f}", f"{r['f1']:.3f}", f"{r.get('answered', float('nan')):.2f}"]
                                    for r in c["metrics"]["table"]]),
            "direct_tokens": c["params"]["max_new_tokens"], "direct_per_source": c["params"]["per_source"]}


def part_b(cfg, cells: list[dict]) -> dict:
    """SmolLM2 variants: their settings, EM at each stage, and the GRPO curves."""
    from benchmarks.search_r1_smollm2 import DEFAULTS

    order = list(cfg.smollm2)
    recs = sorted((c for c in cells if c["params"]["part"] in cfg.smollm2),
                  key=lambda c: order.index(c["params"]["part"]))
    setup, em, curves = [], [], []
    for r in recs:
        p, m, name = DEFAULTS | r["params"], r["metrics"], r["params"]["part"] + flag(r)
        setup.append([name, f"{p['n_sft']} traj. × {p['sft_epochs']} ep." if p["warm"] else "none",
                      f"{p['p_search']} / {p['p_entity']} / {p['p_copy']}" if p["warm"] else "", p["steps"],
                      f"{p['prompts']}×4", p["reward"], p["n_entities"], m["n_eval"], p["device"]])
        for stage, key, s in STAGES:
            if key in m:
                em.append([name, stage, f"{m[key]['em']:.3f}", f"{m[key]['searches']:.2f}",
                           f"{m[key]['answered']:.2f}", f"{m[s]:.0f}"])
        if "history" in m:
            h = m["history"]
            curves.append([name] + [" ".join(f"{x[k]:.{d}f}" for x in h) for k, d in
                                    (("reward", 2), ("searches", 2), ("valid_action", 2), ("kl", 4))]
                          + [f"{sum(x['step_s'] for x in h) / len(h):.1f}"])
    trained = [r for r in recs if "history" in r["metrics"]]
    if trained:
        _plot({("warm start + GRPO" if r["params"].get("warm", True) else "GRPO only"): [r] for r in trained},
              "smollm2_reward.png")
    return {"b_setup": md_table(["variant", "warm start", "noisy policy search / entity / copy", "GRPO steps",
                               "rollouts per step", "reward", "entities", "held-out n", "device"], setup),
            "b_em": md_table(["variant", "stage", "held-out EM", "searches / q", "answered", "seconds"], em),
            "b_curves": md_table(["variant", "reward per step", "searches per rollout per step",
                                "valid-action ratio per step", "KL per step", "seconds per step (mean)"], curves)}


def render(cfg, cells: list[dict]) -> str:
    from benchmarks.claims import claims_section, paper

    em = paper("search_r1")["em_avg"]
    return TEMPLATE.read_text().format(
        **part_a(cells), **part_throughput(cells), **part_b(cfg, cells), **part_direct(cells),
        paper_search_r1=f"{em['search_r1_7b']:.3f}", paper_no_mask=f"{em['no_mask_7b']:.3f}",
        claims=claims_section("search_r1", load=lambda name: cells if name == "search_r1" else [])).strip()
