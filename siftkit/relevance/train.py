"""Training plumbing for LREF: LoRA SFT and DPO through TRL and PEFT, each stage merged into the weights.

Every stage wraps the current model in a fresh LoRA adapter, trains it and merges it (``merge_and_unload``), so the
next stage starts from the previous checkpoint (Stage 2's "each continuing from the previous checkpoint") and DPO's
reference model — the adapter-disabled model, TRL's default with PEFT — is exactly the Stage-2 model.
Multi-GPU users run the same code under ``accelerate launch`` (TRL trainers are accelerate-aware).
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from typing import Sequence

from siftkit.core.errors import InputError
from siftkit.relevance.config import LrefConfig
from siftkit.relevance.lref import GRADES, completion, judge_prompt

_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


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


def _lora(cfg: LrefConfig):
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules=_TARGETS,
                      task_type="CAUSAL_LM")


def _common_args(cfg: LrefConfig, steps: int, batch: int, seed: int, out: str, lr: float | None = None) -> dict:
    return dict(output_dir=out, max_steps=steps, per_device_train_batch_size=batch, learning_rate=lr or cfg.lr,
                warmup_steps=int(cfg.warmup_ratio * steps), lr_scheduler_type="linear", logging_steps=max(1, steps),
                save_strategy="no", report_to="none", seed=seed, data_seed=seed, use_cpu=_cpu_only(cfg),
                disable_tqdm=True, dataloader_num_workers=0, max_length=cfg.max_length,
                gradient_checkpointing=cfg.gradient_checkpointing)


def _cpu_only(cfg: LrefConfig) -> bool:
    """Train on the CPU when asked to (``device="cpu"``) or when there is no GPU."""
    import torch

    return cfg.device == "cpu" or not torch.cuda.is_available()


def _unpatch(model):
    """Give every module back its class's ``forward``; returns ``model``.

    TRL's trainers patch ``model.forward`` on the instance (a fused LM head whose closure calls the forward the
    model had before, bound to that very object), and the patch outlives ``merge_and_unload``. On the model itself
    that is harmless, but ``copy.deepcopy`` copies the patch without re-binding the closure, so the copy's forward
    silently runs the original's weights: a copy trained again would evaluate exactly like the original.
    """
    for module in model.modules():
        module.__dict__.pop("forward", None)
        module.__dict__.pop("_original_forward", None)
    return model


def _quiet():
    logging.getLogger("transformers").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if not rows:
        raise InputError("no training rows to fine-tune on (an empty set, e.g. a keep rule that kept nothing)",
                         field="rows")
    _quiet()
    with tempfile.TemporaryDirectory(prefix="lref-sft-") as out:
        args = SFTConfig(**_common_args(cfg, steps, cfg.batch_size, seed, out), completion_only_loss=True,
                         packing=False, dataset_num_proc=None)
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(list(rows)),
                             processing_class=tokenizer, peft_config=_lora(cfg))
        trainer.train()
        log = [h for h in trainer.state.log_history if "loss" in h or "train_loss" in h]
        merged = _unpatch(trainer.model.merge_and_unload())
    merged.eval()
    return merged, log


def dpo(model, tokenizer, rows: Sequence[dict], steps: int, cfg: LrefConfig, seed: int = 0):
    """LoRA DPO on ``{"prompt", "chosen", "rejected"}`` rows with β and the RPO NLL weight α from ``cfg``.

    Loss [2nd, spec §2 Stage 3]: ``L = L_DPO(β) + α · L_NLL(chosen)``, TRL's ``loss_type=["sigmoid", "sft"]`` with
    ``loss_weights=[1, α]`` (α = ``cfg.rpo_alpha``; 0 gives plain DPO). The reference model is the input model.

    Returns:
        ``(model, log)``: the merged model and the loss log.
    """
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    if not rows:
        raise InputError("no preference pairs to train DPO on", field="rows")
    _quiet()
    loss_type = ["sigmoid", "sft"] if cfg.rpo_alpha > 0 else ["sigmoid"]
    weights = [1.0, cfg.rpo_alpha] if cfg.rpo_alpha > 0 else [1.0]
    with tempfile.TemporaryDirectory(prefix="lref-dpo-") as out:
        args = DPOConfig(**_common_args(cfg, steps, cfg.dpo_batch_size, seed, out, lr=cfg.dpo_lr), beta=cfg.beta,
                         loss_type=loss_type, loss_weights=weights)
        trainer = DPOTrainer(model=model, ref_model=None, args=args, train_dataset=Dataset.from_list(list(rows)),
                             processing_class=tokenizer, peft_config=_lora(cfg))
        trainer.train()
        log = [h for h in trainer.state.log_history if "loss" in h or "train_loss" in h]
        merged = _unpatch(trainer.model.merge_and_unload())
    merged.eval()
    return merged, log
