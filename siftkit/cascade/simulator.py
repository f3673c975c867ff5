"""A RecFlow-shaped simulator: requests with the spec's per-request structure, from a known latent utility.

Items have latent factors tied to their author and category; users have latent factors tied to their profile and
a behaviour sequence drawn from their taste. The utility of item i for request r is

    U = ⟨u, v_i⟩ + b_i + λ_a·log(1 + #seq items by i's author) + λ_c·log(1 + #seq items in i's category)
        + λ_h·bump(hour, category) + ε,   ε ~ N(0, σ_u²)

The sequence terms are a target-attention interaction (what DIN's attention can read and a two-tower dot product
cannot), the hour bump is a non-linear context effect, and ε is utility no model can see. A noisy production
cascade (prerank → 200, coarse → 100, rank → 20 with rank_index, rerank → 10) decides which items reach which
stage; 10 items are sampled per stage pool [spec §6, ours].
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from siftkit.cascade.data import CascadeData
from siftkit.core.errors import InputError

GROUP = 10


@dataclass
class SimConfig:
    """Sizes and difficulty of the simulated RecFlow data.

    > Sizes
    """

    train_days: int = 10
    """Training days, run in date order (spec §7 "main": 10)."""
    requests_per_day: int = 10_000
    """Requests per training day (spec §7 "main": 10 k)."""
    test_requests: int = 10_000
    """Requests of the held-out test day."""
    n_stages: int = 2
    """2 → N = 40 items [rank_pos, rank_neg, coarse_neg, prerank_neg]; 3 → N = 50 with rerank groups."""
    seq_len: int = 50
    """Behaviour sequence length L (spec: 50; "small": 10)."""
    n_users: int = 5_000
    n_items: int = 20_000
    n_authors: int = 1_000
    n_cat1: int = 12
    n_cat2: int = 96
    # > Production cascade
    pool: int = 400
    """Candidates per request before pre-ranking."""
    keep: tuple[int, int, int, int] = (200, 100, 20, 10)
    """Items kept by prerank, coarse, rank and rerank [spec §6]."""
    stage_noise: tuple[float, float, float, float] = (1.5, 1.0, 0.6, 0.4)
    """Std of the production scorers' noise per stage (prerank, coarse, rank, rerank)."""
    # > Utility
    rank: int = 8
    """Dimension of the latent factors."""
    lam_author: float = 0.8
    lam_cat: float = 0.5
    lam_hour: float = 0.6
    sigma_u: float = 0.5
    """Std of the per-(request, item) utility noise ε that no model sees."""
    seed: int = 0
    """Seed of the world (items, users) and of the requests."""

    def __post_init__(self) -> None:
        if self.n_stages not in (2, 3):
            raise InputError("the simulator writes the 2- and 3-stage RecFlow layouts only", field="SimConfig")
        pre, coarse, rank, rerank = self.keep
        if not (self.pool > pre > coarse > rank > rerank == GROUP and pre - coarse >= GROUP
                and self.pool - pre >= GROUP and coarse - rank >= GROUP and rank == 2 * GROUP):
            raise InputError(f"keep={self.keep} and pool={self.pool} cannot fill the groups of 10", field="SimConfig")
        if self.seq_len < 2:
            raise InputError("seq_len must be >= 2", field="SimConfig")

    @property
    def n_per_request(self) -> int:
        return 40 if self.n_stages == 2 else 50


PRESETS: dict[str, SimConfig] = {
    "tiny": SimConfig(train_days=2, requests_per_day=256, test_requests=256, seq_len=10, n_users=300, n_items=2000,
                      n_authors=200),
    "small": SimConfig(train_days=4, requests_per_day=500, test_requests=2000, seq_len=10, n_users=1000,
                       n_items=5000, n_authors=400),
    "mid": SimConfig(train_days=4, requests_per_day=4000, test_requests=3000, seq_len=10),
    "main": SimConfig(train_days=5, requests_per_day=10_000, test_requests=5000, seq_len=10),
    "full": SimConfig(train_days=10, requests_per_day=10_000, test_requests=10_000, seq_len=50),
}


def preset(name: str, **overrides) -> SimConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown config {name!r}; choose from {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)


# ------------------------------------------------------------------------------------------------------ method


