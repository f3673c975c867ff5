"""Agreement of LLM usefulness labels with the users' own labels (spec §3), and the published-output check.

Measures (all from :mod:`siftkit.metrics`): Spearman ρ (the paper's headline), exact accuracy, Cohen's κ
unweighted and quadratic (QWK), Kendall τ-b, the confusion matrix, accuracy per relevance/usefulness divergence
group (HR-HU, HR-LU, LR-HU, LR-LU), and percentile bootstrap CIs that resample whole queries or sessions [ours].

Invalid predictions (out of 0–3, or not integers) follow a stated policy [ours, spec §5.5]:

* ``exclude`` (default): the id is left out, like a missing id; coverage reports how many were scored;
* ``keep``: numeric out-of-range values are kept as they are (they count as misses for accuracy and as extra
  categories for κ); non-numeric ones are still excluded;
* ``clamp``: out-of-range values are clipped into 0–3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from siftkit.core.errors import InputError
from siftkit.metrics.agreement import accuracy, cohen_kappa, confusion, kendall_tau, spearman_rho
from siftkit.metrics.stats import bootstrap_ci
from siftkit.usefulness.data import GROUPS, Click, divergence_group

POLICIES = ("exclude", "keep", "clamp")
CLUSTERS = ("query", "session", "none")


def qwk(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Quadratic-weighted Cohen's κ: ``1 - Σ (i-j)² C_ij / Σ (i-j)² E_ij`` (see :func:`cohen_kappa`)."""
    return cohen_kappa(y_true, y_pred, "quadratic")


