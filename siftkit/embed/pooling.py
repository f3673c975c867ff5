"""Pooling token states into one vector per text: mean, CLS (first real token) or last real token.

All three read the attention mask, so they work on left- and right-padded batches alike:

* ``mean``: ``e_b = Σ_t m_bt h_bt / Σ_t m_bt`` (Sentence-BERT's mean pooling);
* ``cls``: ``e_b = h_{b,f(b)}`` with ``f(b)`` the first position where ``m_bt = 1`` (position 0 on a right-padded
  batch; the first real token after left padding [ours]);
* ``last``: ``e_b = h_{b,l(b)}`` with ``l(b)`` the last position where ``m_bt = 1`` (the EOS/last token of decoder
  embedders such as E5-Mistral and VLM2Vec).

Example:
    >>> import torch
    >>> h = torch.arange(6.0).view(1, 3, 2)  # (B=1, T=3, d=2)
    >>> pool(h, torch.tensor([[0, 1, 1]]), "last").tolist(), pool(h, torch.tensor([[0, 1, 1]]), "cls").tolist()
    ([[4.0, 5.0]], [[2.0, 3.0]])
"""

from __future__ import annotations

import torch

POOLINGS = ("mean", "cls", "last")


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """Position of the last 1 in each row of a (B, T) mask → (B,); padding on either side."""
    T = mask.shape[1]
    return T - 1 - mask.flip(-1).long().argmax(-1)  # argmax returns the first maximum: the last 1 before the flip


def first_index(mask: torch.Tensor) -> torch.Tensor:
    """Position of the first 1 in each row of a (B, T) mask → (B,)."""
    return mask.long().argmax(-1)


def pool(hidden: torch.Tensor, mask: torch.Tensor, method: str) -> torch.Tensor:
    """Pool (B, T, d) token states under a (B, T) attention mask into (B, d), see the module docstring."""
    if method == "mean":
        m = mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)  # (B, d)
    if method in ("cls", "last"):
        idx = first_index(mask) if method == "cls" else last_index(mask)  # (B,)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]  # (B, d)
    raise ValueError(f'pooling "{method}": expected one of {", ".join(POOLINGS)}')


def position_ids(mask: torch.Tensor) -> torch.Tensor:
    """Positions that restart after left padding: (B, T) ``cumsum(m) − 1``, clamped at 0 on the padding."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)
