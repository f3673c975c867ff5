"""Equivalence of Search-R1's optimisation maths with an independent transcription of upstream, value and gradient.

The reference below is written for this test from Search-R1's verl fork (``verl/trainer/ppo/core_algos.py``:
``compute_policy_loss``, ``kl_penalty``, ``compute_value_loss``, ``compute_grpo_outcome_advantage``,
``compute_gae_advantage_return``; ``verl/utils/torch_functional.py``: ``masked_mean``, ``masked_var``,
``masked_whiten``, ``entropy_from_logits``; ``verl/workers/actor/dp_actor.py``: how the policy loss, entropy bonus
and KL loss are combined; ``ray_trainer.py``: ``apply_kl_penalty``; ``search_r1/llm_agent/generation.py``: the
info mask), in upstream's layout (right-padded response slices, explicit loops) and in float64, and compared with
``siftkit.search_agent`` on random inputs with padding, masked observation spans, size-1 groups, tied rewards,
on-policy ratios (ρ = 1), ratios outside the clip range on both sides, and temperature ≠ 1.

Known, intended differences (asserted where they show): a size-1 GRPO group gets ``A = r`` (upstream
``r / (1 + 1e-6)``: 1e-6 relative); ``masked_whiten`` is 0 outside the mask (upstream leaves values there,
unused); GAE bootstraps from 0 after the last response token, where Search-R1's verl (``dp_critic.compute_values``) masks the critic's values with the
attention mask shifted by one (``attention_mask[:, -R - 1:-1]``) and so keeps the value one past the last response
token (which its own value loss pulls toward 0). The GAE test gives upstream zero values on padding, the state its
critic is trained toward.
"""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
import torch

from siftkit.search_agent.rollout import Trajectory, batch_tensors
from siftkit.search_agent.trainer import (
    clip_fraction, gae, grpo_advantages, grpo_loss, low_var_kl, masked_mean, masked_whiten, ppo_policy_loss,
    token_logprobs, value_loss,
)

REL = 1e-5
D = torch.float64


# ---------------------------------------------------------------------------------------------------------------------
# the reference: upstream's definitions, transcribed with loops where upstream vectorises
# ---------------------------------------------------------------------------------------------------------------------

def ref_masked_mean(x, m):
    num, den = 0.0, 0.0
    for i in range(x.shape[0]):
        for t in range(x.shape[1]):
            num = num + x[i, t] * m[i, t]
            den = den + m[i, t]
    return num / den


def ref_masked_whiten(x, m):
    mean = ref_masked_mean(x, m)
    var = ref_masked_mean((x - mean) ** 2, m)
    n = m.sum()
    var = var * n / (n - 1)  # unbiased (Bessel), as verl's masked_var(unbiased=True)
    return (x - mean) / torch.sqrt(var + 1e-8)


def ref_policy_loss(old_logp, logp, adv, mask, clip):
    """verl compute_policy_loss: max of the two negated surrogates, token mean; clipfrac = share where clip bites."""
    ratio = torch.exp(logp - old_logp)
    l1 = -adv * ratio
    l2 = -adv * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    loss = ref_masked_mean(torch.max(l1, l2), mask)
    frac = ref_masked_mean((l2 > l1).to(D), mask)
    return loss, frac


def ref_kl(logp, ref_logp, kind):
    if kind == "kl":
        return logp - ref_logp
    d = ref_logp - logp  # low_var_kl (Schulman's k3), clamped to ±10
    return torch.clamp(torch.exp(d) - d - 1, min=-10, max=10)


def ref_entropy(logits):
    """verl entropy_from_logits: logsumexp(z) − Σ softmax(z)·z, per position."""
    p = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (p * logits).sum(-1)


def ref_value_loss(vpreds, returns, values, mask, clip):
    vclipped = torch.max(torch.min(vpreds, values + clip), values - clip)  # verl clip_by_value
    return 0.5 * ref_masked_mean(torch.max((vpreds - returns) ** 2, (vclipped - returns) ** 2), mask)


