"""Search-R1 rollouts: the prompt template, batched multi-turn generation with search calls, and the info mask.

Algorithm (search_r1 spec §2 "Rollout"; paper Algorithm 1). For the active trajectories of a batch, each turn:

1. sample ≤ ``max_new_tokens`` for all of them in one batch, stopping a row at ``</search>``, ``</answer>`` or EOS;
2. decode, cut after the first ``</search>`` (else after the first ``</answer>``), re-tokenise;
3. parse the first ``<search>…</search>`` or ``<answer>…</answer>``;
4. answer → done; search → one batched ``retriever.search(all pending queries, k)`` call, observation
   ``\\n\\n<information>{P}</information>\\n\\n`` with ``P`` = ``Doc i(Title: {title}) {text}`` lines; neither → the
   verbatim invalid-action message.

After ``max_turns`` turns, still-active trajectories get one final turn without search (a ``<search>`` there gets no
observation and the trajectory ends). ``info_mask`` is 1 on every token the policy generated and 0 on every
observation token (wrappers, passages, invalid-action message): paper Eqs. 2–3.

Example:
    >>> sampler = HFSampler(model, tokenizer, temperature=1.0, seed=0)
    >>> trajs = rollout(sampler, tokenizer, retriever, [("q1", "who wrote hamlet", ["shakespeare"])], RolloutConfig())
    >>> trajs[0].response_text, trajs[0].info_mask
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from siftkit.core.errors import InputError

TEMPLATE = (
    "Answer the given question. You must conduct reasoning inside <think> and </think> first every time you get new "
    "information. After reasoning, if you find you lack some knowledge, you can call a search engine by <search> "
    "query </search> and it will return the top searched results between <information> and </information>. You can "
    "search as "
    "many times as your want. If you find no further external knowledge needed, you can directly provide the answer "
    "inside <answer> and </answer>, without detailed illustrations. For example, <answer> Beijing </answer>. "
    "Question: {question}\n"
)  # [code] verbatim, typo included
INVALID_MESSAGE = (
    "\nMy previous action is invalid. If I want to search, I should put the query between <search> and </search>. "
    "If I want to give the final answer, I should put the answer between <answer> and </answer>. Let me try again.\n"
)  # [code] verbatim
ACTION_RE = re.compile(r"<(search|answer)>(.*?)</\1>", re.DOTALL)
TAGS = ("<think>", "</think>", "<search>", "</search>", "<information>", "</information>", "<answer>", "</answer>")


def make_prompt(question: str, template: str = TEMPLATE) -> str:
    """The Search-R1 user message: question stripped, ``?`` appended if missing [code]."""
    q = question.strip()
    if not q.endswith("?"):
        q += "?"
    return template.format(question=q)


def prompt_ids(tokenizer, question: str, template: str = TEMPLATE) -> list[int]:
    """Token ids of the prompt; the tokenizer's chat template is applied when it has one [code]."""
    text = make_prompt(question, template)
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                            tokenize=True)
        return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
    return tokenizer.encode(text, add_special_tokens=False)


def cut_response(text: str) -> str:
    """Keep up to the first ``</search>``, else up to the first ``</answer>``, else everything [code]."""
    if "</search>" in text:
        return text.split("</search>")[0] + "</search>"
    if "</answer>" in text:
        return text.split("</answer>")[0] + "</answer>"
    return text


def parse_action(text: str) -> tuple[str | None, str]:
    """``("search", query)``, ``("answer", answer)`` or ``(None, "")`` from the first complete tag pair [code]."""
    m = ACTION_RE.search(text)
    return (m.group(1), m.group(2).strip()) if m else (None, "")


def render_information(contents: Sequence[str]) -> str:
    """``\\n\\n<information>Doc 1(Title: …) text …</information>\\n\\n``; title = first line, quotes kept
    [code]."""
    lines = []
    for i, c in enumerate(contents):
        title, _, text = c.partition("\n")
        lines.append(f"Doc {i + 1}(Title: {title}) {text}\n")
    return f"\n\n<information>{''.join(lines).strip()}</information>\n\n"


