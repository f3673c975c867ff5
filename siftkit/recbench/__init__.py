"""RecBench+ (Huang et al., arXiv 2503.09382): a benchmark harness for LLM recommendation assistants.

* :mod:`~siftkit.recbench.queries`: the released query files (five types, movie and book) as :class:`Query` rows.
* :mod:`~siftkit.recbench.kg`: the item knowledge graph (ML-1M, ML-100K + Freebase, ``movie_info.jsonl``, ``.gexf``).
* :mod:`~siftkit.recbench.generate`: new condition queries from a user's history (explicit, implicit, misinformed).
* :mod:`~siftkit.recbench.scoring`: ``[SEP]`` parsing, title matching, P/R/NDCG, condition match, existence in KG,
  failed-to-recommend; the upstream-compatible (``reference``) and the ``corrected`` scorings.
* :mod:`~siftkit.recbench.baselines`: oracle, random and popularity responders (no LLM).
* :mod:`~siftkit.recbench.runner`: the paper's instruction format and a chat model over the queries (cached).

See docs/recbench.md.
"""
