"""One config for Search-R1 training and evaluation (search_r1 spec §2 tables; defaults = upstream GRPO run)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from siftkit.search_agent.rollout import TEMPLATE
from siftkit.core.errors import InputError


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
        if self.algo not in ("grpo", "ppo"):
            raise InputError(f"algo must be grpo or ppo, got {self.algo!r}", field="SearchR1Config")
        if self.reward not in ("em", "f1", "format"):
            raise InputError(f"reward must be em, f1 or format, got {self.reward!r}", field="SearchR1Config")
        if self.group_size < 1 or self.prompts_per_step < 1 or self.steps < 0 or self.mini_batches < 1:
            raise InputError("group_size, prompts_per_step, mini_batches >= 1 and steps >= 0 required",
                             field="SearchR1Config")
        if not 0 < self.clip_eps < 1 or self.beta < 0 or self.lr <= 0:
            raise InputError("clip_eps in (0, 1), beta >= 0, lr > 0 required", field="SearchR1Config")

    def to_dict(self) -> dict:
        return asdict(self)
