"""Settings of LLM usefulness labelling (Dewan, Liu, Shah, SIGIR 2025, arXiv 2503.08965)."""

from __future__ import annotations

from dataclasses import dataclass, field

from siftkit.core.errors import InputError

MODES = ("baseline", "session")
GROUPS = ("task", "query", "document", "behaviour")
FEATURE_SETS = {  # preset -> attribute kinds shown besides the always-on content (spec §2 feature-group ablation)
    "all": ("relevance", "satisfaction", "behaviour"),
    "relevance": ("relevance",),
    "satisfaction": ("satisfaction",),
    "behaviour": ("behaviour",),
    "relevance+satisfaction": ("relevance", "satisfaction"),
    "content": (),
}
READOUTS = ("generate", "logprob")


@dataclass(frozen=True)
class UsefulnessConfig:
    """How prompts are built, how labels are read and how outputs are parsed.

    Defaults reproduce the paper's headline setting: session prompt, all features, greedy generation.
    """

    # > prompt
    mode: str = "session"
    """``baseline`` (one clicked document per call, "DNA + CoT") or ``session`` (one task session per call,
    nested user → task → queries → clicked URLs, "DNA + CoT + personalisation") [code]."""
    features: str = "all"
    """Ablation preset: which attribute kinds join the always-on content (task description, query text and
    position, URL, title, summary, rank): ``all``, ``relevance``, ``satisfaction``, ``behaviour``,
    ``relevance+satisfaction``, or ``content`` (none) [paper ablation; ``content`` is ours]."""
    groups: tuple[str, ...] = GROUPS
    """Feature groups switched on: ``task`` (description, satisfaction, dwell), ``query`` (text, position,
    satisfaction, dwell), ``document`` (URL, title, summary, rank, relevance), ``behaviour`` (URL dwell, average
    dwells, CTR, total queries, max clicks) [code]."""
    satisfaction_range: str = "1 (low) to 5 (high)"
    """Glossary range of task/query satisfaction (THUIR 1–5; QRef 0–4) [code]."""
    max_prompt_tokens: int = 6000
    """Session prompts longer than this are split into consecutive parts by query (then by click) [ours]."""
    neutralise: bool = True
    """Pass every string of the data through :func:`siftkit.llm.untrusted.neutralise` (role markers, tags and chat
    control tokens defused; clean text unchanged) [ours; measured in benchmarks/results/security.md]."""
    cut: bool = True
    """Cut every string of the data at its first forged boundary (:func:`siftkit.llm.untrusted.cut`: a chat control
    token, a role marker opening a sentence, a closing tag of a block the string did not open), before
    ``neutralise``; clean text unchanged [ours; on by default because it lowers the injection figures of
    benchmarks/results/security.md without changing a clean label, and it changes none of the THUIR fields]."""
    sandwich: bool = False
    """Restate the task after the data block, so the last words before the answer are ours, not the data's
    ("sandwich defence") [ours; measured in benchmarks/results/security.md]."""
    datamark: bool = False
    """Spotlighting (Hines et al. 2024): every whitespace run in the data's strings becomes ``^`` and the data block's
    tags carry a suffix hashed from the data (``<data-3f9a1c2e>``), both explained in the instructions
    [paper: datamarking; the hashed delimiter is ours; measured in benchmarks/results/security.md]."""

    # > decoding
    readout: str = "generate"
    """``generate``: greedy JSON output, parsed; ``logprob``: the label with the highest log-probability given
    the JSON prefix, via ``ChatModel.score`` (always valid; used for the small local model) [ours]."""
    temperature: float = 0.0
    """Paper: 0 [code]."""
    top_p: float = 1.0
    """Paper: 1 [code]."""
    tokens_per_id: int = 12
    """Output budget per id (``max_new_tokens = 16 + tokens_per_id * ids``) [ours]."""
    max_retries: int = 2
    """Retries of a truncated output, each doubling the token budget [code: retry on truncated JSON]."""

    # > parsing
    clamp: bool = False
    """Clamp out-of-range scores into 0–3 instead of recording them as invalid (reported separately) [ours]."""
    extra: dict = field(default_factory=dict, compare=False)
    """Free-form notes carried into run metadata."""

    def __post_init__(self):
        if self.mode not in MODES:
            raise InputError(f"mode must be one of {MODES}, not {self.mode!r}", field="mode")
        if self.features not in FEATURE_SETS:
            raise InputError(f"features must be one of {tuple(FEATURE_SETS)}, not {self.features!r}", field="features")
        object.__setattr__(self, "groups", tuple(self.groups))
        bad = [g for g in self.groups if g not in GROUPS]
        if bad or not self.groups:
            raise InputError(f"groups must be a non-empty subset of {GROUPS}, got {self.groups}", field="groups")
        if self.readout not in READOUTS:
            raise InputError(f"readout must be one of {READOUTS}, not {self.readout!r}", field="readout")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise InputError("temperature must be >= 0 and top_p in (0, 1]", field="temperature")
        if self.max_prompt_tokens < 256 or self.tokens_per_id < 2 or self.max_retries < 0:
            raise InputError("max_prompt_tokens >= 256, tokens_per_id >= 2 and max_retries >= 0 are required",
                             field="max_prompt_tokens")
