"""Self-knowledge distillation (xVLM2Vec; Reimers & Gurevych 2020 with student = teacher initialisation).

Symbols: ``T`` the frozen teacher (a deep copy of the model before training), ``S`` the student (the model itself),
``(x_en, x_lang)`` a parallel pair sharing an optional image, ``e(·)`` the pooled embedding (un-normalised by
default). The loss of a batch is

    L = ½ · [ MSE(e_S(x_en), e_T(x_en)) + MSE(e_S(x_lang), e_T(x_en)) ]

with MSE the mean over the batch and the hidden dimensions. The image-loss variant adds the same two terms on the
mean-pooled "others" (image) segment and divides the sum of the four by 4.

Training follows the spec: full fine-tuning by default (LoRA optional), AdamW with lr 1e-5, weight decay 0, a cosine
schedule without warm-up, gradient-norm clipping at 0.3, and the spec's ``group_by_length``: each epoch the pairs
are shuffled with the seed, cut into mega-batches of ``min(n // (4·batch), 50)`` batches, each sorted longest first,
with the longest pair moved to the first batch (transformers' ``get_length_grouped_indices``; a pair's length is the
characters of both sides [ours], the shuffle is Python's ``random`` [ours]). The optimiser is PyTorch's fused AdamW
where the device has it (transformers' Trainer default for torch >= 2.8; same update, one kernel over all
parameters). Efficiency [ours]: the frozen teacher's English targets are computed once
before training, without gradients, in batches of sentences of similar length (as sentence-transformers' ``encode``);
the student embeds the English and the translated side of a batch in two forward passes, each padded to its own
longest sentence (one joint pass pads both sides to the longer one: about a quarter more tokens on Tatoeba).

Multi-GPU: pass an ``accelerate.Accelerator`` (the CLI makes one when started by ``accelerate launch``). Every
process draws the same shuffled order; a step takes ``batch_size × num_processes`` pairs and process ``r`` embeds
the ``r``-th slice of ``batch_size``; the gradients are averaged over the processes (one all-reduce of the
flattened gradients) before clipping, which is what DDP does for a loss that is a mean over equal slices. Departures
[ours]: data parallelism, not the spec's FSDP FULL_SHARD (a MiniLM- or 4B-sized student fits one GPU's memory for
this loss); bf16 autocast or none (fp16 needs a loss scaler and is refused); every process computes all teacher
targets; only the main process writes checkpoints.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from siftkit.core.errors import InputError
from siftkit.core.validate import check_range
from siftkit.multilingual.data import Pair
from siftkit.multilingual.encoder import KDEncoder


def self_kd_loss(s_en: torch.Tensor, s_x: torch.Tensor, t_en: torch.Tensor) -> torch.Tensor:
    """½ · (MSE(S(en), T(en)) + MSE(S(x), T(en))), each MSE a mean over (n, d)."""
    return 0.5 * (F.mse_loss(s_en, t_en) + F.mse_loss(s_x, t_en))


def image_kd_loss(s_en, s_x, t_en, o_s_en, o_s_x, o_t_en) -> torch.Tensor:
    """The image-loss variant: the two embedding MSEs plus the two "others"-segment MSEs, summed and divided by 4."""
    return (F.mse_loss(s_en, t_en) + F.mse_loss(s_x, t_en) + F.mse_loss(o_s_en, o_t_en)
            + F.mse_loss(o_s_x, o_t_en)) / 4


@dataclass
class DistillConfig:
    """Training settings (defaults: the spec's full fine-tuning recipe)."""

    lr: float = 1e-5
    epochs: int = 1
    batch_size: int = 32
    max_grad_norm: float = 0.3
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    image_loss: bool = False
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    seed: int = 42
    max_steps: int | None = None
    group_by_length: bool = True

    def check(self) -> "DistillConfig":
        """Every range at once, named as the CLI option (one ``siftkit:`` line for the first bad value)."""
        check_range(self.lr, "--lr", lo=0, lo_open=True)
        for name in ("epochs", "batch_size", "lora_r", "lora_alpha"):
            check_range(getattr(self, name), f"--{name.replace('_', '-')}", lo=1)
        check_range(self.max_grad_norm, "--max-grad-norm", lo=0, lo_open=True)
        check_range(self.warmup_ratio, "--warmup-ratio", lo=0, hi=1, hi_open=True)
        check_range(self.weight_decay, "--weight-decay", lo=0)
        if self.max_steps is not None:
            check_range(self.max_steps, "--max-steps", lo=1)
        return self


@dataclass
class DistillResult:
    teacher: KDEncoder
    losses: list[float] = field(default_factory=list)
    steps: int = 0
    pairs_per_s: float = 0.0
    config: dict = field(default_factory=dict)


def _length(p: Pair) -> int:
    return len(p.en) + len(p.x)


def _batches(pairs: Sequence[Pair], size: int, seed: int, by_length: bool = True) -> list[list[Pair]]:
    """The epoch's batches: the pairs shuffled with ``seed``; with ``by_length``, grouped as transformers'
    ``get_length_grouped_indices`` does (mega-batches of ``min(n // (4·size), 50)`` batches sorted longest first, the
    longest pair swapped into the first mega-batch's first place)."""
    order = list(pairs)
    random.Random(seed).shuffle(order)
    if by_length:
        mega = size * max(1, min(len(order) // (size * 4), 50))
        groups = [sorted(order[i:i + mega], key=_length, reverse=True) for i in range(0, len(order), mega)]
        j = max(range(len(groups)), key=lambda k: _length(groups[k][0]))
        groups[0][0], groups[j][0] = groups[j][0], groups[0][0]
        order = [p for g in groups for p in g]
    return [order[i:i + size] for i in range(0, len(order), size)]


def adamw(params: list[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """PyTorch's AdamW, fused where the parameters' device has the kernel (CPU and CUDA)."""
    fused = bool(params) and params[0].device.type in ("cpu", "cuda")
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused)


def check_accelerator(accelerator) -> None:
    """Refuse an ``Accelerator`` whose mixed precision this trainer does not handle (fp16 needs a loss scaler)."""
    if accelerator is not None and str(accelerator.mixed_precision) not in ("no", "bf16"):
        raise InputError(f"mixed precision {accelerator.mixed_precision!r}: use bf16 (the spec's) or no",
                         field="--mixed_precision")


def _shard(batch: list, world: int, rank: int) -> list:
    """Process ``rank``'s contiguous slice of a global batch; slice sizes differ by at most one."""
    k, r = divmod(len(batch), world)
    start = rank * k + min(rank, r)
    return batch[start:start + k + (rank < r)]


def _average_gradients(params: list[torch.nn.Parameter], accelerator) -> None:
    """Mean of every gradient over the processes, in one all-reduce of the flattened gradients (DDP's average)."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = accelerator.reduce(torch.cat([g.reshape(-1) for g in grads]), reduction="mean")  # (n_params,)
    i = 0
    for p, g in zip(params, grads):
        p.grad = flat[i:i + g.numel()].view_as(g)
        i += g.numel()


def distill(student: KDEncoder, pairs: Sequence[Pair], cfg: DistillConfig | None = None,
            teacher: KDEncoder | None = None, checkpoint_dir: str | Path | None = None,
            progress: bool = True, accelerator=None) -> DistillResult:
    """Train ``student`` in place towards a frozen copy of itself (or ``teacher``) on parallel ``pairs``.

    Args:
        student: the model to make multilingual (trained in place).
        pairs: parallel pairs; a pair's ``image`` (a path) goes to both sides for an image+text model.
        cfg: settings (:class:`DistillConfig`).
        teacher: defaults to ``student.frozen_copy()`` taken before any update (or LoRA).
        checkpoint_dir: when given, the student is saved to ``<dir>/epoch-<n>`` after each epoch.
        progress: one progress bar over the steps (main process only).
        accelerator: an ``accelerate.Accelerator`` for data-parallel training (see the module docstring); the
            models are moved to its device.

    Returns:
        :class:`DistillResult` with the teacher, the per-step losses and the throughput (pairs/s).
    """
    cfg = (cfg or DistillConfig()).check()
    pairs = list(pairs)
    if not pairs:
        raise InputError("no training pairs", field="--data")
    check_accelerator(accelerator)
    world, rank = (accelerator.num_processes, accelerator.process_index) if accelerator is not None else (1, 0)
    main = rank == 0
    torch.manual_seed(cfg.seed)
    teacher = teacher or student.frozen_copy()
    if accelerator is not None:
        student.module.to(accelerator.device)
        teacher.module.to(accelerator.device)
    if cfg.lora:
        student.add_lora(cfg.lora_r, cfg.lora_alpha)
    params = [p for p in student.module.parameters() if p.requires_grad]
    opt = adamw(params, cfg.lr, cfg.weight_decay)
    per_epoch = [[b for b in _batches(pairs, cfg.batch_size * world, cfg.seed + e, cfg.group_by_length)
                  if len(b) >= world]
                 for e in range(cfg.epochs)]  # a last batch too small to give every process a pair is dropped [ours]
    total = sum(len(b) for b in per_epoch)
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    warm = int(cfg.warmup_ratio * total)

    def lr_lambda(step: int) -> float:  # linear warm-up, then cosine to 0 (transformers' cosine schedule)
        if step < warm:
            return (step + 1) / max(1, warm)
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    use_images = any(p.image is not None for p in pairs) or cfg.image_loss
    result = DistillResult(teacher=teacher, config=asdict(cfg))
    bar = None
    if progress and main:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="self-distillation", unit="step")
    t0, seen, step = time.perf_counter(), 0, 0
    index = {id(p): i for i, p in enumerate(pairs)}
    if not cfg.image_loss:  # the teacher is frozen and in eval mode: its English targets are computed once [ours]
        targets = teacher_targets(teacher, pairs, use_images)
    student.module.train()
    try:
        for epoch, batches in enumerate(per_epoch, 1):
            for global_batch in batches:
                if step >= total:
                    break
                batch = _shard(global_batch, world, rank)
                en, x = [p.en for p in batch], [p.x for p in batch]
                images = [p.image for p in batch] if use_images else None
                with accelerator.autocast() if accelerator is not None else contextlib.nullcontext():
                    if cfg.image_loss:
                        with torch.no_grad():
                            t_en, o_t = teacher.image_segment(en, images)
                        s_en, o_s_en = student.image_segment(en, images)
                        s_x, o_s_x = student.image_segment(x, images)
                        loss = image_kd_loss(s_en, s_x, t_en, o_s_en, o_s_x, o_t)
                    else:
                        t_en = targets[[index[id(p)] for p in batch]]  # (b, d)
                        s_en = student.train_embed(en, images)  # (b, d); one pass per side, each padded
                        s_x = student.train_embed(x, images)  # (b, d)   to its own longest sentence
                        loss = self_kd_loss(s_en, s_x, t_en.to(s_en.dtype))
                opt.zero_grad(set_to_none=True)
                if accelerator is not None:
                    accelerator.backward(loss)
                    if world > 1:
                        _average_gradients(params, accelerator)
                        loss = accelerator.reduce(loss.detach(), reduction="mean")
                else:
                    loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                opt.step()
                sched.step()
                result.losses.append(float(loss.detach()))
                seen += len(global_batch)
                step += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{result.losses[-1]:.4g}")
            if checkpoint_dir is not None and main:
                save_checkpoint(student, Path(checkpoint_dir) / f"epoch-{epoch}")
            if accelerator is not None:
                accelerator.wait_for_everyone()
    finally:
        if bar is not None:
            bar.close()
        student.module.eval()
    result.steps = step
    result.pairs_per_s = seen / max(time.perf_counter() - t0, 1e-9)
    return result


def teacher_targets(teacher: KDEncoder, pairs: Sequence[Pair], use_images: bool, batch_size: int = 32) -> torch.Tensor:
    """T(en) for every pair, in the training space, without gradients → (n, d), row i for ``pairs[i]``.

    The pairs are embedded longest first in batches of ``batch_size`` (little padding, as sentence-transformers'
    ``encode`` sorts by length) and put back in their order."""
    order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i].en))
    out = None
    with torch.no_grad():
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            e = teacher.train_embed([pairs[j].en for j in idx], [pairs[j].image for j in idx] if use_images else None)
            if out is None:
                out = e.new_empty((len(pairs), e.shape[-1]))
            out[idx] = e
    return out


def save_checkpoint(student: KDEncoder, path: Path) -> Path:
    """The full student folder, or (during LoRA training) the adapters only, under ``path``."""
    if not student.lora:
        return student.save(path)
    from siftkit.core.io import atomic_output_dir

    owner, attr = student._backbone_owner()
    with atomic_output_dir(path) as tmp:
        getattr(owner, attr).save_pretrained(tmp / "lora")
    return path
