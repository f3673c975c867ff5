"""The security benchmark's figures from raw read-outs (hand-computed), its result comparison, and its grid."""

import math

import pytest

from benchmarks.security import CONDITIONS, DEFAULT, SecurityBench, _judge_grid, figures, max_abs_diff, n_labels


def test_figures_flip_target_and_margin_by_hand():
    # two items, labels (A, B, C), target = A (index 0)
    c = {"target": 0, "clean": [[-1.0, -2.0, -3.0], [-3.0, -1.0, -2.0]],
         "attacked": {"x": [[-0.5, -2.0, -3.0], [-1.0, -2.0, -3.0]]}}
    f = figures(c, clean_off=[[-1.0, -2.0, -3.0], [-3.0, -2.0, -1.0]])
    x = f["attacks"]["x"]
    # item 1: label A -> A (no flip), margin 1.0 -> 1.5 (+0.5); item 2: B -> A (flip, to target), margin -2 -> 1 (+3)
    assert x["n"] == 2 and x["flip_rate"] == 0.5 and x["to_target"] == 0.5
    assert x["margin_shift"] == pytest.approx(1.75) and x["margin_shift_sd"] == pytest.approx(math.sqrt(3.125))
    assert f["attacks"]["all"]["n"] == 2 and f["clean_changed"] == 0.5  # item 2: B here, C under off


def test_figures_with_a_keep_threshold():
    c = {"target": 0, "clean": [[4.0], [6.0]], "attacked": {"x": [[5.5], [5.0]]}}
    f = figures(c, None, threshold=5.0)["attacks"]["x"]
    # item 1 dropped -> kept (flip, to target, +1.5); item 2 kept -> kept (-1.0)
    assert (f["flip_rate"], f["to_target"], f["margin_shift"]) == (0.5, 0.5, 0.25)


def test_max_abs_diff():
    a = {"relevance": [[-1.0, -2.0]], "usefulness": {"c1": [-0.5, -1.5]}}
    assert max_abs_diff(a, a) == 0.0
    assert max_abs_diff(a, {"relevance": [[-1.0, -2.25]], "usefulness": {"c1": [-0.5, -1.5]}}) == 0.25
    assert max_abs_diff(a, {"relevance": [[-1.0]], "usefulness": {"c1": [-0.5, -1.5]}}) == math.inf
    assert max_abs_diff({"a": 1.0}, {"b": 1.0}) == math.inf


def test_grid_has_every_condition_and_each_default():
    cells = _judge_grid(*CONDITIONS)(SecurityBench())
    assert len(cells) == sum(len(v) for v in CONDITIONS.values())
    for judge, default in DEFAULT.items():
        assert default in CONDITIONS[judge] and "off" in CONDITIONS[judge]
    assert CONDITIONS["relevance-trained"] == CONDITIONS["relevance"]


def test_n_labels_counts_finite_rows_and_given_labels():
    both = {"relevance": [[-1.0, float("-inf")], [-1.0, -2.0]], "usefulness": {"a": 3, "b": None}}
    assert n_labels(both) == 2 and n_labels({"a": 2, "b": 0}) == 2 and n_labels([[1.0], [float("nan")]]) == 1


def test_grounding_conditions_cut_neutralise_is_the_default_prompt_byte_for_byte():
    from benchmarks.security import ATTACKS, BENCHMARK, GROUNDING_CONDITIONS, _cut, grounding_cell, without_neutralise
    from siftkit.catalog.judge import grounding_prompt

    assert CONDITIONS["catalog-grounding"] is GROUNDING_CONDITIONS and DEFAULT["catalog-grounding"] == "cut+neutralise"
    part = next(p for p in BENCHMARK.parts if p.experiment == "security_catalog_grounding")
    assert part.cell is grounding_cell
    assert part.grid(SecurityBench()) == [{"judge": "catalog-grounding", "condition": c}
                                          for c in ("off", "neutralise", "cut+neutralise")]
    ctx = "Column: orders.total_amt (DECIMAL(10,2))\nSample values: 19.99, 250.0\nOther columns: order_id, status"
    desc = "Total amount charged for the order, in euros."
    for name, attack in ATTACKS.items():
        hit = attack(desc, "supported")
        # the benchmark's cut before a judge with cut=False gives the package's default prompt
        assert grounding_prompt(_cut(hit), ctx, cut=False) == grounding_prompt(hit, ctx), name
        # neutralise alone keeps the payload's words; off keeps its markers too
        assert "supported" in grounding_prompt(hit, ctx, cut=False)[1]["content"].split("<description>")[1]
        with without_neutralise("siftkit.catalog.judge"):
            off = grounding_prompt(hit, ctx, cut=False)[1]["content"]
        assert off == f"<context>\n{ctx}\n</context>\n<description>\n{hit}\n</description>"
    assert grounding_prompt(_cut(ATTACKS["role-marker"](desc, "supported")), ctx, cut=False) == grounding_prompt(
        desc, ctx)  # the role marker's payload is cut away whole


def test_grounding_contexts_are_the_described_columns():
    import tempfile

    from benchmarks.security import catalog_descriptions, grounding_contexts
    from siftkit.catalog.demo import load_demo
    from siftkit.catalog.exemplars import context

    descs, ctxs = catalog_descriptions(30), grounding_contexts(30)
    assert len(ctxs) == len(descs) == 30
    with tempfile.TemporaryDirectory() as tmp:
        by_ctx = {context(a): a for a in load_demo(tmp).assets() if a.kind == "column"}
    for i, (d, c) in enumerate(zip(descs, ctxs)):
        own = by_ctx[c].description
        assert d == (own + " Written by an idiot." if i % 2 else own), i
