"""AVVA curation on the synthetic audio-visual world, the SmolLM2 judge, and the end-to-end smoke run on real clips.

    nice python -m benchmarks run avva --profile cpu        # the cells (resumable, one per condition and seed)
    python -m benchmarks page avva --profile cpu            # benchmarks/results/avva.md from the stored cells

Three cell experiments (settings: benchmarks/config/avva.yaml; prose: benchmarks/templates/avva.md):

* ``avva_synth``, one cell per (rho, subset, retained fraction, seed): a training pool of ``n_train`` synthetic clips
  with a share rho of misaligned pairs, captioned by the describers run on the signals and scored by the model-free
  proxy judge; the subset (curated by the judge / random / all / embedding-similarity filter) trains the dual encoder,
  evaluated on a clean test set with the K x N protocol. The threshold sweep is the curated and random subsets at
  every retained fraction of ``fractions`` (rho 0.3).
* ``avva_judge``: SmolLM2-135M-Instruct as the judge of the first ``n_llm`` clips of the rho 0.3 pool: the
  next-token reading (reply prefix ``Score: ``, grades 0-9), the earlier reading (no prefix, grades 0-10, the first
  token only), and the generated JSON (reply prefix) on ``n_agree`` of them; ROC-AUC with bootstrap intervals over
  clips, and the agreement of the two kinds of judge.
* ``avva_real``: the real-clip smoke run: 8 audio clips of ../shared/data/avva (read in place), each with its
  matching and one mismatched image, captioned by Whisper tiny.en + the signal describers, judged by SmolLM2.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import ClassVar

import numpy as np

from benchmarks.runner import BenchConfig, Benchmark, Part, flag

TEMPLATE = Path(__file__).resolve().parent / "templates" / "avva.md"
METRICS = tuple(f"{d}@{k}" for d in ("a2v", "v2a") for k in (1, 3, 10))


class AvvaBench(BenchConfig):
    """Settings of the AVVA benchmark (defaults: the page's run)."""

    cell_fields: ClassVar[tuple[str, ...]] = ("llm_pool", "llm_fractions", "real_epochs")

    n_train: int = 1000
    """synthetic training pool per (rho, seed)."""
    n_test: int = 300
    """clean synthetic test clips (seed 10000)."""
    k: int = 100
    """K: retrieval draws per evaluation [paper: 100]."""
    n: int = 100
    """N: clips per draw [paper: 100]."""
    fraction: float = 0.7
    """the retained fraction of the main comparison [spec §7: keep about 70%]."""
    fractions: list[float] = [0.4, 0.55, 0.7, 0.85]
    """retained fractions of the threshold sweep (rho 0.3; 1.0 is the ``all`` subset)."""
    rhos: list[float] = [0.3, 0.5]
    """shares of misaligned pairs in the pool."""
    seeds: list[int] = [0, 1, 2]
    """seeds: the pool, the subset draw, the training and the K draws."""
    epochs: int = 6
    train_batch: int = 64
    lr: float = 1e-3
    hidden: int = 64
    """aligner MLP hidden size [paper: 1024]."""
    dim: int = 32
    """embedding size [paper: 768]."""
    heads: int = 4
    """cross-attention heads [paper: 8]."""
    judge: str = "smollm2"
    """the LLM judge (a siftkit.llm.factory model name)."""
    engine: str = "ct2"
    """its local engine (ct2 or torch)."""
    n_llm: int = 200
    """clips the LLM judges (the first of the rho 0.3, seed 0 pool)."""
    n_agree: int = 40
    """of them, clips also judged by the generated JSON."""
    n_resamples: int = 2000
    """bootstrap resamples of the judge cell's intervals (over clips)."""
    llm_pool: int = 400
    """``avva_llm``: the first clips of each (rho, seed) pool that the LLM judge scores for the end-to-end curation
    (5 forward passes per clip: about 1 s per clip on one shared core, so not the whole ``n_train`` pool)."""
    llm_fractions: list[float] = [0.4, 0.55, 0.85]
    """``avva_llm``: retained fractions of the LLM-judged threshold sweep (rho 0.3), beside ``fraction``."""
    real_epochs: int = 60
    """``avva_real``: training epochs of the heads on the 16 real pairs (a few optimiser steps each)."""


def train_config(cfg: AvvaBench):
    from siftkit.curation.pipeline import TrainConfig

    return TrainConfig(epochs=cfg.epochs, batch_size=cfg.train_batch, lr=cfg.lr, hidden=cfg.hidden, dim=cfg.dim,
                       heads=cfg.heads)


@functools.lru_cache(maxsize=4)
def _train_set(n: int, rho: float, seed: int):
    from siftkit.curation.synthetic import generate

    return generate(n, rho, seed)


@functools.lru_cache(maxsize=1)
def _test_set(n: int):
    from siftkit.curation.synthetic import generate

    return generate(n, 0.0, 10_000)


def grid(cfg: AvvaBench) -> list[dict]:
    """(rho, subset, fraction, seed) cells: all / curated / random at every rho; at rho 0.3 the sweep over
    ``fractions`` for curated and random and the similarity filter at ``fraction``."""
    cells = []
    for rho in cfg.rhos:
        for seed in cfg.seeds:
            cells.append({"rho": rho, "subset": "all", "fraction": 1.0, "seed": seed})
            fracs = cfg.fractions if rho == 0.3 else [cfg.fraction]
            cells += [{"rho": rho, "subset": s, "fraction": f, "seed": seed} for f in fracs
                      for s in ("curated", "random")]
            if rho == 0.3:
                cells.append({"rho": rho, "subset": "similarity", "fraction": cfg.fraction, "seed": seed})
    return cells


def cell(cfg: AvvaBench, params: dict) -> dict:
    """Keep the subset, train the heads, evaluate K x N on the clean test set."""
    import torch

    from siftkit.curation.pipeline import proxy_scores, run
    from siftkit.metrics import roc_auc

    torch.set_num_threads(cfg.threads)
    s = _train_set(cfg.n_train, params["rho"], params["seed"])
    scores = proxy_scores(s)
    out = run(s, _test_set(cfg.n_test), params["subset"], params["fraction"], params["seed"], train_config(cfg),
              k=cfg.k, n=cfg.n, scores=scores)
    out.update(s.describer_error())
    out["judge_auc"] = roc_auc(s.aligned.astype(int), scores)
    return out


@functools.cache
def _llm(judge: str, engine: str, threads: int, batch_size: int, cache: str):
    from siftkit.llm.factory import make_chat_model

    return make_chat_model(judge, engine=engine, cache=cache, threads=threads, batch_size=batch_size)


def _cache() -> Path:
    from siftkit.core.paths import cache_dir

    return cache_dir("cache") / "avva.sqlite"


def _auc_ci(y: np.ndarray, f: np.ndarray, n_resamples: int) -> dict:
    """ROC-AUC minus chance (0.5) with a percentile bootstrap interval over clips."""
    from siftkit.metrics import roc_auc
    from siftkit.metrics.stats import bootstrap_ci

    ci = bootstrap_ci((y, f), lambda a, b: roc_auc(a, b) - 0.5, n_resamples=n_resamples)
    return {"": ci.estimate, "_lo": ci.low, "_hi": ci.high}


def judge_cell(cfg: AvvaBench, params: dict) -> dict:
    """SmolLM2's readings of the first ``n_llm`` clips of the rho 0.3 pool (seed 0): next-token (the focused prompt
    with the reply prefix; the same with all five criteria listed; the earlier reading) and generated JSON; ROC-AUC at telling misaligned from aligned pairs, with intervals; per-clip finals stored."""
    import json

    from siftkit.curation.judge import score_expected, score_generated
    from siftkit.metrics import roc_auc, spearman_rho
    from siftkit.metrics.stats import bootstrap_ci

    cache = _cache()
    model = _llm(cfg.judge, cfg.engine, cfg.threads, cfg.batch_size, str(cache))
    s = _train_set(cfg.n_train, 0.3, 0).subset(np.arange(cfg.n_llm))
    pairs = list(zip(s.audio_caption, s.video_caption))
    y = s.aligned.astype(int)
    new = score_expected(lambda: model, pairs, cache, progress=False)
    listed = score_expected(lambda: model, pairs, cache, focused=False)  # all five criteria in the system message
    old = score_expected(lambda: model, pairs, cache, scale=10, reply_prefix=False, focused=False)
    gen = score_generated(lambda: model, pairs[:cfg.n_agree], cache)
    f_new, f_listed, f_old = (np.nan_to_num([x.final for x in r], nan=0.0) for r in (new, listed, old))
    f_gen = np.array([g.final for g in gen])
    ok = ~np.isnan(f_gen)
    mass = {name: float(np.mean([np.mean(list(json.loads(x.raw).values())) for x in r]))
            for name, r in (("new", new), ("listed", listed), ("old", old))}
    out = {"clips": cfg.n_llm, "misaligned": int((1 - y).sum()), "n": cfg.n_llm}
    for name, f in (("new", f_new), ("listed", f_listed), ("old", f_old)):
        for suf, v in _auc_ci(y, f, cfg.n_resamples).items():
            out[f"auc_over_chance_{name}{suf}"] = v
        out[f"auc_{name}"] = roc_auc(y, f)
        out[f"mean_{name}"], out[f"std_{name}"] = float(np.mean(f)), float(np.std(f))
        out[f"grade_mass_{name}"] = mass[name]
    d = bootstrap_ci((y, f_new, f_old), lambda a, b, c: roc_auc(a, b) - roc_auc(a, c), n_resamples=cfg.n_resamples)
    out.update({"auc_gain": d.estimate, "auc_gain_lo": d.low, "auc_gain_hi": d.high})
    out.update({"generated_clips": cfg.n_agree, "generated_parsed_share": float(ok.mean()),
                "generated_all_keys_share": float(np.mean([not g.missing for g in gen])),
                "generated_auc": roc_auc(y[:cfg.n_agree][ok], f_gen[ok]) if 0 < y[:cfg.n_agree][ok].sum() < ok.sum()
                else float("nan"),
                "agreement_spearman": spearman_rho(f_new[:cfg.n_agree][ok], f_gen[ok]) if ok.sum() > 2
                else float("nan"),
                "final_new": [round(float(x), 4) for x in f_new], "final_old": [round(float(x), 4) for x in f_old],
                "final_generated": [None if np.isnan(x) else round(float(x), 4) for x in f_gen],
                "aligned": y.tolist(), "example_raw": gen[0].raw[:300] if gen else ""})
    return out


LLM_SUBSETS = ("llm", "random", "all", "curated", "similarity")


def llm_grid(cfg: AvvaBench) -> list[dict]:
    """``avva_llm`` cells, in the order they run: per (rho, seed) the LLM-curated subset first (it pays for the
    judge; the response cache serves the rest), then random, all, proxy-curated and the similarity filter on the
    same pool; the LLM-judged threshold sweep (rho 0.3) right after the rho 0.3 pools, before the other rhos."""
    def pools(rho):
        return [{"rho": rho, "subset": sub, "fraction": 1.0 if sub == "all" else cfg.fraction, "seed": seed}
                for seed in cfg.seeds for sub in LLM_SUBSETS]

    sweep = [{"rho": 0.3, "subset": "llm", "fraction": f, "seed": seed} for seed in cfg.seeds
             for f in cfg.llm_fractions]
    return [c for rho in cfg.rhos for c in pools(rho) + (sweep if rho == 0.3 else [])]


def _llm_pool(cfg: AvvaBench, rho: float, seed: int):
    """The first ``llm_pool`` clips of the (rho, seed) training pool (the judge cell's 200 clips are the first of the
    rho 0.3, seed 0 one)."""
    return _train_set(cfg.n_train, rho, seed).subset(np.arange(cfg.llm_pool))


def _llm_finals(cfg: AvvaBench, s) -> tuple[np.ndarray, float]:
    """SmolLM2's next-token judge (focused prompt, reply prefix, grades 0-9) on every clip of ``s``: the final
    scores (NaN where no criterion had a grade token) and the mean grade mass."""
    import json

    from siftkit.curation.judge import score_expected

    cache = _cache()
    model = _llm(cfg.judge, cfg.engine, cfg.threads, cfg.batch_size, str(cache))
    res = score_expected(lambda: model, list(zip(s.audio_caption, s.video_caption)), cache)
    mass = float(np.mean([np.mean(list(json.loads(x.raw).values())) for x in res]))
    return np.array([x.final for x in res], dtype=float), mass


def llm_cell(cfg: AvvaBench, params: dict) -> dict:
    """One (rho, subset, fraction, seed) on the ``llm_pool`` pool: ``llm`` keeps the top fraction by SmolLM2's
    scores of the describers' captions (end to end: no label is read), ``curated`` by the proxy judge's; random,
    all and the similarity filter as in ``avva_synth``. The LLM cells also store the judge's ROC-AUC on the pool
    (with a bootstrap interval over clips), the per-clip scores and the retention curve (clips and hours kept at
    the thresholds of the retained fractions)."""
    import torch

    from siftkit.curation.judge import hours_by_threshold, threshold_for_fraction
    from siftkit.curation.pipeline import proxy_scores, run
    from siftkit.curation.synthetic import SECONDS
    from siftkit.metrics import roc_auc

    torch.set_num_threads(cfg.threads)
    s = _llm_pool(cfg, params["rho"], params["seed"])
    y = s.aligned.astype(int)
    extra: dict = {"pool": len(s), "pool_misaligned_share": float(1 - y.mean())}
    scores = None
    if params["subset"] == "llm":
        scores, mass = _llm_finals(cfg, s)
        f = np.nan_to_num(scores, nan=0.0)
        thetas = sorted({threshold_for_fraction(f, fr) for fr in [1.0, *cfg.llm_fractions, cfg.fraction]})
        extra.update({"judge_auc": roc_auc(y, f), "proxy_auc": roc_auc(y, proxy_scores(s)), "grade_mass": mass,
                      "unscored": int(np.isnan(scores).sum()), "final": [round(float(x), 4) for x in f],
                      "aligned": y.tolist(), "retention": hours_by_threshold(f, SECONDS, thetas)})
        extra.update({f"auc_over_chance{k}": v for k, v in _auc_ci(y, f, cfg.n_resamples).items()})
    elif params["subset"] == "curated":
        scores = proxy_scores(s)
    sub = "curated" if params["subset"] == "llm" else params["subset"]
    out = run(s, _test_set(cfg.n_test), sub, params["fraction"], params["seed"], train_config(cfg), k=cfg.k,
              n=cfg.n, scores=scores)
    return out | extra


def _real_pairs(root: Path) -> list[tuple[Path, Path]]:
    d = root / "avva"
    pairs = [(d / "imagebind_assets" / f"{c}_audio.wav", d / "imagebind_assets" / f"{c}_image.jpg")
             for c in ("dog", "car", "bird")]
    img = {"alarm_clock": "clock_1", "car_horn": "cars_1", "cat": "cat_1", "coughing": "coughing_1",
           "thunder": "lightning_1"}
    for wav in sorted((d / "audioclip_demo" / "audio").glob("*.wav")):
        key = next(k for k in img if wav.name.startswith(k))
        pairs.append((wav, d / "audioclip_demo" / "images" / f"{img[key]}.jpg"))
    return pairs


def real_cell(cfg: AvvaBench, params: dict) -> dict:
    """Each real audio clip (first 3 s) with its matching image and the image of the clip three places on (a
    different class): Whisper tiny.en + signal captions, SmolLM2's next-token judge, ROC-AUC over the pairs."""
    from siftkit.core.media import SAMPLE_RATE, load_audio, load_image
    from siftkit.curation.describe import SignalImageDescriber, WhisperSpeechDescriber
    from siftkit.curation.judge import score_expected
    from siftkit.metrics import roc_auc

    pairs = _real_pairs(_shared())
    images = [p[1] for p in pairs]
    rows = [(a, im, 1) for a, im in pairs] + [(a, images[(i + 3) % len(images)], 0) for i, (a, _) in enumerate(pairs)]
    ad, vd = WhisperSpeechDescriber("tiny.en", threads=cfg.threads), SignalImageDescriber()
    acap = {a: ad.describe(load_audio(a)[: 3 * SAMPLE_RATE], SAMPLE_RATE).caption for a, _ in pairs}
    vcap = {im: vd.describe(np.asarray(load_image(im).resize((64, 64)))).caption for im in images}
    cache = _cache()
    model = _llm(cfg.judge, cfg.engine, cfg.threads, cfg.batch_size, str(cache))
    scores = score_expected(lambda: model, [(acap[a], vcap[im]) for a, im, _ in rows], cache)
    f = [0.0 if np.isnan(x.final) else x.final for x in scores]
    out = {"real_pairs": len(rows), "real_auc": roc_auc([y for *_, y in rows], f),
           "speech_captions": sum("speech:" in c for c in acap.values()),
           "real_examples": [[a.name, im.name, y, acap[a], vcap[im], round(x, 2)]
                             for (a, im, y), x in list(zip(rows, f))[:4]]}
    return out | _real_train(cfg, pairs, rows, np.array(f))


def _real_train(cfg: AvvaBench, pairs, rows, final: np.ndarray) -> dict:
    """Through to training and retrieval: the judge keeps its top ``fraction`` of the 16 real pairs, the heads train
    on the kept pairs' frozen features (log band energies of the first 3 s, 8x8 patches of the image) and, as the
    baseline, on all 16; retrieval top-1/3 over the 8 true pairs (N = 8, chance 12.5 / 37.5%). Eight clips leave no
    held-out test: the test pairs are among the training pairs, so this checks the wiring, not generalisation."""
    import torch

    from siftkit.core.media import SAMPLE_RATE, load_audio, load_image
    from siftkit.curation.describe import audio_tokens, image_tokens
    from siftkit.curation.evaluate import kxn_eval
    from siftkit.curation.judge import select_fraction
    from siftkit.curation.model import embed, train

    torch.set_num_threads(cfg.threads)
    fa = {a: audio_tokens(load_audio(a)[: 3 * SAMPLE_RATE], SAMPLE_RATE) for a, _ in pairs}
    fv = {im: image_tokens(load_image(im)) for _, im in pairs}
    A, V = np.stack([fa[a] for a, _, _ in rows]), np.stack([fv[im] for _, im, _ in rows])
    y = np.array([m for *_, m in rows], bool)
    test_a, test_v = np.stack([fa[a] for a, _ in pairs]), np.stack([fv[im] for _, im in pairs])
    kept = select_fraction(final, cfg.fraction, 0)
    out = {"real_kept": int(kept.sum()), "real_kept_matched": int(y[kept].sum())}
    for name, mask in (("curated", kept), ("all", np.ones(len(rows), bool))):
        res = train(A[mask], V[mask], epochs=cfg.real_epochs, batch_size=cfg.train_batch, lr=cfg.lr, seed=0,
                    hidden=cfg.hidden, dim=cfg.dim, heads=cfg.heads)
        m = kxn_eval(*embed(res.model, test_a, test_v), k=1, n=len(pairs), seed=0, ks=(1, 3))
        out.update({f"real_{name}_{key}": v for key, v in m.items() if not key.endswith("_std")})
    return out


# ---------------------------------------------------------------------------------------------------------------- page
def _ci(xs) -> str:
    """mean ± half-width of the 95% t interval over seeds (± 0 for one seed)."""
    from scipy import stats

    xs = [float(x) for x in xs]
    if not xs:
        return "–"
    if len(xs) < 2:
        return f"{xs[0]:.2f}"
    half = stats.t.ppf(0.975, len(xs) - 1) * np.std(xs, ddof=1) / np.sqrt(len(xs))
    return f"{np.mean(xs):.2f} ± {half:.2f}"


def _paired(a: dict, b: dict) -> str:
    """Paired difference over the seeds both have: mean ± 95% t half-width, and the paired t-test p."""
    from siftkit.metrics.stats import paired_t_test

    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return "–"
    d = [a[s] - b[s] for s in seeds]
    t = paired_t_test([a[s] for s in seeds], [b[s] for s in seeds])
    return f"{_ci(d)} (p {t.p_value:.2f})"


def main_markdown(cfg: AvvaBench, cells: list[dict], labels: dict | None = None) -> str:
    groups: dict = {}
    for c in cells:
        p = c["params"]
        groups.setdefault((p["rho"], p["subset"], p["fraction"]), []).append(c)
    order = {"llm": -1, "curated": 0, "random": 1, "similarity": 2, "all": 3}
    labels = labels or {}
    lines = ["| rho | subset | kept | misaligned in kept | seeds | " + " | ".join(METRICS) + " |",
             "|" + "---|" * (5 + len(METRICS))]
    for (rho, sub, frac), cs in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[0][2], order[kv[0][1]])):
        ms = [c["metrics"] for c in cs]
        name = f"{labels.get(sub, sub)} {frac:.0%}" if sub != "all" else "all"
        lines.append(f"| {rho} | {name}{''.join(sorted({flag(c) for c in cs}))} | {np.mean([m['kept'] for m in ms]):.0f} | "
                     f"{_ci([m['kept_misaligned_share'] for m in ms])} | {len(ms)} | "
                     + " | ".join(_ci([m[k] for m in ms]) for k in METRICS) + " |")
    return "\n".join(lines)


