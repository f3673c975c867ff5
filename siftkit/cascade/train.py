"""Training and scoring of an N-stage cascade with LCRON or any baseline; DDP-ready (torchrun, gloo on CPU).

    train, test = simulate(preset("tiny"))
    result = run(train, test, TrainConfig(method="lcron", n_stages=2))
    result["metrics"]["joint"]

Regime [code]: Adam lr 0.01 for every model, the loss's own weights (LCRON, ARF) on their own Adam at lr 0.01,
batch 1024, one pass over the training days in date order with a fresh shuffled order per day, one backward pass
per step and then every optimizer steps.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from siftkit.cascade.baselines import CascadeLoss
from siftkit.cascade.data import CascadeData, train_batches
from siftkit.cascade.evaluate import evaluate_scores
from siftkit.cascade.loss import LcronConfig, LcronLoss
from siftkit.cascade.models import build_cascade
from siftkit.core.errors import InputError

METHODS = ("bce", "icc", "rankflow", "fs_ranknet", "fs_lambdaloss", "arf", "arf_v2", "lcron")
ORACLES = ("oracle_labels", "oracle_utility", "random")
STAGES = {2: ["dssm", "din"], 3: ["dssm", "mlp", "din"]}
QUOTAS = {2: [30, 20], 3: [40, 30, 20]}


@dataclass
class TrainConfig:
    """How one cascade is trained.

    > Cascade
    """

    method: str = "lcron"
    """One of ``METHODS``."""
    n_stages: int = 2
    """2: DSSM → DIN; 3: DSSM → MLP → DIN. Other stage lists: set ``stages`` and ``quotas``."""
    stages: list[str] | None = None
    """Stage models in cascade order (default from ``n_stages``); any length works [ours]."""
    quotas: list[int] | None = None
    """Serving quotas per stage (default 30/20 or 40/30/20) [code]; used by evaluation, ARF supports, ICC, RankFlow."""
    # > Optimisation
    lr: float = 0.01
    """Adam learning rate of the stage models [code]."""
    weight_lr: float = 0.01
    """Adam learning rate of the loss's uncertainty weights [code]."""
    batch_size: int = 1024
    """Requests per step [code]."""
    seed: int = 0
    """Seeds model initialisation and the per-day shuffles (upstream sets none)."""
    factorised_din: bool = True
    """DIN's first attention layer as W_a·seq + W_b·target (identical, faster) [ours]."""
    lcron: LcronConfig = field(default_factory=LcronConfig)
    """LCRON hyper-parameters (τ, ablations, Eq. 13, binarisation)."""
    icc_fix_k: bool = False
    """ICC's last gate uses the last quota (20) instead of upstream's 30 [code bug kept by default]."""
    icc_detach_kappa: bool = False
    """ICC's thresholds κ detached from the graph [ours, a departure]; off = upstream (κ gathered from the scores)."""
    rankflow_chain: bool = False
    """Three-stage RankFlow without upstream's two ranking terms [ours, a departure]; off = upstream."""
    max_steps: int | None = None
    """Stop after this many steps (throughput benchmark)."""
    device: str = "cpu"
    """Torch device for models and batches ("cpu", "cuda"); losses and models are device-agnostic."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"unknown method {self.method!r}; choose from {METHODS}", field="TrainConfig")
        self.stages = list(self.stages or STAGES.get(self.n_stages, []))
        self.quotas = list(self.quotas or QUOTAS.get(self.n_stages, []))
        if not self.stages or len(self.stages) != len(self.quotas):
            raise InputError("give one quota per stage (stages and quotas must have the same length)",
                             field="TrainConfig")
        self.n_stages = len(self.stages)
        if any(later >= earlier for earlier, later in zip(self.quotas, self.quotas[1:])):
            raise InputError(f"quotas must strictly decrease along the cascade, got {self.quotas}", field="quotas")


class Cascade(nn.Module):
    """Stage models plus the loss (with its learned weights), so DDP can wrap the whole thing.

    ``forward(batch)`` returns (loss, diag) in training mode; :meth:`scores` returns the stage logits.
    """

    def __init__(self, cfg: TrainConfig, vocab: dict[str, list[int]]):
        super().__init__()
        self.stage_models = build_cascade(cfg.stages, vocab, factorised=cfg.factorised_din)
        if cfg.method == "lcron":
            self.criterion = LcronLoss(cfg.n_stages, cfg.lcron)
        else:
            self.criterion = CascadeLoss(cfg.method, cfg.quotas, cfg.icc_fix_k, cfg.icc_detach_kappa,
                                         cfg.rankflow_chain)

    def scores(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return [m(batch) for m in self.stage_models]  # S × (B, N)

    def forward(self, batch: dict[str, torch.Tensor]):
        return self.criterion(self.scores(batch), batch["labels"])

    def optimizers(self, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
        opts = [torch.optim.Adam(self.stage_models.parameters(), lr=cfg.lr)]
        weights = [p for p in self.criterion.parameters()]
        if weights:
            opts.append(torch.optim.Adam(weights, lr=cfg.weight_lr))
        return opts


# ---------------------------------------------------------------------------------------------------- plumbing


def _dist():
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def train(data: CascadeData, cfg: TrainConfig, log=None) -> tuple[Cascade, dict]:
    """Train a cascade for one pass over ``data``; under torchrun the model is wrapped in DDP (gloo on CPU).

    Returns the (unwrapped) model and stats: steps, seconds, requests/s, final loss, peak RSS in MiB.
    """
    torch.manual_seed(cfg.seed)
    model = Cascade(cfg, data.vocab).to(cfg.device)
    rank, world = _dist()
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    opts = model.optimizers(cfg)
    model.train()
    t0, steps, seen, last = time.perf_counter(), 0, 0, {}
    for idx in train_batches(data, cfg.batch_size, cfg.seed, rank, world):
        batch = {k: v.to(cfg.device) for k, v in data.batch(idx).items()}
        loss, diag = net(batch)
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in opts:
            o.step()
        steps += 1
        seen += len(idx) * world
        last = {"loss": loss.item(), **diag}
        if log and steps % 10 == 0:
            log(f"step {steps} loss {loss.item():.4f}")
        if cfg.max_steps and steps >= cfg.max_steps:
            break
    sec = time.perf_counter() - t0
    stats = {"steps": steps, "train_seconds": sec, "requests_per_s": seen / max(sec, 1e-9),
             "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **last}
    if str(cfg.device).startswith("cuda"):
        stats["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return model, stats


@torch.no_grad()
def score(model: Cascade, data: CascadeData, batch_size: int = 1024) -> list[np.ndarray]:
    """Stage logits on every request: S arrays (R, N)."""
    model.eval()
    device = next(model.parameters()).device
    out: list[list[np.ndarray]] = [[] for _ in model.stage_models]
    for start in range(0, len(data), batch_size):
        b = {k: v.to(device) for k, v in data.batch(np.arange(start, min(start + batch_size, len(data)))).items()}
        for i, s in enumerate(model.scores(b)):
            out[i].append(s.float().cpu().numpy())
    return [np.concatenate(x) for x in out]


def oracle_scores(kind: str, data: CascadeData, n_stages: int, seed: int = 0) -> list[np.ndarray]:
    """Sanity bounds: ``oracle_labels`` (ℓ, joint recall 1.0), ``oracle_utility`` (the simulator's latent
    utility), ``random`` (i.i.d. uniform; about quota_last/N joint recall)."""
    if kind == "oracle_labels":
        s = data.labels.astype(np.float64)
    elif kind == "oracle_utility":
        s = data.utility.astype(np.float64)
    elif kind == "random":
        return [np.random.default_rng(seed + i).uniform(size=data.labels.shape) for i in range(n_stages)]
    else:
        raise ValueError(f"unknown oracle {kind!r}; choose from {ORACLES}")
    return [s] * n_stages


def summarise(per_request: dict[str, np.ndarray]) -> dict[str, float]:
    return {k: float(np.mean(v)) for k, v in per_request.items()}


def run(train_data: CascadeData, test_data: CascadeData, cfg: TrainConfig, ndcg: bool = True, log=None) -> dict:
    """Train on ``train_data`` and evaluate on ``test_data``; returns {"metrics", "per_request", "stats"}."""
    model, stats = train(train_data, cfg, log)
    t0 = time.perf_counter()
    sc = score(model, test_data)
    per = evaluate_scores(sc, test_data.labels, cfg.quotas, cfg.stages, ndcg=ndcg)
    stats["eval_seconds"] = time.perf_counter() - t0
    return {"metrics": summarise(per), "per_request": per, "stats": stats, "model": model}


def run_oracle(kind: str, test_data: CascadeData, n_stages: int) -> dict:
    stages, quotas = STAGES[n_stages], QUOTAS[n_stages]
    per = evaluate_scores(oracle_scores(kind, test_data, n_stages), test_data.labels, quotas, stages)
    return {"metrics": summarise(per), "per_request": per}


