"""Evaluation metrics as plain functions, one file per family.

* :mod:`~siftkit.metrics.ir`: nDCG@k, P@k, Recall@k, AP/MAP, RR/MRR through ir-measures.
* :mod:`~siftkit.metrics.agreement`: accuracy, F1, Cohen's kappa, Spearman, Kendall, confusion matrices.
* :mod:`~siftkit.metrics.text`: ROUGE-1/2/L F1 through rouge-score.
* :mod:`~siftkit.metrics.concentration`: Gini (product-bias Eq. 1), HHI, entropy.
* :mod:`~siftkit.metrics.stats`: cluster bootstrap CIs, paired permutation and t-tests.

Example:
    >>> from siftkit.metrics import evaluate
    >>> evaluate({"q1": {"d1": 1}}, {"q1": {"d1": 0.9}}, ["ndcg@10", "mrr"])
    {'ndcg@10': 1.0, 'mrr': 1.0}
"""

from siftkit.metrics.agreement import (
    accuracy,
    agreement_report,
    cohen_kappa,
    confusion,
    kendall_tau,
    macro_f1,
    spearman_rho,
    weighted_f1,
)
from siftkit.metrics.concentration import concentration_report, entropy, gini, hhi, support_size, top_k_share
from siftkit.metrics.ir import evaluate, parse_metric, per_query
from siftkit.metrics.stats import (
    BootstrapCI,
    PermutationResult,
    TTestResult,
    bootstrap_ci,
    paired_permutation_test,
    paired_t_test,
)
from siftkit.metrics.text import rouge, rouge_per_pair

__all__ = [
    "accuracy", "agreement_report", "cohen_kappa", "confusion", "kendall_tau", "macro_f1", "spearman_rho",
    "weighted_f1",
    "concentration_report", "entropy", "gini", "hhi", "support_size", "top_k_share",
    "evaluate", "parse_metric", "per_query",
    "BootstrapCI", "PermutationResult", "TTestResult", "bootstrap_ci", "paired_permutation_test", "paired_t_test",
    "rouge", "rouge_per_pair",
]