def ref_grpo_advantage(scores, index, eps=1e-6):
    groups = defaultdict(list)
    for i, u in enumerate(index):
        groups[u].append(scores[i])
    out = []
    for i, u in enumerate(index):
        g = torch.tensor(groups[u], dtype=D)
        mean, std = (torch.tensor(0.0, dtype=D), torch.tensor(1.0, dtype=D)) if len(g) == 1 else (g.mean(), g.std())
        out.append((scores[i] - mean) / (std + eps))
    return torch.stack(out)


def ref_gae(token_rewards, values, eos_mask, gamma, lam):
    """verl compute_gae_advantage_return on response slices (B, R): plain backward loop, then whitening."""
    B, R = token_rewards.shape
    adv = torch.zeros(B, R, dtype=D)
    for b in range(B):
        last = 0.0
        for t in reversed(range(R)):
            nxt = values[b, t + 1] if t < R - 1 else 0.0
            delta = token_rewards[b, t] + gamma * nxt - values[b, t]
            last = delta + gamma * lam * last
            adv[b, t] = last
    returns = adv + values
    return ref_masked_whiten(adv, eos_mask), returns


# ---------------------------------------------------------------------------------------------------------------------
# random batches with prompts of different lengths, masked observation spans and right padding
# ---------------------------------------------------------------------------------------------------------------------

def _trajs(seed: int) -> list[Trajectory]:
    """Prompts of 2–6 tokens; responses of 1–4 turns, generated spans and observation spans (masked) interleaved."""
    g = torch.Generator().manual_seed(seed)

    def ids(n):
        return torch.randint(3, 50, (n,), generator=g).tolist()

    out = []
    for i in range(6):
        prompt = ids(int(torch.randint(2, 7, (1,), generator=g)))
        t = Trajectory(uid=f"q{i // 2}", question="", golds=[], prompt=prompt)
        turns = 1 if i == 0 else int(torch.randint(1, 4, (1,), generator=g))
        for k in range(turns):
            t.segments.append((ids(int(torch.randint(1, 5, (1,), generator=g))), True))
            if k < turns - 1:
                t.segments.append((ids(int(torch.randint(2, 6, (1,), generator=g))), False))
        out.append(t)
    return out


def _slices(x: torch.Tensor, trajs, R: int) -> torch.Tensor:
    """Upstream layout: the response slice of each row of a (N, T-1) shifted tensor, right-padded with 0 to R."""
    out = torch.zeros(len(trajs), R, dtype=x.dtype)
    for i, t in enumerate(trajs):
        P, n = len(t.prompt), len(t.response_ids)
        out[i, :n] = x[i, P - 1:P - 1 + n]
    return out


# ---------------------------------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------------------------------

def test_info_mask_equals_upstreams_pad_and_sort_construction():
    """Search-R1 builds the mask by concatenating [response, observation] per turn (each batch-padded), writing the
    observation as pad ids in a copy, moving pads right with a stable sort and reading ``copy != pad``."""
    pad = 0
    trajs = _trajs(0)
    b = batch_tensors(trajs, pad_id=pad)
    b_all = batch_tensors(trajs, pad_id=pad, use_mask=False)
    R = max(len(t.response_ids) for t in trajs)
    for i, t in enumerate(trajs):
        plain, with_info = [], []
        for ids, gen in t.segments:
            batch_pad = [pad] * 2  # the per-turn batch padding that the sort moves to the right
            plain += ids + batch_pad
            with_info += (ids if gen else [pad] * len(ids)) + batch_pad
        plain_t, info_t = torch.tensor(plain), torch.tensor(with_info)
        order = (plain_t == pad).to(torch.int64).argsort(stable=True)
        resp, info = plain_t[order][:R], (info_t[order] != pad).to(torch.float)[:R]
        attn = (resp != pad).to(torch.float)
        n = len(t.response_ids)
        assert resp[:n].tolist() == t.response_ids
        P = len(t.prompt)
        assert b["loss_mask"][i, P - 1:P - 1 + n].tolist() == info[:n].tolist()
        assert b_all["loss_mask"][i, P - 1:P - 1 + n].tolist() == attn[:n].tolist()  # the no-mask ablation
        assert b["response_mask"][i, P - 1:P - 1 + n].tolist() == attn[:n].tolist()
        assert b["loss_mask"][i].sum() == info.sum() and b["response_mask"][i].sum() == attn.sum()  # nothing else
        assert int(b["last"][i]) == P - 2 + n  # the reward sits on the last response token's shifted position
        assert b["input_ids"][i, P + n - 1] == t.response_ids[-1]


