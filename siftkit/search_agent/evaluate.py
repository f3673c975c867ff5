"""Evaluation of three systems on QA rows (search_r1 spec §4): greedy EM per data source, searches and turns.

* ``direct``: the policy answers with no search (``max_turns = 0``: only the final no-search turn) — the no-search
  control;
* ``rag``: retrieve once with the question (same retriever, same k), then answer without further search [ours: the
  environment writes ``<search> question </search>`` and its observation, masked, before the policy's turn];
* ``policy``: the Search-R1 rollout, up to ``max_turns`` searches.

Example:
    >>> per_q = evaluate_system("policy", model, tokenizer, retriever, rows, RolloutConfig(max_turns=4))
    >>> summarise(per_q)
"""

from __future__ import annotations

from typing import Sequence

from siftkit.search_agent.reward import em_reward, extract_answer, f1_reward, normalize_answer
from siftkit.search_agent.rollout import HFSampler, RolloutConfig, rollout

SYSTEMS = ("direct", "rag", "policy")


class _NoRetriever:
    def search(self, queries, k=3):
        raise RuntimeError("the direct system never searches")


def evaluate_system(system: str, model, tokenizer, retriever, rows: Sequence[dict], cfg: RolloutConfig,
                    sampler=None) -> list[dict]:
    """Greedy rollouts of one system; one record per row with ``em``, ``f1``, ``searches``, ``turns``."""
    if system not in SYSTEMS:
        raise ValueError(f"system must be one of {SYSTEMS}, got {system!r}")
    sampler = sampler or HFSampler(model, tokenizer, temperature=0.0)
    model.eval()
    items = [(r.get("uid", str(i)), r["question"], r["golds"]) for i, r in enumerate(rows)]
    c = RolloutConfig(**{**cfg.__dict__, "max_turns": 0}) if system in ("direct", "rag") else cfg
    trajs = rollout(sampler, tokenizer, retriever if system != "direct" else _NoRetriever(), items, c,
                    forced_first_query=system == "rag")
    out = []
    for r, t in zip(rows, trajs):
        rec = {"uid": t.uid, "data_source": r.get("data_source", "synthetic"), "hops": r.get("hops"),
               "em": em_reward(t.response_text, t.golds), "f1": f1_reward(t.response_text, t.golds),
               "searches": t.n_search, "turns": t.n_turns, "answer": extract_answer(t.response_text)}
        if system == "rag":  # an upper bound for any RAG reader: is a gold alias in the retrieved text?
            obs = normalize_answer(" ".join(txt for txt, gen in t.texts if not gen))
            rec["answer_in_context"] = float(any(f" {normalize_answer(g)} " in f" {obs} " for g in t.golds))
        out.append(rec)
    return out


def summarise(records: Sequence[dict], by: str = "data_source") -> list[dict]:
    """Mean EM / F1 / searches / turns per group (and ``all``)."""
    groups: dict[str, list[dict]] = {"all": list(records)}
    for r in records:
        groups.setdefault(str(r.get(by)), []).append(r)
    rows = []
    for g, rs in groups.items():
        row = {by: g, "n": len(rs)}
        for k in ("em", "f1", "searches", "turns", "answer_in_context"):
            vals = [r[k] for r in rs if k in r]
            if vals:
                row[k] = sum(vals) / len(vals)
        row["answered"] = sum(r.get("answer") is not None for r in rs) / len(rs)  # has an <answer> block
        rows.append(row)
    return rows
