"""The product-bias benchmark on the runner: its grid, a synthetic cell computed from scratch and then from the
response cache (same replies), and the page's claims section from those cells."""

import pytest

from benchmarks import product_bias as pb
from benchmarks.runner import find


@pytest.fixture
def cfg():
    return find("product_bias").load_config("cpu")


def test_grid_is_the_old_conditions(cfg):
    g = pb.grid(cfg)
    assert len(g) == 4 + 12 * 3  # SmolLM2: seed 0 of 4 conditions; 3 responders × 2 classes × 2 variants × 3 seeds
    assert {"condition": "smollm2|stocks|none", "seed": 0} in g
    assert (cfg.samples, cfg.temperature, cfg.top_p, cfg.max_new_tokens, cfg.engine) == (3, 0.7, 0.95, 40, "ct2")


def test_synthetic_cell_from_scratch_then_from_the_cache(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("SIFTKIT_HOME", str(tmp_path))
    params = {"condition": "synthetic:always-one|crypto|none", "seed": 0}
    first = pb.cell(cfg, params)
    assert (first["prompts"], first["cached"]) == (cfg.crypto_profiles, 0)
    assert len(first["replies"]) == cfg.crypto_profiles * cfg.samples
    assert all("BTC" in text for _, _, text, _ in first["replies"])  # always the first product of the universe
    again = pb.cell(cfg, params)
    assert again["cached"] == len(again["replies"]) and again["replies"] == first["replies"]


def test_page_checks_the_synthetic_claims_on_its_cells(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("SIFTKIT_HOME", str(tmp_path))
    cfg = cfg.model_copy(update={"n_resamples": 50})
    recs = []
    for debias in ("none", "system"):
        params = {"condition": f"synthetic:always-one|crypto|{debias}", "seed": 0}
        recs.append({"params": params, "metrics": pb.cell(cfg, params), "seconds": 1.0, "status": "fresh",
                     "experiment": "product_bias"})
    text = pb.page(cfg, recs)
    # always BTC over 20 coins: universe Gini (n − 1)/n = 19/20, own Gini 0 over n = 1 product
    assert "| syn:always-one | crypto | none | 1 | 288 |" in text and "0.950 [0.950, 0.950] (20)" in text
    assert "| always-one: universe Gini = (n−1)/n = 19/20, own Gini 0 with n = 1 | synthetic:always-one|crypto|none " \
           "| 1 of 1 hold | OK |" in text
    # and the Δ-Gini check: a responder that ignores the prompt gives Δ = 0 (p = 1) on the one pair of cells
    assert "synthetic Δ-Gini tests: 0 of 1 with p < 0.05" in text and "**2 of 2 OK**" in text


def test_claim_records_measure_the_stored_replies(cfg, tmp_path, monkeypatch):
    """The measures benchmarks/claims/product_bias.yaml reads, on hand-checkable responders: always AAPL (an IT stock
    and a leader) and always BTC."""
    monkeypatch.setenv("SIFTKIT_HOME", str(tmp_path))
    recs = []
    for cond in ("synthetic:always-one|stocks|none", "synthetic:always-one|crypto|none"):
        params = {"condition": cond, "seed": 0}
        recs.append({"params": params, "metrics": pb.cell(cfg, params), "status": "fresh"})
    stocks, crypto = (r["metrics"] for r in pb.claim_records(cfg, recs))
    assert stocks["mentions"] == 288 * cfg.samples and crypto["mentions"] == cfg.crypto_profiles * cfg.samples
    assert stocks["leaders_share"] == 1.0 and stocks["tech_share"] == 1.0 and crypto["leaders_share"] == 1.0
    assert "tech_share" not in crypto
    k = 67  # the stock universe: one product named every time gives the maximal universe Gini (k − 1)/k
    assert stocks["gini_universe"] == pytest.approx((k - 1) / k)
    # market-cap draws of the same 864 mentions are far less concentrated, so the excess is large and positive
    assert 0.2 < stocks["gini_excess_market_cap"] < (k - 1) / k
    assert stocks["replies"] == recs[0]["metrics"]["replies"]  # the stored metrics are kept


def test_the_claims_file_reads_and_the_runner_hook_is_set():
    from benchmarks.claims import load_claims

    claims = load_claims("product_bias")
    assert [c.id for c in claims] == ["stocks-concentrated-beyond-market-cap", "bias-persists-after-debiasing",
                                      "aapl-msft-on-top", "tech-over-weighted", "crypto-btc-eth"]
    assert all(c.comparisons[0].a.fixed and c.comparisons[0].a.where["condition"].startswith("smollm2|")
               for c in claims)
    assert find("product_bias").claims_metrics is pb.claim_records