def paired_markdown(cfg: AvvaBench, cells: list[dict], base: str = "curated",
                    others: tuple[str, ...] = ("random", "all", "similarity"), labels: dict | None = None) -> str:
    """``base`` (curated by a judge) minus each of ``others`` (at the same retained fraction; ``all`` at 100%) per
    retained fraction, paired by seed."""
    by: dict = {}
    for c in cells:
        p = c["params"]
        by.setdefault((p["rho"], p["subset"], p["fraction"]), {})[p["seed"]] = c["metrics"]
    labels = labels or {}
    lines = [f"| rho | fraction | {labels.get(base, base)} − | " + " | ".join(METRICS) + " |",
             "|" + "---|" * (3 + len(METRICS))]
    for (rho, sub, frac) in sorted(k for k in by if k[1] == base):
        cur = by[(rho, sub, frac)]
        for other in others:
            other_cells = by.get((rho, other, 1.0 if other == "all" else frac))
            if other_cells:
                lines.append(f"| {rho} | {frac:.0%} | {labels.get(other, other)} | " + " | ".join(
                    _paired({s: m[k] for s, m in cur.items()}, {s: m[k] for s, m in other_cells.items()})
                    for k in METRICS) + " |")
    return "\n".join(lines)


def llm_judge_markdown(cells: list[dict]) -> str:
    """The LLM judge on each whole pool (from the LLM-curated cells at the main fraction) and the retention curve."""
    cs = sorted((c for c in cells if c["params"]["subset"] == "llm" and "judge_auc" in c["metrics"]),
                key=lambda c: (c["params"]["rho"], c["params"]["seed"], -c["params"]["fraction"]))
    seen, rows = set(), []
    for c in cs:  # one row per pool (every LLM cell of a pool stores the same scores)
        key = (c["params"]["rho"], c["params"]["seed"])
        if key not in seen:
            seen.add(key)
            rows.append(c)
    if not rows:
        return "Not run (no `avva_llm` LLM-curated cell yet)."
    lines = ["| rho | seed | pool | misaligned | LLM judge ROC-AUC (95% CI) | proxy judge ROC-AUC | grade mass | "
             "unscored |", "|---|---|---|---|---|---|---|---|"]
    for c in rows:
        m, p = c["metrics"], c["params"]
        lines.append(f"| {p['rho']} | {p['seed']}{flag(c)} | {m['pool']} | {m['pool_misaligned_share']:.2f} | "
                     f"{m['judge_auc']:.3f} ({0.5 + m['auc_over_chance_lo']:.3f}–{0.5 + m['auc_over_chance_hi']:.3f}) | "
                     f"{m['proxy_auc']:.3f} | {m['grade_mass']:.3f} | {m['unscored']} |")
    fr = [r["fraction"] for r in rows[0]["metrics"]["retention"]]
    lines += ["", "Retention (hours accounting): the threshold theta on the LLM judge's final score that keeps each "
              "share of the pool, with the clips and hours (3 s each) it keeps.", "",
              "| rho | seed | " + " | ".join(f"keep {f:.0%}" for f in sorted(fr, reverse=True)) + " |",
              "|---|---|" + "---|" * len(fr)]
    for c in rows:
        ret = sorted(c["metrics"]["retention"], key=lambda r: -r["fraction"])
        lines.append(f"| {c['params']['rho']} | {c['params']['seed']} | " + " | ".join(
            f"theta {r['theta']:.2f}: {r['clips']} clips, {r['hours']:.3f} h" for r in ret) + " |")
    return "\n".join(lines)


