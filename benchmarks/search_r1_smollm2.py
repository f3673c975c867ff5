"""Part (b) of the Search-R1 benchmark: SmolLM2-135M-Instruct + LoRA on the synthetic 1-hop task (CPU-sized).

Recipe (search_r1 spec §8B): zero-shot check → LoRA SFT format warm start on ``n_sft`` noisy-policy trajectories
(labelled "warm start"), merged → fresh LoRA, GRPO (group 4, ``prompts`` questions per step, one search turn,
``max_new_tokens`` per turn, reference = adapters off, β = 0.001) → EM before/after on held-out questions. The
RL-only variant (``warm=False``) runs the same GRPO from the raw model. The full Search-R1 template with SmolLM2's
chat template is used.

    python -m benchmarks run search_r1 --profile cpu --only part=smollm2     # or smollm2-rl-only, smollm2-sft-only
    python -m benchmarks run search_r1 --profile gpu                         # the GPU variants (benchmarks/device/)
"""

from __future__ import annotations

import random
import time


def _eval(model, tok, retriever, rows, rcfg):
    from siftkit.search_agent.evaluate import evaluate_system

    recs = evaluate_system("policy", model, tok, retriever, rows, rcfg)
    n = len(recs)
    return {"em": sum(r["em"] for r in recs) / n, "searches": sum(r["searches"] for r in recs) / n,
            "answered": sum(r["answer"] is not None for r in recs) / n}


DEFAULTS = {"warm": True, "n_sft": 16, "sft_epochs": 2, "p_search": 0.9, "p_entity": 0.9, "p_copy": 0.8,
            "reward": "em", "prompts": 1, "n_entities": 60, "n_eval": 10, "max_new_tokens": 24, "threads": 1,
            "model_path": "smollm2", "device": "cpu"}
"""A cell's parameters when it does not set them (the page reads them too)."""


def smollm2_cell(params: dict) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model

    from siftkit.llm.local import LocalChatModel
    from siftkit.retrieval.bm25 import BM25Retriever
    from siftkit.search_agent.config import SearchR1Config
    from siftkit.search_agent.rollout import RolloutConfig
    from siftkit.search_agent.synthetic import SyntheticTask, noisy_trajectories
    from siftkit.search_agent.trainer import SearchR1Trainer, sft

    params = DEFAULTS | params
    torch.set_num_threads(params["threads"])
    seed, steps, warm = params["seed"], params["steps"], params["warm"]
    llm = LocalChatModel.from_pretrained(params["model_path"], device=params["device"])
    model, tok = llm.model, llm.tokenizer
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    task = SyntheticTask.generate(seed, n_entities=params["n_entities"], n_values=20, two_hop=False)
    bm25 = BM25Retriever(task.corpus(), stemmer=None)
    n_eval = params["n_eval"]
    held = task.heldout[:n_eval]
    if len(held) < n_eval:
        raise ValueError(f"n_eval={n_eval} but the task holds out only {len(held)} questions")
    T = params["max_new_tokens"]
    rcfg = RolloutConfig(max_turns=1, max_new_tokens=T, batch_size=32)
    out: dict = {"n_eval": len(held)}
    t0 = time.perf_counter()
    out["zero_shot"] = _eval(model, tok, bm25, held, rcfg)
    out["zero_shot_s"] = time.perf_counter() - t0
    print("zero-shot", out["zero_shot"], flush=True)
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    if warm:
        t0 = time.perf_counter()
        rng = random.Random(seed)
        picked = [rng.choice(task.train) for _ in range(params["n_sft"])]
        trajs = noisy_trajectories(task, picked, tok, bm25, rng, p_search=params["p_search"],
                                   p_entity=params["p_entity"], p_copy=params["p_copy"],
                                   template=_template())
        pm = get_peft_model(model, lora)
        out["sft_loss"] = sft(pm, trajs, tok.pad_token_id, epochs=params["sft_epochs"], lr=1e-3, batch_size=8,
                              seed=seed)
        model = pm.merge_and_unload()
        out["sft_s"] = time.perf_counter() - t0
        out["warm_start"] = _eval(model, tok, bm25, held, rcfg)
        print("warm start", out["warm_start"], flush=True)
    if steps == 0:  # warm start only: how far supervised imitation alone gets
        return out
    pm = get_peft_model(model, lora)
    cfg = SearchR1Config(max_turns=1, max_new_tokens=T, group_size=4, steps=steps, lr=2e-4,
                         prompts_per_step=params["prompts"],
                         beta=0.001, entropy_coeff=0.0, mini_batches=2, seed=seed, reward=params["reward"])
    tr = SearchR1Trainer(pm, tok, bm25, cfg, log=lambda m: print({k: round(v, 3) for k, v in m.items()}, flush=True))
    t0 = time.perf_counter()
    hist = tr.train(task.train)
    out["rl_s"] = time.perf_counter() - t0
    out["history"] = [{k: round(h[k], 4) for k in ("step", "reward", "searches", "valid_action", "kl", "step_s")}
                      for h in hist]
    out["after_rl"] = _eval(pm, tok, bm25, held, rcfg)
    print("after", out["after_rl"], flush=True)
    return out


def _template():
    from siftkit.search_agent.rollout import TEMPLATE

    return TEMPLATE
