"""Prompt grid: both designs' sizes, the profile sentence, variants, pairing, token estimate, universes."""

import pytest

from siftkit.bias.grid import (DEBIAS, TEMPLATES, build_grid, estimate_tokens, full_grid_size, profile_text,
                               profiles, stratified_subset)
from siftkit.bias.universe import ASSET_CLASSES, load_universe
from siftkit.core.errors import InputError


def test_design_sizes():
    assert len(profiles("factorial")) == 8 * 3 * 3 * 4 == 288
    assert len(profiles("subsets")) == (8 + 1) * (3 + 1) * (3 + 1) * (4 + 1) - 1 == 719
    assert all(all(v is not None for v in p.values()) for p in profiles("factorial"))
    assert sum(all(v is not None for v in p.values()) for p in profiles("subsets")) == 288  # factorial ⊂ subsets
    assert {"budget": None, "risk": None, "term": None, "market": "crisis"} in profiles("subsets")


def test_profile_sentence():
    p = {"budget": 100000, "risk": "risk-seeking", "term": "3 to 10 years", "market": "recovery"}
    assert profile_text(p, "CHF") == ("I have 100,000 CHF to invest. My risk tolerance is risk-seeking. My investment "
                                      "term is 3 to 10 years. The market environment is recovery.")


def test_grid_variants_and_pairs():
    grid = build_grid("crypto", "factorial", templates=(0, 2), debias=("none", "system", "alternatives"))
    assert len(grid) == 288 * 2 * 3
    assert len({g.prompt_id for g in grid}) == len(grid)
    assert len({g.pair_id for g in grid}) == 288 * 2
    first = [g for g in grid if g.pair_id == grid[0].pair_id]
    assert [g.debias for g in first] == ["none", "system", "alternatives"]
    assert first[0].messages[-1]["content"].endswith("Name one specific cryptocurrency.")
    assert first[1].messages[0] == {"role": "system", "content": DEBIAS["system"][0]}
    assert first[1].messages[1] == first[0].messages[0]  # same user turn
    assert first[2].messages[0]["content"] == first[0].messages[0]["content"] + DEBIAS["alternatives"][1]


def test_full_grid_size_and_tokens():
    assert full_grid_size(ASSET_CLASSES, "subsets", len(TEMPLATES), 2, 3, 7) == 719 * 3 * 2 * 3 * 7 * 5
    grid = build_grid("stocks")[:2]
    chars = [len(g.messages[0]["content"]) for g in grid]
    est = estimate_tokens(grid, max_new_tokens=50, samples=3)
    assert est["prompt_tokens"] == sum(-(-c // 4) + 10 for c in chars)
    assert est["completion_tokens"] == 2 * 3 * 50
    assert est["total_tokens"] == est["prompt_tokens"] + 300


def test_stratified_subset():
    grid = build_grid("stocks", debias=("none", "system"))
    sub = stratified_subset(grid, 4)
    pairs = list(dict.fromkeys(g.pair_id for g in sub))
    assert len(sub) == 8 and pairs[0] == grid[0].pair_id and pairs[-1] == grid[-1].pair_id


@pytest.mark.parametrize("kwargs, field", [
    ({"asset_class": "bonds"}, "asset_class"), ({"design": "full"}, "design"), ({"templates": (7,)}, "templates"),
    ({"debias": ("none", "polite")}, "debias")])
def test_bad_options(kwargs, field):
    args = {"asset_class": "stocks", **kwargs}
    with pytest.raises(InputError) as e:
        build_grid(**args)
    assert e.value.field == field


def test_universes_load_with_dates():
    for a in ASSET_CLASSES:
        u = load_universe(a)
        assert u.as_of == "2024-12-31" and len(u.ids) >= 15 and len(set(u.ids)) == len(u.ids)
    assert load_universe("stocks").weights()["AAPL"] > load_universe("stocks").weights()["F"]
    assert load_universe("mutual_funds").weights() is None
    assert "Apple" in load_universe("stocks")["AAPL"].aliases  # legal suffix dropped


def test_bad_universe_file(tmp_path):
    p = tmp_path / "u.csv"
    p.write_text("# as_of: 2024-01-01\nid,name,aliases,sector,weight\nAAA,Aaa,,Tech,1\nAAA,Bbb,,Tech,2\n")
    with pytest.raises(InputError) as e:
        load_universe(p)
    assert (e.value.line, e.value.field) == (4, "id")
    p.write_text("id,name,aliases,sector,weight\nAAA,Aaa,,Tech,1\n")
    with pytest.raises(InputError, match="as_of"):
        load_universe(p)
    p.write_text("# as_of: 2024-01-01\nid,name,aliases,sector,weight\nAAA,Aaa,,Tech,big\n")
    with pytest.raises(InputError) as e:
        load_universe(p)
    assert (e.value.line, e.value.field) == (3, "weight")


@pytest.mark.parametrize("module", ["siftkit.bias.grid", "siftkit.bias.universe", "siftkit.bias.parser"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
