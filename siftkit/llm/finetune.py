"""One fine-tuning helper: SFT and DPO over any Hugging Face causal LM, LoRA (PEFT) or full, through TRL.

* :func:`sft` — supervised fine-tuning on ``{"prompt", "completion"}`` rows (loss on the completion only, TRL's
  default for prompt-completion data) or ``{"text"}`` rows.
* :func:`dpo` — Direct Preference Optimisation (Rafailov et al. 2023, arXiv 2305.18290) on
  ``{"prompt", "chosen", "rejected"}`` rows, optionally with the RPO NLL term on the chosen answer
  (Pang et al. 2024, arXiv 2404.19733): ``L = L_DPO(β) + α · L_NLL(chosen)``.
* :func:`finetune` — either of them on a :class:`~siftkit.llm.local.LocalChatModel`: the model is swapped for the
  trained one and the fingerprint is refreshed, so the response cache never serves the old model's answers.

With ``lora=True`` every call wraps the model in a fresh LoRA adapter (targets from :func:`lora_targets`: every
linear layer but the output head, found by inspecting the model), trains it, and merges it back
(``merge_and_unload``): what comes back is a plain ``transformers`` model again, so the next call starts from this
checkpoint and a DPO reference (the adapter-disabled model, TRL's default with PEFT) is exactly the input model.
With ``lora=False`` all weights train; a DPO reference is then a frozen copy of the input model [ours: TRL would
reload the model's folder from disk, which is not the input once the model was trained in memory].

TRL patches ``forward`` on the model instance (a fused LM head); the patch is removed after training
(:func:`unpatch`). Training happens in place: deep-copy the model first to keep the original. Multi-GPU users run
the same code under ``accelerate launch`` (TRL trainers are accelerate-aware).

Example:
    >>> cfg = FinetuneConfig(steps=20, lr=1e-3, batch_size=4)
    >>> model, log = sft(model, tokenizer, [{"prompt": "2+2=", "completion": "4"}], cfg)  # doctest: +SKIP
    >>> log = finetune(llm, pairs, cfg, method="dpo")  # llm.fingerprint has changed   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from typing import Sequence

from siftkit.core.errors import InputError


@dataclass
class FinetuneConfig:
    """Settings shared by :func:`sft` and :func:`dpo`; defaults are a small LoRA run [ours].

    Attributes:
        steps: optimiser steps.
        batch_size: rows per step (per device).
        lr: peak learning rate (linear schedule).
        warmup_ratio: share of ``steps`` with linear warm-up (``int(warmup_ratio * steps)`` steps).
        max_length: truncate tokenised rows to this many tokens (``None``: no truncation).
        seed: data order, LoRA init and dropout (TRL's ``seed`` and ``data_seed``).
        device: ``"auto"`` (the GPU when there is one) or ``"cpu"`` (always the CPU).
        gradient_checkpointing: recompute activations in the backward pass (less memory, slower).
        logging_steps: log the loss every this many steps; ``None`` logs once, at the end.
        lora: train a LoRA adapter (merged back afterwards); ``False`` trains every weight.
        lora_r: LoRA rank ``r``.
        lora_alpha: LoRA scale numerator ``α`` (the update is scaled by ``α / r``).
        lora_dropout: dropout on the LoRA input.
        target_modules: module names to adapt; ``None`` takes :func:`lora_targets` of the model.
        completion_only_loss: SFT loss on the completion tokens only (prompt-completion rows).
        beta: DPO ``β``, the strength of the implicit KL penalty (paper Eq. 7).
        rpo_alpha: weight ``α`` of the NLL term on the chosen answer (RPO); 0 gives plain DPO.
    """

    # > training
    steps: int = 100
    batch_size: int = 8
    lr: float = 1e-4
    warmup_ratio: float = 0.0
    max_length: int | None = 1024
    seed: int = 0
    device: str = "auto"
    gradient_checkpointing: bool = False
    logging_steps: int | None = None
    # > adapter
    lora: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] | None = None
    # > SFT
    completion_only_loss: bool = True
    # > DPO
    beta: float = 0.1
    rpo_alpha: float = 0.0

    def __post_init__(self):
        if self.steps < 1:
            raise InputError("steps must be >= 1", field="steps")
        if self.batch_size < 1:
            raise InputError("batch_size must be >= 1", field="batch_size")
        if self.lr <= 0:
            raise InputError("lr must be > 0", field="lr")
        if not 0 <= self.warmup_ratio < 1:
            raise InputError("warmup_ratio must be in [0, 1)", field="warmup_ratio")
        if self.device not in ("auto", "cpu"):
            raise InputError('device must be "auto" or "cpu"', field="device")
        if self.lora_r < 1:
            raise InputError("lora_r must be >= 1", field="lora_r")
        if self.beta <= 0:
            raise InputError("beta must be > 0", field="beta")
        if self.rpo_alpha < 0:
            raise InputError("rpo_alpha must be >= 0", field="rpo_alpha")


# ---------------------------------------------------------------------------------------------------------------------
# plumbing: targets, arguments, TRL's patch
# ---------------------------------------------------------------------------------------------------------------------

def lora_targets(model) -> list[str]:
    """Names of the layers LoRA adapts: every ``nn.Linear`` (or GPT-2 style ``Conv1D``) but the output head.

    Found by inspecting ``model``, so any architecture works (Llama gives ``q_proj … down_proj``, GPT-2 gives
    ``c_attn, c_proj, c_fc``). Names are the last component of the module path, PEFT's suffix matching.
    """
    import torch
    from transformers.pytorch_utils import Conv1D

    head = model.get_output_embeddings()
    linear = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, (torch.nn.Linear, Conv1D))}
    head_names = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if m is head}
    return sorted(linear - head_names)  # a suffix shared with the head would adapt the head too: left out


def cpu_only(cfg: FinetuneConfig) -> bool:
    """Train on the CPU when asked to (``device="cpu"``) or when there is no GPU."""
    import torch

    return cfg.device == "cpu" or not torch.cuda.is_available()


def training_args(cfg: FinetuneConfig, output_dir: str) -> dict:
    """The ``TrainingArguments`` fields both trainers share (no checkpoints, no reports, a linear schedule)."""
    return dict(output_dir=output_dir, max_steps=cfg.steps, per_device_train_batch_size=cfg.batch_size,
                learning_rate=cfg.lr, warmup_steps=int(cfg.warmup_ratio * cfg.steps), lr_scheduler_type="linear",
                logging_steps=cfg.logging_steps or max(1, cfg.steps), save_strategy="no", report_to="none",
                seed=cfg.seed, data_seed=cfg.seed, use_cpu=cpu_only(cfg), disable_tqdm=True,
                dataloader_num_workers=0, max_length=cfg.max_length,
                gradient_checkpointing=cfg.gradient_checkpointing)


def lora_config(model, cfg: FinetuneConfig):
    """The PEFT ``LoraConfig`` for ``model`` (``None`` when ``cfg.lora`` is off)."""
    if not cfg.lora:
        return None
    from peft import LoraConfig

    targets = list(cfg.target_modules) if cfg.target_modules else lora_targets(model)
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM")


def unpatch(model):
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


@contextlib.contextmanager
def _quiet():
    """Library warnings, the transformers logger and the datasets bars stay out of the console while training."""
    import datasets

    logger = logging.getLogger("transformers")
    level, bars_on = logger.level, datasets.is_progress_bar_enabled()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logger.setLevel(logging.ERROR)
    datasets.disable_progress_bars()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            yield
    finally:
        logger.setLevel(level)
        if bars_on:
            datasets.enable_progress_bars()


def _run(trainer, lora: bool) -> tuple[object, list[dict]]:
    """Train, keep the loss log, merge the adapter back and remove TRL's forward patch."""
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the loss dicts TRL prints with disable_tqdm
    trainer.train()
    log = [h for h in trainer.state.log_history if "loss" in h or "train_loss" in h]
    model = trainer.model.merge_and_unload() if lora else trainer.model
    model = unpatch(model)
    model.eval()
    return model, log


# ---------------------------------------------------------------------------------------------------------------------
# SFT and DPO
# ---------------------------------------------------------------------------------------------------------------------

def sft(model, tokenizer, rows: Sequence[dict], cfg: FinetuneConfig):
    """Supervised fine-tuning through TRL's ``SFTTrainer``; returns the trained (merged) model.

    Args:
        model: a ``transformers`` causal LM (not PEFT-wrapped); trained in place.
        tokenizer: its tokenizer (the pad token is used for batching).
        rows: ``{"prompt", "completion"}`` dicts (loss on the completion when ``cfg.completion_only_loss``) or
            ``{"text"}`` dicts (loss on every token). Prompts go in as given: apply a chat template first if wanted.
        cfg: steps, rates, batch, LoRA settings.

    Returns:
        ``(model, log)``: the model with any adapter merged and TRL's patch removed (in eval mode), and the
        trainer's loss log (dicts with ``loss`` every ``cfg.logging_steps`` steps and a final ``train_loss``).

    Example:
        >>> model, log = sft(model, tok, [{"prompt": "capital of France?", "completion": "Paris"}] * 8,
        ...                  FinetuneConfig(steps=10, lr=1e-3))  # doctest: +SKIP
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if not rows:
        raise InputError("no training rows to fine-tune on (an empty set, e.g. a keep rule that kept nothing)",
                         field="rows")
    with _quiet(), tempfile.TemporaryDirectory(prefix="siftkit-sft-") as out:
        args = SFTConfig(**training_args(cfg, out), completion_only_loss=cfg.completion_only_loss, packing=False,
                         dataset_num_proc=None)
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(list(rows)),
                             processing_class=tokenizer, peft_config=lora_config(model, cfg))
        return _run(trainer, cfg.lora)


def dpo(model, tokenizer, rows: Sequence[dict], cfg: FinetuneConfig):
    """DPO (with the RPO NLL term when ``cfg.rpo_alpha > 0``) through TRL's ``DPOTrainer``.

    Loss: TRL's ``loss_type=["sigmoid", "sft"]`` with ``loss_weights=[1, α]``, i.e.
    ``−log σ(β [(log π_θ(y_w|x) − log π_ref(y_w|x)) − (log π_θ(y_l|x) − log π_ref(y_l|x))]) + α · NLL(y_w|x)``
    (DPO paper Eq. 7, RPO paper Eq. 2). The reference π_ref is the input model: the adapter-disabled model with
    LoRA, a frozen copy of it for full fine-tuning.

    Args:
        model: a ``transformers`` causal LM (not PEFT-wrapped); trained in place.
        tokenizer: its tokenizer.
        rows: ``{"prompt", "chosen", "rejected"}`` dicts.
        cfg: steps, rates, batch, LoRA settings, ``beta`` and ``rpo_alpha``.

    Returns:
        ``(model, log)`` as :func:`sft`.
    """
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    if not rows:
        raise InputError("no preference pairs to train DPO on", field="rows")
    loss_type = ["sigmoid", "sft"] if cfg.rpo_alpha > 0 else ["sigmoid"]
    weights = [1.0, cfg.rpo_alpha] if cfg.rpo_alpha > 0 else [1.0]
    with _quiet(), tempfile.TemporaryDirectory(prefix="siftkit-dpo-") as out:
        args = DPOConfig(**training_args(cfg, out), beta=cfg.beta, loss_type=loss_type, loss_weights=weights)
        ref = None if cfg.lora else copy.deepcopy(unpatch(model)).eval().requires_grad_(False)
        trainer = DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=Dataset.from_list(list(rows)),
                             processing_class=tokenizer, peft_config=lora_config(model, cfg))
        return _run(trainer, cfg.lora)


def finetune(llm, rows: Sequence[dict], cfg: FinetuneConfig, method: str = "sft") -> list[dict]:
    """Train a :class:`~siftkit.llm.local.LocalChatModel` in place with :func:`sft` or :func:`dpo`.

    ``llm.model`` becomes the trained model and ``llm.refresh_fingerprint()`` is called, so every response-cache
    key made with ``llm`` after training differs from the keys made before.

    Args:
        llm: a ``LocalChatModel`` (anything with ``model``, ``tokenizer`` and ``refresh_fingerprint``), or a
            ``CachedChatModel`` around one (its ``inner`` model is trained; the cache keys follow).
        rows: as for :func:`sft` or :func:`dpo`.
        cfg: the run's settings.
        method: ``"sft"`` or ``"dpo"``.

    Returns:
        The trainer's loss log.
    """
    if method not in ("sft", "dpo"):
        raise InputError(f'method "{method}": expected "sft" or "dpo"', field="method")
    train = sft if method == "sft" else dpo
    local = getattr(llm, "inner", llm)  # a CachedChatModel keys its rows by the inner model's fingerprint
    local.model, log = train(local.model, local.tokenizer, rows, cfg)
    local.refresh_fingerprint()
    return log