def _world(cfg: SimConfig, rs: np.random.Generator) -> dict:
    r = cfg.rank
    g = lambda *s: rs.normal(0, 1 / np.sqrt(r), size=s)  # noqa: E731
    author_pop = 1.0 / np.arange(1, cfg.n_authors + 1) ** 0.8
    author = rs.choice(cfg.n_authors, size=cfg.n_items, p=author_pop / author_pop.sum())
    cat2 = rs.integers(0, cfg.n_cat2, cfg.n_items)
    cat1 = cat2 % cfg.n_cat1
    v = 0.8 * g(cfg.n_authors, r)[author] + 0.8 * g(cfg.n_cat2, r)[cat2] + 0.3 * g(cfg.n_items, r)  # (V, r)
    bias = 0.3 * rs.normal(size=cfg.n_authors)[author] + 0.2 * rs.normal(size=cfg.n_items)
    pop = np.exp(0.5 * rs.normal(size=cfg.n_items))
    item_feats = np.stack([np.arange(cfg.n_items), author, cat1, cat2, rs.integers(0, 4, cfg.n_items),
                           rs.integers(0, 10, cfg.n_items), rs.integers(0, 300, cfg.n_items),
                           rs.integers(0, 8, cfg.n_items)], 1) + 1  # (V, 8), ids shifted +1
    age, gender, prov, act = (rs.integers(0, k, cfg.n_users) for k in (8, 3, 32, 6))
    u = 0.9 * g(cfg.n_users, r) + 0.8 * g(8, r)[age] + 0.5 * g(32, r)[prov]  # (U, r)
    user_feats = np.stack([np.arange(cfg.n_users), age, gender, prov, act], 1) + 1  # (U, 5)
    # behaviour sequences: L items drawn by taste from 300 random items; per-user length in [L/2, L], left-padded
    cand = rs.integers(0, cfg.n_items, (cfg.n_users, 300))  # (U, 300)
    logit = 3.0 * np.einsum("ur,ucr->uc", u, v[cand])  # (U, 300)
    gumbel = logit - np.log(-np.log(rs.uniform(size=logit.shape)))
    seq_items = np.take_along_axis(cand, np.argsort(-gumbel, 1)[:, : cfg.seq_len], 1)  # (U, L)
    length = rs.integers(cfg.seq_len // 2, cfg.seq_len + 1, cfg.n_users)
    valid = np.arange(cfg.seq_len)[None, :] >= (cfg.seq_len - length)[:, None]  # (U, L) left padding
    seq_table = item_feats[seq_items][:, :, :5] * valid[..., None]  # (U, L, 5)
    a_cnt = np.zeros((cfg.n_users, cfg.n_authors), np.float32)
    c_cnt = np.zeros((cfg.n_users, cfg.n_cat2), np.float32)
    uu = np.repeat(np.arange(cfg.n_users), cfg.seq_len)
    np.add.at(a_cnt, (uu, author[seq_items].ravel()), valid.ravel())
    np.add.at(c_cnt, (uu, cat2[seq_items].ravel()), valid.ravel())
    phase = rs.integers(0, 24, cfg.n_cat1)
    sign = rs.choice([-1.0, 1.0], cfg.n_cat1)
    return dict(v=v, bias=bias, pop=pop, author=author, cat1=cat1, cat2=cat2, item_feats=item_feats, u=u,
                user_feats=user_feats, seq_table=seq_table, a_cnt=a_cnt, c_cnt=c_cnt, phase=phase, sign=sign)


def utility(cfg: SimConfig, w: dict, users: np.ndarray, hours: np.ndarray, items: np.ndarray,
            rs: np.random.Generator) -> np.ndarray:
    """U for each (request, item): users (C,), hours (C,), items (C, P) → (C, P)."""
    dot = np.einsum("cr,cpr->cp", w["u"][users], w["v"][items])  # (C, P)
    seq_a = np.log1p(w["a_cnt"][users[:, None], w["author"][items]])  # (C, P)
    seq_c = np.log1p(w["c_cnt"][users[:, None], w["cat2"][items]])  # (C, P)
    c1 = w["cat1"][items]  # (C, P)
    dist = np.abs(hours[:, None] - w["phase"][c1])
    bump = w["sign"][c1] * (np.minimum(dist, 24 - dist) <= 3)  # (C, P)
    eps = rs.normal(0, cfg.sigma_u, items.shape)
    return (dot + w["bias"][items] + cfg.lam_author * seq_a + cfg.lam_cat * seq_c + cfg.lam_hour * bump
            + eps).astype(np.float32)


def _take_random(rs, sets: np.ndarray, k: int) -> np.ndarray:
    """k random columns of each row of ``sets`` (C, M) → (C, k)."""
    keys = rs.uniform(size=sets.shape)
    return np.take_along_axis(sets, np.argsort(keys, 1)[:, :k], 1)


def _top(score: np.ndarray, cols: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Split columns ``cols`` (C, M) by ``score`` (C, M): the top k sorted descending, and the rest."""
    order = np.argsort(-score, 1)
    s = np.take_along_axis(cols, order, 1)
    return s[:, :k], s[:, k:]


def _requests(cfg: SimConfig, w: dict, n: int, rs: np.random.Generator) -> dict:
    users = rs.integers(0, cfg.n_users, n)
    ctx = np.stack([rs.integers(0, 24, n), rs.integers(0, 5, n), rs.integers(0, 4, n)], 1)  # (n, 3)
    logp = np.log(w["pop"])
    out = {k: [] for k in ("ctx", "uid", "item", "labels", "utility")}
    pre, coarse, rank_k, rerank = cfg.keep
    sig = cfg.stage_noise
    for start in range(0, n, 1000):
        c = min(1000, n - start)
        us, hrs = users[start:start + c], ctx[start:start + c, 0]
        gum = logp[None, :] - np.log(-np.log(rs.uniform(size=(c, cfg.n_items))))
        pool = np.argpartition(-gum, cfg.pool, 1)[:, : cfg.pool]  # (c, P) weighted sampling w/o replacement
        util = utility(cfg, w, us, hrs, pool, rs)  # (c, P)
        col = np.broadcast_to(np.arange(cfg.pool), pool.shape)
        noisy = lambda cols, s: np.take_along_axis(util, cols, 1) + rs.normal(0, s, cols.shape)  # noqa: E731
        pre_in, pre_out = _top(noisy(col, sig[0]), col, pre)
        co_in, co_out = _top(noisy(pre_in, sig[1]), pre_in, coarse)
        rk_in, rk_out = _top(noisy(co_in, sig[2]), co_in, rank_k)  # rk_in sorted: rank_index 0..19
        if cfg.n_stages == 2:
            pick = np.argsort(rs.uniform(size=rk_in.shape), 1)[:, :GROUP]  # 10 of the 20 rank winners
            pos = np.take_along_axis(rk_in, pick, 1)
            pos_lab = 30.0 - pick
            groups = [pos, _take_random(rs, rk_out, GROUP), _take_random(rs, co_out, GROUP),
                      _take_random(rs, pre_out, GROUP)]
            labs = [pos_lab] + [np.full((c, GROUP), 30.0 - d) for d in (23, 24, 25)]
        else:
            rr_in, rr_out = _top(noisy(rk_in, sig[3]), rk_in, rerank)  # rerank_index 0..9
            groups = [rr_in, rr_out, _take_random(rs, rk_out, GROUP), _take_random(rs, co_out, GROUP),
                      _take_random(rs, pre_out, GROUP)]
            labs = [np.broadcast_to(30.0 - np.arange(GROUP), (c, GROUP))] + [
                np.full((c, GROUP), 30.0 - d) for d in (22, 23, 24, 25)]
        cols = np.concatenate(groups, 1)  # (c, N)
        out["item"].append(np.take_along_axis(pool, cols, 1).astype(np.int32))
        out["utility"].append(np.take_along_axis(util, cols, 1))
        out["labels"].append(np.concatenate(labs, 1).astype(np.float32))
    return {"ctx": (ctx + 1).astype(np.int32), "uid": users.astype(np.int32),
            **{k: np.concatenate(v) for k, v in out.items() if v}}


def simulate(cfg: SimConfig) -> tuple[CascadeData, CascadeData]:
    """Build the world, ``train_days`` × ``requests_per_day`` training requests and one test day.

    Returns:
        (train, test) :class:`CascadeData`; ``train.day`` runs 0..train_days−1, the test day is ``train_days``.
    """
    rs = np.random.default_rng(cfg.seed)
    w = _world(cfg, rs)
    vocab = {"ctx": [24, 5, 4], "user": [int(x) for x in w["user_feats"].max(0)],
             "item": [int(x) for x in w["item_feats"].max(0)]}

    def make(n: int, day0: int, days: int) -> CascadeData:
        req = _requests(cfg, w, n * days, rs)
        day = np.repeat(np.arange(day0, day0 + days), n).astype(np.int32)
        return CascadeData(req["ctx"], req["uid"], req["uid"].copy(), req["item"], req["labels"], req["utility"],
                           day, w["user_feats"].astype(np.int32), w["seq_table"].astype(np.int32),
                           w["item_feats"].astype(np.int32), vocab)

    return make(cfg.requests_per_day, 0, cfg.train_days), make(cfg.test_requests, cfg.train_days, 1)
