"""Exact shared-prefix scoring of several continuations of one prompt on a local transformers model.

Scoring G continuations of one prompt with :meth:`~siftkit.llm.local.LocalChatModel.score` runs G full forward passes
over prompt + continuation. The G sequences share every token up to their first difference (a judge's
``"Label: Exact"`` / ``"Label: Marginal"`` share the prompt, a rationale and ``"Label:"``), so this path runs the
shared part once, keeps its KV cache, repeats the cache G times and runs only the differing tails. The result equals
``score`` up to float rounding (``tests/llm/test_fastscore.py``); tokenisation is ``score``'s own
(:meth:`LocalChatModel._score_ids`).

Reach it through :meth:`LocalChatModel.score_groups` or, cached per (prompt, continuation) exactly like ``score``,
:meth:`siftkit.llm.cache.CachedChatModel.score_groups`. Moved here from LREF (``siftkit/relevance/fastscore.py``),
which now calls it through the cache.

Example:
    >>> llm.score_groups([prompt], [["Label: yes", "Label: no"]])[0][1].logprob  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Sequence

import torch

from siftkit.llm.base import Prompt, Score


def score_groups(llm, prompts: Sequence[Prompt], continuations: Sequence[Sequence[str]],
                 batch_size: int | None = None) -> list[list[Score]]:
    """``llm.score`` of every continuation of every prompt, sharing the forward pass over each group's common prefix.

    Args:
        llm: a :class:`~siftkit.llm.local.LocalChatModel` (``model``, ``tokenizer``, ``_score_ids``, ``score``).
        prompts: chat message lists or raw strings.
        continuations: per prompt, the continuations to score after it.
        batch_size: groups per forward batch (default ``llm.batch_size``).

    Returns:
        Per prompt, one :class:`~siftkit.llm.base.Score` per continuation, in order.
    """
    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuation groups")
    seqs, starts = [], []
    for p, conts in zip(prompts, continuations):
        pairs = [llm._score_ids(p, c) for c in conts]
        seqs.append([p_ids + c_ids for p_ids, c_ids in pairs])
        starts.append(len(pairs[0][0]) if pairs else 0)
    out: list[list[Score] | None] = [None] * len(prompts)
    # a group of one, or one with an empty continuation, has nothing to share: plain score
    plain = [i for i, conts in enumerate(continuations) if len(conts) < 2 or any(len(r) == starts[i] for r in seqs[i])]
    flat = [(i, c) for i in plain for c in continuations[i]]
    scores = iter(llm.score([prompts[i] for i, _ in flat], [c for _, c in flat]))
    for i in plain:
        out[i] = [next(scores) for _ in continuations[i]]
    # the rest in batches of groups of equal size G (the KV cache is repeated G times)
    bs = batch_size or getattr(llm, "batch_size", 16)
    plain_set = set(plain)
    shared = sorted((i for i in range(len(prompts)) if i not in plain_set),
                    key=lambda i: (len(seqs[i]), -len(seqs[i][0])))
    batches: list[list[int]] = []
    for i in shared:
        if batches and len(batches[-1]) < bs and len(seqs[batches[-1][0]]) == len(seqs[i]):
            batches[-1].append(i)
        else:
            batches.append([i])
    for part in batches:
        for i, row in zip(part, _score_chunk(llm.model, llm.tokenizer, [seqs[i] for i in part],
                                             [starts[i] for i in part])):
            out[i] = row
    return out


def _score_chunk(model, tok, seqs: list[list[list[int]]], starts: list[int]) -> list[list[Score]]:
    """One batch of B groups of G token rows each (prompt + continuation); ``starts[b]`` = prompt length of group b."""
    B, G = len(seqs), len(seqs[0])
    device = next(model.parameters()).device
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    # shared prefix per group, leaving >= 1 own token per continuation
    L = []
    for rows in seqs:
        n = min(len(r) for r in rows) - 1
        lcp = 0
        while lcp < n and all(r[lcp] == rows[0][lcp] for r in rows):
            lcp += 1
        L.append(lcp)
    T = max(L)
    ids = torch.full((B, T), pad, dtype=torch.long)  # (B, T) left-padded shared prefixes
    mask = torch.zeros((B, T), dtype=torch.long)  # (B, T)
    for b, rows in enumerate(seqs):
        ids[b, T - L[b]:] = torch.tensor(rows[0][:L[b]])
        mask[b, T - L[b]:] = 1
    ids, mask = ids.to(device), mask.to(device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, T)
    keep = max(L[b] - starts[b] for b in range(B)) + 1  # positions whose logits score continuation tokens
    with torch.no_grad():
        o = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=keep)
    lp_pre = torch.log_softmax(o.logits.float(), dim=-1)  # (B, keep, V); index j holds position T - keep + j
    token_lps: list[list[list[float]]] = []
    for b, rows in enumerate(seqs):
        # shared continuation tokens: positions starts[b] .. L[b]-1, each predicted by the position before it
        common = [lp_pre[b, keep - 1 - (L[b] - t), rows[0][t]].item() for t in range(starts[b], L[b])]
        token_lps.append([common + [lp_pre[b, keep - 1, r[L[b]]].item()] for r in rows])  # + first own token
    # own tails beyond the first token: repeat the cache G times and run them in one batch
    S = max(len(r) - L[b] - 1 for b, rows in enumerate(seqs) for r in rows)
    if S > 0:
        cache = o.cache  # transformers >= 5.24 names it cache (past_key_values is deprecated)
        cache.batch_repeat_interleave(G)
        tail = torch.full((B * G, S), pad, dtype=torch.long)  # (B*G, S) right-padded
        tmask = torch.zeros((B * G, S), dtype=torch.long)  # (B*G, S)
        for b, rows in enumerate(seqs):
            for g, r in enumerate(rows):
                own = r[L[b]:-1]
                if own:
                    tail[b * G + g, :len(own)] = torch.tensor(own)
                    tmask[b * G + g, :len(own)] = 1
        full_mask = torch.cat([mask.repeat_interleave(G, 0), tmask.to(device)], dim=1)  # (B*G, T + S)
        starts_t = torch.tensor(L, device=device).repeat_interleave(G)  # (B*G,)
        tpos = starts_t[:, None] + torch.arange(S, device=device)  # (B*G, S)
        with torch.no_grad():
            lo = model(input_ids=tail.to(device), attention_mask=full_mask, position_ids=tpos,
                       cache=cache, use_cache=True).logits
        lp_tail = torch.log_softmax(lo.float(), dim=-1)  # (B*G, S, V)
        for b, rows in enumerate(seqs):
            for g, r in enumerate(rows):
                token_lps[b][g] += [lp_tail[b * G + g, j, t].item() for j, t in enumerate(r[L[b] + 1:])]
    return [[Score(logprob=float(sum(lps)), token_logprobs=lps) for lps in group] for group in token_lps]
