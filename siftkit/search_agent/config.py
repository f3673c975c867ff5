"""One config for Search-R1 training and evaluation (search_r1 spec §2 tables; defaults = upstream GRPO run)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from siftkit.search_agent.rollout import TEMPLATE
from siftkit.core.validate import check_choice, check_range


@dataclass
class SearchR1Config:
    """Search-R1 settings. Defaults reproduce upstream's GRPO scripts unless marked [ours].

    > Rollout
    Attributes:
        max_turns: search turns before the final no-search turn [paper: B = 4].
        topk: passages per search [code: 3].
        max_new_tokens: new tokens per turn [code: 500].
        max_obs_tokens: observation tokens kept [code: 500].
        temperature: sampling temperature in training [code v0.2: 1.0]; evaluation is greedy [code].
        top_p: nucleus mass [code v0.2: 1.0].
        template: the user message [code: Search-R1's template].

    > Optimisation
        algo: "grpo" or "ppo".
        group_size: GRPO samples per prompt [code: 5]; PPO uses 1.
        prompts_per_step: distinct questions per step [code: 512 PPO / 512 GRPO prompts].
        steps: optimisation steps [code: 1,005; paper: 500].
        lr: actor learning rate [code: 1e-6].
        critic_lr: PPO critic learning rate [code: 1e-5].
        clip_eps: ratio clip ε [code: 0.2].
        value_clip: PPO value clip [code: 0.5].
        beta: KL coefficient [code: 0.001]; GRPO: low-variance KL (k3, clamped ±10) in the loss; PPO: k1 in the
            reward. Set explicitly (recent TRL defaults it to 0).
        entropy_coeff: entropy bonus [code: 0.001, not in the paper].
        gamma, lam: PPO GAE [code: γ = λ = 1].
        epochs, mini_batches: passes and mini-batches over each step's rollouts [ours: 1 × 2 at CPU scale].
        grad_clip: gradient-norm clip [code: 1.0].
        mask_info: mask observation tokens out of the loss (paper Eqs. 2–3); False = the no-masking ablation.
        reward: "em" [code], "f1" or "format" (options).
        seed: RNG seed.
    """

    # rollout
    max_turns: int = 4
    topk: int = 3
    max_new_tokens: int = 500
    max_obs_tokens: int = 500
    temperature: float = 1.0
    top_p: float = 1.0
    template: str = TEMPLATE
    # optimisation
    algo: str = "grpo"
    group_size: int = 5
    prompts_per_step: int = 512
    steps: int = 1005
    lr: float = 1e-6
    critic_lr: float = 1e-5
    clip_eps: float = 0.2
    value_clip: float = 0.5
    beta: float = 0.001
    entropy_coeff: float = 0.001
    gamma: float = 1.0
    lam: float = 1.0
    epochs: int = 1
    mini_batches: int = 2
    grad_clip: float = 1.0
    mask_info: bool = True
    reward: str = "em"
    seed: int = 0

    def __post_init__(self):
        check_choice(self.algo, ("grpo", "ppo"), "algo")
        check_choice(self.reward, ("em", "f1", "format"), "reward")
        for name in ("group_size", "prompts_per_step", "mini_batches"):
            check_range(getattr(self, name), name, lo=1)
        check_range(self.steps, "steps", lo=0)
        check_range(self.clip_eps, "clip_eps", lo=0, hi=1, lo_open=True, hi_open=True)
        check_range(self.beta, "beta", lo=0)
        check_range(self.lr, "lr", lo=0, lo_open=True)

    def to_dict(self) -> dict:
        return asdict(self)
