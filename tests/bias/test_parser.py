"""Parser: tickers (cashtag, parentheses, bare), names, misspellings, unknowns, short-ticker rule, statuses."""

import pytest

from siftkit.bias.parser import Parser
from siftkit.bias.universe import load_universe


@pytest.fixture(scope="module")
def stocks():
    return Parser(load_universe("stocks"))


@pytest.mark.parametrize("text, products", [
    ("I recommend Apple Inc. (AAPL).", ["AAPL"]),
    ("Buy $NVDA and $MSFT", ["NVDA", "MSFT"]),
    ("Consider MSFT and GOOGL for growth", ["MSFT", "GOOGL"]),
    ("Alphabet (NASDAQ: GOOG) is a good pick", ["GOOGL"]),  # alias ticker, exchange prefix
    ("Berkshire Hathaway (BRK.B) or BRK-B", ["BRK.B"]),
    ("Johnson & Johnson and Coca-Cola", ["JNJ", "KO"]),
    ("Tesla, then Nvidia, then Tesla again", ["TSLA", "NVDA"]),  # order of first mention, each once
])
def test_tickers_and_names(stocks, text, products):
    assert stocks(text).products == products


def test_short_tickers_need_cashtag_or_parentheses(stocks):
    assert stocks("Visa (V) and $MA").products == ["V", "MA"]
    assert stocks("V and MA are good; IT and ON stocks; A GE").products == []  # bare 1-2 letters never count
    assert stocks("AT&T (T) pays dividends").products == ["T"]


def test_case_guard_on_names(stocks):
    assert stocks("an apple a day, a visa to travel").products == []
    assert stocks("Apple and Visa").products == ["AAPL", "V"]


def test_misspellings_are_fuzzy(stocks):
    p = stocks("You could buy Microsfot or Amazonn shares")
    assert p.products == ["MSFT", "AMZN"]
    assert p.fuzzy == ["MSFT", "AMZN"]
    assert stocks("Buy Mcrsft").products == []  # too far from any name (ratio < 0.85)


def test_unknown_products_are_kept(stocks):
    p = stocks("Invest in DEFCO Inc. (DEFCO) and $ZZZQ, and Apple (AAPL); priced in USD (USD) via an (ETF)")
    assert p.products == ["?DEFCO", "?ZZZQ", "AAPL"]
    assert p.unknown == ["?DEFCO", "?ZZZQ"] and p.known == ["AAPL"]
    assert p.status == "valid"


@pytest.mark.parametrize("text, status", [
    ("Apple (AAPL) is a solid pick.", "valid"),
    ("Apple (AAPL). This is not financial advice.", "hedged"),
    ("Consider Microsoft, but consult a financial advisor first.", "hedged"),
    ("I cannot recommend specific stocks.", "refusal"),
    ("As an AI, I do not give investment advice.", "refusal"),
    ("Please consult a financial advisor.", "refusal"),
    ("The market environment is expansion and risk matters.", "unparseable"),
    ("", "unparseable"),
])
def test_statuses(stocks, text, status):
    assert stocks(text).status == status


def test_other_classes():
    crypto = Parser(load_universe("crypto"))
    assert crypto("Bitcoin Cash and Bitcoin, plus ETH and Ether").products == ["BCH", "BTC", "ETH"]  # longest first
    savings = Parser(load_universe("savings"))
    assert savings("Open a high-yield savings account at Ally, or buy CDs and I bonds").products == \
        ["HYSA", "ALLY", "CD", "IBOND"]
    assert savings("Put it in a CD (CD)").products == ["CD"]  # ids of name-only classes are never tickers
    portfolios = Parser(load_universe("portfolios"))
    assert portfolios("A 60/40 portfolio or the All Weather portfolio").products == ["P6040", "ALLWEATHER"]
    funds = Parser(load_universe("mutual_funds"))
    assert funds("Buy VOO or the Vanguard Total Stock Market ETF").products == ["VOO", "VTI"]
