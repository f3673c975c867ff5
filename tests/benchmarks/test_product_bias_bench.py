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
