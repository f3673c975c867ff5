"""LCRON: Learning Cascade Ranking as One Network (Wang et al., ICML 2025, arXiv 2503.09492).

The loss trains every stage of a ranking cascade at once. NeuralSort turns each stage's logits into a soft
permutation matrix; the column-normalised mass in the top q rows is a differentiable "survives this stage"
probability; L_e2e is a cross-entropy on the product of those probabilities over stages (a lower bound on the
probability that a ground-truth item survives the whole cascade), and one L_single per stage tightens the bound.
Learned uncertainty weights balance the terms.

    loss, diag = lcron_loss([s_dssm, s_din], labels, LcronConfig(), log_w=torch.zeros(2))

References: arXiv 2503.09492 v3 (paper), github.com/kwai/LCRON (official code, read, not copied).
Stage order everywhere: index 0 is the first (retrieval) stage, the last index is the final ranker.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from siftkit.core.errors import InputError

# ------------------------------------------------------------------------------------------------------ config


@dataclass
class LcronConfig:
    """Hyper-parameters of the LCRON loss; defaults reproduce the paper's headline two-stage run.

    > Sorting
    """

    tau: float = 50.0
    """NeuralSort temperature of the model matrices P_i (code: hard-coded 50; paper Table 5 sweeps it)."""
    tau_label: float = 1e-4
    """Temperature of the label matrix Y = NeuralSort(ℓ) (code)."""
    q: int = 10
    """Top-q of every stage in training (code and paper E.1: q = 10 at every stage, not the serving quotas)."""
    gt_k: int = 10
    """Size of the ground-truth set: the rows k ≤ gt_k of Y (code)."""
    q_per_stage: tuple[int, ...] | None = None
    """Per-stage top-q instead of ``q`` (e.g. the serving quotas (30, 20): paper E.1 reports 0.8714 vs 0.8732)."""
    # > Terms
    use_e2e: bool = True
    """Include L_e2e (off = the "−L_e2e" ablation, paper Table 4)."""
    use_single: bool = True
    """Include the per-stage L_single terms (off = the "−L_single" ablation, paper Table 4)."""
    eq13: bool = False
    """Paper Eq. 13: also weight L_e2e by 1/(2α²) with a learned α, and use log₂ [paper]; off = official code."""
    binarize_y: bool | None = None
    """Y := 1[Y > 0.001] before the loss. None = upstream: on for 3+ stages, off (soft Y) for 2 stages [code]."""
    eps: float = 1e-6
    """Additive constant inside every log and the column-sum denominator (code)."""

    def __post_init__(self) -> None:
        if self.tau <= 0 or self.tau_label <= 0:
            raise InputError("tau and tau_label must be positive", field="LcronConfig")
        if self.q < 1 or self.gt_k < 1:
            raise InputError("q and gt_k must be >= 1", field="LcronConfig")
        if not (self.use_e2e or self.use_single):
            raise InputError("at least one of use_e2e, use_single must be on", field="LcronConfig")


# ------------------------------------------------------------------------------------------------------ method


def neuralsort(s: torch.Tensor, tau: float) -> torch.Tensor:
    """NeuralSort relaxation (Grover et al. 2019): P̂[k,j] = softmax_j(((N+1−2k)·s_j − Σ_l |s_j − s_l|)/τ).

    Args:
        s: scores (B, N).
        tau: temperature; P̂ tends to the hard descending-sort permutation as τ → 0.
    Returns:
        P̂ (B, N, N), rows = ranks (k = 1 is the top), columns = items; row-stochastic only.
    """
    n = s.shape[-1]
    a = (s.unsqueeze(-1) - s.unsqueeze(-2)).abs().sum(-1)  # (B, N): Σ_l |s_j − s_l|
    scale = (n + 1 - 2 * torch.arange(1, n + 1, device=s.device, dtype=s.dtype))  # (N,)
    logits = scale[:, None] * s.unsqueeze(-2) - a.unsqueeze(-2)  # (B, N, N)
    return torch.softmax(logits / tau, dim=-1)


def top_mass(p: torch.Tensor, q: int, eps: float = 1e-6) -> torch.Tensor:
    """top(P,q)_j = Σ_{k≤q} P[k,j] / (sg(Σ_k P[k,j]) + eps): soft probability that item j is in the top q.

    Pitfall 1 of the spec: divide by the detached column sum; P̂ is only row-stochastic.
    """
    c = p.sum(-2).detach() + eps  # (B, N)
    return p[..., :q, :].sum(-2) / c  # (B, N)


def bot_mass(p: torch.Tensor, q: int, eps: float = 1e-6) -> torch.Tensor:
    """bot(P,q)_j = Σ_{k>q} P[k,j] / (sg(Σ_k P[k,j]) + eps)."""
    c = p.sum(-2).detach() + eps  # (B, N)
    return p[..., q:, :].sum(-2) / c  # (B, N)


def label_matrix(labels: torch.Tensor, tau_label: float = 1e-4, binarize: bool = False) -> torch.Tensor:
    """Y = NeuralSort(ℓ, 1e-4); a tie block of size t gives 1/t to each tied item in each of its rows.

    With ``binarize`` Y := 1[Y > 0.001] (the upstream 3-stage behaviour, where tied negatives then weigh t).
    """
    y = neuralsort(labels.float(), tau_label)  # (B, N, N)
    return (y > 1e-3).to(y.dtype) if binarize else y


def l_e2e(p_list: list[torch.Tensor], y: torch.Tensor, q: int | list[int], gt_k: int, eps: float = 1e-6,
          log=torch.log) -> torch.Tensor:
    """L_e2e (Eq. 11, mean instead of sum [code]) over the product of stage survival probabilities.

    −log(Π_i top(P_i,q_i)_j + ε)·y⁺_j − log(1 − Π_i (1 − bot(P_i,q_i)_j) + ε)·clamp(1 − y⁺_j, 0, 1),
    y⁺_j = Σ_{k≤gt_k} Y[k,j]; ``q`` is one int for every stage (the default, q = 10) or one per stage.
    The negative term goes through 1 − bot, as upstream computes it [code]: equal to top in value, but P̂ is only
    row-stochastic and the column sum is detached, so the gradient differs from that of the top form.
    """
    qs = [q] * len(p_list) if isinstance(q, int) else list(q)
    prod = torch.stack([top_mass(p, qi, eps) for p, qi in zip(p_list, qs)], 0).prod(0)  # (B, N)
    prod_neg = torch.stack([1 - bot_mass(p, qi, eps) for p, qi in zip(p_list, qs)], 0).prod(0)  # (B, N)
    y_pos = y[..., :gt_k, :].sum(-2)  # (B, N)
    loss = -log(prod + eps) * y_pos - log(1 - prod_neg + eps) * (1 - y_pos).clamp(0, 1)  # (B, N)
    return loss.mean(-1).mean()


def l_single(p: torch.Tensor, y: torch.Tensor, q: int, gt_k: int, eps: float = 1e-6, log=torch.log) -> torch.Tensor:
    """L_single of one stage [code]: −log top(P,q)·Σ_{k≤gt_k}Y − log bot(P,q)·Σ_{k>gt_k}Y; item mean, count > q."""
    y_top = y[..., :gt_k, :].sum(-2)  # (B, N)
    y_bot = y[..., gt_k:, :].sum(-2)  # (B, N)
    loss = -log(top_mass(p, q, eps) + eps) * y_top - log(bot_mass(p, q, eps) + eps) * y_bot  # (B, N)
    count_ok = float(p.shape[-1] > q)  # every request here holds N valid items (no partial requests)
    return (loss.mean(-1) * count_ok).mean()


def lcron_loss(logits: list[torch.Tensor], labels: torch.Tensor, cfg: LcronConfig, log_w: torch.Tensor,
               log_alpha: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The LCRON objective for any number of stages.

    L = L_e2e + Σ_i 0.5/w_i²·L_single(P_i) + ln Π_i w_i   (official code; w_i = exp(log_w_i), init 1).
    With ``cfg.eq13``: L = 0.5/α²·L_e2e + Σ_i 0.5/w_i²·L_single + ln(α Π w_i), logs base 2 [paper Eq. 13].

    Args:
        logits: one (B, N) tensor per stage, first stage first.
        labels: ℓ (B, N); the top ``gt_k`` labels are the ground truth.
        cfg: hyper-parameters.
        log_w: (S,) log of the uncertainty weights, one per stage.
        log_alpha: () log α, used only with ``eq13``.
    Returns:
        (scalar loss, diagnostics dict of floats).

    Inputs:
        | name   | shape  | meaning                                  |
        |--------|--------|------------------------------------------|
        | logits | S×(B,N)| stage scores                             |
        | labels | (B, N) | ℓ = 30 − rank_index, tied negative groups|
    """
    n_stages = len(logits)
    binarize = cfg.binarize_y if cfg.binarize_y is not None else n_stages >= 3
    log = (lambda x: torch.log2(x)) if cfg.eq13 else torch.log
    y = label_matrix(labels, cfg.tau_label, binarize)  # (B, N, N)
    p_list = [neuralsort(s, cfg.tau) for s in logits]  # S × (B, N, N)
    qs = list(cfg.q_per_stage) if cfg.q_per_stage else [cfg.q] * n_stages
    if len(qs) != n_stages:
        raise ValueError(f"q_per_stage has {len(qs)} entries for {n_stages} stages")
    total = logits[0].new_zeros(())
    diag: dict[str, float] = {}
    if cfg.use_e2e:
        e2e = l_e2e(p_list, y, qs, cfg.gt_k, cfg.eps, log)
        if cfg.eq13:
            total = total + 0.5 * torch.exp(-2 * log_alpha) * e2e + log_alpha
        else:
            total = total + e2e
        diag["l_e2e"] = e2e.item()
    if cfg.use_single:
        for i, p in enumerate(p_list):
            single = l_single(p, y, qs[i], cfg.gt_k, cfg.eps, log)
            total = total + 0.5 * torch.exp(-2 * log_w[i]) * single + log_w[i]
            diag[f"l_single_{i}"] = single.item()
            diag[f"w_{i}"] = torch.exp(log_w[i]).item()
    return total, diag


