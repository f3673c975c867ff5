"""Search-R1 optimisation: GRPO and PPO over multi-turn search rollouts, with retrieved tokens masked out.

GRPO (search_r1 spec §2 table, right column), for a group of ``G`` rollouts ``y_i`` of one prompt id:

    A_i = (r_i − mean(r)) / (std(r) + 1e-6)          (unbiased std; a size-1 group has A = r)
    ρ_t = π_θ(y_t | ·) / π_old(y_t | ·)
    L = token-mean over m_t = 1 of [ −min(ρ_t A_i, clip(ρ_t, 1 − ε, 1 + ε) A_i) + β · KL3_t − c_H · H_t ]
    KL3_t = exp(log π_ref − log π_θ) − (log π_ref − log π_θ) − 1, clamped to ±10 (verl ``low_var_kl``)

PPO (left column): KL in the reward, ``r_t = −β (log π_old − log π_ref) m_t`` (+ EM on the last response token),
GAE with γ = λ = 1 over all response tokens, whitened (unbiased variance); a separate critic (a copy of the
policy with a value head), value loss clipped at ``value_clip``. ``m_t`` is the info mask (paper Eqs. 2–3); with
``mask_info=False`` every response token counts (the ablation). Old log-probs are recomputed on the final
sequences (spec §6.4).

Works for any ``transformers`` causal LM; a PEFT model gets "adapters off" as its reference.

Example:
    >>> trainer = SearchR1Trainer(model, tokenizer, retriever, SearchR1Config(lr=1e-3, steps=80))
    >>> history = trainer.train(train_rows)
"""

from __future__ import annotations

import copy
import random
import time
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from siftkit.search_agent.config import SearchR1Config
from siftkit.search_agent.reward import em_reward, f1_reward, format_reward
from siftkit.search_agent.rollout import HFSampler, RolloutConfig, Trajectory, batch_tensors, rollout

# ---------------------------------------------------------------------------------------------------------------------
# method: pure loss maths
# ---------------------------------------------------------------------------------------------------------------------


def grpo_advantages(rewards: Sequence[float], uids: Sequence[str]) -> torch.Tensor:
    """Group-normalised outcome advantages, grouped by unique prompt id (spec §6.1). Returns (N,)."""
    r = torch.tensor(rewards, dtype=torch.float)  # (N,)
    adv = torch.empty_like(r)
    groups: dict[str, list[int]] = {}
    for i, u in enumerate(uids):
        groups.setdefault(u, []).append(i)
    for idx in groups.values():
        g = r[idx]  # (G,)
        adv[idx] = g if len(idx) == 1 else (g - g.mean()) / (g.std(unbiased=True) + 1e-6)
    return adv


def low_var_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k3 estimator of KL(π_θ ‖ π_ref) per token, clamped to ±10 [code: verl ``low_var_kl``]."""
    d = ref_logp - logp
    return (d.exp() - d - 1).clamp(-10, 10)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def grpo_loss(logp, old_logp, ref_logp, adv, mask, clip_eps: float, beta: float, entropy=None,
              entropy_coeff: float = 0.0) -> tuple[torch.Tensor, dict]:
    """Clipped GRPO objective with the KL term in the loss.

    Args:
        logp, old_logp, ref_logp: (N, T) log-probs of the taken tokens under π_θ, π_old, π_ref.
        adv: (N,) sequence advantages, broadcast to tokens.
        mask: (N, T) 1 where the token counts (info mask ∧ response).
        entropy: (N, T) token entropies, for the optional bonus.

    Returns:
        Scalar loss (token mean) and diagnostics.
    """
    ratio = (logp - old_logp).exp()  # (N, T)
    a = adv[:, None]  # (N, 1)
    pg = -torch.min(ratio * a, ratio.clamp(1 - clip_eps, 1 + clip_eps) * a)  # (N, T)
    kl = low_var_kl(logp, ref_logp)  # (N, T)
    loss_t = pg + beta * kl
    if entropy is not None and entropy_coeff:
        loss_t = loss_t - entropy_coeff * entropy
    loss = masked_mean(loss_t, mask)
    return loss, {"pg_loss": masked_mean(pg, mask).item(), "kl": masked_mean(kl, mask).item(),
                  "clip_frac": clip_fraction(ratio, a, mask, clip_eps)}


def clip_fraction(ratio: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, clip_eps: float) -> float:
    """Share of counted tokens where clipping changes the loss: −A·clip(ρ) > −A·ρ [code: verl ``pg_clipfrac``].

    A token with ρ outside [1 − ε, 1 + ε] whose advantage makes the unclipped term the larger loss (e.g. ρ > 1 + ε
    with A < 0) is not counted, because ``min`` keeps the unclipped term there."""
    unclipped, clipped = -adv * ratio, -adv * ratio.clamp(1 - clip_eps, 1 + clip_eps)
    return masked_mean((clipped > unclipped).float(), mask).item()


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over masked positions. rewards, values, mask: (N, T). Returns (A, returns)."""
    N, T = rewards.shape
    adv = torch.zeros_like(rewards)  # (N, T)
    last = rewards.new_zeros(N)
    next_v = rewards.new_zeros(N)
    for t in reversed(range(T)):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_v - values[:, t]
        last = torch.where(m > 0, delta + gamma * lam * last, last)
        next_v = torch.where(m > 0, values[:, t], next_v)
        adv[:, t] = last * m
    return adv, adv + values