@pytest.mark.parametrize("clip", [0.2, 0.05])
def test_ppo_and_grpo_policy_losses_value_gradient_and_clip_frac(clip):
    g = torch.Generator().manual_seed(1)
    N, T = 5, 9
    old = -torch.rand(N, T, generator=g, dtype=D) * 3
    logp0 = old + torch.randn(N, T, generator=g, dtype=D) * 0.4  # ratios well outside 1 ± ε on both sides
    logp0[0, :4] = old[0, :4]  # on-policy tokens: ρ = 1 exactly (the first epoch)
    mask = (torch.rand(N, T, generator=g) < 0.7).to(D)
    mask[2] = 0.0  # a row with no counted token
    adv_tok = torch.randn(N, T, generator=g, dtype=D)
    adv_seq = torch.randn(N, generator=g, dtype=D)
    adv_seq[1] = 0.0  # a group with tied rewards has zero advantage

    for adv_ours, adv_ref, fn in [
        (adv_tok, adv_tok, lambda lp: ppo_policy_loss(lp, old, adv_tok, mask, clip)),
        (adv_seq, adv_seq[:, None].expand(N, T),
         lambda lp: grpo_loss(lp, old, lp.detach(), adv_seq, mask, clip, beta=0.0)),
    ]:
        a = logp0.clone().requires_grad_(True)
        ours, diag = fn(a)
        ours.backward()
        b = logp0.clone().requires_grad_(True)
        ref, frac = ref_policy_loss(old, b, adv_ref, mask, clip)
        ref.backward()
        assert ours.item() == pytest.approx(ref.item(), rel=REL)
        assert torch.allclose(a.grad, b.grad, rtol=REL, atol=1e-12)
        assert diag["clip_frac"] == pytest.approx(frac.item(), rel=REL)
        assert 0 < frac.item() < 1  # both clipped and unclipped tokens are in the case
    assert clip_fraction(torch.ones(N, T, dtype=D), adv_tok, mask, clip) == 0.0