# ---------------------------------------------------------------------------------------------------- plumbing


class LcronLoss(nn.Module):
    """LCRON as a module: holds the hyper-parameters and the learned uncertainty weights.

    The weights are ``log_w`` (one per stage; w = exp(log_w) starts at 1) and, with Eq. 13, ``log_alpha``.
    The trainer gives these their own Adam at lr 0.01 [code].

    Example:
        >>> crit = LcronLoss(n_stages=2)
        >>> loss, diag = crit([torch.randn(4, 40), torch.randn(4, 40)], torch.arange(40.).flip(0).repeat(4, 1))
    """

    def __init__(self, n_stages: int, cfg: LcronConfig | None = None):
        super().__init__()
        self.cfg = cfg or LcronConfig()
        self.log_w = nn.Parameter(torch.zeros(n_stages))
        self.log_alpha = nn.Parameter(torch.zeros(()))

    def forward(self, logits: list[torch.Tensor], labels: torch.Tensor):
        return lcron_loss(logits, labels, self.cfg, self.log_w, self.log_alpha)

    citation = "Wang et al. Learning Cascade Ranking as One Network. ICML 2025. arXiv:2503.09492"


__all__ = ["LcronConfig", "LcronLoss", "neuralsort", "top_mass", "bot_mass", "label_matrix", "l_e2e", "l_single",
           "lcron_loss"]