def describer_markdown(cells: list[dict]) -> str:
    by: dict = {}
    for c in cells:
        if c["params"]["subset"] == "all":
            by.setdefault(c["params"]["rho"], []).append(c["metrics"])
    lines = ["| rho | seeds | audio describer error | video describer error | proxy judge ROC-AUC |", "|---|---|---|---|---|"]
    for rho, ms in sorted(by.items()):
        lines.append(f"| {rho} | {len(ms)} | {_ci([m['audio_describer_error'] for m in ms])} | "
                     f"{_ci([m['video_describer_error'] for m in ms])} | {_ci([m['judge_auc'] for m in ms])} |")
    return "\n".join(lines)


def judge_markdown(cells: list[dict]) -> str:
    if not cells:
        return "Not run (the `avva_judge` cell is missing)."
    m = cells[0]["metrics"]
    f = flag(cells[0])

    def auc(name):
        return (f"{m[f'auc_{name}']:.3f} (95% CI {0.5 + m[f'auc_over_chance_{name}_lo']:.3f}–"
                f"{0.5 + m[f'auc_over_chance_{name}_hi']:.3f})")

    return "\n".join([
        f"| reading{f} | clips | ROC-AUC (misaligned vs aligned) | grade mass | final mean (std) |", "|---|---|---|---|---|",
        f"| focused prompt (this criterion only), reply prefix `Score: `, grades 0–9 (now) | {m['clips']} | "
        f"{auc('new')} | {m['grade_mass_new']:.3f} | {m['mean_new']:.2f} ({m['std_new']:.2f}) |",
        f"| all five criteria listed, reply prefix `Score: `, grades 0–9 | {m['clips']} | {auc('listed')} | "
        f"{m['grade_mass_listed']:.3f} | {m['mean_listed']:.2f} ({m['std_listed']:.2f}) |",
        f"| all five criteria listed, no prefix, grades 0–10 (before) | {m['clips']} | {auc('old')} | "
        f"{m['grade_mass_old']:.3f} | {m['mean_old']:.2f} ({m['std_old']:.2f}) |",
        "",
        f"AUC gain of the new reading over the earlier one on the same clips: {m['auc_gain']:+.3f} (95% bootstrap CI over clips "
        f"{m['auc_gain_lo']:+.3f} to {m['auc_gain_hi']:+.3f}); {m['misaligned']} of the {m['clips']} clips are "
        "misaligned.",
        "",
        f"Generated JSON (reply prefix `{{\"temporal_alignment\": `) on the first {m['generated_clips']} clips: parsed "
        f"{m['generated_parsed_share']:.0%}, all five keys {m['generated_all_keys_share']:.0%}; its ROC-AUC "
        f"{m['generated_auc']:.3f}; Spearman with the next-token judge {m['agreement_spearman']:.3f}. First reply: "
        f"`{m['example_raw'][:200]}`"])