@pytest.mark.parametrize("temperature", [1.0, 0.7, 1.6])
def test_grpo_total_loss_equals_dp_actor_composition(temperature):
    """dp_actor: pg_loss − c_H · masked_mean(H) + β · masked_mean(low_var_kl), every term on the info mask; logits
    divided by the rollout temperature before the log-softmax and the entropy."""
    g = torch.Generator().manual_seed(2)
    N, T, V = 4, 7, 11
    logits0 = torch.randn(N, T, V, generator=g, dtype=D) * 2
    ids = torch.randint(0, V, (N, T), generator=g)
    old = (torch.log_softmax(logits0[:, :-1] / temperature, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
           + torch.randn(N, T - 1, generator=g, dtype=D) * 0.3)
    refp = old + torch.randn(N, T - 1, generator=g, dtype=D) * 0.5
    refp[0, 0] = old[0, 0] + 40.0  # an extreme reference: k3 hits the +10 clamp
    adv = torch.tensor([1.5, -0.5, 0.0, 0.8], dtype=D)
    mask = (torch.rand(N, T - 1, generator=g) < 0.75).to(D)
    mask[0, 0] = 1.0
    beta, c_h, clip = 0.01, 0.003, 0.2

    class Fixed(torch.nn.Module):
        def __init__(self, z):
            super().__init__()
            self.z = z

        def forward(self, input_ids, attention_mask):
            return type("Out", (), {"logits": self.z})()

    z1 = logits0.clone().requires_grad_(True)
    logp, ent = token_logprobs(Fixed(z1), ids, torch.ones_like(ids), with_entropy=True, temperature=temperature)
    ours, diag = grpo_loss(logp, old.float(), refp.float(), adv.float(), mask.float(), clip, beta, ent, c_h)
    ours.backward()

    z2 = logits0.clone().requires_grad_(True)
    scaled = z2[:, :-1] / temperature  # (N, T-1, V)
    lp_ref = torch.stack([torch.stack([torch.log_softmax(scaled[i, t], -1)[ids[i, t + 1]] for t in range(T - 1)])
                          for i in range(N)])  # (N, T-1), one position at a time
    pg, _ = ref_policy_loss(old, lp_ref, adv[:, None].expand(N, T - 1), mask, clip)
    ent_ref = ref_masked_mean(ref_entropy(scaled), mask)
    kl_ref = ref_masked_mean(ref_kl(lp_ref, refp, "low_var_kl"), mask)
    ref = pg - c_h * ent_ref + beta * kl_ref
    ref.backward()
    assert ours.item() == pytest.approx(ref.item(), rel=REL)
    assert diag["kl"] == pytest.approx(kl_ref.item(), rel=REL)
    assert torch.allclose(z1.grad, z2.grad, rtol=1e-4, atol=1e-7)  # token_logprobs runs in float32
    # the clamp is active at [0, 0]: k3 there is exactly 10 and passes no gradient through the KL term
    assert low_var_kl(lp_ref[:1, :1].detach().float(), refp[:1, :1].float()).item() == 10.0


def test_low_var_kl_and_k1_value_and_gradient():
    g = torch.Generator().manual_seed(3)
    lp0 = -torch.rand(3, 8, generator=g, dtype=D) * 4
    ref = lp0 + torch.randn(3, 8, generator=g, dtype=D) * 2
    ref[0, :2] = lp0[0, :2]  # equal log-probs: 0 and a zero gradient
    ref[1, 0], ref[1, 1] = lp0[1, 0] + 30.0, lp0[1, 1] - 30.0  # far apart: the +10 clamp (above); below stays finite
    a, b = lp0.clone().requires_grad_(True), lp0.clone().requires_grad_(True)
    low_var_kl(a, ref).sum().backward()
    ref_kl(b, ref, "low_var_kl").sum().backward()
    assert torch.allclose(low_var_kl(lp0, ref), ref_kl(lp0, ref, "low_var_kl"), rtol=REL, atol=1e-12)
    assert torch.allclose(a.grad, b.grad, rtol=REL, atol=1e-12)
    assert low_var_kl(lp0, ref)[0, :2].tolist() == [0.0, 0.0] and a.grad[0, :2].tolist() == [0.0, 0.0]


def test_value_loss_value_and_gradient():
    g = torch.Generator().manual_seed(4)
    N, T = 4, 10
    old_v = torch.randn(N, T, generator=g, dtype=D)
    v0 = old_v + torch.randn(N, T, generator=g, dtype=D)  # many moves beyond ±0.5, both directions
    returns = torch.randn(N, T, generator=g, dtype=D)
    mask = (torch.rand(N, T, generator=g) < 0.8).to(D)
    for clip in (0.5, 0.2):
        a, b = v0.clone().requires_grad_(True), v0.clone().requires_grad_(True)
        ours = value_loss(a, old_v, returns, mask, clip)
        ref = ref_value_loss(b, returns, old_v, mask, clip)
        ours.backward()
        ref.backward()
        assert ours.item() == pytest.approx(ref.item(), rel=REL)
        assert torch.allclose(a.grad, b.grad, rtol=REL, atol=1e-12)


def test_grpo_advantages_equal_upstream_with_ties_and_size_one_groups():
    rewards = [1.0, 0.0, 1.0, 1.0, 1.0, 0.5, 0.0, 0.25, 0.75, 0.0, 1.0]
    uids = ["a", "a", "b", "b", "b", "c", "d", "d", "d", "e", "a"]  # b tied; c and e size 1; a unordered
    ours = grpo_advantages(rewards, uids)
    ref = ref_grpo_advantage(torch.tensor(rewards, dtype=D), uids)
    multi = torch.tensor([uids.count(u) > 1 for u in uids])
    assert torch.allclose(ours[multi].double(), ref[multi], rtol=REL, atol=1e-6)
    assert ours[[2, 3, 4]].tolist() == [0.0, 0.0, 0.0]
    # size-1 groups: upstream divides by (1 + 1e-6); ours is A = r (spec §2) — equal to 1e-6 relative
    assert torch.allclose(ours[~multi].double(), ref[~multi], rtol=2e-6, atol=0)
    assert ours[5].item() == 0.5 and ours[9].item() == 0.0


@pytest.mark.parametrize("gamma, lam", [(1.0, 1.0), (0.9, 0.8)])
def test_gae_whitening_and_kl_in_reward_equal_upstream(gamma, lam):
    """The PPO advantage path of the trainer, in our layout (prompt+response, shifted, masks), against upstream's
    (response slices): k1 KL in the reward on the info mask, EM on the last response token, GAE over the response
    (values zero on padding, as the critic's masked values), whitening over the response mask."""
    trajs = _trajs(5)
    b = batch_tensors(trajs, pad_id=0)
    N, T1 = b["loss_mask"].shape
    g = torch.Generator().manual_seed(6)
    old_logp = -torch.rand(N, T1, generator=g, dtype=D) * 3
    ref_logp = old_logp + torch.randn(N, T1, generator=g, dtype=D) * 0.5
    values = torch.randn(N, T1, generator=g, dtype=D)
    em = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0], dtype=D)
    beta = 0.05
    info, resp = b["loss_mask"].to(D), b["response_mask"].to(D)

    # ours: the same composition as SearchR1Trainer.step (algo="ppo")
    r_tok = -beta * (old_logp - ref_logp) * info
    r_tok[torch.arange(N), b["last"]] += em
    adv, returns = gae(r_tok, values, resp, gamma, lam)
    adv = masked_whiten(adv, resp)

    # upstream, on response slices
    R = max(len(t.response_ids) for t in trajs)
    s_info, s_resp = _slices(info, trajs, R), _slices(resp, trajs, R)
    scores = torch.zeros(N, R, dtype=D)
    for i, t in enumerate(trajs):
        scores[i, len(t.response_ids) - 1] = em[i]
    kld = ref_kl(_slices(old_logp, trajs, R), _slices(ref_logp, trajs, R), "kl") * s_info
    token_rewards = scores - beta * kld
    s_values = _slices(values, trajs, R) * s_resp
    ref_adv, ref_ret = ref_gae(token_rewards, s_values, s_resp, gamma, lam)

    assert torch.allclose(_slices(r_tok, trajs, R), token_rewards, rtol=REL, atol=1e-12)
    on = s_resp.bool()
    assert torch.allclose(_slices(adv, trajs, R)[on], ref_adv[on], rtol=REL, atol=1e-9)
    assert torch.allclose(_slices(returns, trajs, R)[on], ref_ret[on], rtol=REL, atol=1e-9)
    assert (adv * (1 - resp)).abs().max() == 0  # nothing outside the response


