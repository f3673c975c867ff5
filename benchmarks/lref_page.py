"""The LREF results page (benchmarks/results/lref.md) from the stored cells of both profiles.

Tables are built here from the cells; every sentence with a number in it is in ``benchmarks/templates/lref.md``
(the page) or ``lref_profile.md`` (one profile's section), filled with values from the cells and the config.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.cells import CELLS, load_cells
from benchmarks.claims import claims_section
from benchmarks.lref import AUX, EXTRA, METRICS, data, wands_dir
from benchmarks.runner import flag, mean_sd, md_table

TEMPLATES = Path(__file__).resolve().parent / "templates"
CONDITIONS = ["zero-shot", "sft-all", "sft-selected", "+multi-cot", "+dpo"]
def _runs(cells: list[dict], part: str) -> list[dict]:
    """Per seed, its finished cell's metrics, else its partial cell's saved steps; ``_flag`` marks unverified ones."""
    by_seed: dict[int, dict] = {}
    for c in sorted(cells, key=lambda c: "state" not in c):  # finished cells win over partial ones
        if c["params"]["part"] == part and c["params"]["seed"] not in by_seed:
            m = c["metrics"] if "metrics" in c else {k: v for s in c["state"].values() for k, v in s.items()}
            seed = c["params"]["seed"]
            by_seed[seed] = {**m, "_flag": flag(c), "_partial": "state" in c, "_seed": seed}
    return [by_seed[s] for s in sorted(by_seed)]


def _zero(cells: list[dict]) -> dict | None:
    return next(({**c["metrics"], "_flag": flag(c)} for c in cells if c["params"]["part"] == "zero-shot"
                 and "metrics" in c), None)


def _col(runs: list[dict], key: str) -> str:
    return mean_sd([r.get(key) for r in runs])


def _conditions(runs: list[dict], zero: dict | None, name: str, conds: list[str]) -> str:
    """One test set's table: a row per condition (mean ± std over the seeds that have it), n = its test pairs."""
    from siftkit.relevance.diagnostics import grades_used

    cols, rows, n = METRICS + EXTRA[name], [], None
    for cond in conds:
        pre = f"{name}/" if cond == "zero-shot" else f"{cond}/{name}/"
        have = [r for r in (([zero] if zero else []) if cond == "zero-shot" else runs) if f"{pre}n" in r]
        if have:
            n = n or have[0][f"{pre}n"]
            rows.append([cond, f"{len(have)}{''.join(sorted({r['_flag'] for r in have}))}"]
                        + [_col(have, pre + m) for m in cols] + [[grades_used(r[pre + "confusion"]) for r in have]])
    if not rows:
        return "_(no cells)_"
    return md_table(["condition", "seeds", *cols, "grades predicted"], rows) + f"\n\nn = {n} pairs."


def _stage1(runs: list[dict], pool: list[dict]) -> dict:
    """The selection table, the keep-rule ablation and the auxiliary models' accuracy over the seeds' Stage 1."""
    from siftkit.relevance.diagnostics import aux_accuracy, keep_rule_ablation

    sel = [r for r in runs if "selection/kept" in r]
    keys = ["n", "kept", "kept_share", "noise_rate", "kept_noise_rate", "drop_precision", "drop_recall",
            "keep_precision", "keep_recall", "kept_share_head", "kept_share_torso", "kept_share_tail", "im_agreement",
            "ci_agreement", "ms_agreement"]
    pids = [x["pid"] for x in pool]  # predictions are re-filtered only against the pool they were made on
    preds = [{n: r[f"stage1/{n}"] for n in AUX} for r in runs if r.get("stage1/pool_pids") == pids
             and all(f"stage1/{n}" in r for n in AUX)]
    abl, acc = [keep_rule_ablation(pool, p) for p in preds], [aux_accuracy(pool, p) for p in preds]
    cols = ["kept", "kept_noise_rate", "drop_precision", "drop_recall", "keep_recall"]
    return {"n_selection": len(sel), "selection": md_table(keys, [[_col(sel, f"selection/{k}") for k in keys]]),
            "kept": [int(r["selection/kept"]) for r in sel], "pool": len(pool),
            "ablation": md_table(["terms", *cols], [[t] + [mean_sd([a[t][c] for a in abl]) for c in cols]
                                                  for t in (abl[0] if abl else [])]),
            "aux_accuracy": "; ".join(f"{n.upper()} {mean_sd([a[n][0] for a in acc])} (clean grade "
                                      f"{mean_sd([a[n][1] for a in acc])})" for n in AUX)}


