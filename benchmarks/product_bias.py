"""Product-bias audit: SmolLM2 and the three synthetic responders on the prompt grid, into one results page.

    nice python -m benchmarks.product_bias all        # cells (resumable) + benchmarks/results/product_bias.md
    python -m benchmarks.product_bias report          # the page from the stored cells

Cells, one per condition and seed (``benchmarks/results/cells/product_bias/``), each holding the raw replies so the
page re-parses them with the current parser:

* SmolLM2-135M-Instruct (CTranslate2 int8 engine, 2 threads) on the stock grid (288-profile factorial, template 0),
  3 samples per prompt (temperature 0.7, top-p 0.95, seed 0, at most 40 new tokens), with and without the
  ``system`` de-biasing prompt; and on crypto (a stratified 96 of the 288 profiles), same settings;
* the synthetic responders (always AAPL / always BTC, uniform, market-cap weighted) on the same grids, seeds 0-2.

LLM calls go through the response cache (``$SIFTKIT_HOME/cache/product_bias.sqlite``), so a killed run resumes.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

from benchmarks.cells import CELLS, RESULTS, Experiment, load_cells, run_experiment

EXPERIMENT = "product_bias"
SAMPLES, TEMPERATURE, TOP_P, MAX_NEW_TOKENS = 3, 0.7, 0.95, 40
ENGINE = "ct2"
CRYPTO_PROFILES = 96
SYNTHETIC = ("synthetic:always-one", "synthetic:uniform", "synthetic:market-cap")
CONDITIONS = [f"smollm2|{a}|{d}" for a in ("stocks", "crypto") for d in ("none", "system")] + \
    [f"{m}|{a}|{d}" for m in SYNTHETIC for a in ("stocks", "crypto") for d in ("none", "system")]


def condition_seeds(condition: str) -> list[int]:
    """SmolLM2 runs seed 0 (three samples per prompt inside it); a synthetic responder runs seeds 0-2."""
    return [0] if condition.startswith("smollm2") else [0, 1, 2]


def prompts_for(asset: str, debias: str):
    from siftkit.bias.grid import build_grid, stratified_subset

    grid = build_grid(asset, "factorial", (0,), (debias,))
    return grid if asset == "stocks" else stratified_subset(grid, CRYPTO_PROFILES)


def _same(model):
    return model


def run_cells(root: Path, threads: int, only_model: str | None = None) -> dict:
    from siftkit.bias.runner import model_factory, run_grid
    from siftkit.core.paths import cache_dir
    from siftkit.llm.base import GenerationParams

    cache = cache_dir("cache") / "product_bias.sqlite"
    loaded: dict = {}

    def cell(params):
        model, asset, debias = params["condition"].split("|")
        factory = model_factory(model, asset, engine=ENGINE, threads=threads, batch_size=32)
        if not model.startswith("synthetic:"):  # load SmolLM2 once for all its cells
            if model not in loaded:
                loaded[model] = factory()
            factory = functools.partial(_same, loaded[model])
        gp = GenerationParams(max_new_tokens=MAX_NEW_TOKENS, temperature=TEMPERATURE, top_p=TOP_P, n=SAMPLES,
                              seed=params["seed"], stop=("\n\n",))
        prompts = prompts_for(asset, debias)
        df = run_grid({model: factory}, prompts, gp, cache, chunk_size=32)
        return {"model": model, "asset_class": asset, "debias": debias, "engine": ENGINE if "smollm2" in model else "",
                "prompts": len(prompts), "samples": SAMPLES, "errors": df.attrs.get("errors", 0),
                "replies": [[r.prompt_id, int(r.sample), r.text, r.finish_reason]
                            for r in df.itertuples(index=False)]}

    total = {"ran": 0, "skipped": 0, "total": 0}
    for cond in CONDITIONS:
        if only_model and not cond.startswith(only_model):
            continue
        res = run_experiment(Experiment(EXPERIMENT, {"condition": [cond], "seed": condition_seeds(cond)}, cell,
                                        root=root))
        total = {k: total[k] + res[k] for k in total}
    return total


# ---------------------------------------------------------------------------------------------------------- report
def _parsed_cells(root: Path):
    """The stored cells, re-parsed with the current parser: ``{(condition, seed): parsed DataFrame}``."""
    import pandas as pd

    from siftkit.bias.grid import build_grid
    from siftkit.bias.runner import parse_responses

    meta = {}
    out = {}
    for c in load_cells(EXPERIMENT, root):
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
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_f(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def write_report(root: Path = CELLS, n_resamples: int = 1000) -> Path:
    import numpy as np
    import pandas as pd

    from benchmarks.cells import write_markdown
    from siftkit.bias.measures import delta_gini, mention_counts, per_attribute, sector_shares, summarise
    from siftkit.bias.universe import load_universe
    from siftkit.metrics.concentration import gini

    universes = {a: load_universe(a) for a in ("stocks", "crypto")}
    cells = _parsed_cells(root)
    if not cells:
        raise SystemExit("no cells: run `python -m benchmarks.product_bias cells` first")
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
        rows.append({"model": model.replace("synthetic:", "syn:"), "class": asset, "debias": debias,
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

    smol = [c for c in load_cells(EXPERIMENT, root) if c["params"]["condition"].startswith("smollm2")]
    secs = sum(c["seconds"] for c in smol)
    body = f"""Cells: `benchmarks/results/cells/{EXPERIMENT}/` (one JSON per condition and seed, holding the raw
replies; everything below is recomputed from them with the current parser and measures).