def test_masked_whiten_and_masked_mean_equal_upstream_inside_the_mask():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(5, 6, generator=g, dtype=D) * 3 + 1
    m = (torch.rand(5, 6, generator=g) < 0.5).to(D)
    m[0, :2] = 1.0
    assert masked_mean(x, m).item() == pytest.approx(ref_masked_mean(x, m).item(), rel=REL)
    on = m.bool()
    assert torch.allclose(masked_whiten(x, m)[on], ref_masked_whiten(x, m)[on], rtol=REL, atol=1e-12)
    # with the unbiased variance the whitened values have sample std 1 and mean 0 on the mask
    w = masked_whiten(x, m)[on]
    assert w.mean().item() == pytest.approx(0.0, abs=1e-12) and w.std().item() == pytest.approx(1.0, rel=1e-6)
    assert not math.isnan(masked_mean(x, torch.zeros_like(m)).item())  # an all-masked batch stays finite [ours]


def test_sft_warm_start_loss_is_the_nll_of_generated_tokens_only():
    """The warm-start loss (``-masked_mean(token_logprobs, loss_mask)``, as in ``trainer.sft``) on a padded batch
    equals a per-trajectory loop over generated tokens only, value and gradient (a bigram model, so padding can't
    leak through attention)."""
    trajs = _trajs(8)
    V = 50
    w0 = torch.randn(V, V, generator=torch.Generator().manual_seed(9), dtype=D)

    class Bigram(torch.nn.Module):
        def __init__(self, w):
            super().__init__()
            self.w = w

        def forward(self, input_ids, attention_mask):
            return type("Out", (), {"logits": self.w[input_ids]})()

    w1 = w0.clone().requires_grad_(True)
    b = batch_tensors(trajs, pad_id=0)
    logp, _ = token_logprobs(Bigram(w1), b["input_ids"], b["attention_mask"])
    ours = -masked_mean(logp, b["loss_mask"])
    ours.backward()

    w2 = w0.clone().requires_grad_(True)
    total, count = 0.0, 0
    for t in trajs:
        seq = t.prompt + t.response_ids
        gen = [0] * len(t.prompt) + t.info_mask
        for j in range(1, len(seq)):
            if gen[j]:
                total = total - torch.log_softmax(w2[seq[j - 1]], -1)[seq[j]]
                count += 1
    ref = total / count
    ref.backward()
    assert ours.item() == pytest.approx(ref.item(), rel=REL)
    assert torch.allclose(w1.grad, w2.grad, rtol=1e-4, atol=1e-8)  # token_logprobs computes in float32