def _conds(runs: list[dict]) -> list[str]:
    return CONDITIONS + sorted({k.split("/")[0] for r in runs for k in r if k.startswith("+dpo@lr=")})


def _totals(sizes: dict) -> tuple[int, int | str]:
    """(held-out synthetic pairs, deduplicated WANDS test pairs or "–" without ../shared) the samples come from."""
    from siftkit.relevance.data import load_wands_binary, synthetic_pairs

    held = len(synthetic_pairs(sizes["n_pairs"], sizes["n_queries"], sizes["noise_rate"], sizes["heldout"],
                               seed=sizes["data_seed"])["test"])
    folder = wands_dir()
    return held, f"{len(load_wands_binary(folder, 'test', dedup=True)):,}" if folder else "–"


def _profile(cfg, cells: list[dict]) -> str:
    """One profile's section: condition tables, Stage 1, the keep-rule ablation, the setup."""
    from siftkit.relevance.config import LrefConfig

    runs, lc = _runs(cells, "chain"), LrefConfig(**cfg.lref)
    zero = _zero(cells)
    held, n_wands = _totals(cfg.sizes)
    return (TEMPLATES / "lref_profile.md").read_text().format(
        syn=_conditions(runs, zero, "syn", _conds(runs)), wands=_conditions(runs, zero, "wands", _conds(runs)),
        **_stage1(runs, data(cfg.sizes)[0]), **{k: v for k, v in cfg.sizes.items() if k != "pool"},
        **{k: getattr(lc, k) for k in ("lora_r", "lr", "batch_size", "warmup_ratio", "stage1_steps", "im_sample",
                                       "ci_sample", "sft_steps", "cot_steps", "dpo_steps", "dpo_batch_size", "beta",
                                       "rpo_alpha")},
        cot_order="→".join(lc.cot_order), dpo_lr=lc.dpo_lr or lc.lr,
        judge_autocast="yes" if lc.judge_autocast else "no",
        pairs=[r["+dpo/pairs"] for r in runs if "+dpo/pairs" in r], n_heldout=held, n_wands=n_wands,
        empty=[r["selection/seed"] for r in runs if r.get("selection/empty")],
        unfinished=[r["_seed"] for r in runs if r["_partial"]]).strip()


def _sweep(runs: list[dict], prefix: str) -> dict:
    """A DPO learning-rate sweep: a row per rate (and the start model), the pairs per seed, the stored settings."""
    from siftkit.relevance.diagnostics import grades_used

    cols = [("syn", "macro_f1"), ("syn", "accuracy"), ("syn", "over_recall_err"), ("syn", "over_recall_pred"),
            ("wands", "macro_f1"), ("wands", "fpr")]
    keys = sorted({k.split("/")[0] for r in runs for k in r if k.startswith("lr=")}, key=lambda k: -float(k[3:]))
    rows = []
    for label, key in [("none (sft-all)", "start")] + [(k[3:], k) for k in keys]:
        have = [r for r in runs if f"{key}/syn/macro_f1" in r]
        if have:
            rows.append([label, f"{len(have)}{''.join(sorted({r['_flag'] for r in have}))}"]
                        + [_col(have, f"{key}/{a}/{m}") for a, m in cols]
                        + [[grades_used(r[f"{key}/syn/confusion"]) for r in have]])
    table = md_table(["DPO lr", "seeds", *[f"{a} {m}" for a, m in cols], "syn grades predicted"], rows)
    pairs = md_table(["seed", "pairs", "chosen grades", "rejected grades"],
                   [[r["_seed"], r.get("pairs", 0), r.get("pairs_chosen"), r.get("pairs_rejected")] for r in runs])
    stored = runs[0].get("cfg", {}) if runs else {}
    return {prefix: table if rows else "_(no cells)_", f"{prefix}_pairs": "\n\n" + pairs,
            **{f"{prefix}_{k}": stored.get(k) for k in ("sft_steps", "dpo_steps", "dpo_batch_size", "beta",
                                                         "rpo_alpha", "dpo_scan")}}


