"""Data-parallel training under ``torchrun`` (DDP; gloo on CPU, nccl on GPUs).

    torchrun --nproc_per_node 2 -m siftkit.cascade.ddp --config mid --method lcron --out runs/ddp

Every process simulates the same data (deterministic), takes every ``world``-th request of each global batch
(:func:`siftkit.cascade.data.train_batches`), and DDP averages the gradients, which equals the single-process
gradient of the full batch because every loss is a batch mean. ``--grad-check`` stops after one backward pass and
writes the gradients so a test can compare them with a single-process step.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from siftkit.cascade.simulator import preset, simulate
from siftkit.cascade.train import Cascade, TrainConfig, train


def grad_step(model: Cascade, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One forward/backward of ``model`` (DDP-wrapped when a process group is up); returns the gradients."""
    import torch.distributed as dist

    net: nn.Module = model
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        net = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    loss, _ = net(batch)
    loss.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Train a cascade with DDP under torchrun.")
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--stages", type=int, default=2)
    ap.add_argument("--method", default="lcron")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--grad-check", action="store_true")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = "cpu"
    if torch.cuda.is_available():
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if device != "cpu" else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    train_data, _ = simulate(preset(a.config, n_stages=a.stages))
    cfg = TrainConfig(method=a.method, n_stages=a.stages, batch_size=a.batch_size, seed=a.seed,
                      max_steps=a.max_steps, device=device)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.grad_check:
        torch.manual_seed(a.seed)
        model = Cascade(cfg, train_data.vocab).to(device)
        idx = np.arange(min(a.batch_size, len(train_data)))[rank::world]
        grads = grad_step(model, {k: v.to(device) for k, v in train_data.batch(idx).items()})
        grads = {k: v.cpu() for k, v in grads.items()}
        if rank == 0:
            torch.save(grads, a.out / f"grads_world{world}.pt")
    else:
        _, stats = train(train_data, cfg)
        if rank == 0:
            (a.out / "stats.json").write_text(json.dumps(stats, indent=2))
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