def kappa(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Unweighted Cohen's κ = ``(p_o - p_e) / (1 - p_e)``."""
    return cohen_kappa(y_true, y_pred)


MEASURES = {"spearman": spearman_rho, "accuracy": accuracy, "kappa": kappa, "qwk": qwk, "kendall": kendall_tau}


def _value(v: Any, policy: str) -> float | None:
    """The prediction as a number under ``policy``; None when it is left out."""
    if isinstance(v, bool):
        return None
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            return None
    if not isinstance(v, (int, float)) or not float(v).is_integer():
        return None
    v = int(v)
    if 0 <= v <= 3 or policy == "keep":
        return v
    return min(max(v, 0), 3) if policy == "clamp" else None


def check_options(policy: str, cluster: str) -> None:
    """Raise one :class:`InputError` for an unknown out-of-range policy or bootstrap unit."""
    if policy not in POLICIES:
        raise InputError(f"policy must be one of {POLICIES}, not {policy!r}", field="policy")
    if cluster not in ("query", "session", "none"):
        raise InputError(f"cluster must be query, session or none, not {cluster!r}", field="cluster")


def align(clicks: Sequence[Click], pred: dict[str, Any], policy: str = "exclude",
          cluster: str = "query") -> pd.DataFrame:
    """One row per click with a gold label and a usable prediction: ``id, y, y_hat, group, cluster``."""
    check_options(policy, cluster)
    rows = []
    for c in clicks:
        if c.usefulness is None or c.id not in pred:
            continue
        v = _value(pred[c.id], policy)
        if v is None:
            continue
        key = {"query": c.query_key, "session": c.session, "none": (c.id,)}[cluster]
        rows.append({"id": c.id, "y": c.usefulness, "y_hat": v, "group": divergence_group(c),
                     "cluster": "|".join(map(str, key))})
    return pd.DataFrame(rows, columns=["id", "y", "y_hat", "group", "cluster"])


def evaluate_labels(clicks: Sequence[Click], pred: dict[str, Any], policy: str = "exclude", cluster: str = "query",
                    n_resamples: int = 1000, seed: int = 0, ci: Sequence[str] = ("spearman", "accuracy", "kappa",
                                                                                   "qwk")) -> dict[str, Any]:
    """All agreement measures of ``pred`` (``{id: score}``) against the gold usefulness of ``clicks``.

    Args:
        clicks: rows with gold ``usefulness``.
        pred: predicted scores by id (raw values; see the module docstring for invalid ones).
        policy: ``exclude`` | ``keep`` | ``clamp``.
        cluster: bootstrap unit: ``query``, ``session`` or ``none`` (rows).
        n_resamples: bootstrap resamples (0 turns CIs off).
        seed: bootstrap seed.
        ci: measures that get a CI.

    Returns:
        ``{"n", "n_gold", "n_pred", "n_invalid", "coverage", <measure>, <measure>_lo, <measure>_hi,
        "acc_<group>", "n_<group>", "confusion"}``.
    """
    gold = [c for c in clicks if c.usefulness is not None]
    df = align(gold, pred, policy, cluster)
    gold_ids = {c.id for c in gold}
    in_gold = [i for i in pred if i in gold_ids]
    out: dict[str, Any] = {"n": len(df), "n_gold": len(gold), "n_pred": len(in_gold),
                           "n_invalid": sum(_value(pred[i], "exclude") is None for i in in_gold),
                           "coverage": len(df) / len(gold) if gold else float("nan")}
    if df.empty:
        return out
    y, y_hat = df["y"].to_numpy(), df["y_hat"].to_numpy()
    for name, fn in MEASURES.items():
        out[name] = fn(y, y_hat)
        if n_resamples and name in ci:
            b = bootstrap_ci((y, y_hat), fn, clusters=df["cluster"].to_numpy(), n_resamples=n_resamples, seed=seed)
            out[f"{name}_lo"], out[f"{name}_hi"] = b.low, b.high
    for g in GROUPS:
        sub = df[df["group"] == g]
        out[f"n_{g}"] = len(sub)
        out[f"acc_{g}"] = accuracy(sub["y"], sub["y_hat"]) if len(sub) else float("nan")
    cm = confusion(y, y_hat, labels=sorted(set(y) | set(y_hat)))
    out["confusion"] = {int(j): {int(i): int(cm.loc[i, j]) for i in cm.index} for j in cm.columns}  # {ŷ: {y: n}}
    return out


MATRIX = "siftkit.usefulness/published.yaml"
"""The known-answer matrix: package data (read with importlib.resources, so an installed wheel has it), holding the
paper's numbers once; the claims file ``benchmarks/claims/usefulness.yaml`` points at it."""


def load_reproduction(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The known-answer matrix: one entry per published file and policy (``model, prompt, file, policy, expected,
    known_answer, note``), with ``defaults`` applied and each ``expected`` reference into the file's ``paper:``
    table resolved (:func:`siftkit.core.known_answer.resolve_conditions`).

    Args:
        path: another matrix file of the same shape; default :data:`MATRIX` (package data).
    """
    from siftkit.core.known_answer import load_matrix

    return load_matrix(MATRIX if path is None else Path(path), match=("model", "prompt", "file"))


def paired_difference(clicks: Sequence[Click], pred_a: dict[str, Any], pred_b: dict[str, Any],
                      measure: str = "spearman", policy: str = "exclude", cluster: str = "query",
                      n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """``θ(a) - θ(b)`` of one measure on the clicks both label, with a paired cluster-bootstrap CI.

    Each resample draws whole clusters (queries or sessions) and computes both measures on the same rows, so the
    interval is of the difference, not of two independent estimates.

    Args:
        clicks: rows with gold ``usefulness``.
        pred_a: labels of system A by id (e.g. the session prompt).
        pred_b: labels of system B by id (e.g. the baseline prompt).
        measure: a key of :data:`MEASURES`.
        policy: out-of-range policy for both.
        cluster: bootstrap unit: ``query``, ``session`` or ``none``.
        n_resamples: bootstrap resamples.
        seed: bootstrap seed.

    Returns:
        ``{"delta", "lo", "hi", "n", "clusters"}`` (95% percentile interval).
    """
    if measure not in MEASURES:
        raise InputError(f"measure must be one of {', '.join(MEASURES)}, not {measure!r}", field="measure")
    a = align(clicks, pred_a, policy, cluster).set_index("id")
    b = align(clicks, pred_b, policy, cluster).set_index("id")
    ids = a.index.intersection(b.index)
    df = pd.DataFrame({"y": a.loc[ids, "y"], "a": a.loc[ids, "y_hat"], "b": b.loc[ids, "y_hat"],
                       "cluster": a.loc[ids, "cluster"]}).reset_index(drop=True)
    fn = MEASURES[measure]
    if df.empty:
        return {"delta": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0, "clusters": 0}

    def theta(frame: pd.DataFrame) -> float:
        return float(fn(frame["y"], frame["a"]) - fn(frame["y"], frame["b"]))

    ci = bootstrap_ci(df, theta, clusters="cluster", n_resamples=n_resamples, seed=seed)
    return {"delta": ci.estimate, "lo": ci.low, "hi": ci.high, "n": len(df), "clusters": int(df["cluster"].nunique())}


def published_table(shared: str | Path, n_resamples: int = 1000, cluster: str = "query") -> pd.DataFrame:
    """Score every condition of the known-answer matrix (:func:`load_reproduction`) on the copied THUIR outputs
    and compare with the spec.

    ``status`` is ``OK`` when every expected value equals ours rounded to three decimals, ``FAIL`` otherwise, and
    ``n/a`` for files excluded from known-answer checks (the GPT session files, spec §5.4).
    """
    from siftkit.usefulness.data import RESULTS_DIR, load_labels_json, load_thuir

    shared = Path(shared)
    clicks = load_thuir(shared)
    rows = []
    for cond in load_reproduction():
        pred = load_labels_json(shared / RESULTS_DIR / cond["file"])
        m = evaluate_labels(clicks, pred, cond.get("policy", "exclude"), cluster, n_resamples)
        rows.append(known_answer_row(cond, m))
    return pd.DataFrame(rows)


PUBLISHED_KEYS = ("n", "n_invalid", "spearman", "spearman_lo", "spearman_hi", "accuracy", "accuracy_lo", "accuracy_hi",
                  "kappa", "kappa_lo", "kappa_hi", "qwk", "qwk_lo", "qwk_hi", "kendall", *(f"acc_{g}" for g in GROUPS))
"""The measures of :func:`evaluate_labels` that the published table shows (and a benchmark cell stores)."""


def known_answer_row(cond: dict[str, Any], m: dict[str, Any]) -> dict[str, Any]:
    """One row of the published table: the condition, its measures ``m`` and the known-answer ``status``
    (``OK`` when every expected value equals ours rounded to 3 decimals, ``FAIL`` otherwise, ``n/a`` if excluded)."""
    expected = cond.get("expected") or {}
    diffs = {k: round(m[k], 3) - v for k, v in expected.items()}
    status = "n/a" if cond.get("known_answer") is False else (
        "OK" if all(abs(d) < 1e-9 for d in diffs.values()) else "FAIL")
    return {"model": cond["model"], "prompt": cond["prompt"], "policy": cond.get("policy", "exclude"),
            **{k: m.get(k) for k in PUBLISHED_KEYS}, "expected": expected, "status": status,
            "note": cond.get("note", "")}


def _fmt(x: Any, d: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{d}f}"


def published_markdown(df: pd.DataFrame) -> str:
    """The published-output table as markdown: value [95% CI], spec value, status."""
    head = ["model", "prompt", "invalid", "n", "Spearman ρ [CI]", "accuracy [CI]", "κ [CI]", "QWK [CI]",
            "spec (ρ / acc / κ / QWK)", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for _, r in df.iterrows():
        e = r["expected"]
        spec = " / ".join(_fmt(e.get(k)) if k in e else "—" for k in ("spearman", "accuracy", "kappa", "qwk"))
        cells = [r["model"], r["prompt"], f"{r['policy']} ({r['n_invalid']})", str(r["n"])]
        for m in ("spearman", "accuracy", "kappa", "qwk"):
            cells.append(f"{_fmt(r[m])} [{_fmt(r[f'{m}_lo'])}, {_fmt(r[f'{m}_hi'])}]")
        lines.append("| " + " | ".join(cells + [spec, r["status"]]) + " |")
    return "\n".join(lines)


def groups_markdown(df: pd.DataFrame) -> str:
    """Accuracy per divergence group for each condition."""
    head = ["model", "prompt", "invalid", *GROUPS, "Kendall τ"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join([r["model"], r["prompt"], r["policy"],
                                        *(_fmt(r[f"acc_{g}"]) for g in GROUPS), _fmt(r["kendall"])]) + " |")
    return "\n".join(lines)
