"""Relevance-judge metrics: macro/weighted F1, accuracy, per-class precision/recall, confusion, over-recall.

Symbols: ``y`` gold grades, ``ŷ`` predictions, ``r(g)`` the ordinal value of a grade (worst = 0).

* over-recall per error (the spec's over-estimation rate): ``#{ŷ_n ≠ y_n ∧ r(ŷ_n) > r(y_n)} / #{ŷ_n ≠ y_n}``
* over-recall per prediction: ``#{r(ŷ_n) > r(y_n)} / N``
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn import metrics as skm

from siftkit.metrics import accuracy, confusion, macro_f1, weighted_f1


def over_recall(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> tuple[float, float]:
    """(share of errors rated above gold, share of all predictions rated above gold); ``labels`` best first."""
    r = {g: len(labels) - 1 - i for i, g in enumerate(labels)}
    over = sum(1 for a, b in zip(y_true, y_pred) if r[b] > r[a])
    errors = sum(1 for a, b in zip(y_true, y_pred) if a != b)
    return (over / errors if errors else 0.0), over / len(y_true)


def per_class(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{label: {precision, recall, f1, support}}`` (zero_division = 0)."""
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=list(labels), zero_division=0)
    return {g: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, g in enumerate(labels)}


def relevance_report(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict:
    """Every number the LREF tables use, flat, plus ``per_class`` and ``confusion`` (nested).

    Flat keys: ``n, accuracy, macro_f1, weighted_f1, over_recall_err, over_recall_pred``, and
    ``recall_<label>`` / ``precision_<label>`` for every label (lower-case, spaces as ``_``), which holds the
    paper's Marginal recall and Significant precision. On a binary scale also ``fpr`` (false-positive rate).
    """
    labels = list(labels)
    y, y_hat = list(y_true), list(y_pred)
    ore, orp = over_recall(y, y_hat, labels)
    pc = per_class(y, y_hat, labels)
    out = {"n": len(y), "accuracy": accuracy(y, y_hat), "macro_f1": macro_f1(y, y_hat, labels),
           "weighted_f1": weighted_f1(y, y_hat, labels), "over_recall_err": ore, "over_recall_pred": orp}
    for g, d in pc.items():
        key = g.lower().replace(" ", "_")
        out[f"recall_{key}"] = d["recall"]
        out[f"precision_{key}"] = d["precision"]
    if len(labels) == 2:
        neg = labels[1]
        negatives = [b for a, b in zip(y, y_hat) if a == neg]
        out["fpr"] = float(np.mean([b != neg for b in negatives])) if negatives else 0.0
    out["per_class"] = pc
    out["confusion"] = confusion(y, y_hat, labels).values.tolist()
    return out
