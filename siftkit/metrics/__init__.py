"""Evaluation metrics as plain functions, one file per family.

* :mod:`~siftkit.metrics.ir`: nDCG@k, P@k, Recall@k, AP/MAP, RR/MRR through ir-measures.
* :mod:`~siftkit.metrics.agreement`: accuracy, F1, Cohen's kappa, Spearman, Kendall, confusion matrices, ROC-AUC.
* :mod:`~siftkit.metrics.similarity`: top-k accuracy and P@k over a similarity matrix (ties in expectation), both
  retrieval directions.
* :mod:`~siftkit.metrics.fuzzy`: fuzzy title/name matching on rapidfuzz (stated scorer, threshold, normalisation).
* :mod:`~siftkit.metrics.text`: ROUGE-1/2/L F1 through rouge-score.
* :mod:`~siftkit.metrics.concentration`: Gini (product-bias Eq. 1), HHI, entropy.
* :mod:`~siftkit.metrics.stats`: cluster bootstrap CIs, paired permutation and t-tests, chi-square goodness of fit.

Example:
    >>> from siftkit.metrics import evaluate
    >>> evaluate({"q1": {"d1": 1}}, {"q1": {"d1": 0.9}}, ["ndcg@10", "mrr"])
    {'ndcg@10': 1.0, 'mrr': 1.0}
"""

import importlib

# Imported on first use (PEP 562): scipy.stats, scikit-learn and rouge-score take seconds to import, and the CLI
# should not pay that to print --help.
_SOURCES = {
    "agreement": ["accuracy", "agreement_report", "cohen_kappa", "confusion", "kendall_tau", "macro_f1", "roc_auc",
                  "spearman_rho", "weighted_f1"],
    "concentration": ["concentration_report", "entropy", "gini", "hhi", "support_size", "top_k_share"],
    "fuzzy": ["FuzzyMatch", "fuzzy_match", "fuzzy_scores", "normalise_text"],
    "ir": ["evaluate", "parse_metric", "per_query"],
    "similarity": ["precision_at_k", "retrieval_report", "top_k_accuracy"],
    "stats": ["BootstrapCI", "ChiSquareResult", "PermutationResult", "TTestResult", "bootstrap_ci", "chi_square_gof",
              "paired_permutation_test", "paired_t_test"],
    "text": ["rouge", "rouge_per_pair"],
}
_WHERE = {name: mod for mod, names in _SOURCES.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f"siftkit.metrics.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'siftkit.metrics' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
