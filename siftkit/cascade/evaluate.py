"""Evaluation of a cascade [code]: joint recall through the serving quotas, per-stage recall, NDCG@10.

Protocol: item columns are permuted with a fixed seed (numpy 1024) before any top-k, so ties cannot leak the
group order (spec pitfall 7); all-equal scores then give about quota/N joint recall, not 1.0.
"""

from __future__ import annotations

import numpy as np

GT_K = 10


def shuffle_columns(n_requests: int, n_items: int, seed: int = 1024) -> np.ndarray:
    """One permutation of the item columns per request (R, N), from a fixed seed."""
    rs = np.random.RandomState(seed)
    return np.argsort(rs.uniform(size=(n_requests, n_items)), 1)


def _gt_mask(labels: np.ndarray, k: int = GT_K) -> np.ndarray:
    """(R, N) bool: the top-k labels (stable on the shuffled columns)."""
    idx = np.argsort(-labels, 1, kind="stable")[:, :k]
    m = np.zeros(labels.shape, bool)
    np.put_along_axis(m, idx, True, 1)
    return m


def joint_recall(scores: list[np.ndarray], labels: np.ndarray, quotas: list[int], k: int = GT_K) -> np.ndarray:
    """Joint Recall@k@quota_last of a cascade, per request (R,).

    Stage i keeps the top quota_i of its survivors by its own scores; the output is what the last stage keeps.
    recall = |output ∩ GT| / k, with GT the top-k labels. Two stages: 40 → 30 (s₁) → 20 (s₂).
    Assumes columns are already shuffled (see :func:`evaluate_scores`).
    """
    r, n = labels.shape
    alive = np.ones((r, n), bool)
    for s, q in zip(scores, quotas):
        masked = np.where(alive, s, -np.inf)
        keep = np.argsort(-masked, 1, kind="stable")[:, :q]  # (R, q)
        alive = np.zeros((r, n), bool)
        np.put_along_axis(alive, keep, True, 1)
    return (alive & _gt_mask(labels, k)).sum(1) / k


def recall_at(scores: np.ndarray, labels: np.ndarray, m: int, k: int = GT_K) -> np.ndarray:
    """Recall@k@m of one model on all candidates: |top-m(s) ∩ GT| / k, per request (R,)."""
    return joint_recall([scores], labels, [m], k)


def ndcg_at(scores: np.ndarray, labels: np.ndarray, k: int = 10) -> np.ndarray:
    """NDCG@k with gains ℓ (negatives have non-zero gains) and sklearn's tie handling (ties averaged), per
    request (R,). DCG uses 1/log₂(1 + rank). Rows without tied scores are computed in closed form; rows with ties
    go through ``sklearn.metrics.ndcg_score`` (same definition)."""
    from sklearn.metrics import ndcg_score

    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, np.float64)
    disc = 1.0 / np.log2(np.arange(2, k + 2))  # (k,)
    order = np.argsort(-scores, 1, kind="stable")[:, :k]  # (R, k)
    dcg = (np.take_along_axis(labels, order, 1) * disc).sum(1)
    idcg = (-np.sort(-labels, 1)[:, :k] * disc).sum(1)
    out = np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1), 0.0)
    srt = np.sort(scores, 1)
    tied = (np.diff(srt, axis=1) == 0).any(1)
    for i in np.flatnonzero(tied):
        out[i] = ndcg_score(labels[i:i + 1], scores[i:i + 1], k=k)
    return out


def evaluate_scores(scores: list[np.ndarray], labels: np.ndarray, quotas: list[int], names: list[str] | None = None,
                    seed: int = 1024, ndcg: bool = True) -> dict[str, np.ndarray]:
    """All per-request metrics of one cascade: ``joint``, ``recall_<name>`` (R@10@quota_i) and ``ndcg_<name>``.

    Args:
        scores: one (R, N) array per stage in cascade order.
        labels: ℓ (R, N).
        quotas: serving quotas per stage, e.g. [30, 20] or [40, 30, 20].
        names: stage names for the keys (default ``stage0``...).
    """
    names = names or [f"stage{i}" for i in range(len(scores))]
    perm = shuffle_columns(*labels.shape, seed=seed)
    lab = np.take_along_axis(labels, perm, 1)
    sc = [np.take_along_axis(np.asarray(s, np.float64), perm, 1) for s in scores]
    out = {"joint": joint_recall(sc, lab, quotas)}
    for name, s, q in zip(names, sc, quotas):
        out[f"recall_{name}"] = recall_at(s, lab, q)
        if ndcg:
            out[f"ndcg_{name}"] = ndcg_at(s, lab)
    return out
