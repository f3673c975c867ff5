"""Label agreement between two raters (e.g. an LLM judge and human qrels), via scikit-learn and scipy.

Symbols: ``y`` the reference labels (``y_true``), ``ŷ`` the other rater's labels (``y_pred``), ``N`` the number of
items, ``L`` the label set, ``C`` the ``|L| x |L|`` confusion matrix (rows ``y``, columns ``ŷ``).

Label set: unless ``labels`` is given, ``L`` is the sorted union of the values in both arrays (scikit-learn's rule).
Weighted kappa uses the position of a label in ``L`` as its ordinal value, so pass ``labels`` in order for
ordinal string labels.

References:
    Cohen. "A coefficient of agreement for nominal scales", 1960. Cohen. "Weighted kappa", 1968.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from siftkit.core.errors import InputError

# ----------------------------------------------------------------------------------------------------------------
# method
# ----------------------------------------------------------------------------------------------------------------


def accuracy(y_true: Sequence[Any], y_pred: Sequence[Any]) -> float:
    """Share of items on which both raters agree.

    ``acc = (1/N) Σ_n [y_n = ŷ_n]``

    Args:
        y_true: reference labels.
        y_pred: other rater's labels, same length.

    Returns:
        Accuracy in [0, 1].

    Example:
        >>> accuracy([0, 1, 1, 0], [0, 1, 0, 0])
        0.75
    """
    y, y_hat = _pair(y_true, y_pred)
    return float(skm.accuracy_score(y, y_hat))


def macro_f1(y_true: Sequence[Any], y_pred: Sequence[Any], labels: Sequence[Any] | None = None) -> float:
    """Unweighted mean of per-label F1.

    ``F1_l = 2 P_l R_l / (P_l + R_l)``, ``macro-F1 = (1/|L|) Σ_l F1_l``; a label with no predictions and no
    references contributes 0 (``zero_division=0``).

    Args:
        y_true: reference labels.
        y_pred: other rater's labels.
        labels: label set ``L`` (default: union of both arrays).

    Returns:
        Macro-F1 in [0, 1].
    """
    y, y_hat = _pair(y_true, y_pred)
    return float(skm.f1_score(y, y_hat, labels=labels, average="macro", zero_division=0))


def weighted_f1(y_true: Sequence[Any], y_pred: Sequence[Any], labels: Sequence[Any] | None = None) -> float:
    """Support-weighted mean of per-label F1: ``Σ_l (N_l / N) F1_l`` with ``N_l`` the count of ``l`` in ``y``.

    Args:
        y_true: reference labels.
        y_pred: other rater's labels.
        labels: label set ``L`` (default: union of both arrays).

    Returns:
        Weighted F1 in [0, 1].
    """
    y, y_hat = _pair(y_true, y_pred)
    return float(skm.f1_score(y, y_hat, labels=labels, average="weighted", zero_division=0))


def cohen_kappa(y_true: Sequence[Any], y_pred: Sequence[Any],
                weights: Literal["linear", "quadratic"] | None = None, labels: Sequence[Any] | None = None) -> float:
    """Cohen's kappa, unweighted or with linear / quadratic disagreement weights.

    ``κ = 1 - Σ_ij w_ij C_ij / Σ_ij w_ij E_ij`` where ``E = (row sums)(column sums)^T / N`` is the chance matrix and
    ``w_ij`` is ``[i != j]`` (unweighted), ``|i - j|`` (linear) or ``(i - j)^2`` (quadratic). Unweighted this is
    ``(p_o - p_e) / (1 - p_e)``.

    Args:
        y_true: reference labels.
        y_pred: other rater's labels.
        weights: ``None``, ``"linear"`` or ``"quadratic"``.
        labels: ordered label set ``L`` (its order defines ``i`` and ``j`` for the weights).

    Returns:
        Kappa in [-1, 1]; NaN when both raters use a single, identical label (``p_e = 1``).

    Example:
        >>> round(cohen_kappa([0, 0, 1, 1], [0, 1, 1, 1]), 4)  # p_o = 3/4, p_e = 1/2 * 1/4 + 1/2 * 3/4 = 1/2
        0.5
    """
    if weights not in (None, "linear", "quadratic"):
        raise InputError(f'kappa weights must be None, "linear" or "quadratic", not {weights!r}', field="weights")
    y, y_hat = _pair(y_true, y_pred)
    with warnings.catch_warnings():  # the one-label case is documented as NaN; sklearn warns about it
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        return float(skm.cohen_kappa_score(y, y_hat, labels=labels, weights=weights))


def spearman_rho(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's r of the (average-tie) ranks of ``a`` and ``b``.

    Without ties ``ρ = 1 - 6 Σ d_n^2 / (N (N^2 - 1))``, ``d_n`` the rank difference of item ``n``.

    Args:
        a: first score array.
        b: second score array, same length.

    Returns:
        ρ in [-1, 1]; NaN when either array is constant.
    """
    x, y = _pair(a, b)
    if _constant(x) or _constant(y):
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def kendall_tau(a: Sequence[float], b: Sequence[float], variant: Literal["b", "c"] = "b") -> float:
    """Kendall's tau between two score arrays (tau-b by default, which corrects for ties).

    ``τ_b = (P - Q) / sqrt((P + Q + T_a)(P + Q + T_b))`` with ``P``/``Q`` the concordant/discordant pairs and
    ``T_a``/``T_b`` the pairs tied only in ``a``/only in ``b``.

    Args:
        a: first score array.
        b: second score array, same length.
        variant: ``"b"`` or ``"c"`` (scipy's variants).

    Returns:
        τ in [-1, 1]; NaN when either array is constant.
    """
    x, y = _pair(a, b)
    if _constant(x) or _constant(y):
        return float("nan")
    return float(stats.kendalltau(x, y, variant=variant).statistic)