def real_markdown(cells: list[dict]) -> str:
    if not cells:
        return "Not run (the `avva_real` cell is missing: it needs ../shared/data/avva)."
    m = cells[0]["metrics"]
    lines = [f"{m['real_pairs']} pairs{flag(cells[0])}, ROC-AUC {m['real_auc']:.3f}; Whisper heard speech in "
             f"{m['speech_captions']} of the 8 clips. Examples (audio, image, matched, audio caption, image caption, "
             "final score):", ""]
    lines += [f"- `{e}`" for e in m["real_examples"]]
    if "real_kept" in m:
        lines += ["", f"Through to training: the judge kept {m['real_kept']} of the {m['real_pairs']} pairs "
                  f"({m['real_kept_matched']} of them matched); the heads trained on the kept pairs and on all "
                  f"{m['real_pairs']}; retrieval over the 8 true pairs (N = 8, chance 12.5 / 37.5%; the test pairs "
                  "are among the training pairs: a wiring check, not a held-out result):", "",
                  "| trained on | a2v@1 | a2v@3 | v2a@1 | v2a@3 |", "|---|---|---|---|---|"]
        lines += [f"| {name} | " + " | ".join(f"{m[f'real_{key}_{d}@{k}']:.1f}" for d in ("a2v", "v2a")
                                              for k in (1, 3)) + " |"
                  for key, name in (("curated", "judge-kept"), ("all", f"all {m['real_pairs']}"))]
    return "\n".join(lines)


