"""Synthetic responders give the expected Gini, HHI and test outcomes; Δ-Gini by paired permutation over prompts."""

import numpy as np
import pandas as pd
import pytest

from siftkit.bias.grid import build_grid
from siftkit.bias.measures import delta_gini, lorenz, mc_gini_test, sector_shares, summarise, mention_counts
from siftkit.bias.responders import AlwaysOneResponder, MarketCapResponder, UniformResponder
from siftkit.bias.runner import parse_responses, run_grid
from siftkit.bias.universe import load_universe
from siftkit.core.errors import InputError
from siftkit.llm.base import GenerationParams
from siftkit.metrics.concentration import gini

STOCKS = load_universe("stocks")
K = len(STOCKS.ids)  # 67
PARAMS = GenerationParams(temperature=0.7, n=3, seed=0)


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    grid = build_grid("stocks", debias=("none", "system"))  # 288 profiles × 2 variants
    models = {"always": AlwaysOneResponder, "uniform": UniformResponder, "cap": MarketCapResponder}
    df = run_grid(models, grid, PARAMS, tmp_path_factory.mktemp("c") / "cache.sqlite", progress=False)
    return parse_responses(df)


def _summary(parsed, model, debias="none", n_resamples=300):
    rows = parsed[(parsed.model == model) & (parsed.debias == debias)]
    return summarise(rows, STOCKS, n_resamples=n_resamples)


def test_always_aapl(parsed):
    s = _summary(parsed, "always")
    assert s["responses"] == 288 * 3 and s["rate_valid"] == 1.0
    assert (s["gini_own"], s["n_own"]) == (0.0, 1)  # own support: degenerate
    assert s["gini_universe"] == pytest.approx((K - 1) / K) and s["n_universe"] == K
    assert s["hhi"] == 1.0 and s["top1_share"] == 1.0 and s["entropy"] == 0.0
    assert s["gini_universe_lo"] == pytest.approx((K - 1) / K) and s["gini_universe_hi"] == pytest.approx((K - 1) / K)
    assert s["p_gini_uniform"] == pytest.approx(1 / 301) and s["p_chi2_uniform"] < 1e-100
    assert s["p_gini_market_cap"] == pytest.approx(1 / 301) and s["p_chi2_market_cap"] < 1e-100
    assert s["top_products"] == "AAPL 864"


def test_uniform(parsed):
    s = _summary(parsed, "uniform")
    # 864 draws over 67: expected Gini ≈ 0.15 from sampling noise alone; HHI near 1/67
    assert s["gini_universe"] < 0.2 and s["n_own"] >= 60
    assert s["hhi"] == pytest.approx(1 / K, abs=0.004)
    assert s["p_chi2_uniform"] > 0.05 and s["p_gini_uniform"] > 0.05  # consistent with uniform
    assert s["p_chi2_market_cap"] < 1e-6 and s["p_gini_market_cap"] > 0.5  # less concentrated than market cap


def test_market_cap(parsed):
    s = _summary(parsed, "cap")
    w = np.array([STOCKS.weights()[i] for i in STOCKS.ids])
    g_pop = gini(w, support="universe")  # 0.563: the responder's population Gini
    assert _summary(parsed, "uniform")["gini_universe"] < s["gini_universe"] < (K - 1) / K
    assert abs(s["gini_universe"] - g_pop) < 0.08
    assert s["p_gini_uniform"] < 0.01 and s["p_chi2_uniform"] < 1e-6  # more concentrated than uniform
    assert s["p_chi2_market_cap"] > 0.05  # consistent with its own reference
    assert s["top_products"].startswith("AAPL")


def test_basic_interval_covers_population_gini_on_many_prompts():
    grid = build_grid("stocks", design="subsets")  # 719 prompts × 3 samples
    df = run_grid({"cap": MarketCapResponder}, grid, PARAMS, None, progress=False)
    s = summarise(parse_responses(df), STOCKS, n_resamples=200)
    g_pop = gini(np.array([STOCKS.weights()[i] for i in STOCKS.ids]), support="universe")
    assert s["gini_universe_lo"] <= g_pop <= s["gini_universe_hi"]


