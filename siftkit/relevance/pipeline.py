"""The LREF stages end to end: Stage 1 selection, main SFT, Stage 2 Multi-CoT, Stage 3 DPO, and evaluation.

Each function takes the config, the records and an explicit seed, and returns plain values (models, lists, dicts);
the CLI, the quickstart step and ``benchmarks/lref.py`` compose them.
"""

from __future__ import annotations

import contextlib
import random
import time
import warnings
from typing import Callable, Sequence

from siftkit.core.errors import InputError
from siftkit.relevance import lref
from siftkit.relevance.config import LrefConfig
from siftkit.relevance.data import balanced_sample, exposure_sample
from siftkit.relevance.lref import GRADES, SCALES
from siftkit.relevance.metrics import relevance_report
from siftkit.relevance.train import dpo, prompt_text, sft, sft_rows

Log = Callable[[str], None]


def _nolog(msg: str) -> None:
    pass


# ---------------------------------------------------------------------------------------------------------------------
# plumbing: models
# ---------------------------------------------------------------------------------------------------------------------

def load_base(cfg: LrefConfig, batch_size: int = 16):
    """A fresh copy of the base model as a LocalChatModel (every auxiliary and main model starts from it)."""
    import torch

    from siftkit.llm.local import LocalChatModel

    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    return LocalChatModel.from_pretrained(cfg.base_model, device=device, batch_size=batch_size)


def wrap(model, tokenizer, name: str, batch_size: int = 16):
    from siftkit.llm.local import LocalChatModel

    return LocalChatModel(model, tokenizer, name, batch_size=batch_size)


# ---------------------------------------------------------------------------------------------------------------------
# judging and evaluation
# ---------------------------------------------------------------------------------------------------------------------

def judge_precision(llm, cfg: LrefConfig):
    """The context every judging pass runs in: bf16 autocast on the model's device when ``cfg.judge_autocast``.

    Judging passes are evaluation, Stage-1 predictions (the keep rule) and DPO pair mining (ranking or beam), so
    the flag changes the selected data and the pairs as well as the scores. Only a local model (one with a torch
    ``device``) can be autocast; for any other (an endpoint, a cache wrapper) the flag warns and does nothing.
    """
    if not cfg.judge_autocast:
        return contextlib.nullcontext()
    device = getattr(llm, "device", None)
    if device is None:
        warnings.warn(f"judge_autocast has no effect on {type(llm).__name__} (no torch device); judging as is",
                      stacklevel=3)
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16)


def predict(llm, records: Sequence[dict], cot: bool = False, cfg: LrefConfig | None = None) -> tuple[list, list, list]:
    """Five-grade predictions (label scoring, after a decoded rationale when ``cot``), in :func:`judge_precision`."""
    cfg = cfg or LrefConfig()
    with judge_precision(llm, cfg):
        return lref.judge(llm, [(x["query"], x["title"]) for x in records], cot=cot, grades=GRADES,
                          max_new_tokens=cfg.cot_max_new_tokens)


def evaluate(llm, records: Sequence[dict], scale: str = "five", cot: bool = False, cfg: LrefConfig | None = None,
             gold_key: str = "gold") -> dict:
    """Judge ``records`` and score the predictions on ``scale`` (five-grade predictions mapped onto it).

    ``gold_key`` names the reference field (``gold`` = clean synthetic grade; falls back to ``label``).
    """
    preds, _, rationales = predict(llm, records, cot, cfg)
    sc = SCALES[scale]
    y = [x.get(gold_key) or x["label"] for x in records]
    y = [sc.from_five.get(g, g) if g not in sc.labels else g for g in y]  # five-grade references map onto scale
    rep = relevance_report(y, sc.map(preds), sc.labels)
    rep["example_rationale"] = rationales[0] if rationales else ""
    return rep


# ---------------------------------------------------------------------------------------------------------------------
# Stage 1: data selection
# ---------------------------------------------------------------------------------------------------------------------

def train_label_model(cfg: LrefConfig, records: Sequence[dict], steps: int, seed: int, label_key: str = "label"):
    """Label-only SFT of a fresh base model on ``records`` (IM, CI, MS and the main SFT all use this)."""
    base = load_base(cfg)
    model, log = sft(base.model, base.tokenizer, sft_rows(base.tokenizer, records, label_key), steps, cfg, seed)
    return wrap(model, base.tokenizer, "lref-sft"), log