# ---------------------------------------------------------------------------------------------------------------------
# the trainer's wiring: one real step of SearchR1Trainer against the reference on the step's own rollouts
# (``state_tokens/coverage`` as upstream's ``_create_loss_mask``: Σ info mask / Σ response mask over the batch)
# ---------------------------------------------------------------------------------------------------------------------

def _ref_scores(model, t, temperature):
    """Per response token of one unpadded trajectory: log π(y_t) and entropy H_t from logits / temperature."""
    seq = torch.tensor([t.prompt + t.response_ids])
    P, R = len(t.prompt), len(t.response_ids)
    z = model(input_ids=seq, attention_mask=torch.ones_like(seq)).logits[0, P - 1:P - 1 + R].double() / temperature
    lp = torch.log_softmax(z, -1)[torch.arange(R), seq[0, P:P + R]]  # (R,)
    return lp, ref_entropy(z)


def _pad(rows, R):
    """Stack per-trajectory (R_i,) tensors into the upstream (N, R) layout, zero-padded on the right."""
    out = torch.zeros(len(rows), R, dtype=D)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def _one_step(small_task, algo, **kw):
    """Run one SearchR1Trainer step with a reference policy different from the policy, capturing the step's
    rollouts and the gradients the optimisers would apply (no update is made; clipping is off)."""
    from siftkit.search_agent.config import SearchR1Config
    from siftkit.search_agent.synthetic import SHORT_TEMPLATE, tiny_policy
    from siftkit.search_agent.trainer import SearchR1Trainer

    task, tok, bm25 = small_task
    model, ref_model = tiny_policy(len(tok), seed=3), tiny_policy(len(tok), seed=4)
    cfg = SearchR1Config(algo=algo, max_turns=2, topk=1, max_new_tokens=6, prompts_per_step=4, group_size=3, steps=1,
                         epochs=1, mini_batches=1, grad_clip=1e9, template=SHORT_TEMPLATE, **kw)
    tr = SearchR1Trainer(model, tok, bm25, cfg, ref_model=ref_model)
    tr.reward = lambda t: float(len(t.response_ids) % 3) / 2  # varied rewards, so advantages are not all 0
    got: dict = {}
    sample = tr.sample
    tr.sample = lambda rows: got.setdefault("trajs", sample(rows))
    tr.opt.step = lambda: got.setdefault("grads", [p.grad.clone() for p in model.parameters()])
    if tr.critic is not None:
        with torch.no_grad():  # a critic that does not predict 0 everywhere (its head starts at zero)
            tr.critic.head.weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(5))
            tr.critic.head.bias.fill_(0.1)
        tr.critic_opt.step = lambda: got.setdefault("critic_grads", [p.grad.clone() for p in tr.critic.parameters()])
    got["history"] = tr.train(task.train)
    return tr, model, ref_model, cfg, got


def _assert_grads(ours, params):
    for a, p in zip(ours, params):
        b = p.grad if p.grad is not None else torch.zeros_like(p)
        assert (a.double() - b.double()).norm() <= 1e-4 * b.double().norm() + 1e-9
    assert sum(float(p.grad.abs().sum()) for p in params if p.grad is not None) > 0