def ppo_policy_loss(logp, old_logp, adv, mask, clip_eps: float) -> tuple[torch.Tensor, dict]:
    """Clipped surrogate with token-level advantages (N, T)."""
    ratio = (logp - old_logp).exp()  # (N, T)
    pg = -torch.min(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv)
    return masked_mean(pg, mask), {"pg_loss": masked_mean(pg, mask).item(),
                                   "clip_frac": clip_fraction(ratio, adv, mask, clip_eps)}


def masked_whiten(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(x − mean)/sqrt(var + 1e-8) over the masked positions, with the unbiased variance (n/(n − 1)) [code: verl
    ``masked_whiten``]; zero outside the mask. With one counted position the variance is the biased one (0) [ours:
    verl raises there]."""
    mu = masked_mean(x, mask)
    n = mask.sum()
    var = masked_mean((x - mu) ** 2, mask) * (n / (n - 1) if n > 1 else 1.0)
    return (x - mu) * torch.rsqrt(var + 1e-8) * mask


def value_loss(v, old_v, returns, mask, value_clip: float) -> torch.Tensor:
    """Clipped value loss [code: verl ``compute_value_loss``]."""
    v_clip = old_v + (v - old_v).clamp(-value_clip, value_clip)
    return 0.5 * masked_mean(torch.max((v - returns) ** 2, (v_clip - returns) ** 2), mask)


# ---------------------------------------------------------------------------------------------------------------------
# plumbing: log-probs, critic, trainer loop
# ---------------------------------------------------------------------------------------------------------------------

def token_logprobs(model, input_ids, attention_mask, with_entropy: bool = False, temperature: float = 1.0):
    """Log-prob of each next token (N, T-1) and optionally its entropy (N, T-1), from the logits divided by the
    rollout ``temperature`` [code: verl's actor and reference divide before the softmax]; 0 (greedy) means 1."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()  # (N, T-1, V)
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    logsm = F.log_softmax(logits, dim=-1)
    logp = logsm.gather(-1, input_ids[:, 1:, None]).squeeze(-1)  # (N, T-1)
    ent = -(logsm.exp() * logsm).sum(-1) if with_entropy else None  # (N, T-1)
    return logp, ent


class Critic(torch.nn.Module):
    """PPO critic: a copy of the base model with a scalar value head on the last hidden state [code]."""

    def __init__(self, base):
        super().__init__()
        self.body = copy.deepcopy(base)
        self.head = torch.nn.Linear(base.config.hidden_size, 1).to(next(base.parameters()).device)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)

    def forward(self, input_ids, attention_mask):
        h = self.body(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states[-1]
        return self.head(h[:, :-1].float()).squeeze(-1)  # (N, T-1): value of the state before token t+1


def reward_fn(cfg: SearchR1Config) -> Callable[[Trajectory], float]:
    if cfg.reward == "em":
        return lambda t: em_reward(t.response_text, t.golds)
    if cfg.reward == "f1":
        return lambda t: f1_reward(t.response_text, t.golds)
    return lambda t: format_reward(t.response_text, t.golds, t.n_invalid)


def rollout_config(cfg: SearchR1Config, batch_size: int = 4096) -> RolloutConfig:
    return RolloutConfig(max_turns=cfg.max_turns, topk=cfg.topk, max_new_tokens=cfg.max_new_tokens,
                         max_obs_tokens=cfg.max_obs_tokens, batch_size=batch_size, template=cfg.template)


class SearchR1Trainer:
    """GRPO / PPO for a causal LM that searches.

    Args:
        model: the policy (any HF causal LM, optionally a PEFT model: then the reference is "adapters off").
        tokenizer: its tokenizer.
        retriever: ``search(queries, k)``.
        cfg: :class:`SearchR1Config`.
        ref_model: frozen reference; default a frozen copy of ``model`` (or adapters off for PEFT).
        log: called with each step's metrics dict.
    """

    def __init__(self, model, tokenizer, retriever, cfg: SearchR1Config, ref_model=None, log=None):
        self.model, self.tok, self.retriever, self.cfg = model, tokenizer, retriever, cfg
        self.peft = hasattr(model, "disable_adapter")
        self.ref = ref_model if ref_model is not None or self.peft else copy.deepcopy(model).eval()
        if self.ref is not None:
            self.ref.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
        self.critic = Critic(model.get_base_model() if self.peft else model) if cfg.algo == "ppo" else None
        if self.critic is not None:
            self.critic_opt = torch.optim.AdamW(self.critic.parameters(), lr=cfg.critic_lr, weight_decay=0.0)
        self.sampler = HFSampler(model, tokenizer, cfg.temperature, cfg.top_p, seed=cfg.seed)
        self.rng = random.Random(cfg.seed)
        self.reward = reward_fn(cfg)
        self.log = log or (lambda m: None)
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.history: list[dict] = []

    def _ref_logprobs(self, ids, attn):
        if self.ref is not None:
            return token_logprobs(self.ref, ids, attn, temperature=self.cfg.temperature)[0]
        with self.model.disable_adapter():
            return token_logprobs(self.model, ids, attn, temperature=self.cfg.temperature)[0]

    def sample(self, rows: Sequence[dict]) -> list[Trajectory]:
        """Rollouts for ``prompts_per_step`` questions × group size, each group keyed by the row's unique ``uid``."""
        cfg = self.cfg
        G = cfg.group_size if cfg.algo == "grpo" else 1
        picked = self.rng.sample(list(rows), min(cfg.prompts_per_step, len(rows)))
        items = [(r["uid"], r["question"], r["golds"]) for r in picked for _ in range(G)]
        self.model.eval()
        trajs = rollout(self.sampler, self.tok, self.retriever, items, rollout_config(cfg))
        for t in trajs:
            t.reward = self.reward(t)
        return trajs

    def step(self, rows: Sequence[dict]) -> dict:
        """One optimisation step: sample, score, then ``epochs × mini_batches`` updates."""
        cfg, t0 = self.cfg, time.perf_counter()
        trajs = self.sample(rows)
        t_roll = time.perf_counter() - t0
        dev = next(self.model.parameters()).device
        b = {k: v.to(dev) for k, v in batch_tensors(trajs, self.pad, use_mask=cfg.mask_info).items()}
        ids, attn, mask, resp = b["input_ids"], b["attention_mask"], b["loss_mask"], b["response_mask"]
        with torch.no_grad():
            old_logp = token_logprobs(self.model, ids, attn, temperature=cfg.temperature)[0]  # (N, T-1) recomputed
            ref_logp = self._ref_logprobs(ids, attn)  # (N, T-1)
        N = len(trajs)
        rewards = [t.reward for t in trajs]
        if cfg.algo == "grpo":
            adv = grpo_advantages(rewards, [t.uid for t in trajs]).to(dev)  # (N,)
        else:
            with torch.no_grad():
                old_v = self.critic(ids, attn)  # (N, T-1)
            info = b["loss_mask"] if cfg.mask_info else resp
            r_tok = -cfg.beta * (old_logp - ref_logp) * info  # (N, T-1) k1 KL in the reward, masked [code]
            r_tok[torch.arange(N, device=dev), b["last"]] += torch.tensor(rewards, device=dev)
            adv_tok, returns = gae(r_tok, old_v, resp, cfg.gamma, cfg.lam)  # (N, T-1)
            adv_tok = masked_whiten(adv_tok, resp)  # whitening over response tokens, unbiased variance [code]
            kl_k1 = masked_mean(old_logp - ref_logp, mask).item()  # the KL that enters the reward
        self.model.train()
        diag: dict[str, float] = {}
        for _ in range(cfg.epochs):
            order = torch.randperm(N, generator=torch.Generator().manual_seed(self.rng.randrange(2**31)))
            for mb in order.to(dev).chunk(cfg.mini_batches):
                logp, ent = token_logprobs(self.model, ids[mb], attn[mb], with_entropy=cfg.entropy_coeff > 0,
                                           temperature=cfg.temperature)
                if cfg.algo == "grpo":
                    loss, d = grpo_loss(logp, old_logp[mb], ref_logp[mb], adv[mb], mask[mb], cfg.clip_eps,
                                        cfg.beta, ent, cfg.entropy_coeff)
                else:
                    loss, d = ppo_policy_loss(logp, old_logp[mb], adv_tok[mb], mask[mb], cfg.clip_eps)
                    if ent is not None:
                        loss = loss - cfg.entropy_coeff * masked_mean(ent, mask[mb])
                    v = self.critic(ids[mb], attn[mb])
                    vl = value_loss(v, old_v[mb], returns[mb], resp[mb], cfg.value_clip)
                    self.critic_opt.zero_grad()
                    vl.backward()
                    torch.nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.grad_clip)
                    self.critic_opt.step()
                    d["value_loss"], d["kl"] = vl.item(), kl_k1
                self.opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad],
                                               cfg.grad_clip)
                self.opt.step()
                diag = {k: diag.get(k, 0.0) + v / (cfg.epochs * cfg.mini_batches) for k, v in d.items()}
        gen_tokens = sum(sum(t.info_mask) for t in trajs)
        m = {"reward": sum(rewards) / N, "searches": sum(t.n_search for t in trajs) / N,
             "turns": sum(t.n_turns for t in trajs) / N,
             "valid_action": 1 - sum(t.n_invalid for t in trajs) / max(1, sum(t.n_turns for t in trajs)),
             "coverage": gen_tokens / max(1, sum(len(t.response_ids) for t in trajs)),  # state_tokens/coverage
             "rollout_s": t_roll, "step_s": time.perf_counter() - t0, **diag}
        return m

    def train(self, rows: Sequence[dict], steps: int | None = None) -> list[dict]:
        for s in range(self.cfg.steps if steps is None else steps):
            m = {"step": len(self.history) + 1, **self.step(rows)}
            self.history.append(m)
            self.log(m)
        return self.history


