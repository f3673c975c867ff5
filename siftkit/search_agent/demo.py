"""The CPU-scale demonstration (search_r1 spec §8A): synthetic task → tiny policy → format warm start → GRPO/PPO.

One code path for the quickstart step and ``benchmarks/search_r1.py`` part (a): :func:`run_synthetic` builds the task
and BM25 over its corpus, warm-starts a from-scratch word-level Llama on noisy-policy trajectories (SFT, labelled as
such), evaluates direct / RAG / policy on held-out questions, trains with RL, and evaluates again.

Example:
    >>> res = run_synthetic(SyntheticRunConfig(seed=0, steps=80))
    >>> res["after"]["policy"]["em"], res["history"][-1]["reward"]
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from siftkit.search_agent.config import SearchR1Config
from siftkit.search_agent.evaluate import SYSTEMS, evaluate_system
from siftkit.search_agent.rollout import HFSampler, RolloutConfig, rollout
from siftkit.search_agent.synthetic import SHORT_TEMPLATE, SyntheticTask, noisy_trajectories, task_tokenizer, tiny_policy
from siftkit.search_agent.trainer import SearchR1Trainer, sft


@dataclass
class SyntheticRunConfig:
    """The demonstration's scale (spec §8A unless marked [ours]).

    Attributes:
        seed: task, init, warm-start and RL seed.
        n_entities, n_values: task size [ours: 300 / 40, so 100 held-out entities give 200 held-out questions].
        two_hop: include 2-hop questions.
        sft_trajs, sft_epochs, sft_lr: warm start [spec: 8,000 × 4].
        algo, steps, prompts_per_step, group_size, lr, beta, mask_info: RL [spec: 16 prompts × 5, lr 1e-3].
        max_turns, max_new_tokens: rollout budget [ours: 3 turns, 16 tokens per turn].
        n_eval: held-out questions evaluated (0 = all).
        sft_cache: folder for warm-start weights, shared by cells with the same seed and warm-start settings.
    """

    seed: int = 0
    n_entities: int = 300
    n_values: int = 40
    two_hop: bool = True
    sft_trajs: int = 8000
    sft_epochs: int = 4
    sft_lr: float = 1e-3
    algo: str = "grpo"
    steps: int = 120
    prompts_per_step: int = 16
    group_size: int = 5
    lr: float = 1e-3
    critic_lr: float = 1e-3
    beta: float = 0.001
    mask_info: bool = True
    max_turns: int = 3
    max_new_tokens: int = 16
    n_eval: int = 0
    sft_cache: str | None = None

    def rl_config(self) -> SearchR1Config:
        return SearchR1Config(max_turns=self.max_turns, max_new_tokens=self.max_new_tokens, algo=self.algo,
                              group_size=self.group_size, prompts_per_step=self.prompts_per_step, steps=self.steps,
                              lr=self.lr, critic_lr=self.critic_lr, beta=self.beta, mask_info=self.mask_info,
                              seed=self.seed, template=SHORT_TEMPLATE)


def evaluate_all(model, tok, retriever, rows, rcfg: RolloutConfig) -> dict:
    """Per-question records of every system on ``rows``."""
    return {s: evaluate_system(s, model, tok, retriever, rows, rcfg) for s in SYSTEMS}


def summary(records: dict) -> dict:
    """``{system: {em, searches, turns, em_1hop, em_2hop, ...}}``."""
    out = {}
    for s, recs in records.items():
        d = {"em": _mean(recs, "em"), "searches": _mean(recs, "searches"), "turns": _mean(recs, "turns")}
        for h in (1, 2):
            sub = [r for r in recs if r["hops"] == h]
            if sub:
                d[f"em_{h}hop"] = _mean(sub, "em")
                d[f"searches_{h}hop"] = _mean(sub, "searches")
                if "answer_in_context" in sub[0]:
                    d[f"answer_in_context_{h}hop"] = _mean(sub, "answer_in_context")
        out[s] = d
    return out


def _mean(recs, k):
    return sum(r[k] for r in recs) / max(1, len(recs))


def build(cfg: SyntheticRunConfig):
    """Task, tokenizer and BM25 retriever (in-process; the same object can sit behind the /retrieve server)."""
    from siftkit.retrieval.bm25 import BM25Retriever

    task = SyntheticTask.generate(cfg.seed, cfg.n_entities, cfg.n_values, two_hop=cfg.two_hop)
    tok = task_tokenizer(task)
    return task, tok, BM25Retriever(task.corpus(), stemmer=None)


def warm_start(cfg: SyntheticRunConfig, task, tok, retriever, log=print):
    """Tiny policy + SFT on noisy-policy trajectories; cached under ``cfg.sft_cache`` when given."""
    model = tiny_policy(len(tok), seed=cfg.seed)
    key = f"sft_seed{cfg.seed}_n{cfg.sft_trajs}_e{cfg.sft_epochs}_ent{cfg.n_entities}_2h{int(cfg.two_hop)}.pt"
    path = Path(cfg.sft_cache) / key if cfg.sft_cache else None
    if path is not None and path.exists():
        model.load_state_dict(torch.load(path))
        return model.eval(), {"sft_s": 0.0, "sft_cached": True}
    t0 = time.perf_counter()
    rng = random.Random(cfg.seed + 1000)
    rows = [rng.choice(task.train) for _ in range(cfg.sft_trajs)]
    trajs = noisy_trajectories(task, rows, tok, retriever, rng)
    losses = sft(model, trajs, tok.pad_token_id, epochs=cfg.sft_epochs, lr=cfg.sft_lr, seed=cfg.seed, log=log)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    return model.eval(), {"sft_s": time.perf_counter() - t0, "sft_loss": losses[-1], "sft_cached": False}


def run_synthetic(cfg: SyntheticRunConfig, log=print) -> dict:
    """Warm start, evaluate, RL, evaluate. Returns summaries, per-question records and the reward history."""
    task, tok, retriever = build(cfg)
    model, info = warm_start(cfg, task, tok, retriever, log=log)
    heldout = task.heldout[:cfg.n_eval] if cfg.n_eval else task.heldout
    rcfg = RolloutConfig(max_turns=cfg.max_turns, max_new_tokens=cfg.max_new_tokens, batch_size=256,
                         template=SHORT_TEMPLATE)
    before = evaluate_all(model, tok, retriever, heldout, rcfg)
    trainer = SearchR1Trainer(model, tok, retriever, cfg.rl_config(),
                              log=lambda m: log({k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()
                                                 if k in ("step", "reward", "searches", "kl", "step_s")}))
    t0 = time.perf_counter()
    history = trainer.train(task.train)
    rl_s = time.perf_counter() - t0
    after = evaluate_all(model, tok, retriever, heldout, rcfg)
    return {"config": asdict(cfg), **info, "rl_s": rl_s, "before": summary(before), "after": summary(after),
            "records_after": after, "records_before": before, "history": history, "model": model, "tokenizer": tok,
            "retriever": retriever, "task": task}


def throughput(model, tok, retriever, rows, rcfg: RolloutConfig, batch_sizes=(1, 64)) -> list[dict]:
    """Questions per second of greedy rollouts at each batch size (same model, same questions)."""
    out = []
    items = [(r["uid"], r["question"], r["golds"]) for r in rows]
    for bs in batch_sizes:
        c = replace(rcfg, batch_size=bs)
        s = HFSampler(model, tok, temperature=0.0)
        t0 = time.perf_counter()
        trajs = rollout(s, tok, retriever, items, c)
        dt = time.perf_counter() - t0
        out.append({"batch_size": bs, "questions": len(items), "seconds": dt, "questions_per_s": len(items) / dt,
                    "searches": sum(t.n_search for t in trajs) / len(trajs)})
    return out



