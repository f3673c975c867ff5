"""Search-R1 details checked against upstream's definitions (verl ``core_algos.py`` / ``dp_actor.py`` /
``torch_functional.py``, Search-R1 ``qa_em.py``), with hand-computed values."""

import math

import pytest
import torch
import torch.nn.functional as F

from siftkit.search_agent.reward import em_reward, exact_match, extract_answer, f1_score
from siftkit.search_agent.rollout import TEMPLATE
from siftkit.search_agent.trainer import clip_fraction, grpo_loss, masked_whiten, ppo_policy_loss, token_logprobs


def test_clip_frac_counts_only_tokens_where_clipping_changes_the_loss():
    eps = 0.2
    # ρ = 1.5, A > 0: clipped, counts; ρ = 1.5, A < 0: min keeps the unclipped term, no;
    # ρ = 0.5, A < 0: counts; ρ = 0.5, A > 0: no; ρ = 1.1: inside the range, no
    logp = torch.log(torch.tensor([[1.5, 1.5, 0.5, 0.5, 1.1]]))
    old = torch.zeros(1, 5)
    adv = torch.tensor([[1.0, -1.0, -1.0, 1.0, 1.0]])
    mask = torch.ones(1, 5)
    _, d = ppo_policy_loss(logp, old, adv, mask, eps)
    assert d["clip_frac"] == pytest.approx(2 / 5)  # the |ρ − 1| > ε count would be 4/5
    # masked tokens do not count; GRPO's broadcast sequence advantage gives the same rule
    _, d = grpo_loss(logp[:, :3], old[:, :3], old[:, :3], torch.tensor([1.0]), torch.tensor([[1.0, 0.0, 1.0]]),
                     eps, 0.0)
    assert d["clip_frac"] == pytest.approx(1 / 2)  # ρ = 1.5 with A = 1 counts, ρ = 0.5 with A = 1 does not
    assert clip_fraction(torch.ones(2, 2), torch.ones(2, 2), torch.ones(2, 2), eps) == 0.0


def test_masked_whiten_uses_the_unbiased_variance():
    x = torch.tensor([[1.0, 2.0, 3.0, 99.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    out = masked_whiten(x, mask)
    sd = math.sqrt(((1 - 2) ** 2 + 0 + (3 - 2) ** 2) / 2)  # unbiased: divide by n − 1 = 2
    expected = torch.tensor([[-1 / sd, 0.0, 1 / sd, 0.0]])
    assert torch.allclose(out, expected, atol=1e-6)
    assert masked_whiten(torch.tensor([[5.0]]), torch.tensor([[1.0]])).item() == 0.0  # one position: finite


class _FixedLogits(torch.nn.Module):
    """A 'model' whose logits are a fixed (1, T, V) tensor."""

    def __init__(self, logits):
        super().__init__()
        self.l = logits

    def forward(self, input_ids, attention_mask):
        return type("Out", (), {"logits": self.l})()


def test_token_logprobs_divide_by_the_rollout_temperature():
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 6)
    ids = torch.tensor([[0, 3, 1, 5]])
    model = _FixedLogits(logits)
    for temp in (0.7, 1.0, 1.5):
        lp, ent = token_logprobs(model, ids, torch.ones_like(ids), with_entropy=True, temperature=temp)
        ref = F.log_softmax(logits[0, :-1] / temp, -1)  # (3, V)
        assert torch.allclose(lp[0], ref[torch.arange(3), ids[0, 1:]], atol=1e-6)
        assert torch.allclose(ent[0], -(ref.exp() * ref).sum(-1), atol=1e-6)
    lp1 = token_logprobs(model, ids, torch.ones_like(ids), temperature=1.0)[0]
    lp07 = token_logprobs(model, ids, torch.ones_like(ids), temperature=0.7)[0]
    assert not torch.allclose(lp1, lp07)


def test_a_bare_string_gold_is_one_alias():
    assert exact_match("Paris", "Paris") == 1.0
    assert exact_match("P", "Paris") == 0.0  # not a list of one-letter aliases
    assert exact_match("the paris!", ["Lyon", "Paris"]) == 1.0
    assert f1_score("Paris France", "Paris") == pytest.approx(2 / 3)
    assert em_reward("<answer> Paris </answer>", "paris") == 1.0


def test_template_holds_two_answer_blocks_so_the_response_alone_is_read():
    prompt = TEMPLATE.format(question="Who?")
    assert extract_answer(prompt) == "Beijing"  # upstream's ≥ 2 check passes on the prompt alone
    assert prompt.count("<answer>") == 2
    assert em_reward("<think> no idea </think>", ["Beijing"]) == 0.0  # no answer in the response: 0, not "Beijing"
