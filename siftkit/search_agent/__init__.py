"""Search-R1 (Jin et al., 2025, arXiv:2503.09516): an LLM learns by RL to call a search engine while it reasons.

Modules: :mod:`.rollout` (template, batched multi-turn rollouts, info mask), :mod:`.reward` (EM/F1),
:mod:`.trainer` (GRPO, PPO, warm start), :mod:`.synthetic` (retrieval-needed task, tiny policy), :mod:`.data`
(QA loaders), :mod:`.evaluate` (direct / RAG / policy), :mod:`.demo` (the CPU demonstration), :mod:`.plugin` (CLI).
"""
