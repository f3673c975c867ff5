"""From free text to universe products (spec §2 "Parser" [ours]), with a status per response.

Matching, in this order, on the raw text; a span claimed by a longer match is not matched again:

1. **Tickers** (classes whose ids are tickers): ``$AAPL`` (cashtag), ``(AAPL)`` or ``(NASDAQ: AAPL)``
   (parentheses), and a bare upper-case word of 3 or more characters equal to a ticker. Tickers of 1-2 characters
   ("V", "MA", "T", "GE") count **only** with a cashtag or in parentheses (spec §5.3: "A", "ALL", "IT", "ON" are
   words). A cashtag or parenthesised ticker-shaped token that is not in the universe is an **unknown product**,
   kept as ``?TOKEN`` (except common abbreviations such as USD, ETF, CEO).
2. **Names and aliases** (longest first), case-insensitive, whole words, and the first letter as written in the
   universe must be upper case in the text when it is upper case there ("Apple", not "apple pie").
3. **Fuzzy names** for misspellings: each run of 1-3 capitalised words not already matched is compared with every
   alias of 6 or more characters by :func:`siftkit.metrics.fuzzy_match` with scorer ``ratio`` and threshold
   :data:`FUZZY_THRESHOLD` (after its normalisation: accents and punctuation removed, lower case).

Status [ours]:

* ``valid``: at least one product (known or unknown), no hedge phrase;
* ``hedged``: at least one product and a hedge phrase ("not financial advice", "consult a financial advisor", ...);
* ``refusal``: no product and a refusal or hedge phrase ("I cannot", "as an AI", "consult a financial advisor");
* ``unparseable``: no product and neither.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from siftkit.bias.universe import Universe
from siftkit.metrics.fuzzy import fuzzy_match

FUZZY_THRESHOLD = 0.85
"""Minimum rapidfuzz ``ratio`` (0-1) for a misspelt name [ours]: "Microsfot" vs "Microsoft" scores 0.89."""
STATUSES = ("valid", "hedged", "refusal", "unparseable")
_NOT_PRODUCTS = frozenset({"USD", "EUR", "CHF", "GBP", "ETF", "ETFS", "CEO", "IPO", "AI", "US", "USA", "EU", "UK",
                           "NYSE", "NASDAQ", "S&P", "GDP", "APY", "APR", "FDIC", "IRA", "ROI", "ESG", "REIT", "NAV",
                           "CD", "CDS", "NOTE", "I", "A"})
_REFUSAL = re.compile(r"\b(i (cannot|can ?not|can't|won't|am unable|'m unable|am not able|'m not able)|"
                      r"as an ai|i do not (give|provide)|i don't (give|provide))\b", re.I)
_HEDGE = re.compile(r"(not (a )?financial advi[cs]e|financial advis[oe]r|do your own research|consult(ing)? (a|with|"
                    r"your)|past performance|no guarantee|i'?m not a|i am not a|professional advice)", re.I)
_TICKER = r"[A-Z][A-Z0-9]{0,5}(?:[.\-][A-Z])?"
_CASHTAG = re.compile(r"\$(" + _TICKER + r")\b")
_PAREN = re.compile(r"\((?:[A-Za-z]+\s*:\s*)?(" + _TICKER + r")\)")
_BARE = re.compile(r"(?<![\w$.\-])(" + _TICKER + r")(?![\w\-]|\.[A-Za-z])")
_CAPWORDS = re.compile(r"[A-Z][\w'&\-]*(?:\s+[A-Z][\w'&\-]*){0,2}")


@dataclass
class Parsed:
    """One response, parsed."""

    status: str
    products: list[str] = field(default_factory=list)
    """Universe ids in order of first mention; unknown products as ``?TOKEN``."""
    fuzzy: list[str] = field(default_factory=list)
    """Products found only by fuzzy matching."""

    @property
    def known(self) -> list[str]:
        return [p for p in self.products if not p.startswith("?")]

    @property
    def unknown(self) -> list[str]:
        return [p for p in self.products if p.startswith("?")]


class Parser:
    """A parser for one universe (the alias patterns are compiled once).

    Example:
        >>> from siftkit.bias.universe import load_universe
        >>> p = Parser(load_universe("stocks"))
        >>> p("Buy Apple (AAPL), $V and some Microsfot. Not financial advice.")
        Parsed(status='hedged', products=['AAPL', 'V', 'MSFT'], fuzzy=['MSFT'])
    """

    def __init__(self, universe: Universe, fuzzy_threshold: float = FUZZY_THRESHOLD):
        self.universe, self.fuzzy_threshold = universe, fuzzy_threshold
        self.tickers = {p.id.upper(): p.id for p in universe.products} if universe.tickers else {}
        for p in universe.products:  # ticker-shaped aliases ("GOOG", "BRK-B") count as tickers too
            for a in p.aliases:
                if universe.tickers and re.fullmatch(_TICKER, a) and a.isupper():
                    self.tickers.setdefault(a, p.id)
        names = sorted({(a, p.id) for p in universe.products for a in p.aliases if a not in self.tickers},
                       key=lambda x: -len(x[0]))
        self.names = [(re.compile(r"(?<!\w)" + re.escape(a) + r"(?!\w)", re.I), a, pid) for a, pid in names]
        self.fuzzy_choices = [(a, pid) for a, pid in names if len(a) >= 6]

    def __call__(self, text: str) -> Parsed:
        found: list[tuple[int, str]] = []  # (position, product)
        taken = [False] * len(text)

        def claim(start: int, end: int, product: str) -> None:
            if not any(taken[start:end]):
                taken[start:end] = [True] * (end - start)
                found.append((start, product))

        if self.universe.tickers:
            for rx in (_CASHTAG, _PAREN):
                for m in rx.finditer(text):
                    tok = m.group(1)
                    pid = self.tickers.get(tok)
                    if pid is None and tok not in _NOT_PRODUCTS and len(tok) >= 2:
                        pid = f"?{tok}"
                    if pid is not None:
                        claim(m.start(), m.end(), pid)
            for m in _BARE.finditer(text):
                tok = m.group(1)
                if len(tok) >= 3 and tok in self.tickers:
                    claim(m.start(), m.end(), self.tickers[tok])
        for rx, alias, pid in self.names:
            for m in rx.finditer(text):
                if alias[0].isupper() and not text[m.start()].isupper():
                    continue
                claim(m.start(), m.end(), pid)
        fuzzy = []
        if self.fuzzy_choices:
            choices = [a for a, _ in self.fuzzy_choices]
            for m in _CAPWORDS.finditer(text):
                if any(taken[m.start():m.end()]) or len(m.group(0)) < 5:
                    continue
                best = fuzzy_match(m.group(0), choices, scorer="ratio", threshold=self.fuzzy_threshold)
                if best is not None:
                    pid = self.fuzzy_choices[best.index][1]
                    n_before = len(found)
                    claim(m.start(), m.end(), pid)
                    if len(found) > n_before:
                        fuzzy.append(pid)
        products = list(dict.fromkeys(p for _, p in sorted(found)))
        hedge = bool(_HEDGE.search(text))
        if products:
            status = "hedged" if hedge else "valid"
        else:
            status = "refusal" if (hedge or _REFUSAL.search(text)) else "unparseable"
        return Parsed(status, products, [p for p in dict.fromkeys(fuzzy) if p in products])
