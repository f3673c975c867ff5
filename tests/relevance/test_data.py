"""The synthetic five-grade set, the WANDS binary loader (needs ../shared) and the graded loader on fixtures."""

from collections import Counter

import pytest

from siftkit.core.errors import InputError
from siftkit.relevance.data import (
    balanced_sample, exposure_sample, grade_pair, load_graded, load_wands_binary, stratified_sample, synthetic_pairs,
)
from siftkit.relevance.lref import CONFUSION, GRADES

Q = {"cat": "seating", "type": "sofa", "brand": "ashby", "color": "navy"}


def _p(**kw):
    return {"cat": "seating", "type": "sofa", "brand": "ashby", "color": "navy", "material": "linen", "extra": ""} | kw


@pytest.mark.parametrize("product, want", [
    (_p(), "Exact"),
    (_p(color="grey"), "Significant"),
    (_p(color="grey", brand="lumo"), "Marginal"),
    (_p(type="loveseat"), "Marginal"),  # neighbour in the category list: related
    (_p(type="recliner"), "Trivial"),
    (_p(cat="kitchen", type="frying pan"), "Irrelevant"),
])
def test_grading_rule(product, want):
    assert grade_pair(Q, product) == want


def test_synthetic_set_shape_noise_and_split():
    d = synthetic_pairs(n_pairs=2000, n_queries=300, noise_rate=0.15, heldout=0.15, seed=0)
    train, test = d["train"], d["test"]
    assert len(train) + len(test) == 2000
    assert {x["query"] for x in train}.isdisjoint({x["query"] for x in test})
    assert not any(x["noisy"] for x in test) and all(x["label"] == x["gold"] for x in test)
    noisy = [x for x in train if x["noisy"]]
    assert 0.10 < len(noisy) / len(train) < 0.20
    assert all(x["label"] == CONFUSION[x["gold"]] for x in noisy)
    assert set(Counter(x["gold"] for x in train)) == set(GRADES)
    assert {x["stratum"] for x in train} == {"head", "torso", "tail"}
    assert len({x["pid"] for x in train + test}) == 2000
    assert synthetic_pairs(n_pairs=200, n_queries=40, seed=3) == synthetic_pairs(n_pairs=200, n_queries=40, seed=3)


def test_head_traffic_is_optimistic_and_samples_follow_exposure():
    train = synthetic_pairs(seed=0)["train"]
    good = lambda s: sum(x["gold"] in ("Exact", "Significant") for x in train if x["stratum"] == s) / sum(  # noqa
        x["stratum"] == s for x in train)
    assert good("head") > good("tail")
    im = Counter(x["stratum"] for x in exposure_sample(train, 300, seed=0))
    ci = Counter(x["stratum"] for x in balanced_sample(train, 300, seed=0))
    assert im["head"] > im["tail"]
    assert ci == {"head": 100, "torso": 100, "tail": 100}


def test_wands_binary_test_without_the_overlap(shared_data):
    folder = shared_data / "lref" / "wands_chatgpt_goes_shopping"
    test = load_wands_binary(folder, "test")
    assert len(load_wands_binary(folder, "test", dedup=False)) == 2800
    assert len(test) == 2800 - 50
    train = {(x["query"], x["title"]) for x in load_wands_binary(folder, "train")}
    assert not train & {(x["query"], x["title"]) for x in test}
    s = stratified_sample(test, 200, seed=0)
    assert Counter(x["label"] for x in s) == {"Relevant": 100, "Not relevant": 100}


def test_graded_flat_file(tmp_path):
    f = tmp_path / "graded.csv"
    f.write_text("query,product_name,label\nnavy sofa,ashby navy sofa,Exact\nnavy sofa,grey sofa,partial\n"
                 "lamp,frying pan,Irrelevant\n")
    rows = load_graded(f, "wands")
    assert [r["label"] for r in rows] == ["Exact", "Partial", "Irrelevant"]
    assert rows[1]["title"] == "grey sofa" and rows[0]["pid"] == "graded-2"


def test_graded_wands_three_files(tmp_path):
    (tmp_path / "query.csv").write_text("query_id\tquery\tquery_class\n0\tsalon chair\tChairs\n")
    (tmp_path / "product.csv").write_text("product_id\tproduct_name\n7\tbarber chair\n8\tdesk lamp\n")
    (tmp_path / "label.csv").write_text("id\tquery_id\tproduct_id\tlabel\n0\t0\t7\tExact\n1\t0\t8\tIrrelevant\n")
    rows = load_graded(tmp_path / "label.csv", "wands", queries=tmp_path / "query.csv",
                       products=tmp_path / "product.csv")
    assert [(r["query"], r["title"], r["label"]) for r in rows] == [("salon chair", "barber chair", "Exact"),
                                                                    ("salon chair", "desk lamp", "Irrelevant")]


def test_graded_esci_and_errors(tmp_path):
    f = tmp_path / "esci.tsv"
    f.write_text("query\tproduct_title\tesci_label\nphone case\tclear case\tE\nphone case\tcharger\tcomplement\n")
    rows = load_graded(f, "esci", title_col="product_title", label_col="esci_label")
    assert [r["label"] for r in rows] == ["E", "C"]
    bad = tmp_path / "bad.csv"
    bad.write_text("query,product_name,label\nsofa,sofa,Great\n")
    with pytest.raises(InputError, match="bad.csv:2"):
        load_graded(bad, "wands")