def stage1_select(cfg: LrefConfig, train: Sequence[dict], pool: Sequence[dict], seed: int,
                  log: Log = _nolog) -> dict:
    """Train IM, CI and MS from the base model, run them on ``pool`` and apply the keep rule.

    * IM: SFT on an exposure-weighted sample of ``train`` (mostly head traffic).
    * CI: SFT on a head/torso/tail balanced sample.
    * MS: SFT on the balanced sample with targets label′ = :func:`~siftkit.relevance.lref.ms_target` (label).

    Returns:
        ``{"kept": [bool per pool row], "im", "ci", "ms": predictions, "stats": selection statistics, "seconds"}``.
    """
    t0 = time.perf_counter()
    preds = {name: stage1_model(cfg, name, train, pool, seed, log) for name in ("im", "ci", "ms")}
    kept, stats = stage1_keep(cfg, pool, preds)
    return {"kept": kept, **preds, "stats": stats, "seconds": time.perf_counter() - t0}


def stage1_model(cfg: LrefConfig, name: str, train: Sequence[dict], pool: Sequence[dict], seed: int,
                 log: Log = _nolog) -> list[str]:
    """Train one auxiliary model (``im``, ``ci`` or ``ms``) and return its grades for ``pool``."""
    if not {"im": cfg.use_im, "ci": cfg.use_ci, "ms": cfg.use_ms}[name]:
        return [x["label"] for x in pool]  # a switched-off term: its prediction never decides
    if name == "im":
        rows, key = exposure_sample(list(train), cfg.im_sample, seed), "label"
    else:
        rows, key = balanced_sample(list(train), cfg.ci_sample, seed), "label"
        if name == "ms":
            rows, key = [x | {"ms_label": lref.ms_target(x["label"])} for x in rows], "ms_label"
    llm, _ = train_label_model(cfg, rows, cfg.stage1_steps, seed, key)
    preds = predict(llm, pool, cfg=cfg)[0]
    log(f"stage1 {name}: trained on {len(rows)}, agreement with pool labels "
        f"{sum(a == x['label'] for a, x in zip(preds, pool)) / len(pool):.3f}")
    return preds


def stage1_keep(cfg: LrefConfig, pool: Sequence[dict], preds: dict[str, list[str]]) -> tuple[list[bool], dict]:
    """Apply the keep rule to the auxiliary predictions; returns (kept flags, selection statistics)."""
    kept = [lref.keep(x["label"], im, ci, ms, cfg.ms_rule, cfg.use_im, cfg.use_ci, cfg.use_ms)
            for x, im, ci, ms in zip(pool, preds["im"], preds["ci"], preds["ms"])]
    stats = lref.selection_stats(kept, [bool(x.get("noisy", False)) for x in pool],
                                 [x.get("stratum", "all") for x in pool])
    for name, p in preds.items():
        stats[f"{name}_agreement"] = sum(a == x["label"] for a, x in zip(p, pool)) / len(pool)
    return kept, stats


# ---------------------------------------------------------------------------------------------------------------------
# Stage 2: Multi-CoT
# ---------------------------------------------------------------------------------------------------------------------

def cot_rows(cfg: LrefConfig, tokenizer, records: Sequence[dict], fmt: str, seed: int, teacher=None) -> list[dict]:
    """SFT rows for one CoT format: the teacher writes a rationale given the gold (observed) label."""
    r = random.Random(seed)
    wrongs = [lref.wrong_decision(x["label"], r) for x in records] if fmt == "DR" else None
    if teacher is None:
        rats = [lref.rule_rationale(fmt, x["query"], x["title"], x["label"], x.get("facts"),
                                    wrongs[i] if wrongs else None) for i, x in enumerate(records)]
    else:
        rats = lref.llm_rationales(teacher, fmt, [(x["query"], x["title"], x["label"], wrongs[i] if wrongs else None)
                                                  for i, x in enumerate(records)])
    return sft_rows(tokenizer, records, rationales=rats, rules=fmt == "RA", wrongs=wrongs)


