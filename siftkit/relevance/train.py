"""Training plumbing for LREF: LoRA SFT and DPO through the core helper :mod:`siftkit.llm.finetune` (TRL and PEFT),
each stage merged into the weights.

Every stage wraps the current model in a fresh LoRA adapter, trains it and merges it (``merge_and_unload``), so the
next stage starts from the previous checkpoint (Stage 2's "each continuing from the previous checkpoint") and DPO's
reference model — the adapter-disabled model, TRL's default with PEFT — is exactly the Stage-2 model.
Multi-GPU users run the same code under ``accelerate launch`` (TRL trainers are accelerate-aware).
"""

from __future__ import annotations

from typing import Sequence

from siftkit.llm.finetune import FinetuneConfig, cpu_only, training_args
from siftkit.llm.finetune import dpo as finetune_dpo
from siftkit.llm.finetune import sft as finetune_sft
from siftkit.relevance.config import LrefConfig
from siftkit.relevance.lref import GRADES, completion, judge_prompt


def prompt_text(tokenizer, messages) -> str:
    """The chat-templated prompt exactly as :class:`~siftkit.llm.local.LocalChatModel` sends it."""
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def sft_rows(tokenizer, records: Sequence[dict], label_key: str = "label", rationales: Sequence[str] | None = None,
             rules: bool = False, wrongs: Sequence[str | None] | None = None,
             grades: Sequence[str] = GRADES) -> list[dict]:
    """TRL prompt-completion rows: prompt = templated judge prompt, completion = [rationale +] ``Label: g``."""
    rows = []
    for i, x in enumerate(records):
        msgs = judge_prompt(x["query"], x["title"], grades, rules=rules, wrong=wrongs[i] if wrongs else None)
        rows.append({"prompt": prompt_text(tokenizer, msgs),
                     "completion": completion(x[label_key], rationales[i] if rationales else "")})
    return rows


def finetune_config(cfg: LrefConfig, steps: int, batch: int, seed: int, lr: float | None = None) -> FinetuneConfig:
    """The core helper's settings for one LREF stage: LoRA on every linear layer but the head, no dropout."""
    return FinetuneConfig(steps=steps, batch_size=batch, lr=lr or cfg.lr, warmup_ratio=cfg.warmup_ratio,
                          max_length=cfg.max_length, seed=seed, device="cpu" if cfg.device == "cpu" else "auto",
                          gradient_checkpointing=cfg.gradient_checkpointing, lora=True, lora_r=cfg.lora_r,
                          lora_alpha=cfg.lora_alpha, lora_dropout=0.0, beta=cfg.beta, rpo_alpha=cfg.rpo_alpha)


def _common_args(cfg: LrefConfig, steps: int, batch: int, seed: int, out: str, lr: float | None = None) -> dict:
    """The trainer arguments one stage runs with (see :func:`siftkit.llm.finetune.training_args`)."""
    return training_args(finetune_config(cfg, steps, batch, seed, lr), out)


def _cpu_only(cfg: LrefConfig) -> bool:
    """Train on the CPU when asked to (``device="cpu"``) or when there is no GPU."""
    return cpu_only(finetune_config(cfg, 1, 1, 0))


def sft(model, tokenizer, rows: Sequence[dict], steps: int, cfg: LrefConfig, seed: int = 0):
    """LoRA SFT on prompt-completion rows (loss on the completion only, TRL's default); returns the merged model.

    Args:
        model: a transformers causal LM (not PEFT-wrapped).
        tokenizer: its tokenizer.
        rows: ``{"prompt", "completion"}`` dicts (see :func:`sft_rows`).
        steps: optimiser steps.
        cfg: learning rate, batch, LoRA and warm-up settings.
        seed: data order and LoRA init.

    Returns:
        ``(model, log)``: the model with the adapter merged, and the trainer's loss log.
    """
    return finetune_sft(model, tokenizer, rows, finetune_config(cfg, steps, cfg.batch_size, seed))


def dpo(model, tokenizer, rows: Sequence[dict], steps: int, cfg: LrefConfig, seed: int = 0):
    """LoRA DPO on ``{"prompt", "chosen", "rejected"}`` rows with β and the RPO NLL weight α from ``cfg``.

    Loss [2nd, spec §2 Stage 3]: ``L = L_DPO(β) + α · L_NLL(chosen)``, TRL's ``loss_type=["sigmoid", "sft"]`` with
    ``loss_weights=[1, α]`` (α = ``cfg.rpo_alpha``; 0 gives plain DPO). The reference model is the input model.

    Returns:
        ``(model, log)``: the merged model and the loss log.
    """
    return finetune_dpo(model, tokenizer, rows, finetune_config(cfg, steps, cfg.dpo_batch_size, seed, lr=cfg.dpo_lr))
