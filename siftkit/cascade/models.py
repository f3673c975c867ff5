"""Stage models of the cascade [code]: DSSM two-tower retrieval, MLP pre-ranker, DIN ranker.

Shared: embedding size d = 8, ids shifted +1 with 0 = padding, ReLU, no dropout / batch norm / weight decay.
Features (one tensor each; see :mod:`siftkit.cascade.data`):

| name  | shape        | fields                                                    |
|-------|--------------|-----------------------------------------------------------|
| ctx   | (B, 3)       | request context (hour, device, network)                   |
| user  | (B, 5)       | user id and four profile fields                           |
| seq   | (B, L, 5)    | behaviour sequence, left-padded; the item's first 5 fields|
| items | (B, N, 8)    | candidate item fields; the first 5 match the sequence's   |

Every model maps a batch to logits (B, N).
"""

from __future__ import annotations

import torch
import torch.nn as nn

N_CTX, N_USER, N_SEQ, N_ITEM = 3, 5, 5, 8


def mlp(sizes: list[int], last_act: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or last_act:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Embeddings(nn.Module):
    """One table per field (vocab + 1 rows, row 0 = padding). Sequence fields share the item tables."""

    def __init__(self, vocab: dict[str, list[int]], d: int = 8):
        super().__init__()
        self.d = d
        self.ctx = nn.ModuleList(nn.Embedding(v + 1, d, padding_idx=0) for v in vocab["ctx"])
        self.user = nn.ModuleList(nn.Embedding(v + 1, d, padding_idx=0) for v in vocab["user"])
        self.item = nn.ModuleList(nn.Embedding(v + 1, d, padding_idx=0) for v in vocab["item"])

    @staticmethod
    def _lookup(tables, x: torch.Tensor, n: int) -> torch.Tensor:
        return torch.cat([tables[f](x[..., f]) for f in range(n)], -1)  # (..., n·d)

    def forward(self, b: dict[str, torch.Tensor]):
        ctx = self._lookup(self.ctx, b["ctx"], N_CTX)  # (B, 3d)
        user = self._lookup(self.user, b["user"], N_USER)  # (B, 5d)
        seq = self._lookup(self.item, b["seq"], N_SEQ)  # (B, L, 5d)
        items = self._lookup(self.item, b["items"], N_ITEM)  # (B, N, 8d)
        mask = (b["seq"][..., 0] > 0).to(seq.dtype)  # (B, L)
        return ctx, user, seq, items, mask


def seq_mean(seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over the sequence. (B, L, F) → (B, F)"""
    return (seq * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)


class DSSM(nn.Module):
    """Two-tower retrieval: user tower (3+5+5 fields = 104 → 128-64-32), item tower (64 → 128-64-32), dot product."""

    def __init__(self, vocab: dict[str, list[int]], d: int = 8):
        super().__init__()
        self.emb = Embeddings(vocab, d)
        self.user_tower = mlp([(N_CTX + N_USER + N_SEQ) * d, 128, 64, 32])
        self.item_tower = mlp([N_ITEM * d, 128, 64, 32])

    def forward(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        ctx, user, seq, items, mask = self.emb(b)
        u = self.user_tower(torch.cat([ctx, user, seq_mean(seq, mask)], -1))  # (B, 32)
        v = self.item_tower(items)  # (B, N, 32)
        return (v * u.unsqueeze(1)).sum(-1)  # (B, N)


class PreRankMLP(nn.Module):
    """MLP pre-ranker of the 3-stage cascade: 21 fields (ctx, user, item, sequence mean) = 168 → 128-64-32-1."""

    def __init__(self, vocab: dict[str, list[int]], d: int = 8):
        super().__init__()
        self.emb = Embeddings(vocab, d)
        self.net = mlp([(N_CTX + N_USER + N_ITEM + N_SEQ) * d, 128, 64, 32, 1])

    def forward(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        ctx, user, seq, items, mask = self.emb(b)
        n = items.shape[1]
        req = torch.cat([ctx, user, seq_mean(seq, mask)], -1).unsqueeze(1).expand(-1, n, -1)  # (B, N, 13d)
        return self.net(torch.cat([req, items], -1)).squeeze(-1)  # (B, N)


class DIN(nn.Module):
    """Deep Interest Network ranker: target attention over the sequence, then 168 → 128-128-32-1.

    Attention MLP on [seq_emb; target_emb] (80 → 80 → 1, plain concatenation [code]), masked softmax over the
    sequence. ``factorised=True`` computes the first attention layer as W_a·seq + W_b·target (identical maths,
    W[a;b] = W_a a + W_b b, and cheaper: the seq part is computed once per request, not once per item) [ours].
    """

    def __init__(self, vocab: dict[str, list[int]], d: int = 8, factorised: bool = True):
        super().__init__()
        self.emb = Embeddings(vocab, d)
        self.factorised = factorised
        f = N_SEQ * d
        self.att1 = nn.Linear(2 * f, 80)
        self.att2 = nn.Linear(80, 1)
        self.net = mlp([(N_CTX + N_USER + N_ITEM + N_SEQ) * d, 128, 128, 32, 1])

    def attention_logits(self, seq: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, L, F), (B, N, F) → (B, N, L) attention logits."""
        b, l, f = seq.shape
        n = target.shape[1]
        if self.factorised:
            w_a, w_b = self.att1.weight[:, :f], self.att1.weight[:, f:]  # (80, F) each
            hs = seq @ w_a.T  # (B, L, 80)
            ht = target @ w_b.T + self.att1.bias  # (B, N, 80)
            h = torch.relu(ht.unsqueeze(2) + hs.unsqueeze(1))  # (B, N, L, 80)
        else:
            pair = torch.cat([seq.unsqueeze(1).expand(b, n, l, f), target.unsqueeze(2).expand(b, n, l, f)], -1)
            h = torch.relu(self.att1(pair))  # (B, N, L, 80)
        return self.att2(h).squeeze(-1)  # (B, N, L)

    def forward(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        ctx, user, seq, items, mask = self.emb(b)
        n = items.shape[1]
        target = items[..., : N_SEQ * self.emb.d]  # (B, N, 5d)
        a = self.attention_logits(seq, target).masked_fill(mask.unsqueeze(1) == 0, -1e9)  # (B, N, L)
        a = torch.softmax(a, -1) * (mask.sum(1) > 0).to(a.dtype)[:, None, None]  # empty sequence → zeros
        pooled = a @ seq  # (B, N, 5d)
        req = torch.cat([ctx, user], -1).unsqueeze(1).expand(-1, n, -1)  # (B, N, 8d)
        return self.net(torch.cat([req, items, pooled], -1)).squeeze(-1)  # (B, N)


STAGE_MODELS = {"dssm": DSSM, "mlp": PreRankMLP, "din": DIN}


def build_cascade(stages: list[str], vocab: dict[str, list[int]], d: int = 8,
                  factorised: bool = True) -> nn.ModuleList:
    """Stage models in cascade order, e.g. ``["dssm", "din"]`` or ``["dssm", "mlp", "din"]``."""
    out = []
    for s in stages:
        if s not in STAGE_MODELS:
            raise ValueError(f"unknown stage model {s!r}; choose from {sorted(STAGE_MODELS)}")
        out.append(DIN(vocab, d, factorised) if s == "din" else STAGE_MODELS[s](vocab, d))
    return nn.ModuleList(out)