def stage2_multicot(cfg: LrefConfig, llm, records: Sequence[dict], seed: int, teacher=None, log: Log = _nolog):
    """EE → RA → DR SFT in order, each continuing from the previous checkpoint [paper].

    Rationales come from ``teacher`` (any ChatModel; wrap it in ``CachedChatModel``) when given, else from the
    rule-based teacher. ``cfg.teacher == "llm"`` without a ``teacher`` is an error, not a silent fall-back.
    """
    if cfg.teacher == "llm" and teacher is None:
        raise InputError('teacher="llm" needs a teacher ChatModel (siftkit.llm.factory.make_chat_model)',
                         field="teacher")
    model, tok = llm.model, llm.tokenizer
    for k, fmt in enumerate(cfg.cot_order):
        rows = cot_rows(cfg, tok, records, fmt, seed + k, teacher)
        model, hist = sft(model, tok, rows, cfg.cot_steps, cfg, seed + k)
        log(f"stage2 {fmt}: {len(rows)} rows, loss {hist[-1].get('train_loss', float('nan')):.3f}")
    return wrap(model, tok, "lref-multicot")


# ---------------------------------------------------------------------------------------------------------------------
# Stage 3: DPO
# ---------------------------------------------------------------------------------------------------------------------

def beam_outputs(llm, prompts: Sequence[list], k: int, max_new_tokens: int) -> list[list[tuple[str, str | None]]]:
    """``num_beams = k`` generation with k returned sequences, parsed to (text, grade) [optional source]."""
    import torch

    out = []
    tok = llm.tokenizer
    for msgs in prompts:
        ids = tok(prompt_text(tok, msgs), return_tensors="pt", add_special_tokens=False).to(llm.device)
        with torch.no_grad():
            gen = llm.model.generate(**ids, num_beams=k, num_return_sequences=k, max_new_tokens=max_new_tokens,
                                     do_sample=False, pad_token_id=tok.pad_token_id or tok.eos_token_id)
        texts = tok.batch_decode(gen[:, ids["input_ids"].shape[1]:], skip_special_tokens=True)  # (k,) strings
        out.append([(t.strip(), lref.parse_label(t)) for t in texts])
    return out


def stage3_pairs(cfg: LrefConfig, llm, records: Sequence[dict], seed: int) -> list[dict]:
    """Preference pairs from the Stage-2 model on ``cfg.dpo_scan`` training samples (spec §2 Stage 3)."""
    r = random.Random(seed)
    scan = r.sample(list(records), min(cfg.dpo_scan, len(records)))
    prompts = [lref.judge_prompt(x["query"], x["title"]) for x in scan]
    if cfg.pair_source == "beam":
        with judge_precision(llm, cfg):
            beams = beam_outputs(llm, prompts, cfg.beam_k, cfg.cot_max_new_tokens + 8)
    else:
        _, lp, rats = predict(llm, scan, cot=cfg.dpo_cot, cfg=cfg)  # dpo_cot=False: label-only ranking
        beams = [[(lref.completion(g, rat), g) for g in lref.ranked(x)]
                 for x, rat in zip(lp, rats)]
    texts = [prompt_text(llm.tokenizer, p) for p in prompts]
    return lref.dpo_pairs(texts, beams, [x["label"] for x in scan], cfg.beam_k, cfg.dpo_errors)[:cfg.max_pairs]


def stage3_dpo(cfg: LrefConfig, llm, records: Sequence[dict], seed: int, log: Log = _nolog):
    """Build pairs and run DPO (β, RPO α from ``cfg``); returns (model, number of pairs)."""
    pairs = stage3_pairs(cfg, llm, records, seed)
    log(f"stage3: {len(pairs)} preference pairs from {min(cfg.dpo_scan, len(records))} scanned samples")
    if not pairs:
        return llm, 0
    model, hist = dpo(llm.model, llm.tokenizer, pairs, cfg.dpo_steps, cfg, seed)
    log(f"stage3: DPO loss {hist[-1].get('train_loss', float('nan')):.3f}")
    return wrap(model, llm.tokenizer, "lref-dpo"), len(pairs)
