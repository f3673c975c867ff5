"""``LrefConfig``: every setting of the LREF pipeline, grouped by stage, with its source.

Defaults are the CPU-scale run of spec §7 (SmolLM2-135M, LoRA, tens of steps); the paper's own values are given in
each docstring so a GPU user can restore them (see ``docs/lref.md``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from siftkit.core.validate import check_choice, check_choices, check_range


@dataclass
class LrefConfig:
    """Settings of the three LREF stages.

    References:
        Tang et al. "LREF: A Novel LLM-based Relevance Framework for E-commerce Search", WWW 2025.
        https://arxiv.org/abs/2503.09223
    """

    # > Parameters that control the model
    base_model: str = "smollm2"
    """``"smollm2"`` (embedded SmolLM2-135M-Instruct), a local HF folder or a ``.gguf`` [ours]; paper: LLaMA-2-7B."""
    device: str = "auto"
    """Where the judge runs: ``cpu``, ``cuda`` or ``auto`` (cuda when available) [ours]."""
    lora_r: int = 16
    """LoRA rank [ours]; the paper fine-tunes all weights, which is out of reach on CPU."""
    lora_alpha: int = 32
    """LoRA scaling numerator [ours]."""
    lr: float = 5e-4
    """AdamW learning rate [ours, for LoRA]; paper: 2e-5 full fine-tuning."""
    batch_size: int = 8
    """Per-step batch [ours]; paper: 16."""
    warmup_ratio: float = 0.2
    """Share of steps with linear warm-up [paper]."""
    max_length: int = 256
    """Token limit of prompt + completion [ours]; paper: 500."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (TRL's default is on) [ours: off; a 135M model fits, and on CPU
    it costs about 20% per step]. Turn it on for 7B-scale models on small GPUs."""
    judge_autocast: bool = False
    """Run every judging pass under bf16 autocast, the precision the Trainer trains in (its ``bf16`` default) [ours]:
    evaluation, Stage-1 predictions (so the kept set) and DPO pair mining (so the pairs). About 2× faster on CPUs
    with AMX/AVX-512-BF16; grades may differ from fp32 on near-ties. Local models only (see
    ``pipeline.judge_precision``)."""

    # > Stage 1: data selection
    stage1_steps: int = 40
    """Optimiser steps for each of IM, CI and MS [ours, spec §7: a few hundred at most]."""
    sft_steps: int = 40
    """Optimiser steps of the main label-only SFT (on all data or on the kept set) [ours]; paper: 8 epochs."""
    ms_rule: str = "neq"
    """Keep rule for the Mislabeled Supervisor: ``neq`` keeps MS(x) != L(x), ``eq`` keeps MS(x) = L(x) [ours, §2]."""
    use_im: bool = True
    """Require IM(x) != L(x) (hard samples) [paper]."""
    use_ci: bool = True
    """Require CI(x) = L(x) (learnable samples) [paper]."""
    use_ms: bool = True
    """Apply the MS condition [paper]."""
    im_sample: int = 400
    """Size of IM's exposure-weighted random sample [ours]."""
    ci_sample: int = 400
    """Size of CI's head/torso/tail balanced sample [ours]."""

    # > Stage 2: Multi-CoT
    cot_order: tuple[str, ...] = ("EE", "RA", "DR")
    """Rationale formats trained in sequence, each continuing the last [paper]."""
    cot_steps: int = 20
    """Optimiser steps per CoT format [ours]."""
    teacher: str = "rules"
    """``rules`` (scripted rationales from the pair's facts) or ``llm`` (a ChatModel through siftkit.llm) [ours]."""

    # > Stage 3: DPO
    beta: float = 0.1
    """DPO temperature β [ours: TRL default]."""
    rpo_alpha: float = 0.65
    """Weight of the NLL term on chosen completions, TRL ``loss_type=["sigmoid", "sft"]`` [2nd: "DPO α = 0.65"]."""
    dpo_steps: int = 15
    """DPO optimiser steps [ours]; paper: 2 epochs."""
    dpo_lr: float | None = None
    """DPO learning rate; ``None`` uses ``lr`` [ours]. DPO from an SFT'd checkpoint usually takes a smaller rate than
    SFT (TRL's DPOConfig default is 1e-6 for full fine-tuning, against 2e-5 for SFT). On SmolLM2 no rate from 1e-3 to
    1e-6 avoids the benchmark's collapse (``docs/lref.md``, the DPO learning-rate sweep)."""
    dpo_batch_size: int = 4
    """Preference pairs per DPO step [ours]."""
    dpo_scan: int = 160
    """Training samples ranked by the Stage-2 model to look for pairs [ours]."""
    max_pairs: int = 200
    """At most this many preference pairs [spec §7]."""
    beam_k: int = 3
    """The gold grade must sit within the top ``beam_k`` of the ranking [ours; paper: in the beam]."""
    dpo_cot: bool = True
    """Chosen and rejected include the rationale [ours; unknown in the paper]."""
    pair_source: str = "ranking"
    """``ranking`` (label-score ranking) or ``beam`` (``num_beams`` generation) [ours]."""
    dpo_errors: str = "all"
    """Which wrong samples give pairs: ``all`` (every wrong top-1, the spec's rule) or ``over`` (top-1 above gold
    only, aimed at the optimistic bias) [ours]. See ``docs/lref.md`` (the DPO diagnostic) for what each does to
    SmolLM2."""

    # > Evaluation
    cot_max_new_tokens: int = 32
    """Rationale length limit when a CoT model is decoded [ours]."""
    seed: int = 0
    """Seed of data sampling, LoRA init and data order."""
    threads: int = 1
    """torch threads (the CLI and benchmark set them; the library never does)."""
    extra: dict = field(default_factory=dict)
    """Free-form notes carried into run metadata."""

    def __post_init__(self):
        check_choice(self.ms_rule, ("neq", "eq"), "ms_rule")
        check_choice(self.teacher, ("rules", "llm"), "teacher")
        check_choice(self.pair_source, ("ranking", "beam"), "pair_source")
        check_choice(self.dpo_errors, ("all", "over"), "dpo_errors")
        check_choices(self.cot_order, ("EE", "RA", "DR"), "cot_order", allow_empty=True)
        check_range(self.beta, "beta", lo=0, lo_open=True)
        check_range(self.rpo_alpha, "rpo_alpha", lo=0)
        check_range(self.lr, "lr", lo=0, lo_open=True)
        if self.dpo_lr is not None:
            check_range(self.dpo_lr, "dpo_lr", lo=0, lo_open=True)
        check_range(self.warmup_ratio, "warmup_ratio", lo=0, hi=1, hi_open=True)
        check_range(self.beam_k, "beam_k", lo=2)  # the gold grade must be below the wrong top-1
        for name in ("stage1_steps", "sft_steps", "cot_steps", "dpo_steps", "dpo_scan"):
            check_range(getattr(self, name), name, lo=0)
        for name in ("max_length", "batch_size", "dpo_batch_size"):
            check_range(getattr(self, name), name, lo=1)
        self.cot_order = tuple(self.cot_order)

    def to_dict(self) -> dict:
        return asdict(self)