def sft(model, trajs: Sequence[Trajectory], pad_id: int, epochs: int = 4, lr: float = 1e-3, batch_size: int = 64,
        seed: int = 0, mask_info: bool = True, log=None) -> list[float]:
    """Supervised format warm start: cross-entropy on the generated tokens of scripted trajectories (labelled
    'warm start' wherever reported; spec §8). Returns the mean loss per epoch.

    Kept out of :mod:`siftkit.llm.finetune` on purpose: it trains on the token ids the rollout recorded, with the
    retrieved spans inside the response masked out (``mask_info``), exactly as the RL step sees them; TRL's SFT
    re-tokenises text rows and masks only a prompt prefix (see ``docs/core/training.md``)."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for ep in range(epochs):
        # random batches: length buckets would make batches all-search or all-answer, and the first-token decision
        # would swing with the last buckets seen
        order = torch.randperm(len(trajs), generator=g).tolist()
        tot, n = 0.0, 0
        for s in range(0, len(order), batch_size):
            b = batch_tensors([trajs[i] for i in order[s:s + batch_size]], pad_id, use_mask=mask_info)
            b = {k: v.to(next(model.parameters()).device) for k, v in b.items()}
            logp, _ = token_logprobs(model, b["input_ids"], b["attention_mask"])  # (N, T-1)
            loss = -masked_mean(logp, b["loss_mask"])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            tot, n = tot + loss.item(), n + 1
        losses.append(tot / max(1, n))
        if log:
            log({"sft_epoch": ep + 1, "loss": losses[-1]})
    model.eval()
    return losses


def frozen_copy(model):
    m = copy.deepcopy(model).eval()
    m.requires_grad_(False)
    return m

