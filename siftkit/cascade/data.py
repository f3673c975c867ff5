"""One in-memory data model for cascade requests, shared by the simulator and the RecFlow loader.

A request holds N candidate items in the fixed group order of the spec (positives first, then one block of 10 per
negative group). Features are stored as indices into small tables so 100 k requests fit in memory:

| array        | shape        | meaning                                                          |
|--------------|--------------|------------------------------------------------------------------|
| ctx          | (R, 3)       | context field ids (shifted +1; 0 = pad)                          |
| uid          | (R,)         | row of ``user_feats``                                            |
| sid          | (R,)         | row of ``seq_table`` (per user in the simulator, per request in RecFlow) |
| item         | (R, N)       | rows of ``item_feats``                                           |
| labels       | (R, N)       | ℓ = 30 − rank_index; tied default values for negative groups     |
| utility      | (R, N)       | latent utility (simulator only; NaN for real data)               |
| day          | (R,)         | day index; training runs day by day in date order                |
| user_feats   | (U, 5)       | user field ids                                                   |
| seq_table    | (S, L, 5)    | behaviour sequences, left-padded with 0                          |
| item_feats   | (V, 8)       | item field ids                                                   |
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class CascadeData:
    ctx: np.ndarray
    uid: np.ndarray
    sid: np.ndarray
    item: np.ndarray
    labels: np.ndarray
    utility: np.ndarray
    day: np.ndarray
    user_feats: np.ndarray
    seq_table: np.ndarray
    item_feats: np.ndarray
    vocab: dict[str, list[int]] = field(default_factory=dict)
    """Field sizes (max id) for ``ctx`` (3), ``user`` (5) and ``item`` (8) tables."""

    def __len__(self) -> int:
        return len(self.uid)

    @property
    def n_items(self) -> int:
        return self.item.shape[1]

    def subset(self, idx: np.ndarray) -> "CascadeData":
        return CascadeData(self.ctx[idx], self.uid[idx], self.sid[idx], self.item[idx], self.labels[idx],
                           self.utility[idx], self.day[idx], self.user_feats, self.seq_table, self.item_feats,
                           self.vocab)

    def batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        """Feature tensors of requests ``idx``: ctx (B,3), user (B,5), seq (B,L,5), items (B,N,8), labels (B,N)."""
        return {
            "ctx": torch.from_numpy(self.ctx[idx].astype(np.int64)),
            "user": torch.from_numpy(self.user_feats[self.uid[idx]].astype(np.int64)),
            "seq": torch.from_numpy(self.seq_table[self.sid[idx]].astype(np.int64)),
            "items": torch.from_numpy(self.item_feats[self.item[idx]].astype(np.int64)),
            "labels": torch.from_numpy(self.labels[idx].astype(np.float32)),
            "utility": torch.from_numpy(self.utility[idx].astype(np.float32)),
        }

    def validate(self) -> None:
        r, n = self.item.shape
        for name in ("ctx", "uid", "sid", "labels", "utility", "day"):
            if len(getattr(self, name)) != r:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, expected {r}")
        if n % 10:
            raise ValueError(f"N = {n} is not a multiple of the group size 10")


def train_batches(data: CascadeData, batch_size: int, seed: int, rank: int = 0, world: int = 1):
    """One pass over the training days in date order, a fresh shuffled order per day [code].

    With ``world > 1`` each process takes every ``world``-th request of each shuffled batch-sized block
    (so the union over processes is exactly the single-process batch; used by DDP).
    """
    rs = np.random.default_rng(seed)
    for d in np.unique(data.day):
        idx = np.flatnonzero(data.day == d)
        idx = idx[rs.permutation(len(idx))]
        for start in range(0, len(idx), batch_size):
            block = idx[start:start + batch_size]
            yield block[rank::world]
