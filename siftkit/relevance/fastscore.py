"""Exact shared-prefix label scoring for local transformers models (an optimisation of ``ChatModel.score``).

Scoring G grades with ``ChatModel.score`` runs G full forward passes over prompt + rationale + "Label: g". The G
sequences share everything up to the grade's first differing token, so this module runs the shared part once, keeps
its KV cache, repeats the cache G times and runs only the differing tail. Tokenisation follows
:meth:`siftkit.llm.local.LocalChatModel.score` (joint prompt + continuation, split after the prompt's tokens);
``tests/relevance/test_fastscore.py`` checks the two agree.
"""

from __future__ import annotations

from typing import Sequence

import torch


def _prompt_ids(tok, prompt) -> tuple[list[int], str, bool]:
    if isinstance(prompt, str):
        return tok(prompt, add_special_tokens=True)["input_ids"], prompt, True
    text = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    return tok(text, add_special_tokens=False)["input_ids"], text, False


def _continuation_ids(tok, text: str, special: bool, p_ids: list[int], cont: str) -> list[int]:
    joint = tok(text + cont, add_special_tokens=special)["input_ids"]
    if joint[:len(p_ids)] == p_ids:
        return joint[len(p_ids):]
    return tok(cont, add_special_tokens=False)["input_ids"]


def score_labels_local(llm, prompts: Sequence, prefixes: Sequence[str], grades: Sequence[str],
                       batch_size: int | None = None) -> list[list[float]]:
    """log p(prefix + "Label: g" | prompt) for each grade, equal to ``llm.score`` up to float rounding.

    Args:
        llm: a :class:`~siftkit.llm.local.LocalChatModel` (anything with ``.model`` and ``.tokenizer``).
        prompts: chat message lists or raw strings.
        prefixes: text before "Label: " per prompt ("" or a rationale plus newline).
        grades: the grade strings.
        batch_size: prompts per forward batch (default ``llm.batch_size``).
    """
    from siftkit.relevance.lref import completion

    tok, model = llm.tokenizer, llm.model
    seqs, starts = [], []
    for p, pre in zip(prompts, prefixes):
        p_ids, text, special = _prompt_ids(tok, p)
        seqs.append([p_ids + _continuation_ids(tok, text, special, p_ids, pre + completion(g)) for g in grades])
        starts.append(len(p_ids))
    bs = batch_size or getattr(llm, "batch_size", 16)
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i][0]))
    out: list[list[float] | None] = [None] * len(seqs)
    for k in range(0, len(order), bs):
        chunk = order[k:k + bs]
        for i, row in zip(chunk, _score_chunk(model, tok, [seqs[i] for i in chunk], [starts[i] for i in chunk])):
            out[i] = row
    return out


def _score_chunk(model, tok, seqs: list[list[list[int]]], starts: list[int]) -> list[list[float]]:
    B, G = len(seqs), len(seqs[0])
    device = next(model.parameters()).device
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    # shared prefix per sample, leaving >= 1 own token per grade
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
    scores = [[0.0] * G for _ in range(B)]
    for b, rows in enumerate(seqs):
        # shared continuation tokens: positions starts[b] .. L[b]-1, each predicted by the position before it
        common = 0.0
        for t in range(starts[b], L[b]):
            common += lp_pre[b, keep - 1 - (L[b] - t), rows[0][t]].item()
        for g, r in enumerate(rows):
            scores[b][g] = common + lp_pre[b, keep - 1, r[L[b]]].item()  # first own token
    # own tails beyond the first token: repeat the cache G times and run them in one batch
    S = max(len(r) - L[b] - 1 for b, rows in enumerate(seqs) for r in rows)
    if S > 0:
        cache = o.past_key_values
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
                       past_key_values=cache, use_cache=True).logits
        lp_tail = torch.log_softmax(lo.float(), dim=-1)  # (B*G, S, V)
        for b, rows in enumerate(seqs):
            for g, r in enumerate(rows):
                for j, t in enumerate(r[L[b] + 1:]):
                    scores[b][g] += lp_tail[b * G + g, j, t].item()
    return scores