def confusion(y_true: Sequence[Any], y_pred: Sequence[Any], labels: Sequence[Any] | None = None) -> pd.DataFrame:
    """Confusion matrix ``C`` as a DataFrame: ``C.loc[i, j]`` = items with ``y = i`` and ``ŷ = j``.

    Args:
        y_true: reference labels (rows, index named ``y_true``).
        y_pred: other rater's labels (columns, named ``y_pred``).
        labels: label order (default: sorted union of both arrays).

    Returns:
        An integer DataFrame of shape ``(|L|, |L|)``.
    """
    y, y_hat = _pair(y_true, y_pred)
    order = list(labels) if labels is not None else list(np.unique(np.concatenate([y, y_hat])))
    c = skm.confusion_matrix(y, y_hat, labels=order)  # (|L|, |L|)
    return pd.DataFrame(c, index=pd.Index(order, name="y_true"), columns=pd.Index(order, name="y_pred"))


def agreement_report(y_true: Sequence[Any], y_pred: Sequence[Any],
                     labels: Sequence[Any] | None = None) -> dict[str, float]:
    """All agreement measures in one dict.

    Always: ``n``, ``accuracy``, ``macro_f1``, ``weighted_f1``, ``kappa``, ``kappa_linear``, ``kappa_quadratic``.
    When both arrays are numeric (ordinal grades), also ``spearman_rho`` and ``kendall_tau``.

    Args:
        y_true: reference labels.
        y_pred: other rater's labels.
        labels: ordered label set, used by the F1s and kappas.

    Returns:
        ``{measure: value}``.

    Example:
        >>> agreement_report([0, 1, 2, 2], [0, 1, 2, 1])["accuracy"]
        0.75
    """
    y, y_hat = _pair(y_true, y_pred)
    report: dict[str, float] = {
        "n": float(len(y)),
        "accuracy": accuracy(y, y_hat),
        "macro_f1": macro_f1(y, y_hat, labels),
        "weighted_f1": weighted_f1(y, y_hat, labels),
        "kappa": cohen_kappa(y, y_hat, None, labels),
        "kappa_linear": cohen_kappa(y, y_hat, "linear", labels),
        "kappa_quadratic": cohen_kappa(y, y_hat, "quadratic", labels),
    }
    if _numeric(y) and _numeric(y_hat):
        report["spearman_rho"] = spearman_rho(y, y_hat)
        report["kendall_tau"] = kendall_tau(y, y_hat)
    return report


def roc_auc(y_true: Sequence[Any], y_score: Sequence[float]) -> float:
    """Area under the ROC curve of a binary label against a score (scikit-learn ``roc_auc_score``).

    ``AUC = P(score⁺ > score⁻) + ½ P(score⁺ = score⁻)`` over all (positive, negative) pairs, so tied scores count
    one half and a constant score gives 0.5.

    Args:
        y_true: binary labels (``0/1`` or ``False/True``); both classes must occur.
        y_score: a score per item, higher meaning more likely positive.

    Returns:
        AUC in [0, 1].

    Example:
        >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])  # 3 of 4 pairs ordered right
        0.75
    """
    y, s = _pair(y_true, y_score)
    classes = np.unique(y)
    if len(classes) != 2 or not set(classes.tolist()) <= {0, 1, False, True}:
        raise InputError(f"ROC-AUC needs binary 0/1 labels with both classes present, got {classes.tolist()}",
                         field="y_true")
    s = s.astype(float)
    if not np.all(np.isfinite(s)):
        raise InputError("ROC-AUC scores must be finite", field="y_score")
    return float(skm.roc_auc_score(y.astype(int), s))


# ----------------------------------------------------------------------------------------------------------------
# plumbing
# ----------------------------------------------------------------------------------------------------------------


def _pair(a: Sequence[Any], b: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as 1-D arrays of equal, non-zero length."""
    x, y = np.asarray(a), np.asarray(b)
    if x.ndim != 1 or y.ndim != 1 or len(x) != len(y):
        raise InputError(f"need two 1-D arrays of equal length, got shapes {x.shape} and {y.shape}")
    if len(x) == 0:
        raise InputError("need at least one item")
    return x, y


def _numeric(x: np.ndarray) -> bool:
    """True for bool/int/float arrays."""
    return x.dtype.kind in "biuf"


def _constant(x: np.ndarray) -> bool:
    """True when every value is the same (correlations are then undefined)."""
    return bool(np.all(x == x[0]))