def _diag(cfg, runs: list[dict]) -> dict:
    """The DPO diagnostic's tables: scores per pair set, what δ explains, DPO against start + δ and DPO − δ."""
    from siftkit.relevance.lref import GRADES

    names = [n for n in ("all", "over", "clean") if any(f"{n}/macro_f1" in r for r in runs)]
    head = ["macro_f1", "accuracy", "over_recall_err", "over_recall_pred", "recall_marginal", "precision_significant"]

    def each(prefix: str, key: str) -> list:  # counts: one value per seed
        return [r[f"{prefix}/{key}"] for r in runs if f"{prefix}/{key}" in r]

    a = [["none (sft-all)", len(runs), "", "", "", ""] + [_col(runs, f"start/{k}") for k in head]
         + [each("start", "grades")]]
    a += [[n, sum(f"{n}/macro_f1" in r for r in runs)] + [each(n, k) for k in ("pairs", "steps", "pairs_noisy",
                                                                              "pairs_over")]
          + [_col(runs, f"{n}/{k}") for k in head] + [each(n, "grades")] for n in names]
    b = [[n] + [_col(runs, f"{n}/{k}") for k in ("explained", "same_sign", "top1_agree", "fixed", "d_chosen",
                                                 "d_rejected")]
         + [mean_sd([r[f"{n}/delta"][g] for r in runs if f"{n}/delta" in r]) for g in GRADES] for n in names]
    c = [[n] + [_col(runs, f"{p}/{k}") for k in ("macro_f1", "over_recall_err") for p in (n, f"{n}/shift",
                                                                                         f"{n}/corrected")]
         + [each(f"{n}/corrected", "grades")] for n in names]
    stored = runs[0].get("cfg", {}) if runs else {}
    return {"diag_seeds": [r["_seed"] for r in runs], "diag_epochs": (cfg.dpodiag or {}).get("epochs"),
            **{f"diag_{k}": stored.get(k) for k in ("sft_steps", "dpo_batch_size", "dpo_lr", "beta", "rpo_alpha")},
            "diag_scores": md_table(["pair set", "seeds", "pairs", "DPO steps", "on noisy labels", "over-estimated",
                                   *head, "grades predicted"], a),
            "diag_shift": md_table(["pair set", "share of the change that is δ", "same sign as δ",
                                  "top-1 of start + δ = DPO's", "train pairs fixed", "Δ log p chosen",
                                  "Δ log p rejected", *[f"δ {g}" for g in GRADES]], b),
            "diag_corrected": md_table(["pair set", "DPO macro_f1", "start + δ macro_f1", "DPO − δ macro_f1",
                                      "DPO over_recall_err", "start + δ over_recall_err",
                                      "DPO − δ over_recall_err",
                                      "DPO − δ grades"], c)}


def _steps(cfg, cells: list[dict]) -> dict:
    from siftkit.relevance.config import LrefConfig
    from siftkit.relevance.diagnostics import grades_used

    rows, fp32 = [], []
    for c in (c for c in cells if c["params"]["part"] == "steps" and "metrics" in c):
        p, m = c["params"], c["metrics"]
        fp32 += [] if "judge_autocast" in m else [p["steps"]]
        epochs = p["steps"] * LrefConfig(**cfg.lref).batch_size / cfg.sizes["pool"]
        rows.append([p["steps"], f"{p['seed']}{flag(c)}", f"{epochs:.1f}",
                     f"{m['train_loss']:.3f}", f"{m['syn/macro_f1']:.3f}", f"{m['syn/accuracy']:.3f}",
                     grades_used(m["syn/confusion"]), mean_sd([m.get("wands/macro_f1")]),
                     mean_sd([m.get("wands/accuracy")]), f"{m['train_s']:.0f}"])
    return {"steps": md_table(["steps", "seed", "epochs", "train loss", "syn macro_f1", "syn accuracy",
                             "syn grades predicted", "wands macro_f1", "wands accuracy", "train s"], rows),
            "steps_fp32": fp32, "sft_steps": cfg.lref.get("sft_steps"), "seeds": cfg.seeds}


