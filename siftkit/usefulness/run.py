"""Plumbing: build the model, sample rows and sessions, label a set of clicks and summarise what came back.

Every call goes through :class:`~siftkit.llm.cache.CachedChatModel` (keyed by the prompt hash), so re-running a
killed or finished job re-queries nothing (spec §5.8).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from siftkit.llm.base import ChatModel
from siftkit.llm.factory import make_chat_model as make_model  # noqa: F401  (the usefulness API's name for it)
from siftkit.usefulness.config import UsefulnessConfig
from siftkit.usefulness.data import GROUPS, Click, divergence_group, sessions
from siftkit.usefulness.labeler import approx_tokens, label_parts, units


@dataclass
class LabelRun:
    """Scores by id plus the parser's accounting (spec §2 "Parser": unparsable ids are logged, never guessed)."""

    scores: dict[str, int]
    invalid: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: int = 0
    clamped: list[str] = field(default_factory=list)
    recovered_calls: int = 0
    calls: int = 0

    def summary(self) -> dict[str, Any]:
        n = len(self.scores) + len(self.invalid) + len(self.missing)
        dist = {str(k): sum(v == k for v in self.scores.values()) for k in range(4)}
        return {"ids": n, "calls": self.calls, "valid": len(self.scores), "invalid": len(self.invalid),
                "missing": len(self.missing), "unexpected_keys": self.unexpected, "clamped": len(self.clamped),
                "recovered_calls": self.recovered_calls, "label_distribution": dist}


def token_counter(model: ChatModel) -> Callable[[str], int]:
    """The model's own tokenizer when it has one (local models), else the character estimate."""
    inner = getattr(model, "inner", model)
    tok = getattr(inner, "tokenizer", None)
    if tok is None:
        return approx_tokens
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])


def label_clicks(model: ChatModel, clicks: Sequence[Click], cfg: UsefulnessConfig) -> LabelRun:
    """Label every click: one call per click (baseline) or per session part (session)."""
    parts = units(clicks, cfg, token_counter(model))
    out = LabelRun(scores={}, calls=len(parts))
    for p in label_parts(model, parts, cfg):
        out.scores.update(p.scores)
        out.invalid.update(p.invalid)
        out.missing += p.missing
        out.unexpected += len(p.unexpected)
        out.clamped += p.clamped
        out.recovered_calls += int(p.recovered)
    return out


def stratified_rows(clicks: Sequence[Click], per_group: int = 25, seed: int = 0) -> list[Click]:
    """``per_group`` clicks from each divergence group (HR-HU, HR-LU, LR-HU, LR-LU), seeded, in file order."""
    rng = random.Random(seed)
    chosen: set[str] = set()
    for g in GROUPS:
        pool = [c.id for c in clicks if divergence_group(c) == g]
        chosen.update(rng.sample(pool, min(per_group, len(pool))))
    return [c for c in clicks if c.id in chosen]


def sample_sessions(clicks: Sequence[Click], n: int = 20, seed: int = 0) -> list[Click]:
    """All clicks of ``n`` seeded-random ``(user, task_id)`` sessions."""
    by = sessions(clicks)
    keys = sorted(by)
    pick = set(random.Random(seed).sample(keys, min(n, len(keys))))
    return [c for k in keys if k in pick for c in by[k]]


def plan_requests(clicks: Sequence[Click], cfg: UsefulnessConfig,
                  count: Callable[[str], int] = approx_tokens) -> dict[Any, list]:
    """The first-attempt generation requests of :func:`label_clicks`, grouped by their ``GenerationParams``.

    ``count`` must be the counter :func:`label_clicks` will use (``token_counter(model)``), or sessions may be
    split differently and the planned prompts miss the cache. Feed each group to
    :func:`siftkit.llm.batch.run_batch` (e.g. on a Ray cluster against several endpoints) with the same cache file;
    :func:`label_clicks` then finds every answer in the cache and only sends retries.
    """
    from siftkit.llm.base import GenerationParams
    from siftkit.usefulness.labeler import answer_budget, build_prompt

    out: dict[Any, list] = {}
    for part in units(clicks, cfg, count):
        params = GenerationParams(max_new_tokens=answer_budget(cfg, len(part)), temperature=cfg.temperature,
                                  top_p=cfg.top_p)
        out.setdefault(params, []).append(build_prompt(part, cfg))
    return out
