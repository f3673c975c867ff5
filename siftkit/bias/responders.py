"""Synthetic "models" with known concentration (spec §7.2): small :class:`~siftkit.llm.base.ChatModel` classes.

* :class:`AlwaysOneResponder`: always names the same product: Gini ``(n - 1)/n`` on a universe of ``n``, 0 on its own
  support (``n = 1``).
* :class:`UniformResponder`: one product drawn uniformly from the universe: Gini near 0 (small-sample noise).
* :class:`MarketCapResponder`: one product drawn with probability proportional to its market cap: in between.

Each reply is "I recommend {name} ({id})." for tickered classes, "I recommend the {name}." otherwise, so the parser
is on the path. A draw depends only on (seed, prompt, sample index), also at temperature 0, so replies are
reproducible and cacheable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from siftkit.bias.universe import Universe, load_universe
from siftkit.core.errors import InputError
from siftkit.llm.base import Generation, GenerationParams, Prompt, Score, prompt_key, sha256_text


class _Responder:
    """Shared plumbing: ``p`` the distribution over the universe's products, ``generate`` draws from it."""

    kind = "responder"

    def __init__(self, universe: Universe | str = "stocks"):
        self.universe = load_universe(universe) if isinstance(universe, str) else universe
        self.model_id = f"synthetic-{self.kind}-{self.universe.asset_class}"
        self.p = self._probabilities()  # (n,)

    def _probabilities(self) -> np.ndarray:
        raise TypeError("use a concrete responder")

    @property
    def fingerprint(self) -> str:
        return sha256_text(self.model_id, self.universe.as_of, ",".join(self.universe.ids), repr(self.p.tolist()))

    def reply(self, j: int) -> str:
        prod = self.universe.products[j]
        if self.universe.tickers:
            return f"I recommend {prod.name} ({prod.id})."
        return f"I recommend the {prod.name}."

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams | None = None) -> list[Generation]:
        params = params or GenerationParams()
        out = []
        for prompt in prompts:
            texts = []
            for s in range(params.n):
                # the draw is part of the "model": greedy decoding still varies with the prompt [ours]
                key = sha256_text(prompt_key(prompt), str(params.seed), str(s))
                j = int(np.random.default_rng(int(key[:16], 16)).choice(len(self.p), p=self.p))
                texts.append(self.reply(j))
            out.append(Generation(texts, ["stop"] * params.n, prompt_tokens=0,
                                  completion_tokens=sum(len(t.split()) for t in texts)))
        return out

    def score(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[Score]:
        """log P(continuation): the probability of the product whose reply it is, ``-inf`` for any other text."""
        replies = {self.reply(j): j for j in range(len(self.p))}
        out = []
        for c in continuations:
            j = replies.get(c)
            out.append(Score(math.log(self.p[j]) if j is not None and self.p[j] > 0 else float("-inf")))
        return out


class AlwaysOneResponder(_Responder):
    """Names one product every time (default the universe's first, AAPL for stocks)."""

    kind = "always-one"

    def __init__(self, universe: Universe | str = "stocks", product: str | None = None):
        self.product = product
        super().__init__(universe)
        self.model_id = f"synthetic-always-{self.product}-{self.universe.asset_class}"

    def _probabilities(self) -> np.ndarray:
        ids = self.universe.ids
        self.product = self.product or ids[0]
        if self.product not in ids:
            raise InputError(f"{self.product!r} is not in the {self.universe.asset_class} universe", field="product")
        p = np.zeros(len(ids))
        p[ids.index(self.product)] = 1.0
        return p


class UniformResponder(_Responder):
    """Draws one product uniformly from the universe."""

    kind = "uniform"

    def _probabilities(self) -> np.ndarray:
        n = len(self.universe.products)
        return np.full(n, 1.0 / n)


class MarketCapResponder(_Responder):
    """Draws one product with probability proportional to its weight (market cap); needs a weighted universe."""

    kind = "market-cap"

    def _probabilities(self) -> np.ndarray:
        w = self.universe.weights()
        if w is None:
            raise InputError(f"the {self.universe.asset_class} universe has no market-cap weights", field="weight")
        x = np.array([w[i] for i in self.universe.ids])
        return x / x.sum()


RESPONDERS = {"always-one": AlwaysOneResponder, "uniform": UniformResponder, "market-cap": MarketCapResponder}
"""``synthetic:<name>`` model names on the CLI."""
