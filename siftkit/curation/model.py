"""The AVVA dual encoder [paper, Sec. II-B] over frozen audio and visual token features, and its InfoNCE training.

Per modality an aligner MLP ``input -> 1024 -> 768`` with LayerNorm, ReLU and dropout 0.2 between the layers; a
bidirectional cross-modal attention block (8 heads, 768-d; audio attends to video and video to audio with the same
structure, "treating both modalities as equally important"); mean pooling over tokens to one embedding per stream.

How cross-attention is used at retrieval time is unspecified. [ours] Default ``cross_at_inference=False``: the block
runs during training only (each stream is enriched by the other stream of the *same* clip, which is how the paper's
training batches see it) and retrieval uses each stream's self-pooled aligner embedding, so embeddings are
computed once per clip. The loss is applied to both the self-pooled and the cross-attended embeddings [ours], so the
self-pooled ones that retrieval uses are trained directly.

Training [paper]: symmetric InfoNCE with fixed tau = 0.07 (CLIP-style [inferred]), AdamW lr 1e-4, weight decay 1e-4,
the epoch with the lowest validation loss kept.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

TAU = 0.07


class Aligner(nn.Module):
    """``in -> hidden -> out`` with LayerNorm, ReLU and dropout between the layers [paper]."""

    def __init__(self, d_in: int, hidden: int = 1024, d_out: int = 768, dropout: float = 0.2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.LayerNorm(hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, d_out))

    def forward(self, x):
        return self.net(x)


class DualEncoder(nn.Module):
    """Trainable heads over frozen token features ``audio (B, Ta, Da)`` and ``video (B, Tv, Dv)``."""

    def __init__(self, d_audio: int, d_video: int, hidden: int = 1024, dim: int = 768, heads: int = 8,
                 dropout: float = 0.2):
        super().__init__()
        self.audio = Aligner(d_audio, hidden, dim, dropout)
        self.video = Aligner(d_video, hidden, dim, dropout)
        self.a2v = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.v2a = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_a, self.norm_v = nn.LayerNorm(dim), nn.LayerNorm(dim)

    def tokens(self, audio, video):
        return self.audio(audio), self.video(video)

    def embed_audio(self, audio):
        return F.normalize(self.audio(audio).mean(1), dim=-1)

    def embed_video(self, video):
        return F.normalize(self.video(video).mean(1), dim=-1)

    def forward(self, audio, video):
        """Self-pooled and cross-attended unit embeddings ``(za, zv, ca, cv)`` of paired clips."""
        ha, hv = self.tokens(audio, video)
        ca = self.norm_a(ha + self.a2v(ha, hv, hv, need_weights=False)[0]).mean(1)  # audio queries video
        cv = self.norm_v(hv + self.v2a(hv, ha, ha, need_weights=False)[0]).mean(1)
        return (F.normalize(ha.mean(1), dim=-1), F.normalize(hv.mean(1), dim=-1), F.normalize(ca, dim=-1),
                F.normalize(cv, dim=-1))

    def pair_scores(self, audio, video):
        """[ours, flag] pairwise scoring with cross-attention: ``(Na, Nv)`` cosine of the cross-attended embeddings
        of every (audio, video) combination (costs Na x Nv attention passes)."""
        out = torch.empty(len(audio), len(video))
        for i in range(len(audio)):
            a = audio[i:i + 1].expand(len(video), *audio.shape[1:])
            _, _, ca, cv = self.forward(a, video)
            out[i] = (ca * cv).sum(-1)
        return out


def info_nce(za: torch.Tensor, zv: torch.Tensor, tau: float = TAU) -> torch.Tensor:
    """Symmetric InfoNCE: the mean of the A->V and V->A cross-entropies over ``za @ zv.T / tau`` (gold on the
    diagonal)."""
    logits = za @ zv.T / tau
    y = torch.arange(len(za))
    return 0.5 * (F.cross_entropy(logits, y) + F.cross_entropy(logits.T, y))


@dataclass
class TrainResult:
    model: DualEncoder
    best_epoch: int
    history: list[dict] = field(default_factory=list)


def _loss(model, a, v, tau):
    za, zv, ca, cv = model(a, v)
    return 0.5 * (info_nce(za, zv, tau) + info_nce(ca, cv, tau))


def train(audio: np.ndarray, video: np.ndarray, val_audio: np.ndarray | None = None,
          val_video: np.ndarray | None = None, epochs: int = 20, batch_size: int = 128, lr: float = 1e-4,
          weight_decay: float = 1e-4, tau: float = TAU, seed: int = 0, hidden: int = 1024, dim: int = 768,
          heads: int = 8, dropout: float = 0.2) -> TrainResult:
    """Train the heads with AdamW on paired token features ``(M, T, D)``; keep the lowest-validation-loss epoch
    (the training loss when no validation set is given).

    Returns:
        The best model (eval mode), its epoch and the per-epoch ``{"epoch", "train_loss", "val_loss"}``.
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    A, V = torch.as_tensor(audio, dtype=torch.float32), torch.as_tensor(video, dtype=torch.float32)
    model = DualEncoder(A.shape[-1], V.shape[-1], hidden, dim, heads, dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    has_val = val_audio is not None and len(val_audio) > 1
    if has_val:
        VA, VV = torch.as_tensor(val_audio, dtype=torch.float32), torch.as_tensor(val_video, dtype=torch.float32)
    best, best_state, best_epoch, history = math.inf, None, -1, []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(A), generator=g)
        total, count = 0.0, 0
        for s in range(0, len(A), batch_size):
            idx = perm[s:s + batch_size]
            if len(idx) < 2:
                continue
            loss = _loss(model, A[idx], V[idx], tau)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, count = total + loss.item() * len(idx), count + len(idx)
        row = {"epoch": epoch, "train_loss": total / max(count, 1)}
        if has_val:
            model.eval()
            with torch.no_grad():
                vl = [float(_loss(model, VA[s:s + batch_size], VV[s:s + batch_size], tau)) * len(VA[s:s + batch_size])
                      for s in range(0, len(VA), batch_size) if len(VA[s:s + batch_size]) > 1]
            row["val_loss"] = sum(vl) / len(VA)
        history.append(row)
        crit = row.get("val_loss", row["train_loss"])
        if crit < best:
            best, best_epoch, best_state = crit, epoch, copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model, best_epoch, history)


@torch.no_grad()
def embed(model: DualEncoder, audio: np.ndarray, video: np.ndarray, batch_size: int = 512) -> tuple[np.ndarray,
                                                                                                      np.ndarray]:
    """Self-pooled unit embeddings (the [ours] default retrieval mode)."""
    model.eval()
    A, V = torch.as_tensor(audio, dtype=torch.float32), torch.as_tensor(video, dtype=torch.float32)
    za = torch.cat([model.embed_audio(A[s:s + batch_size]) for s in range(0, len(A), batch_size)])
    zv = torch.cat([model.embed_video(V[s:s + batch_size]) for s in range(0, len(V), batch_size)])
    return za.numpy(), zv.numpy()