def _stage1_budget(cfg, cells: list[dict]) -> dict:
    """The selected-data chain with longer IM/CI/MS (part ``stage1``), sft-all taken from the same seed's chain."""
    main = {r["_seed"]: r for r in _runs(cells, "chain")}
    runs = [{**{k: v for k, v in main.get(r["_seed"], {}).items() if k.startswith("sft-all/")}, **r}
            for r in _runs(cells, "stage1")]
    zero = _zero(cells)
    s1 = _stage1(runs, data(cfg.sizes)[0])
    return {"s1_steps": (cfg.stage1 or {}).get("stage1_steps"), "s1_seeds": [r["_seed"] for r in runs],
            "s1_syn": _conditions(runs, zero, "syn", CONDITIONS),
            "s1_wands": _conditions(runs, zero, "wands", CONDITIONS), **{f"s1_{k}": v for k, v in s1.items()},
            "s1_pairs": [int(r["+dpo/pairs"]) for r in runs if "+dpo/pairs" in r],
            "s1_grades": ", ".join(f"{n.upper()} {[len(set(r[f'stage1/{n}'])) for r in runs if f'stage1/{n}' in r]}"
                                   for n in AUX)}


def load_profile_cells(profile: str) -> tuple:
    """(config, finished and partial cells) of one profile, each cell with ``status`` (stale ones kept, flagged)."""
    from benchmarks.lref import BENCHMARK

    cfg = BENCHMARK.load_config(profile)
    exp = BENCHMARK.experiment_for(cfg, CELLS)
    partials = [r | {"status": exp.check(r)[0]} for r in load_cells(f"{cfg.experiment}/_partial", CELLS)]
    return cfg, exp.load(allow_stale=True) + partials


def _claims_loader(profiles: dict[str, list[dict]]):
    """Cells for the claims engine by experiment name; a partial cell (``<experiment>/_partial``) reads as its saved
    steps."""
    def load(name: str) -> list[dict]:
        exp, _, sub = name.partition("/")
        return [c if "metrics" in c else {**c, "metrics": {k: v for s in c["state"].values() for k, v in s.items()}}
                for c in profiles.get(exp, []) if ("state" in c) == (sub == "_partial")]

    return load


def render(cfg, cells: list[dict]) -> str:
    """The page body: both profiles (the one rendered from ``cells`` and the other read here)."""
    parts = {p: load_profile_cells(p) for p in ("cpu", "gpu")}
    cpu_cfg, cpu = parts["cpu"]
    gpu_cfg, gpu = parts["gpu"]
    devices = sorted({c["metrics"]["device"] for c in gpu if "device" in c.get("metrics", {})})
    return (TEMPLATES / "lref.md").read_text().format(
        claims=claims_section("lref", load=_claims_loader({cpu_cfg.experiment: cpu, gpu_cfg.experiment: gpu})),
        gpu=_profile(gpu_cfg, gpu),
        gpu_devices=", ".join(devices) or "name not recorded",
        cpu=_profile(cpu_cfg, cpu), pool=cpu_cfg.sizes["pool"], **_steps(cpu_cfg, cpu), **_stage1_budget(cpu_cfg, cpu),
        **_sweep(_runs(cpu, "dpolr"), "dpolr"), **_sweep(_runs(cpu, "dpolr_long"), "dpolr_long"),
        **_diag(cpu_cfg, _runs(cpu, "dpodiag"))).strip()