**Setup.** Stock universe: {k_s} large US stocks (as of {universes['stocks'].as_of}, GICS sectors, market caps);
crypto universe: {k_c} coins (as of {universes['crypto'].as_of}). Grid: the 288-profile full factorial (budget ×
risk × term × market), question template 0, without (`none`) and with (`system`) the de-biasing system prompt; crypto
uses {CRYPTO_PROFILES} evenly spaced profiles of the 288. SmolLM2-135M-Instruct on the **ct2** engine (CTranslate2
int8, 2 CPU threads), {SAMPLES} samples per prompt, temperature {TEMPERATURE}, top-p {TOP_P}, seed 0, at most
{MAX_NEW_TOKENS} new tokens, stop at a blank line; {len(smol)} SmolLM2 cells took {secs / 60:.0f} min on 2 shared
CPU cores. Synthetic responders (always the first product: AAPL / BTC; uniform; market-cap weighted) on the same
prompts, seeds 0-2. Mentions: each reply counts each product it names once. CIs: 95% basic bootstrap over prompts
({n_resamples} resamples). p-values: Pearson χ² goodness of fit and a one-sided Monte Carlo test of the universe
Gini ({n_resamples} multinomial draws) against uniform and market-cap shares; Δ-Gini: paired permutation over
prompts ({n_resamples} sign flips).

## Concentration per model, asset class and variant

G own: Gini over the products the model named (unknown products included), with n; G universe: over the fixed
universe, zero-filled (n = universe size). Seed 0 in full; "over seeds" is mean ± sd of G universe over the seeds.

{_table(rows, cols)}

## De-biasing: change in Gini (system − none)

Where the bootstrap interval and the permutation p-value disagree, read the permutation test: it is exact under
exchangeability of a prompt's two variants, while the basic interval assumes the bootstrap's bias carries over,
which is rough for the few mentions SmolLM2 gives.

{_table(deltas, list(deltas[0]) if deltas else ["model"])}

## SmolLM2 stock mentions by sector (plain prompt) vs market-cap shares

{sectors or "not run"}

Gini over the stock universe per profile attribute (SmolLM2, plain prompt; few mentions per row, so mostly noise):

{attributes or "not run"}

## Claims

Synthetic responders against their expected values (spec §7.2), checked on every seed (a claim is OK when it holds
on all of them): **{len(checks) - n_fail} of {len(checks)} OK**.

{_table(checks, ["claim", "condition", "seeds", "status"])}

Bootstrap intervals: the Gini of counts is biased upward by sampling noise (864 uniform mentions over 67 stocks give
G ≈ 0.15 although the population Gini is 0), and a bootstrap resample, which repeats prompts, is more concentrated
still. The basic interval `[2G − q97.5, 2G − q2.5]` removes the part of that bias the bootstrap sees, so it can lie
below the estimate (uniform rows); near G = 0 neither it nor the percentile interval reaches the population value.

The paper's claims (stock Gini ≈ 0.93, AAPL and MSFT on top, tech over-weighted, bias surviving de-biasing) are about
seven large models on an endpoint and cannot be checked with a 135M model: SmolLM2 mostly invents products or does
not name one (see the status rates and the unknown share), so its Gini rows measure the few real tickers it emits.
With M mentions over K products at most M products are non-zero, so the universe Gini of a small M is high whatever
the model does (M distinct products once each give G = (K − M)/K); the Monte Carlo test compares against draws of
the same M from the reference and is the number to read for SmolLM2.
Real numbers need `siftkit bias run --endpoint URL --model NAME` (docs/product_bias.md).
"""
    out = RESULTS / "product_bias.md"
    write_markdown(out, "Product bias in LLM investment recommendations (Zhi et al., 2025)", body,
                   command="nice python -m benchmarks.product_bias all")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["cells", "report", "all"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", help="run only conditions whose model starts with this (e.g. synthetic)")
    ap.add_argument("--cells-root", type=Path, default=CELLS)
    ap.add_argument("--resamples", type=int, default=1000)
    a = ap.parse_args(argv)
    if a.what in ("cells", "all"):
        print(json.dumps(run_cells(a.cells_root, a.threads, a.only)))
    if a.what in ("report", "all"):
        print(write_report(a.cells_root, a.resamples))


if __name__ == "__main__":
    main()