def _rescore(model, ref_model, trajs, temperature):
    """Our transcription's per-token log-probs (with grad), entropies and reference log-probs of the rollouts, padded
    to the longest response, and the info mask."""
    R = max(len(t.response_ids) for t in trajs)
    model.zero_grad()
    lp, ent = zip(*(_ref_scores(model, t, temperature) for t in trajs))
    with torch.no_grad():
        ref_lp = [_ref_scores(ref_model, t, temperature)[0] for t in trajs]
    info = _pad([torch.tensor(t.info_mask, dtype=D) for t in trajs], R)
    return R, _pad(lp, R), _pad(ent, R), _pad(ref_lp, R), info


def test_grpo_step_gradient_equals_upstream_on_its_own_rollouts(small_task):
    tr, model, ref_model, cfg, got = _one_step(small_task, "grpo", beta=0.05, entropy_coeff=0.01, temperature=0.8)
    trajs = got["trajs"]
    assert len({t.uid for t in trajs}) == 4 and len({t.reward for t in trajs}) > 1
    assert any(0 in t.info_mask for t in trajs)  # observation / invalid-action spans are in the batch
    R, lp, ent, ref_lp, info = _rescore(model, ref_model, trajs, cfg.temperature)
    adv = ref_grpo_advantage(torch.tensor([t.reward for t in trajs], dtype=D), [t.uid for t in trajs])
    pg, frac = ref_policy_loss(lp.detach(), lp, adv[:, None].expand_as(lp), info, cfg.clip_eps)
    kl = ref_masked_mean(ref_kl(lp, ref_lp, "low_var_kl"), info)
    loss = pg - cfg.entropy_coeff * ref_masked_mean(ent, info) + cfg.beta * kl
    loss.backward()
    h = got["history"][0]
    assert h["pg_loss"] == pytest.approx(pg.item(), rel=1e-4, abs=1e-6)
    assert h["kl"] == pytest.approx(kl.item(), rel=1e-4) and kl.item() > 0
    assert h["clip_frac"] == frac.item() == 0.0  # the first update is on-policy: ρ = 1
    assert h["coverage"] == pytest.approx((info.sum() / sum(len(t.response_ids) for t in trajs)).item(), rel=1e-12)
    _assert_grads(got["grads"], list(model.parameters()))


def test_ppo_step_gradients_equal_upstream_on_its_own_rollouts(small_task):
    tr, model, ref_model, cfg, got = _one_step(small_task, "ppo", beta=0.05, entropy_coeff=0.01, temperature=1.0,
                                               value_clip=0.5)
    trajs = got["trajs"]
    R, lp, ent, ref_lp, info = _rescore(model, ref_model, trajs, cfg.temperature)
    resp = _pad([torch.ones(len(t.response_ids), dtype=D) for t in trajs], R)
    # critic values of the state before each response token, one unpadded trajectory at a time
    tr.critic.zero_grad()
    vpreds = []
    for t in trajs:
        seq = torch.tensor([t.prompt + t.response_ids])
        P, n = len(t.prompt), len(t.response_ids)
        vpreds.append(tr.critic(seq, torch.ones_like(seq))[0, P - 1:P - 1 + n].double())
    vpreds = _pad(vpreds, R)
    values = vpreds.detach()
    scores = _pad([torch.tensor([0.0] * (len(t.response_ids) - 1) + [t.reward], dtype=D) for t in trajs], R)
    token_rewards = scores - cfg.beta * ref_kl(lp.detach(), ref_lp, "kl") * info  # apply_kl_penalty, info mask
    adv, returns = ref_gae(token_rewards, values, resp, cfg.gamma, cfg.lam)
    pg, _ = ref_policy_loss(lp.detach(), lp, adv, info, cfg.clip_eps)
    (pg - cfg.entropy_coeff * ref_masked_mean(ent, info)).backward()
    vl = ref_value_loss(vpreds, returns, values, resp, cfg.value_clip)
    vl.backward()
    h = got["history"][0]
    assert h["value_loss"] == pytest.approx(vl.item(), rel=1e-4) and vl.item() > 0
    assert h["pg_loss"] == pytest.approx(pg.item(), rel=1e-4, abs=1e-6)
    _assert_grads(got["grads"], list(model.parameters()))
    _assert_grads(got["critic_grads"], list(tr.critic.parameters()))