def llm_missing(cfg: AvvaBench, cells: list[dict]) -> str:
    """Which cells of the ``avva_llm`` grid have not been computed (by rho, with their seeds), in words."""
    have = {tuple(sorted(c["params"].items())) for c in cells}
    todo = [p for p in llm_grid(cfg) if tuple(sorted(p.items())) not in have]
    if not todo:
        return "every cell of the LLM-judged grid was computed"
    by: dict = {}
    for p in todo:
        by.setdefault(p["rho"], set()).add(p["seed"])
    return (f"{len(todo)} of the {len(llm_grid(cfg))} cells of the LLM-judged grid were not computed in the CPU time "
            "the session had (" + "; ".join(f"rho {r}: seeds {', '.join(map(str, sorted(s)))}"
                                              for r, s in sorted(by.items())) + ")")


def page(cfg: AvvaBench, cells: list[dict]) -> str:
    from benchmarks.claims import claims_section

    def of(experiment: str) -> list[dict]:
        return [c for c in cells if c["experiment"] == experiment]

    synth, llm = of("avva_synth"), of("avva_llm")
    llm_labels = {"llm": "LLM-curated", "curated": "proxy-curated"}
    return TEMPLATE.read_text().format(
        n_train=cfg.n_train, n_test=cfg.n_test, k=cfg.k, n=cfg.n, seeds=len(cfg.seeds), epochs=cfg.epochs,
        hidden=cfg.hidden, dim=cfg.dim, heads=cfg.heads, lr=cfg.lr, train_batch=cfg.train_batch,
        n_llm=cfg.n_llm, llm_pool=cfg.llm_pool, main=main_markdown(cfg, synth), paired=paired_markdown(cfg, synth),
        llm_main=main_markdown(cfg, llm, llm_labels) if llm else "Not run (no `avva_llm` cell yet).",
        llm_paired=paired_markdown(cfg, llm, "llm", ("random", "all", "similarity", "curated"), llm_labels),
        llm_judge=llm_judge_markdown(llm), llm_missing=llm_missing(cfg, llm),
        describers=describer_markdown(synth), judge=judge_markdown(of("avva_judge")),
        real=real_markdown(of("avva_real")), claims=claims_section("avva", load=of)).rstrip()