@dataclass
class RolloutConfig:
    """Rollout settings (defaults: upstream v0.2 scripts; search_r1 spec §2).

    Attributes:
        max_turns: search turns before the final no-search turn [paper B = 4].
        topk: passages per search [code: 3].
        max_new_tokens: new tokens per turn [code: 500].
        max_obs_tokens: observation tokens kept per turn [code: 500].
        max_context: context is cut from the left to this many tokens [code: 4096].
        batch_size: trajectories generated together (1 = one question at a time).
        template: the user message; Search-R1's :data:`TEMPLATE` by default.
    """

    max_turns: int = 4
    topk: int = 3
    max_new_tokens: int = 500
    max_obs_tokens: int = 500
    max_context: int = 4096
    batch_size: int = 256
    template: str = TEMPLATE

    def __post_init__(self):
        if self.max_turns < 0 or self.topk < 1 or self.max_new_tokens < 1 or self.batch_size < 1:
            raise InputError("max_turns >= 0, topk/max_new_tokens/batch_size >= 1 required", field="RolloutConfig")


@dataclass
class Trajectory:
    """One rollout. ``segments`` are ``(token ids, generated?)`` pieces of the response, in order.

    Attributes:
        uid: unique prompt id; GRPO groups by it (spec §6.1).
        question, golds: the question and its gold aliases.
        prompt: prompt token ids.
    """

    uid: str
    question: str
    golds: list[str]
    prompt: list[int]
    segments: list[tuple[list[int], bool]] = field(default_factory=list)
    texts: list[tuple[str, bool]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    n_turns: int = 0
    n_invalid: int = 0
    done: bool = False
    reward: float = 0.0

    @property
    def response_ids(self) -> list[int]:
        return [t for ids, _ in self.segments for t in ids]

    @property
    def info_mask(self) -> list[int]:
        """1 on generated tokens, 0 on observation tokens (paper Eqs. 2–3)."""
        return [int(gen) for ids, gen in self.segments for _ in ids]

    @property
    def response_text(self) -> str:
        return "".join(t for t, _ in self.texts)

    @property
    def n_search(self) -> int:
        return len(self.queries)


# ---------------------------------------------------------------------------------------------------------------------
# method
# ---------------------------------------------------------------------------------------------------------------------

Sampler = Callable[[list[list[int]], int], list[list[int]]]  # (contexts, max_new_tokens) -> new ids per context


def rollout(sampler: Sampler, tokenizer, retriever, items: Sequence[tuple[str, str, Sequence[str]]],
            cfg: RolloutConfig, forced_first_query: bool = False) -> list[Trajectory]:
    """Roll out every ``(uid, question, golds)`` item; ``cfg.batch_size`` trajectories at a time.

    Args:
        sampler: generates continuations for a batch of contexts (e.g. :class:`HFSampler`).
        tokenizer: HF-style tokenizer (``encode``/``decode``).
        retriever: anything with ``search(queries, k) -> list[list[Hit]]`` (in-process or :class:`RemoteRetriever`).
        items: the questions; repeat an item to sample a GRPO group.
        cfg: :class:`RolloutConfig`.
        forced_first_query: the RAG baseline: the environment writes ``<search> question </search>`` (masked, not
            generated) and its observation before the policy's first turn [ours].

    Returns:
        One :class:`Trajectory` per item, in order.
    """
    out: list[Trajectory] = []
    for s in range(0, len(items), cfg.batch_size):
        batch = [Trajectory(uid, q, list(g), prompt_ids(tokenizer, q, cfg.template))
                 for uid, q, g in items[s:s + cfg.batch_size]]
        if forced_first_query:
            for t in batch:
                _append(t, tokenizer, f"<search> {t.question.strip()} </search>", generated=False)
                t.queries.append(t.question.strip())
            _observe(batch, [t.question.strip() for t in batch], tokenizer, retriever, cfg)
        for turn in range(cfg.max_turns + 1):
            final = turn == cfg.max_turns  # [code] one last turn without search
            active = [t for t in batch if not t.done]
            if not active:
                break
            contexts = [(t.prompt + t.response_ids)[-cfg.max_context:] for t in active]
            new = sampler(contexts, cfg.max_new_tokens)
            pending: list[tuple[Trajectory, str]] = []
            for t, ids in zip(active, new):
                text = cut_response(tokenizer.decode(ids, skip_special_tokens=True))
                _append(t, tokenizer, text, generated=True)
                t.n_turns += 1
                action, content = parse_action(text)
                if action == "answer" or final:
                    t.done = True
                elif action == "search":
                    pending.append((t, content))
                else:
                    t.n_invalid += 1
                    _append(t, tokenizer, INVALID_MESSAGE, generated=False)
            if pending:
                for t, q in pending:
                    t.queries.append(q)
                _observe([t for t, _ in pending], [q for _, q in pending], tokenizer, retriever, cfg)
            for t in active:  # context overflow ends a trajectory
                if len(t.prompt) + len(t.response_ids) + cfg.max_new_tokens > cfg.max_context:
                    t.done = True
        out.extend(batch)
    return out


def _observe(trajs: list[Trajectory], queries: list[str], tokenizer, retriever, cfg: RolloutConfig) -> None:
    """One retrieval call for all pending queries; append each observation (masked)."""
    results = retriever.search([q if q.strip() else "?" for q in queries], k=cfg.topk)
    for t, hits in zip(trajs, results):
        obs = render_information([h.contents for h in hits])
        ids = tokenizer.encode(obs, add_special_tokens=False)[:cfg.max_obs_tokens]
        t.segments.append((ids, False))
        t.texts.append((tokenizer.decode(ids) if len(ids) == cfg.max_obs_tokens else obs, False))


def _append(t: Trajectory, tokenizer, text: str, generated: bool) -> None:
    t.segments.append((tokenizer.encode(text, add_special_tokens=False), generated))
    t.texts.append((text, generated))


def batch_tensors(trajs: Sequence[Trajectory], pad_id: int, use_mask: bool = True) -> dict[str, torch.Tensor]:
    """Right-pad prompt+response into tensors for training.

    Returns:
        ``input_ids`` (N, T), ``attention_mask`` (N, T), ``loss_mask`` (N, T-1) aligned with the shifted targets:
        ``loss_mask[i, j] = 1`` when token ``j + 1`` is a response token that counts in the loss (generated, or any
        response token when ``use_mask`` is False), and ``last`` (N,) the index in ``loss_mask`` of the last response
        token.
    """
    rows = [t.prompt + t.response_ids for t in trajs]
    T = max(len(r) for r in rows)
    N = len(rows)
    input_ids = torch.full((N, T), pad_id, dtype=torch.long)  # (N, T)
    attn = torch.zeros((N, T), dtype=torch.long)  # (N, T)
    loss_mask = torch.zeros((N, T - 1), dtype=torch.float)  # (N, T-1)
    resp_mask = torch.zeros((N, T - 1), dtype=torch.float)  # (N, T-1)
    last = torch.zeros(N, dtype=torch.long)  # (N,)
    for i, (t, r) in enumerate(zip(trajs, rows)):
        input_ids[i, :len(r)] = torch.tensor(r)
        attn[i, :len(r)] = 1
        P, R = len(t.prompt), len(t.response_ids)
        m = t.info_mask if use_mask else [1] * R
        loss_mask[i, P - 1:P - 1 + R] = torch.tensor(m, dtype=torch.float)
        resp_mask[i, P - 1:P - 1 + R] = 1.0
        last[i] = P - 2 + R
    return {"input_ids": input_ids, "attention_mask": attn, "loss_mask": loss_mask, "response_mask": resp_mask,
            "last": last}


# ---------------------------------------------------------------------------------------------------------------------
# plumbing: a batched sampler for any HF causal LM (left padding, KV cache, per-row stop at a closing tag)
# ---------------------------------------------------------------------------------------------------------------------

class HFSampler:
    """Temperature / top-p sampling (greedy at ``temperature == 0``) for a batch of token-id contexts.

    A row stops at EOS or once its decoded tail contains ``</search>`` or ``</answer>``; the rest of the batch goes
    on. Sampling uses its own ``torch.Generator`` (no global RNG).

    Args:
        model: any ``transformers`` causal LM.
        tokenizer: its tokenizer (needs ``pad_token_id`` or ``eos_token_id``).
        temperature: 1.0 in training [code v0.2]; 0 (greedy) for evaluation [code].
        top_p: nucleus mass [code: 1.0].
        seed: generator seed.
    """

    stops = ("</search>", "</answer>")

    def __init__(self, model, tokenizer, temperature: float = 1.0, top_p: float = 1.0, seed: int = 0):
        self.model, self.tokenizer = model, tokenizer
        self.temperature, self.top_p = temperature, top_p
        self.gen = torch.Generator().manual_seed(seed)
        fwd = inspect.signature((model.get_base_model() if hasattr(model, "get_base_model") else model).forward)
        self.cache_kw = "cache" if "cache" in fwd.parameters else "past_key_values"  # transformers ≥ 5.2x renamed it
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.eos = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        n = max(len(vocab), int(getattr(model.config, "vocab_size", 0) or 0))
        self.gt = torch.tensor([">" in (v or "") for v in vocab] + [False] * (n - len(vocab)))  # can close a tag

    @torch.no_grad()
    def __call__(self, contexts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        device = next(self.model.parameters()).device
        B, L = len(contexts), max(len(c) for c in contexts)
        ids = torch.full((B, L), self.pad, dtype=torch.long)  # (B, L) left-padded
        attn = torch.zeros((B, L), dtype=torch.long)  # (B, L)
        for i, c in enumerate(contexts):
            ids[i, L - len(c):] = torch.tensor(c)
            attn[i, L - len(c):] = 1
        ids, attn = ids.to(device), attn.to(device)
        pos = (attn.cumsum(-1) - 1).clamp(min=0)  # (B, L)
        out = self.model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True)
        past, logits = _cache_of(out), out.logits[:, -1]  # (B, V)
        new: list[list[int]] = [[] for _ in range(B)]
        alive = torch.ones(B, dtype=torch.bool)
        next_pos = pos[:, -1:] + 1  # (B, 1)
        for _ in range(max_new_tokens):
            tok = self._pick(logits.float().cpu())  # (B,)
            for i in torch.nonzero(alive).flatten().tolist():
                t = int(tok[i])
                new[i].append(t)
                if t in self.eos:
                    alive[i] = False
                elif bool(self.gt[t]) and any(s in self.tokenizer.decode(new[i][-8:]) for s in self.stops):
                    alive[i] = False
            if not alive.any():
                break
            tok = torch.where(alive, tok, torch.full_like(tok, self.pad)).to(device)
            attn = torch.cat([attn, alive.long().to(device)[:, None]], dim=1)  # (B, L+s)
            out = self.model(input_ids=tok[:, None], attention_mask=attn, position_ids=next_pos, use_cache=True,
                             **{self.cache_kw: past})
            past, logits, next_pos = _cache_of(out), out.logits[:, -1], next_pos + 1
        return new

    def _pick(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, V) logits → (B,) token ids."""
        if self.temperature == 0:
            return logits.argmax(-1)
        probs = torch.softmax(logits / self.temperature, dim=-1)  # (B, V)
        if self.top_p < 1.0:
            sp, si = probs.sort(-1, descending=True)
            keep = sp.cumsum(-1) - sp < self.top_p
            sp = sp * keep
            probs = torch.zeros_like(probs).scatter(-1, si, sp)
        return torch.multinomial(probs, 1, generator=self.gen).squeeze(-1)


def _cache_of(out):
    """The KV cache of a model output, under either name."""
    return out.get("cache", None) if out.get("cache", None) is not None else out.past_key_values