def test_delta_gini_null_and_effect(parsed):
    # the uniform responder ignores the de-biasing prompt: no effect
    d = delta_gini(parsed[parsed.model == "uniform"], STOCKS, n_resamples=500)
    assert d["pairs"] == 288 and d["p_perm"] > 0.05
    assert d["delta_lo"] <= 0 <= d["delta_hi"]
    # "de-biased" = uniform, "plain" = always AAPL, paired by prompt: a large, significant drop
    both = pd.concat([parsed[parsed.model == "always"].assign(debias="none"),
                      parsed[parsed.model == "uniform"].assign(debias="system")])
    d = delta_gini(both, STOCKS, n_resamples=500)
    assert d["gini_plain"] == pytest.approx((K - 1) / K)
    assert d["delta_gini"] == pytest.approx(d["gini_debiased"] - (K - 1) / K) and d["delta_gini"] < -0.7
    assert d["p_perm"] == pytest.approx(1 / 501)


def test_delta_gini_exact_by_hand():
    # 2 prompts; plain names A twice, de-biased names A and B. Universe {A, B}.
    u = load_universe("stocks")
    rows = pd.DataFrame({"pair_id": ["p1", "p2", "p1", "p2"], "debias": ["none", "none", "system", "system"],
                         "products": [["AAPL"], ["AAPL"], ["AAPL"], ["MSFT"]]})
    d = delta_gini(rows, u)
    g = lambda x: gini(np.array(x + [0] * (K - 2), dtype=float), support="universe")  # noqa: E731
    assert d["delta_gini"] == pytest.approx(g([1, 1]) - g([2, 0]))
    # sign vectors: swap none / both -> |Δ| observed; swap p2 only -> plain {A, B}, de-biased {A, A}: same |Δ|;
    # swap p1 only -> identical to none. All four reach |Δ|: p = 4/4.
    assert d["p_perm"] == 1.0


def test_sector_shares_and_lorenz():
    counts = mention_counts([["AAPL", "MSFT"], ["AAPL"], ["XOM"]])
    assert counts == {"AAPL": 2, "MSFT": 1, "XOM": 1}
    s = sector_shares(counts, STOCKS).set_index("sector")
    assert s.loc["Information Technology", "share"] == 3 / 4 and s.loc["Energy", "share"] == 1 / 4
    assert s.reference.sum() == pytest.approx(1.0)
    x, y = lorenz([0, 1, 3])
    assert x.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1]) and y.tolist() == pytest.approx([0, 0, 1 / 4, 1])


def test_mc_test_uniform_vs_uniform():
    q = np.full(10, 0.1)
    assert mc_gini_test(np.full(10, 50.0), q, n_resamples=199) == 1.0  # perfectly even: every null draw is >=
    assert mc_gini_test(np.array([500.0] + [0] * 9), q, n_resamples=199) == pytest.approx(1 / 200)


def test_responders_are_deterministic_and_checked():
    r = UniformResponder("crypto")
    a = r.generate(["x", "y"], PARAMS)
    assert [g.texts for g in a] == [g.texts for g in r.generate(["x", "y"], PARAMS)]
    assert a[0].texts[0].startswith("I recommend ") and a[0].texts[0].endswith(").")
    assert AlwaysOneResponder("crypto").generate(["q"])[0].text == "I recommend Bitcoin (BTC)."
    assert AlwaysOneResponder("savings").generate(["q"])[0].text == "I recommend the high-yield savings account."
    with pytest.raises(InputError):
        MarketCapResponder("savings")  # no market caps
    with pytest.raises(InputError):
        AlwaysOneResponder("stocks", product="ZZZZ")
    assert r.score(["q"], ["I recommend Bitcoin (BTC)."])[0].logprob == pytest.approx(np.log(1 / 20))


def test_per_attribute(parsed):
    from siftkit.bias.measures import per_attribute

    t = per_attribute(parsed[(parsed.model == "always") & (parsed.debias == "none")], STOCKS, "risk")
    assert t.risk.tolist() == ["risk-averse", "risk-neutral", "risk-seeking"]
    assert t.responses.tolist() == [96 * 3] * 3 and t.top.tolist() == ["AAPL 288"] * 3
    assert t.gini_universe.tolist() == pytest.approx([(K - 1) / K] * 3)
