"""IR measures (nDCG@k, P@k, Recall@k, AP/MAP, RR/MRR), computed through ir-measures.

ir-measures (backed by pytrec_eval, i.e. trec_eval) is the primary implementation; this module only parses metric
strings, normalises inputs and picks means or per-query values. ranx is used in the tests as an independent check.

Symbols used below: ``q`` a query, ``R_q`` its set of relevant documents (label ``>= 1``), ``rel_i`` the label of the
document at rank ``i`` of the run (0 when unjudged), ``k`` the cutoff, ``|Q|`` the number of evaluated queries.

Query sets (ir-measures 0.4 semantics, kept as is):
    * a query in the run with no qrels is **ignored** (it is neither scored nor counted in the mean);
    * a query in the qrels with no entry in the run **scores 0** on every measure and **is counted** in the mean
      (trec_eval ``-c``), so the mean is over the qrels' queries;
    * a query whose qrels hold only non-relevant labels is counted and scores 0.

Ties in score are broken as trec_eval does (by docno, descending), not by input order.

References:
    MacAvaney, Macdonald, Ounis. "Streamlining Evaluation with ir-measures", ECIR 2022.
    https://arxiv.org/abs/2111.13466
    Bassani. "ranx: A Blazing-Fast Python Library for Ranking Evaluation and Comparison", ECIR 2022.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import ir_measures
import pandas as pd

from siftkit.core.errors import InputError

Qrels = Mapping[str, Mapping[str, int]]
"""``{qid: {docno: label}}``; a label ``>= 1`` is relevant, larger labels are graded gains for nDCG."""
Run = Mapping[str, Mapping[str, float]]
"""``{qid: {docno: score}}``; higher score ranks first."""

# ----------------------------------------------------------------------------------------------------------------
# method: metric-string parser
# ----------------------------------------------------------------------------------------------------------------

# lower-cased family name -> ir-measures measure name. ranx names and ir-measures names both map here.
_FAMILIES: dict[str, str] = {
    "ndcg": "nDCG",
    "p": "P", "precision": "P",
    "r": "R", "recall": "R",
    "ap": "AP", "map": "AP",
    "rr": "RR", "mrr": "RR", "recip_rank": "RR",
}
_NEEDS_CUTOFF = {"P", "R"}  # P and R without @k are unbounded in ir-measures, which is rarely what was meant
_METRIC_RE = re.compile(r"^\s*([A-Za-z_]+)\s*(?:@\s*(\d+))?\s*$")


def parse_metric(metric: str) -> Any:
    """Turn a ranx-like or ir-measures metric string into an ir-measures measure.

    Accepted families (case-insensitive), each with an optional ``@k`` cutoff:

    ======================  ==================  =====================
    ranx-like               ir-measures         measure
    ======================  ==================  =====================
    ``ndcg@10``             ``nDCG@10``         nDCG@k
    ``precision@5``         ``P@5``             P@k (cutoff required)
    ``recall@100``          ``R@100``           Recall@k (cutoff required)
    ``map``, ``map@10``     ``AP``, ``AP@10``   AP (mean = MAP)
    ``mrr``, ``mrr@10``     ``RR``, ``RR@10``   RR (mean = MRR)
    ======================  ==================  =====================

    Any other string is handed to :func:`ir_measures.parse_measure` (e.g. ``"P(rel=2)@5"``).

    Args:
        metric: the metric string.

    Returns:
        An ir-measures measure object (e.g. ``nDCG@10``).

    Raises:
        InputError: the string is neither of the above, or ``precision``/``recall`` lacks ``@k``.

    Example:
        >>> str(parse_metric("precision@5")), str(parse_metric("mrr"))
        ('P@5', 'RR')
    """
    m = _METRIC_RE.match(metric)
    if m and m.group(1).lower() in _FAMILIES:
        name = _FAMILIES[m.group(1).lower()]
        k = int(m.group(2)) if m.group(2) else None
        if k is None and name in _NEEDS_CUTOFF:
            raise InputError(f'metric "{metric}": {name} needs a cutoff, e.g. "{m.group(1)}@10"', field="metric")
        if k is not None and k < 1:
            raise InputError(f'metric "{metric}": cutoff must be >= 1', field="metric")
        return ir_measures.parse_measure(f"{name}@{k}" if k else name)
    try:
        return ir_measures.parse_measure(metric)
    except Exception as exc:  # ir-measures raises several types for bad strings
        raise InputError(f'unknown metric "{metric}"', field="metric") from exc


# ----------------------------------------------------------------------------------------------------------------
# method: evaluation
# ----------------------------------------------------------------------------------------------------------------


def evaluate(qrels: Qrels | pd.DataFrame, run: Run | pd.DataFrame, metrics: str | Sequence[str]) -> dict[str, float]:
    """Mean of each metric over the evaluated queries (see the module docstring for which queries count).

    Formulas, for one query ``q`` (the reported value is the mean over ``|Q|`` queries):

    * ``P@k   = (1/k) Σ_{i<=k} [rel_i >= 1]``
    * ``R@k   = Σ_{i<=k} [rel_i >= 1] / |R_q|``
    * ``nDCG@k = DCG@k / IDCG@k`` with ``DCG@k = Σ_{i<=k} rel_i / log2(i + 1)`` and ``IDCG@k`` the DCG of the
      ideal ordering of the qrels (trec_eval gains: the label itself)
    * ``AP(@k) = Σ_{i<=k} P@i · [rel_i >= 1] / |R_q|``; its mean is MAP
    * ``RR(@k) = 1 / rank of the first relevant document (0 if none within k)``; its mean is MRR

    Args:
        qrels: ``{qid: {docno: label}}`` or a DataFrame with columns ``qid, docno, label`` (``relevance`` is also
            accepted for ``label``; ir-measures' ``query_id, doc_id`` too).
        run: ``{qid: {docno: score}}`` or a DataFrame with columns ``qid, docno, score``.
        metrics: one metric string or a list of them, e.g. ``["ndcg@10", "P@5", "recall@100", "map", "mrr"]``.

    Returns:
        ``{metric string as given: mean value}``, in the order given.

    Example:
        >>> evaluate({"q1": {"d1": 1}}, {"q1": {"d1": 0.2, "d2": 0.9}}, ["mrr", "P@2"])
        {'mrr': 0.5, 'P@2': 0.5}
    """
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    measures = {name: parse_metric(name) for name in names}
    agg = ir_measures.calc_aggregate(set(measures.values()), _qrels_dict(qrels), _run_dict(run))
    return {name: float(agg[measure]) for name, measure in measures.items()}


def per_query(qrels: Qrels | pd.DataFrame, run: Run | pd.DataFrame, metric: str) -> dict[str, float]:
    """Per-query values of one metric (same formulas and query set as :func:`evaluate`).

    Args:
        qrels: ``{qid: {docno: label}}`` or a DataFrame (see :func:`evaluate`).
        run: ``{qid: {docno: score}}`` or a DataFrame (see :func:`evaluate`).
        metric: one metric string, e.g. ``"ndcg@10"``.

    Returns:
        ``{qid: value}`` for every query in the qrels (0 for those missing from the run), sorted by qid.

    Example:
        >>> per_query({"q1": {"d1": 1}, "q2": {"d9": 1}}, {"q1": {"d2": 0.9, "d1": 0.2}}, "rr")
        {'q1': 0.5, 'q2': 0.0}
    """
    measure = parse_metric(metric)
    values = {m.query_id: float(m.value) for m in ir_measures.iter_calc([measure], _qrels_dict(qrels), _run_dict(run))}
    return dict(sorted(values.items()))


# ----------------------------------------------------------------------------------------------------------------
# plumbing: input normalisation
# ----------------------------------------------------------------------------------------------------------------


def _column(frame: pd.DataFrame, options: tuple[str, ...], what: str) -> str:
    """First of ``options`` present in ``frame``, else an InputError naming the column."""
    for name in options:
        if name in frame.columns:
            return name
    raise InputError(f'{what} frame: column "{options[0]}" missing (have {list(frame.columns)})', field=options[0])


def _frame_to_dict(frame: pd.DataFrame, value_cols: tuple[str, ...], what: str, cast: type) -> dict[str, dict]:
    """``{qid: {docno: cast(value)}}`` from a long frame."""
    qcol = _column(frame, ("qid", "query_id"), what)
    dcol = _column(frame, ("docno", "doc_id"), what)
    vcol = _column(frame, value_cols, what)
    out: dict[str, dict] = {}
    for qid, docno, value in zip(frame[qcol], frame[dcol], frame[vcol]):
        out.setdefault(str(qid), {})[str(docno)] = cast(value)
    return out


def _qrels_dict(qrels: Qrels | pd.DataFrame) -> dict[str, dict[str, int]]:
    """Qrels as ``{str: {str: int}}`` (pytrec_eval wants str ids and int labels)."""
    if isinstance(qrels, pd.DataFrame):
        return _frame_to_dict(qrels, ("label", "relevance"), "qrels", int)
    return {str(q): {str(d): int(rel) for d, rel in docs.items()} for q, docs in qrels.items()}


def _run_dict(run: Run | pd.DataFrame) -> dict[str, dict[str, float]]:
    """Run as ``{str: {str: float}}``."""
    if isinstance(run, pd.DataFrame):
        return _frame_to_dict(run, ("score",), "run", float)
    return {str(q): {str(d): float(s) for d, s in docs.items()} for q, docs in run.items()}
