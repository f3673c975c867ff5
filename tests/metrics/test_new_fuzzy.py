"""Fuzzy name matching: scorer values by hand (Indel distance), threshold, normalisation, ties."""

import doctest

import pytest

import siftkit.metrics.fuzzy
from siftkit.core.errors import InputError
from siftkit.metrics import fuzzy_match, fuzzy_scores, normalise_text


def test_ratio_is_normalised_indel():
    # "kitten" vs "sitting": LCS "ittn" = 4, Indel distance = 6 + 7 - 2*4 = 5, ratio = 1 - 5/13
    assert fuzzy_scores("kitten", ["sitting"])[0] == pytest.approx(1 - 5 / 13)
    assert fuzzy_scores("Apple Inc.", ["apple inc"])[0] == 1.0  # normalisation removes case and punctuation
    assert fuzzy_scores("Apple Inc.", ["apple inc"], normalise=False)[0] < 1.0


def test_threshold_and_best():
    names = ["Apple Inc.", "Microsoft Corporation", "NVIDIA Corporation"]
    m = fuzzy_match("Microsft Corporation", names, threshold=0.9)
    assert (m.choice, m.index) == ("Microsoft Corporation", 1)
    # LCS = 19 of 19 + 20 characters: 1 - 1/39
    assert m.score == pytest.approx(1 - 1 / 41)
    assert fuzzy_match("Microsft Corporation", names, threshold=0.99) is None
    assert fuzzy_match("anything", [], threshold=0.0) is None


def test_token_scorers_ignore_order():
    assert fuzzy_match("Corporation Microsoft", ["Microsoft Corporation"], scorer="token_sort_ratio").score == 1.0
    assert fuzzy_match("Corporation Microsoft", ["Microsoft Corporation"], scorer="ratio", threshold=0.0).score < 1.0


def test_ties_take_first_choice():
    m = fuzzy_match("ab", ["ax", "ay"], threshold=0.0)
    assert (m.choice, m.index, m.score) == ("ax", 0, 0.5)


def test_normalisation():
    assert normalise_text("Nestlé  S.A.") == "nestle s a"
    assert normalise_text("L'Oréal") == "l oreal"


def test_bad_input():
    with pytest.raises(InputError):
        fuzzy_match("a", ["a"], scorer="levenshtein")
    with pytest.raises(InputError):
        fuzzy_match("a", ["a"], threshold=80)


def test_docstring_examples():
    result = doctest.testmod(siftkit.metrics.fuzzy, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