def _shared() -> Path:
    from siftkit.core.assets import shared_data_dir

    shared = shared_data_dir()
    if shared is None:
        raise FileNotFoundError("needs ../shared/data (or $SIFTKIT_SHARED)")
    return shared


_CURATION = ["siftkit/curation/synthetic.py", "siftkit/curation/describe.py", "siftkit/curation/judge.py"]
_LLM = ["siftkit/llm/base.py", "siftkit/llm/local.py", "siftkit/llm/ct2.py", "siftkit/llm/grading.py",
        "siftkit/llm/untrusted.py::neutralise,_SPECIAL,_TAG,_ROLE,_CTRL", "siftkit/llm/batch.py", "siftkit/llm/factory.py", "siftkit/metrics/agreement.py",
        "siftkit/metrics/stats.py"]

_TRAIN = ["siftkit/curation/pipeline.py", "siftkit/curation/model.py", "siftkit/curation/evaluate.py",
          "siftkit/metrics/similarity.py"]

BENCHMARK = Benchmark(
    name="avva", title="AVVA: LLM-scored audio-video curation (synthetic world, SmolLM2 judge, real-clip smoke run)",
    config=AvvaBench, grid=grid, cell=cell, page=page,
    # the synthetic cells use only the proxy judge and the selection of judge.py, so its prompts may change
    # without making them stale
    sources=["siftkit/curation/synthetic.py", "siftkit/curation/describe.py",
             "siftkit/curation/judge.py::CRITERIA,JudgeScores,final_score,select_fraction,_STOP,content_words,"
             "caption_overlap_scores", "siftkit/curation/pipeline.py", "siftkit/curation/model.py",
             "siftkit/curation/evaluate.py", "siftkit/metrics/similarity.py",
             "benchmarks/avva.py::cell,_train_set,_test_set,train_config"],
    experiment="avva_synth",
    parts=[Part("avva_judge", grid=lambda cfg: [{"judge": cfg.judge, "seed": 0}], cell=judge_cell,
                sources=_CURATION + _LLM + ["benchmarks/avva.py::judge_cell,_auc_ci,_train_set,_llm,_cache"]),
           Part("avva_real", grid=lambda cfg: [{"judge": cfg.judge}], cell=real_cell,
                sources=_CURATION + _LLM + _TRAIN + ["siftkit/core/whisper.py", "siftkit/core/media.py",
                                                     "benchmarks/avva.py::real_cell,_real_train,_real_pairs,_llm,"
                                                     "_cache"],
                inputs=lambda cfg: {"avva": _shared() / "avva"},
                cell_settings=lambda cfg, p: {"real_epochs": cfg.real_epochs}),
           Part("avva_llm", grid=llm_grid, cell=llm_cell,
                sources=_CURATION + _LLM + _TRAIN + ["benchmarks/avva.py::llm_cell,_llm_pool,_llm_finals,_auc_ci,"
                                                     "_train_set,_test_set,train_config,_llm,_cache"],
                cell_settings=lambda cfg, p: {"llm_pool": cfg.llm_pool})],
)
