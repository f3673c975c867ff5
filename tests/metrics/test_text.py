"""ROUGE-1/2/L F1 on hand-computed pairs."""

import pytest

from siftkit.core.errors import InputError
from siftkit.metrics.text import rouge, rouge_per_pair


def _f1(p, r):
    return 2 * p * r / (p + r)


# pair 1: 6 tokens each; shared unigrams the x2, cat, on, mat; shared bigrams the-cat, on-the, the-mat (of 5);
#         LCS "the cat on the mat" = 5
# pair 2: candidate "a b c" (3 tokens, 2 bigrams) against reference "a b c d e" (5 tokens, 4 bigrams)
CANDS = ["the cat sat on the mat", "a b c"]
REFS = ["the cat is on the mat", "a b c d e"]


def test_per_pair_hand():
    s = rouge_per_pair(CANDS, REFS)
    assert s["rouge1"].tolist() == pytest.approx([_f1(5 / 6, 5 / 6), _f1(3 / 3, 3 / 5)])
    assert s["rouge2"].tolist() == pytest.approx([_f1(3 / 5, 3 / 5), _f1(2 / 2, 2 / 4)])
    assert s["rougeL"].tolist() == pytest.approx([_f1(5 / 6, 5 / 6), _f1(3 / 3, 3 / 5)])


def test_mean_hand():
    m = rouge(CANDS, REFS)
    assert m["rouge1"] == pytest.approx((_f1(5 / 6, 5 / 6) + _f1(1, 3 / 5)) / 2)
    assert m["rouge2"] == pytest.approx((_f1(3 / 5, 3 / 5) + _f1(1, 1 / 2)) / 2)
    assert m["rougeL"] == pytest.approx((_f1(5 / 6, 5 / 6) + _f1(1, 3 / 5)) / 2)


def test_tokenisation_stemming_and_multi_reference():
    assert rouge(["The CAT, sat!"], ["the cat sat"])["rouge1"] == 1.0
    assert rouge(["cats running"], ["cat run"])["rouge1"] == 0.0
    assert rouge(["cats running"], ["cat run"], use_stemmer=True)["rouge1"] == 1.0
    assert rouge(["a b c"], [["x y z", "a b c d e"]])["rouge1"] == pytest.approx(_f1(1, 3 / 5))
    assert rouge(["", "x"], ["a", "y"])["rouge1"] == 0.0


def test_bad_input():
    with pytest.raises(InputError):
        rouge(["a"], ["a", "b"])
    with pytest.raises(InputError):
        rouge([], [])
    with pytest.raises(InputError):
        rouge("a b", "a b")
