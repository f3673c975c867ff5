"""Product-bias audit of LLM investment recommendations (Zhi et al., "Exposing Product Bias in LLM Investment
Recommendation", 2025, https://arxiv.org/abs/2503.08750; spec: ../shared/specs/product_bias.md).

* :mod:`~siftkit.bias.universe`: the five asset classes' product universes (CSV, dated).
* :mod:`~siftkit.bias.grid`: user profiles × templates × de-biasing variants (288 factorial, 719 all-subsets).
* :mod:`~siftkit.bias.runner`: any chat model through ``run_batch`` (cached, resumable, Ray).
* :mod:`~siftkit.bias.parser`: free text → products, with statuses.
* :mod:`~siftkit.bias.measures`: Gini (own and universe support), HHI, entropy, top-k, CIs, tests, Δ-Gini.
* :mod:`~siftkit.bias.responders`: synthetic always-one, uniform and market-cap "models".
* :mod:`~siftkit.bias.report`: tables, bar charts, Lorenz curves.
"""
