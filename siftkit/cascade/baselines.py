"""The seven baselines of the LCRON paper's main table, as pure loss functions plus thin modules.

Every function takes the stage logits (first stage first, each (B, N)) and the labels ℓ (B, N) with the items in
the fixed group order (positives first, then one block of 10 per negative group), and returns a scalar loss and a
dict of diagnostics. Sources: the spec §2 "Baselines", transcribing github.com/kwai/LCRON (read, not copied).

| name           | idea                                                                          |
|----------------|-------------------------------------------------------------------------------|
| bce            | each stage is a binary classifier of "ground truth" on the items it saw       |
| icc            | gated cascade score ŝ trained with pairwise BCE (Gallagher et al. 2019)       |
| rankflow       | stage-wise BCE plus distillation of the ranker into the retriever (Qin 2022)  |
| fs_ranknet     | RankNet on between-group pairs (full-stage, Zheng et al. 2024)                |
| fs_lambdaloss  | LambdaLoss NDCG weights on pairs (Wang et al. 2018) over the full stage       |
| arf            | NeuralSort CE + relaxed recall@m (Wang et al. 2024)                          |
| arf_v2         | ARF with L_relax replaced by the column-normalised L_single form              |
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from siftkit.cascade.loss import bot_mass, label_matrix, neuralsort, top_mass

GROUP = 10  # items per group in a request (spec §2 "Setup")

# ------------------------------------------------------------------------------------------------------ method


def _gt(labels: torch.Tensor, k: int = GROUP) -> torch.Tensor:
    """1 for the top-k labels of each request (the ground-truth set), else 0. (B, N)"""
    idx = labels.topk(k, dim=-1).indices  # (B, k)
    return torch.zeros_like(labels).scatter(-1, idx, 1.0)


def bce_support(n_items: int, n_stages: int) -> list[int]:
    """Items each stage's BCE sees, as a prefix in group order [code]: the last stage the first 20 (positives and
    the negatives of its own stage); stage i < S−1 the first N − 10·i (2 stages: 40/20; 3 stages: 50/40/20)."""
    return [n_items - GROUP * i for i in range(n_stages - 1)] + [2 * GROUP]


def bce_loss(logits: list[torch.Tensor], labels: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """BCE: stage i is trained as a classifier of the GT on the prefix of items it saw (:func:`bce_support`)."""
    y = _gt(labels)  # (B, N)
    sup = bce_support(labels.shape[-1], len(logits))
    parts = [F.binary_cross_entropy_with_logits(s[:, :m], y[:, :m]) for s, m in zip(logits, sup)]
    return sum(parts), {f"bce_{i}": p.item() for i, p in enumerate(parts)}


def icc_score(logits: list[torch.Tensor], ks: list[int], temp: float = 1e-3,
              detach_kappa: bool = False) -> torch.Tensor:
    """ICC's gated cascade score (B, N).

    Gate I_i = σ((s_i − κ_i)/temp) with κ_i the k_i-th largest s_i, gathered from the scores [code]: the k-th item's
    own gate is σ(0) whatever its score, and κ passes the other gates' gradient back to that item.
    ``detach_kappa`` stops the gradient through κ instead [ours, a departure]: the k-th item's own gate then carries
    a gradient of 1/(4·temp), 20–2000× any other logit's.
    2 stages: ŝ = (1 − I₁)s₁ + I₁I₂s₂ [code]. S ≥ 3: ŝ = Σ_{i<S} 2^{i−1}(Π_{j<i}I_j)(1 − I_i)s_i + 2^{S−1}(Π_j I_j)s_S
    (3 stages: (1 − I₁)s₁ + 2I₁(1 − I₂)s₂ + 4I₁I₂I₃s₃ [code]).
    """
    gates = []
    for s, k in zip(logits, ks):
        kth = s.detach().topk(k, dim=-1).indices[:, -1:]  # (B, 1)
        kappa = s.detach().gather(-1, kth) if detach_kappa else s.gather(-1, kth)  # (B, 1)
        gates.append(torch.sigmoid((s - kappa) / temp))  # (B, N)
    n = len(logits)
    coef = [1.0] * n if n == 2 else [2.0 ** i for i in range(n)]
    out = torch.zeros_like(logits[0])
    passed = torch.ones_like(logits[0])
    for i, (s, g) in enumerate(zip(logits, gates)):
        if i < n - 1:
            out = out + coef[i] * passed * (1 - g) * s
            passed = passed * g
        else:
            out = out + coef[i] * passed * g * s
    return out


def pair_bce_upper(s: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BCE(s_i − s_j, 1[ℓ_i > ℓ_j]) on every pair i < j (upper triangle, group order), averaged over the full
    B×N×N grid [code]: tied pairs inside a group (target 0) and pairs in reversed label order contribute too."""
    diff = s.unsqueeze(-1) - s.unsqueeze(-2)  # (B, N, N): s_i − s_j
    target = (labels.unsqueeze(-1) > labels.unsqueeze(-2)).to(s.dtype)  # (B, N, N)
    bce = F.binary_cross_entropy_with_logits(diff, target, reduction="none")  # (B, N, N)
    return bce.triu(1).mean()


