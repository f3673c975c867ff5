"""Product-bias audit: SmolLM2 and the three synthetic responders on the prompt grid, into one results page.

    nice python -m benchmarks run product_bias --profile cpu    # the cells (resumable)
    python -m benchmarks page product_bias --profile cpu        # benchmarks/results/product_bias.md from the cells

Cells, one per condition and seed (``benchmarks/results/cells/product_bias/``), each holding the raw replies so the
page re-parses them with the current parser:

* SmolLM2-135M-Instruct (CTranslate2 int8 engine, 2 threads) on the stock grid (288-profile factorial, template 0),
  3 samples per prompt (temperature 0.7, top-p 0.95, seed 0, at most 40 new tokens), with and without the
  ``system`` de-biasing prompt; and on crypto (a stratified 96 of the 288 profiles), same settings;
* the synthetic responders (always AAPL / always BTC, uniform, market-cap weighted) on the same grids, seeds 0-2.

Settings: benchmarks/config/product_bias.yaml; prose: benchmarks/templates/product_bias.md. LLM calls go through the
response cache (``$SIFTKIT_HOME/cache/product_bias.sqlite``), so a killed run resumes; each cell counts the replies
it read from the cache.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import ClassVar

from benchmarks.runner import BenchConfig, Benchmark, flag, md_table

TEMPLATE = Path(__file__).resolve().parent / "templates" / "product_bias.md"
SYNTHETIC = ("synthetic:always-one", "synthetic:uniform", "synthetic:market-cap")
CONDITIONS = [f"smollm2|{a}|{d}" for a in ("stocks", "crypto") for d in ("none", "system")] + \
    [f"{m}|{a}|{d}" for m in SYNTHETIC for a in ("stocks", "crypto") for d in ("none", "system")]


class ProductBiasBench(BenchConfig):
    """Settings of the audit (defaults: the page's run)."""

    page_fields: ClassVar[tuple[str, ...]] = ("n_resamples",)

    samples: int = 3
    """replies per prompt (one SmolLM2 cell samples them all)."""
    temperature: float = 0.7
    """sampling temperature."""
    top_p: float = 0.95
    """nucleus mass."""
    max_new_tokens: int = 40
    """reply length limit (stop at a blank line)."""
    engine: str = "ct2"
    """SmolLM2 engine (``ct2``: CTranslate2 int8; ``torch``)."""
    crypto_profiles: int = 96
    """crypto prompts: this many evenly spaced profiles of the 288."""
    n_resamples: int = 1000
    """bootstrap resamples, Monte Carlo draws and permutation sign flips of the page (page only)."""


def condition_seeds(condition: str) -> list[int]:
    """SmolLM2 runs seed 0 (three samples per prompt inside it); a synthetic responder runs seeds 0-2."""
    return [0] if condition.startswith("smollm2") else [0, 1, 2]


def grid(cfg: ProductBiasBench) -> list[dict]:
    return [{"condition": c, "seed": s} for c in CONDITIONS for s in condition_seeds(c)]


def prompts_for(asset: str, debias: str, crypto_profiles: int):
    from siftkit.bias.grid import build_grid, stratified_subset

    grid = build_grid(asset, "factorial", (0,), (debias,))
    return grid if asset == "stocks" else stratified_subset(grid, crypto_profiles)


def _same(model):
    return model


@functools.cache
def _model(name: str, engine: str, threads: int, batch_size: int):
    """SmolLM2, loaded once per worker for all its cells."""
    from siftkit.bias.runner import model_factory

    return model_factory(name, "stocks", engine=engine, threads=threads, batch_size=batch_size)()


def cell(cfg: ProductBiasBench, params: dict) -> dict:
    """One condition and seed: the raw replies (``[prompt_id, sample, text, finish_reason]``) and how many were
    read from the response cache."""
    from siftkit.bias.runner import model_factory, run_grid
    from siftkit.core.paths import cache_dir
    from siftkit.llm.base import GenerationParams

    model, asset, debias = params["condition"].split("|")
    if model.startswith("synthetic:"):
        factory = model_factory(model, asset)
    else:
        factory = functools.partial(_same, _model(model, cfg.engine, cfg.threads, cfg.batch_size))
    gp = GenerationParams(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                          n=cfg.samples, seed=params["seed"], stop=("\n\n",))
    prompts = prompts_for(asset, debias, cfg.crypto_profiles)
    df = run_grid({model: factory}, prompts, gp, cache_dir("cache") / "product_bias.sqlite", chunk_size=32,
                  progress=False)
    return {"model": model, "asset_class": asset, "debias": debias,
            "engine": cfg.engine if "smollm2" in model else "", "prompts": len(prompts), "samples": cfg.samples,
            "errors": df.attrs.get("errors", 0), "cached": int(df["cached"].sum()),
            "replies": [[r.prompt_id, int(r.sample), r.text, r.finish_reason] for r in df.itertuples(index=False)]}


# ---------------------------------------------------------------------------------------------------------- report
def _parsed_cells(cells: list[dict]):
    """The stored cells, re-parsed with the current parser: ``{(condition, seed): (parsed DataFrame, record)}``."""
    import pandas as pd

    from siftkit.bias.grid import build_grid
    from siftkit.bias.runner import parse_responses

    meta = {}
    out = {}
    for c in cells:
        m = c["metrics"]
        cond, seed = c["params"]["condition"], c["params"]["seed"]
        key = (m["asset_class"], m["debias"])
        if key not in meta:
            meta[key] = {g.prompt_id: g for g in build_grid(m["asset_class"], "factorial", (0,), (m["debias"],))}
        rows = [{"model": m["model"], "prompt_id": pid, "pair_id": meta[key][pid].pair_id,
                 "asset_class": m["asset_class"], "debias": m["debias"], **meta[key][pid].profile, "sample": s,
                 "text": t, "finish_reason": r} for pid, s, t, r in m["replies"]]
        out[(cond, seed)] = (parse_responses(pd.DataFrame(rows)), c)
    return out


def _f(x, d=3):
    import math

    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and 0 < abs(x) < 10 ** -d:
        return f"{x:.1e}"
    return f"{x:.{d}f}" if isinstance(x, float) else str(x)


def _table(rows: list[dict], cols: list[str]) -> str:
    return md_table(cols, [[_f(r.get(c)) for c in cols] for r in rows])


def page(cfg: ProductBiasBench, records: list[dict]) -> str:
    import numpy as np
    import pandas as pd

    from benchmarks.claims import claims_section

    from siftkit.bias.measures import delta_gini, mention_counts, per_attribute, sector_shares, summarise
    from siftkit.bias.universe import load_universe
    from siftkit.metrics.concentration import gini

    universes = {a: load_universe(a) for a in ("stocks", "crypto")}
    n_resamples = cfg.n_resamples
    cells = _parsed_cells(records)
    summ = {}
    for (cond, seed), (parsed, _) in sorted(cells.items()):
        asset = cond.split("|")[1]
        summ[(cond, seed)] = summarise(parsed, universes[asset], n_resamples=n_resamples, seed=0)

    # per condition: seed 0 in full, the universe Gini over seeds
    rows = []
    for cond in CONDITIONS:
        seeds = sorted(s for c, s in summ if c == cond)
        if not seeds:
            continue
        model, asset, debias = cond.split("|")
        s0 = summ[(cond, seeds[0])]
        g = [summ[(cond, s)]["gini_universe"] for s in seeds]
        rows.append({"model": model.replace("synthetic:", "syn:") + flag(cells[(cond, seeds[0])][1]), "class": asset, "debias": debias,
                     "seeds": len(seeds), "responses": s0["responses"],
                     "valid/hedged/refusal/unparseable": "/".join(f"{s0[f'rate_{k}']:.2f}" for k in
                                                                   ("valid", "hedged", "refusal", "unparseable")),
                     "unknown share": s0["unknown_share"], "G own (n)": f"{_f(s0['gini_own'])} ({s0['n_own']})",
                     "G universe [CI] (n)": f"{_f(s0['gini_universe'])} [{_f(s0.get('gini_universe_lo'))}, "
                                            f"{_f(s0.get('gini_universe_hi'))}] ({s0['n_universe']})",
                     "G universe over seeds": f"{np.mean(g):.3f} ± {np.std(g, ddof=1):.3f}" if len(g) > 1 else "–",
                     "HHI": s0["hhi"], "top-1": s0["top1_share"], "top-5": s0["top5_share"],
                     "p χ² unif": s0.get("p_chi2_uniform"), "p G unif": s0.get("p_gini_uniform"),
                     "p χ² mcap": s0.get("p_chi2_market_cap"), "p G mcap": s0.get("p_gini_market_cap"),
                     "top products (mentions)": s0["top_products"]})
    cols = list(rows[0])

    deltas = []
    for cond in CONDITIONS:
        model, asset, debias = cond.split("|")
        if debias != "none":
            continue
        for seed in sorted(s for c, s in cells if c == cond):
            other = (f"{model}|{asset}|system", seed)
            if other not in cells:
                continue
            both = pd.concat([cells[(cond, seed)][0], cells[other][0]], ignore_index=True)
            d = delta_gini(both, universes[asset], "none", "system", n_resamples=n_resamples, seed=0)
            deltas.append({"model": model.replace("synthetic:", "syn:"), "class": asset, "seed": seed,
                           "prompt pairs": d["pairs"], "G plain": d.get("gini_plain"),
                           "G de-biased": d.get("gini_debiased"), "Δ-Gini": d.get("delta_gini"),
                           "CI low": d.get("delta_lo"), "CI high": d.get("delta_hi"), "p (perm.)": d.get("p_perm")})

    # sector shares of SmolLM2's stock mentions against market-cap shares, and the Gini per profile attribute
    sectors, attributes = "", ""
    if ("smollm2|stocks|none", 0) in cells:
        parsed = cells[("smollm2|stocks|none", 0)][0]
        sec = sector_shares(mention_counts(parsed["products"]), universes["stocks"])
        sectors = _table(sec.to_dict("records"), ["sector", "share", "reference"])
        parts = []
        for attr in ("risk", "term", "market"):
            t = per_attribute(parsed, universes["stocks"], attr).rename(columns={attr: "value"})
            parts += [{"attribute": attr, **r} for r in t.to_dict("records")]
        attributes = _table(parts, ["attribute", "value", "responses", "mentions", "gini_universe", "top"])

    # claims: the synthetic responders' expected values, checked on the cells (spec §7.2)
    k_s, k_c = len(universes["stocks"].ids), len(universes["crypto"].ids)
    checks = []

    def claim(text, cond, test):
        got = [summ[k] for k in summ if k[0] == cond]
        if got:
            ok = sum(bool(test(s)) for s in got)
            checks.append({"claim": text, "condition": cond, "seeds": f"{ok} of {len(got)} hold",
                           "status": "OK" if ok == len(got) else "FAIL"})

    for asset, k in (("stocks", k_s), ("crypto", k_c)):
        claim(f"always-one: universe Gini = (n−1)/n = {k - 1}/{k}, own Gini 0 with n = 1",
              f"synthetic:always-one|{asset}|none",
              lambda s, k=k: abs(s["gini_universe"] - (k - 1) / k) < 1e-9 and s["gini_own"] == 0 and s["n_own"] == 1)
        claim("uniform: not more concentrated than uniform (p G unif > 0.05)", f"synthetic:uniform|{asset}|none",
              lambda s: s["p_gini_uniform"] > 0.05)
        claim("market-cap: more concentrated than uniform (p G unif < 0.05), consistent with market cap "
              "(p χ² mcap > 0.01)", f"synthetic:market-cap|{asset}|none",
              lambda s: s["p_gini_uniform"] < 0.05 and s["p_chi2_market_cap"] > 0.01)
    for asset in ("stocks", "crypto"):  # the basic bootstrap CI against the population Gini of market-cap draws
        w = np.array([universes[asset].weights()[i] for i in universes[asset].ids])
        g_pop = gini(w, support="universe")
        claim(f"market-cap: the basic 95% CI covers the population Gini {g_pop:.3f}",
              f"synthetic:market-cap|{asset}|none",
              lambda s, g=g_pop: s["gini_universe_lo"] <= g <= s["gini_universe_hi"])
    syn = [d for d in deltas if d["model"].startswith("syn:") and d["p (perm.)"] == d["p (perm.)"]]
    if syn:  # the responders ignore the prompt: rejections at 0.05 should be as rare as 5%
        from scipy.stats import binom

        k = sum(d["p (perm.)"] < 0.05 for d in syn)
        tail = float(binom.sf(k - 1, len(syn), 0.05))
        checks.append({"claim": f"synthetic Δ-Gini tests: {k} of {len(syn)} with p < 0.05, consistent with the 5% "
                                f"false-positive rate (binomial tail {tail:.3f} > 0.05)", "condition": "all synthetic",
                       "seeds": "0-2", "status": "OK" if tail > 0.05 else "FAIL"})
    n_fail = sum(c["status"] == "FAIL" for c in checks)

    smol = [c for c in records if c["params"]["condition"].startswith("smollm2")]
    n_replies = sum(len(c["metrics"]["replies"]) for c in smol)
    n_cached = sum(c["metrics"].get("cached", 0) for c in smol)
    return TEMPLATE.read_text().format(
        k_s=k_s, k_c=k_c, n_uniform=288 * cfg.samples, stocks_as_of=universes["stocks"].as_of, crypto_as_of=universes["crypto"].as_of,
        crypto_profiles=cfg.crypto_profiles, engine=cfg.engine, threads=cfg.threads, samples=cfg.samples,
        temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens, n_smol=len(smol),
        smol_min=f"{sum(c['seconds'] for c in smol) / 60:.0f}", n_replies=n_replies, n_cached=n_cached,
        n_resamples=n_resamples, concentration=_table(rows, cols),
        deltas=_table(deltas, list(deltas[0]) if deltas else ["model"]), sectors=sectors or "not run",
        attributes=attributes or "not run", n_ok=len(checks) - n_fail, n_checks=len(checks),
        checks=_table(checks, ["claim", "condition", "seeds", "status"]),
        claims=claims_section("product_bias", load=lambda name: claim_records(cfg, records)
                              if name == "product_bias" else [])).rstrip()


LEADERS = {"stocks": ("AAPL", "MSFT"), "crypto": ("BTC", "ETH")}  # the products the paper / spec §7 name
TECH = "Information Technology"


def claim_records(cfg: ProductBiasBench, records: list[dict]) -> list[dict]:
    """The stored cells with the measures benchmarks/claims/product_bias.yaml reads added to ``metrics``, computed
    from the stored replies with the current parser (as the page does):

    * ``gini_universe`` and ``mentions`` (known-product mentions M);
    * ``gini_excess_market_cap`` [ours]: ``G − mean G`` of 500 draws of the same M mentions from the market-cap
      shares (seed 0) — concentration beyond what market weights and M alone give (a small M makes G high whatever
      the model does, see the page);
    * ``leaders_share``: share of known mentions naming the class's two leaders (stocks AAPL, MSFT; crypto BTC, ETH);
    * ``tech_share`` (stocks): share of known mentions in the Information Technology sector.
    """
    import numpy as np

    from siftkit.bias.measures import mention_counts, references, sector_shares
    from siftkit.bias.universe import load_universe
    from siftkit.metrics.concentration import gini

    universes = {a: load_universe(a) for a in ("stocks", "crypto")}
    cells = _parsed_cells(records)
    out = []
    for rec in records:
        parsed, _ = cells[(rec["params"]["condition"], rec["params"]["seed"])]
        asset = rec["metrics"]["asset_class"]
        u = universes[asset]
        counts = mention_counts(parsed["products"])
        x = np.array([counts.get(i, 0) for i in u.ids], dtype=float)  # (K,)
        m = int(x.sum())
        extra = {"mentions": m, "gini_universe": float("nan"), "gini_excess_market_cap": float("nan"),
                 "leaders_share": float("nan")}
        if m:
            g = gini(x, support="universe")
            draws = np.random.default_rng(0).multinomial(m, references(u)["market_cap"], size=500)  # (500, K)
            extra.update(gini_universe=g,
                         gini_excess_market_cap=g - float(np.mean([gini(d, support="universe") for d in draws])),
                         leaders_share=sum(counts.get(p, 0) for p in LEADERS[asset]) / m)
        if asset == "stocks":
            sec = sector_shares(counts, u)
            extra["tech_share"] = float(sec.loc[sec.sector == TECH, "share"].iloc[0])
        out.append({**rec, "metrics": {**rec["metrics"], **extra}})
    return out


BENCHMARK = Benchmark(
    name="product_bias", title="Product bias in LLM investment recommendations (Zhi et al., 2025)",
    config=ProductBiasBench, grid=grid, cell=cell, page=page,
    # what makes the replies: the prompts (grid), the responders and their universes, the LLM path (engine, batch
    # runner, response cache); the parser and measures run on the page, so they are not sources
    sources=["siftkit/bias/grid.py", "siftkit/bias/runner.py::model_factory,run_grid", "siftkit/bias/responders.py",
             "siftkit/bias/universe.py", "siftkit/bias/universes", "siftkit/llm/base.py", "siftkit/llm/ct2.py",
             "siftkit/llm/local.py", "siftkit/llm/factory.py", "siftkit/llm/batch.py", "siftkit/llm/cache.py",
             "benchmarks/product_bias.py::cell,_model,_same,prompts_for,condition_seeds"],
    experiment="product_bias",
    legacy_files=["siftkit/bias", "siftkit/llm", "benchmarks/product_bias.py"],
    claims_metrics=claim_records,
)
