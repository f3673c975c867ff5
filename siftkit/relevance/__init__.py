"""LREF: an LLM relevance judge for e-commerce search (Tang et al., WWW 2025, arXiv 2503.09223).

* :mod:`~siftkit.relevance.lref`: the method (grades, prompts, label scoring, keep rule, rationales, DPO pairs).
* :mod:`~siftkit.relevance.config`: :class:`~siftkit.relevance.config.LrefConfig`.
* :mod:`~siftkit.relevance.data`: the synthetic five-grade set, WANDS and graded WANDS/ESCI loaders.
* :mod:`~siftkit.relevance.metrics`: F1s, per-class precision/recall, confusion, over-recall.
* :mod:`~siftkit.relevance.diagnostics`: what a trained judge learned (DPO's grade-prior shift, keep-rule terms).
* :mod:`~siftkit.relevance.train` and :mod:`~siftkit.relevance.pipeline`: TRL/PEFT training and the three stages.

See ``docs/lref.md``.
"""
