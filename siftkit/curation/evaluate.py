"""The AVVA retrieval protocol [paper, Sec. III]: K repetitions, each drawing N distinct random clips; within a draw
every audio embedding queries the N video embeddings (A->V) and vice versa (V->A); report the mean +- std over
the K draws of top-1/3/10 accuracy. Random scoring gives about k/N (1/3/10% for N = 100).

Ties count against nobody: :func:`siftkit.metrics.similarity.top_k_accuracy` resolves them in expectation, so
constant embeddings give exactly k/N. The draws are seeded and returned so they can be stored [ours].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


def draws(n_items: int, k: int = 100, n: int = 100, seed: int = 0) -> np.ndarray:
    """``(K, N)`` indices: K seeded draws of N distinct items each."""
    if n > n_items:
        raise ValueError(f"N = {n} exceeds the {n_items} items available")
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(n_items, size=n, replace=False) for _ in range(k)])


def kxn_eval(audio: np.ndarray, video: np.ndarray, k: int = 100, n: int = 100, seed: int = 0,
             ks: Sequence[int] = (1, 3, 10)) -> dict[str, float]:
    """Top-k accuracy (%) of A->V and V->A retrieval over K draws of N pairs, by cosine similarity.

    Args:
        audio, video: ``(M, D)`` embeddings, row ``i`` of each from the same clip.
        k, n: repetitions and candidates per draw (the paper: 100 x 100).
        seed: seeds the draws.
        ks: cutoffs.

    Returns:
        ``{"a2v@1": mean, "a2v@1_std": std, ..., "v2a@10_std": ...}`` in percent (std over draws, ddof 0).
    """
    from siftkit.metrics.similarity import top_k_accuracy

    a, v = _unit(audio), _unit(video)
    if a.shape[0] != v.shape[0]:
        raise ValueError("audio and video must have the same number of rows")
    per: dict[str, list[float]] = {f"{d}@{c}": [] for d in ("a2v", "v2a") for c in ks}
    for idx in draws(len(a), k, n, seed):
        sim = a[idx] @ v[idx].T
        for c in ks:
            per[f"a2v@{c}"].append(100 * float(top_k_accuracy(sim, None, c).mean()))
            per[f"v2a@{c}"].append(100 * float(top_k_accuracy(sim.T, None, c).mean()))
    out: dict[str, float] = {}
    for key, xs in per.items():
        out[key], out[f"{key}_std"] = float(np.mean(xs)), float(np.std(xs))
    return out