def icc_loss(logits: list[torch.Tensor], labels: torch.Tensor, ks: list[int],
             detach_kappa: bool = False) -> tuple[torch.Tensor, dict]:
    """ICC: pairwise BCE (:func:`pair_bce_upper`) on the gated cascade score :func:`icc_score`."""
    loss = pair_bce_upper(icc_score(logits, ks, detach_kappa=detach_kappa), labels)
    return loss, {"icc": loss.item()}


def rankflow_loss(logits: list[torch.Tensor], labels: torch.Tensor, quotas: list[int],
                  alpha: float = 0.0, chain: bool = False) -> tuple[torch.Tensor, dict]:
    """RankFlow (joint, α = 0).

    Two stages, T = hard top-30 of s₁: L = BCE(s₁) + BCE(s₂[T]) + (1−α)·MSE(sg(s₂[T]), s₁[T])
    + α·(−log σ(mean s₁[top-10 of s₂ in T] − mean s₁[rest of T])) [code].
    Three stages [code]: the step repeats down the cascade with T_i = top-quota_{i−1} of s_{i−1} inside T_{i−1}
    (T₁ = top-40 of s₁, T₂ = top-30 of s₂ in T₁), and each step adds a ranking term at weight 1:
    −log σ(mean s_{i−1}[top-quota_i of s_i in T_i] − mean s_{i−1}[rest of T_i]) (top-30 vs bottom-10 of 40,
    top-20 vs bottom-10 of 30). More than three stages repeat the three-stage step [ours].
    ``chain``: the earlier siftkit generalisation [ours, a departure]: no ranking terms in three or more stages
    (only α's term, as in two stages).
    """
    upstream_rank = len(logits) >= 3 and not chain
    y = _gt(labels)  # (B, N)
    total = F.binary_cross_entropy_with_logits(logits[0], y)
    diag = {"bce_0": total.item()}
    idx = torch.arange(labels.shape[-1], device=labels.device).expand_as(labels)  # (B, N)
    for i in range(1, len(logits)):
        prev = logits[i - 1].gather(-1, idx)  # (B, n)
        top = prev.detach().topk(quotas[i - 1], dim=-1).indices  # (B, q)
        idx = idx.gather(-1, top)  # (B, q): item ids kept by stage i−1
        s_up, s_dn, y_t = logits[i - 1].gather(-1, idx), logits[i].gather(-1, idx), y.gather(-1, idx)  # (B, q)
        bce = F.binary_cross_entropy_with_logits(s_dn, y_t)
        mse = F.mse_loss(s_up, s_dn.detach())
        total = total + bce + (1 - alpha) * mse
        if upstream_rank:
            k = quotas[i]  # the next stage's quota: top-k of s_i inside T_i against the rest
            order = s_dn.detach().argsort(-1, descending=True)  # (B, q)
            up_sorted = s_up.gather(-1, order)  # (B, q)
            rank = -F.logsigmoid(up_sorted[:, :k].mean(-1) - up_sorted[:, k:].mean(-1)).mean()
            total = total + rank
            diag[f"rank_{i}"] = rank.item()
        elif alpha > 0:
            k = min(GROUP, idx.shape[-1] - 1)
            order = s_dn.detach().argsort(-1, descending=True)  # (B, q)
            up_sorted = s_up.gather(-1, order)  # (B, q)
            rank = -F.logsigmoid(up_sorted[:, :k].mean(-1) - up_sorted[:, k:].mean(-1)).mean()
            total = total + alpha * rank
        diag[f"bce_{i}"], diag[f"mse_{i}"] = bce.item(), mse.item()
    return total, diag


def fs_ranknet_loss(logits: list[torch.Tensor], labels: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """FS-RankNet [code]: for each anchor group a (positives, then each negative group but the last),
    softplus(−(s_i − s_j)) averaged once over all pairs of an item i of group a with an item j of any lower group
    (B·10·(N − 10(a+1)) pairs); the anchor terms are summed, stages are summed."""
    n = labels.shape[-1]
    total, diag = labels.new_zeros(()), {}
    n_groups = n // GROUP
    for i, s in enumerate(logits):
        part = s.new_zeros(())
        for a in range(n_groups - 1):
            anchor, lower = s[:, a * GROUP:(a + 1) * GROUP], s[:, (a + 1) * GROUP:]  # (B, 10), (B, N − 10(a+1))
            part = part + F.softplus(-(anchor.unsqueeze(-1) - lower.unsqueeze(-2))).mean()
        total = total + part
        diag[f"fs_ranknet_{i}"] = part.item()
    return total, diag


def _disc(r: torch.Tensor) -> torch.Tensor:
    """D(r) = 1/ln(1 + r) (spec), with D(0) := 0 so equal ranks get no weight."""
    return torch.where(r > 0, 1.0 / torch.log1p(r.clamp(min=1)), torch.zeros_like(r))


def lambda_weights(s: torch.Tensor, labels: torch.Tensor, topn: int = 30, mu: float = 0.8) -> torch.Tensor:
    """LambdaLoss NDCG-cost weights w_ij = |G_i − G_j|·((1−μ)u_ij + μv_ij), detached. (B, N, N)"""
    s, labels = s.detach(), labels.float()
    order = s.argsort(-1, descending=True)  # (B, N)
    r = torch.empty_like(s).scatter(-1, order, torch.arange(1, s.shape[-1] + 1, dtype=s.dtype,
                                                            device=s.device).expand_as(s))  # (B, N) 1-based rank
    ideal = labels.sort(-1, descending=True).values  # (B, N)
    idcg = (ideal * _disc(torch.arange(1, s.shape[-1] + 1, dtype=s.dtype, device=s.device))).sum(-1, keepdim=True)
    gain = labels / idcg  # (B, N): G_i
    ri, rj = r.unsqueeze(-1), r.unsqueeze(-2)  # (B, N, 1), (B, 1, N)
    d = (ri - rj).abs()  # (B, N, N)
    u = (_disc(d) - _disc(d + 1)).abs() * ((d > 0) & (torch.minimum(ri, rj) <= topn)).float()  # (B, N, N)
    dt = _disc(r) * (r <= topn).float()  # (B, N): D̃(r)
    v = (dt.unsqueeze(-1) - dt.unsqueeze(-2)).abs()  # (B, N, N)
    return (gain.unsqueeze(-1) - gain.unsqueeze(-2)).abs() * ((1 - mu) * u + mu * v)  # (B, N, N)


def fs_lambdaloss_loss(logits: list[torch.Tensor], labels: torch.Tensor, topn: int = 30,
                       mu: float = 0.8) -> tuple[torch.Tensor, dict]:
    """FS-LambdaLoss: Σ_ij w_ij·BCE(s_i − s_j, 1[ℓ_i > ℓ_j]), batch mean, summed over stages (one backward)."""
    target = (labels.unsqueeze(-1) > labels.unsqueeze(-2)).float()  # (B, N, N)
    total, diag = labels.new_zeros(()), {}
    for i, s in enumerate(logits):
        w = lambda_weights(s, labels, topn, mu)  # (B, N, N)
        diff = s.unsqueeze(-1) - s.unsqueeze(-2)  # (B, N, N)
        bce = F.binary_cross_entropy_with_logits(diff, target, reduction="none")  # (B, N, N)
        part = (w * bce).sum((-1, -2)).mean()
        total = total + part
        diag[f"fs_lambda_{i}"] = part.item()
    return total, diag


def arf_loss(logits: list[torch.Tensor], labels: torch.Tensor, supports: list[int], log_w: torch.Tensor,
             tau: float = 200.0, v2: bool = False, gt_k: int = GROUP, eps: float = 1e-6) -> tuple[torch.Tensor, dict]:
    """ARF (and ARF-v2 with ``v2``), one term per stage i with support m_i and its own weight w_i:

    L_i = 0.5/w_i²·CE(P_i, Y) + L_relax_i + ln w_i, with soft Y and τ = 200 [code].
    CE(P, Y) = mean_k mean_j −log(P[k,j] + ε)·Y[k,j] (requests with count ≥ N).
    L_relax = −log((1/m)Σ_{k≤m} P[k,j] + ε) on GT items, no column normalisation (requests with count > m).
    ARF-v2: L_relax := −log top(P,m)_j·Σ_{k≤10}Y − log bot(P,m)_j·Σ_{k>10}Y (the L_single form with q = m).
    """
    y = label_matrix(labels, 1e-4, binarize=False)  # (B, N, N)
    y_top, y_bot = y[:, :gt_k, :].sum(-2), y[:, gt_k:, :].sum(-2)  # (B, N)
    total, diag = labels.new_zeros(()), {}
    for i, (s, m) in enumerate(zip(logits, supports)):
        p = neuralsort(s, tau)  # (B, N, N)
        ce = (-torch.log(p + eps) * y).mean((-1, -2)).mean()
        if v2:
            relax = (-torch.log(top_mass(p, m, eps) + eps) * y_top
                     - torch.log(bot_mass(p, m, eps) + eps) * y_bot).mean(-1).mean()
        else:
            relax = (-torch.log(p[:, :m, :].mean(-2) + eps) * y_top).mean(-1).mean()
        total = total + 0.5 * torch.exp(-2 * log_w[i]) * ce + relax + log_w[i]
        diag[f"ce_{i}"], diag[f"relax_{i}"] = ce.item(), relax.item()
    return total, diag


# ---------------------------------------------------------------------------------------------------- plumbing


class CascadeLoss(nn.Module):
    """A baseline as a module: ``forward(logits, labels) -> (loss, diag)``; ``log_w`` holds ARF's weights.

    Args:
        name: one of ``bce icc rankflow fs_ranknet fs_lambdaloss arf arf_v2``.
        quotas: serving quotas per stage (2 stages: [30, 20]; 3 stages: [40, 30, 20]).
        icc_fix_k: ICC's last-gate k = the last quota instead of upstream's repeat of the previous one.
        icc_detach_kappa: ICC's thresholds κ detached [ours, off by default; upstream gathers κ from the scores].
        rankflow_chain: three-stage RankFlow without upstream's two ranking terms [ours, off by default].
    """

    def __init__(self, name: str, quotas: list[int], icc_fix_k: bool = False, icc_detach_kappa: bool = False,
                 rankflow_chain: bool = False):
        super().__init__()
        if name not in BASELINES:
            raise ValueError(f"unknown baseline {name!r}; choose from {sorted(BASELINES)}")
        self.name, self.quotas = name, list(quotas)
        ks = list(quotas[:-1]) + [quotas[-1] if icc_fix_k else quotas[-2]]  # 2 stages: 30/30 [code]
        self.icc_ks = ks
        self.icc_detach_kappa, self.rankflow_chain = icc_detach_kappa, rankflow_chain
        self.log_w = nn.Parameter(torch.zeros(len(quotas)))

    def forward(self, logits: list[torch.Tensor], labels: torch.Tensor):
        n = self.name
        if n == "bce":
            return bce_loss(logits, labels)
        if n == "icc":
            return icc_loss(logits, labels, self.icc_ks, self.icc_detach_kappa)
        if n == "rankflow":
            return rankflow_loss(logits, labels, self.quotas, chain=self.rankflow_chain)
        if n == "fs_ranknet":
            return fs_ranknet_loss(logits, labels)
        if n == "fs_lambdaloss":
            return fs_lambdaloss_loss(logits, labels)
        return arf_loss(logits, labels, self.quotas, self.log_w, v2=(n == "arf_v2"))


BASELINES = ("bce", "icc", "rankflow", "fs_ranknet", "fs_lambdaloss", "arf", "arf_v2")
