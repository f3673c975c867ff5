"""Every cascade loss against an independent transcription of the authors' formula (github.com/kwai/LCRON,
deep_components/loss/two_stage/*.py and three_stage/*.py), in value and gradient.

The references below are written from the formulas, request by request and row by row in plain torch (float64),
and never call siftkit's code. Inputs: RecFlow-shaped groups of 10 (positives first, then one tied block per
negative group), positives in sorted or shuffled order, tied logits where the loss is defined on ties, non-unit
uncertainty weights. Tolerance: relative 1e-5 on the value and on the largest gradient entry.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from siftkit.cascade.baselines import CascadeLoss, fs_ranknet_loss, icc_loss, rankflow_loss
from siftkit.cascade.loss import LcronConfig, lcron_loss
from siftkit.cascade.train import TrainConfig
from siftkit.core.errors import InputError

B, G, EPS = 3, 10, 1e-6
QUOTAS = {2: [30, 20], 3: [40, 30, 20]}
NEG_LABELS = {2: (7.0, 6.0, 5.0), 3: (8.0, 7.0, 6.0, 5.0)}  # the simulator's tied negative groups


# ------------------------------------------------------------------------------------------------ inputs


def make_labels(n_stages: int, shuffled: bool, seed: int) -> torch.Tensor:
    """(B, N) labels: 10 positives (distinct values, sorted or shuffled), then tied negative blocks of 10."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(B):
        if n_stages == 2:  # the simulator's two-stage positives: 30 − (10 of the 20 rank slots)
            pos = 30.0 - torch.randperm(20, generator=g)[:G].double()
        else:
            pos = 30.0 - torch.arange(G).double()
        pos = pos[torch.randperm(G, generator=g)] if shuffled else pos.sort(descending=True).values
        rows.append(torch.cat([pos] + [torch.full((G,), v, dtype=torch.float64) for v in NEG_LABELS[n_stages]]))
    return torch.stack(rows)


def make_logits(n_stages: int, seed: int, scale: float = 1.0, ties: bool = False) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + seed)
    n = G * (n_stages + 2)
    out = []
    for _ in range(n_stages):
        s = torch.randn(B, n, generator=g, dtype=torch.float64) * scale
        if ties:  # coarse grid: many exactly tied logits
            s = (s * 4).round() / 4
        out.append(s.requires_grad_())
    return out


def assert_close(siftkit_fn, ref_fn, inputs: list[torch.Tensor]) -> None:
    """Value and gradient (w.r.t. every input) of siftkit's loss and the reference agree to relative 1e-5."""
    val = siftkit_fn()
    grads = torch.autograd.grad(val, inputs, allow_unused=True)
    ref = ref_fn()
    ref_grads = torch.autograd.grad(ref, inputs, allow_unused=True)
    assert float(val.detach()) == pytest.approx(float(ref.detach()), rel=1e-5, abs=1e-12)
    for g, r in zip(grads, ref_grads):
        g = torch.zeros_like(r) if g is None else g
        r = torch.zeros_like(g) if r is None else r
        scale = float(r.abs().max())
        assert scale > 0, "the reference gradient is identically zero: the comparison would be empty"
        assert float((g - r).abs().max()) <= 1e-5 * scale, float((g - r).abs().max()) / scale


CASES = [(n, shuffled, seed) for n in (2, 3) for shuffled in (False, True) for seed in (0, 1)]


# ------------------------------------------------------------------------------------------------ references


def ref_neuralsort(s: torch.Tensor, tau: float) -> torch.Tensor:
    """One request: rows k = 1..n, P[k] = softmax(((n + 1 − 2k)·s − A·1)/τ), A_jl = |s_j − s_l|."""
    n = s.shape[0]
    a1 = torch.stack([(s[j] - s).abs().sum() for j in range(n)])
    return torch.stack([torch.softmax(((n + 1 - 2 * k) * s - a1) / tau, 0) for k in range(1, n + 1)])


def ref_label_matrix(lab: torch.Tensor, binarize: bool) -> torch.Tensor:
    y = ref_neuralsort(lab.float().double(), 1e-4)
    return (y > 1e-3).double() if binarize else y


def ref_lcron(logits, labels, w):
    """LCRON [code]: Σ_i 0.5/w_i²·L_single_i + L_joint + log Π w_i; q = gt_num = 10 everywhere, τ = 50,
    Y binarised in three stages only; L_joint's negative term is −log(1 − Π_i (1 − bot_i))."""
    n_st, n = len(logits), labels.shape[1]
    singles = [0.0] * n_st
    joint = 0.0
    for b in range(B):
        y = ref_label_matrix(labels[b], binarize=n_st == 3)
        y_up, y_down = y[:G].sum(0), y[G:].sum(0)
        up_joint, down_joint = 1.0, 1.0
        for i, s in enumerate(logits):
            p = ref_neuralsort(s[b], 50.0)
            col = p.sum(0).detach() + EPS
            top, bot = p[:G].sum(0) / col, p[G:].sum(0) / col
            single = (-torch.log(top + EPS) * y_up).mean() + (-torch.log(bot + EPS) * y_down).mean()
            singles[i] = singles[i] + single * float(n > G)
            up_joint = up_joint * top
            down_joint = down_joint * (1 - bot)
        neg_y = (1 - y_up).clamp(0, 1)
        joint = joint + (-torch.log(up_joint + EPS) * y_up).mean() + (-torch.log(1 - down_joint + EPS) * neg_y).mean()
    total = joint / B
    for i in range(n_st):
        total = total + 0.5 / w[i] ** 2 * (singles[i] / B)
    prod_w = w[0]
    for i in range(1, n_st):
        prod_w = prod_w * w[i]
    return total + torch.log(prod_w)


def ref_bce(logits, labels):
    """BCE [code]: first stage on all N items, middle stage on the first 40, last stage on the first 20."""
    n = labels.shape[1]
    supports = [n, 2 * G] if len(logits) == 2 else [n, 4 * G, 2 * G]
    total = 0.0
    for s, m in zip(logits, supports):
        acc = 0.0
        for b in range(B):
            for j in range(m):
                t = 1.0 if j < G else 0.0
                acc = acc + (-t * F.logsigmoid(s[b, j]) - (1 - t) * F.logsigmoid(-s[b, j]))
        total = total + acc / (B * m)
    return total


def ref_icc(logits, labels):
    """ICC [code]: κ_i = the k_i-th largest s_i, gathered (gradient flows), gates σ((s − κ)/1e-3);
    2 stages: (1−I₁)s₁ + I₁I₂s₂ with k = 30, 30; 3 stages: (1−I₁)s₁ + 2I₁(1−I₂)s₂ + 4I₁I₂I₃s₃ with k = 40, 30, 30;
    BCE(ŝ_i − ŝ_j, 1[ℓ_i > ℓ_j]) on every pair i < j, divided by B·N·N."""
    n_st, n = len(logits), labels.shape[1]
    ks = [30, 30] if n_st == 2 else [40, 30, 30]
    total = 0.0
    for b in range(B):
        gates = []
        for s, k in zip(logits, ks):
            order = sorted(range(n), key=lambda j: -float(s[b, j].detach()))
            kappa = s[b, order[k - 1]]
            gates.append(torch.sigmoid((s[b] - kappa) / 1e-3))
        if n_st == 2:
            hat = (1 - gates[0]) * logits[0][b] + gates[0] * gates[1] * logits[1][b]
        else:
            hat = ((1 - gates[0]) * logits[0][b] + 2 * gates[0] * (1 - gates[1]) * logits[1][b]
                   + 4 * gates[0] * gates[1] * gates[2] * logits[2][b])
        for i in range(n - 1):
            d = hat[i] - hat[i + 1:]
            t = (labels[b, i] > labels[b, i + 1:]).double()
            total = total + (-t * F.logsigmoid(d) - (1 - t) * F.logsigmoid(-d)).sum()
    return total / (B * n * n)


def _bce_mean(x, t):
    return (-t * F.logsigmoid(x) - (1 - t) * F.logsigmoid(-x)).mean()


def ref_rankflow(logits, labels):
    """RankFlow [code], α = 0. Two stages: BCE(s₁ on all) + BCE(s₂ on T) + MSE(s₁[T], sg s₂[T]), T = top-30 of s₁.
    Three stages: T₁ = top-40 of s₁, T₂ = top-30 of s₂ inside T₁; BCE and MSE on each, plus
    −log σ(mean s₁[top-30 of s₂ in T₁] − mean s₁[bottom-10])
    and −log σ(mean s₂[top-20 of s₃ in T₂] − mean s₂[bottom-10])."""
    n_st, n = len(logits), labels.shape[1]
    y = torch.tensor([1.0] * G + [0.0] * (n - G), dtype=torch.float64)
    total = _bce_mean(logits[0], y.expand(B, n))
    sets = [list(range(n)) for _ in range(B)]
    cut = [30] if n_st == 2 else [40, 30]
    keep_next = [None] if n_st == 2 else [30, 20]
    for i in range(1, n_st):
        bce_terms, mse_terms, rank_terms = [], [], []
        new_sets = []
        for b in range(B):
            up, dn = logits[i - 1][b], logits[i][b]
            t = sorted(sets[b], key=lambda j: -float(up[j].detach()))[:cut[i - 1]]
            new_sets.append(t)
            bce_terms.append(torch.stack([_bce_mean(dn[j], y[j]) for j in t]))
            mse_terms.append(torch.stack([(up[j] - dn[j].detach()) ** 2 for j in t]))
            if keep_next[i - 1] is not None:
                by_dn = sorted(t, key=lambda j: -float(dn[j].detach()))
                k = keep_next[i - 1]
                hi = torch.stack([up[j] for j in by_dn[:k]]).mean()
                lo = torch.stack([up[j] for j in by_dn[k:]]).mean()
                rank_terms.append(-F.logsigmoid(hi - lo))
        total = total + torch.cat(bce_terms).mean() + torch.cat(mse_terms).mean()
        if rank_terms:
            total = total + torch.stack(rank_terms).mean()
        # the next stage's candidate set: top of this stage inside this set
        sets = new_sets
    return total


def ref_fs_ranknet(logits, labels):
    """FS-RankNet [code]: per anchor group (positives, then each negative group but the last) the BCE(s_i − s_j, 1)
    over all its items i against all items j of the lower groups, summed and divided by B·10·(#lower items)."""
    n = labels.shape[1]
    total = 0.0
    for s in logits:
        for a in range(n // G - 1):
            n_lower = n - G * (a + 1)
            acc = 0.0
            for b in range(B):
                for i in range(a * G, (a + 1) * G):
                    acc = acc - F.logsigmoid(s[b, i] - s[b, (a + 1) * G:]).sum()
            total = total + acc / (B * G * n_lower)
    return total


def ref_fs_lambdaloss(logits, labels, topn: int = 30, mu: float = 0.8):
    """FS-LambdaLoss [code]: Σ_ij w_ij·BCE(s_i − s_j, 1[ℓ_i > ℓ_j]) per request, batch mean, summed over stages;
    w_ij = |G_i − G_j|·((1 − μ)u_ij + μv_ij), G = ℓ / IDCG, D(r) = 1/ln(1 + r), ranks by the stage's own score."""
    n = labels.shape[1]

    def disc(r):
        return 1.0 / math.log(1 + r)

    total = 0.0
    for s in logits:
        part = 0.0
        for b in range(B):
            lab = labels[b].tolist()
            order = sorted(range(n), key=lambda j: -float(s[b, j].detach()))
            rank = [0] * n
            for pos, j in enumerate(order):
                rank[j] = pos + 1
            idcg = sum(v * disc(r + 1) for r, v in enumerate(sorted(lab, reverse=True)))
            gain = [v / idcg for v in lab]
            dt = [disc(r) if r <= topn else 0.0 for r in rank]
            for i in range(n):
                w = []
                for j in range(n):
                    d = abs(rank[i] - rank[j])
                    u = abs(disc(d) - disc(d + 1)) if d > 0 and (rank[i] <= topn or rank[j] <= topn) else 0.0
                    w.append(abs(gain[i] - gain[j]) * ((1 - mu) * u + mu * abs(dt[i] - dt[j])))
                w = torch.tensor(w, dtype=torch.float64)
                t = torch.tensor([1.0 if lab[i] > lab[j] else 0.0 for j in range(n)], dtype=torch.float64)
                x = s[b, i] - s[b]
                part = part + (w * (-t * F.logsigmoid(x) - (1 - t) * F.logsigmoid(-x))).sum()
        total = total + part / B
    return total


def ref_arf(logits, labels, w, v2: bool):
    """ARF / ARF-v2 [code], τ = 200, soft Y; stage i with support m_i (the serving quota):
    0.5/w_i²·mean_{k,j}(−log(P + ε)·Y) + L_relax + log w_i. ARF: L_relax = mean_j −log(mean_{k≤m} P[k,j] + ε)·y⁺_j;
    ARF-v2: the column-normalised top/bottom form of L_single with support m."""
    n = labels.shape[1]
    total = 0.0
    for i, (s, m) in enumerate(zip(logits, QUOTAS[len(logits)])):
        glob, relax = 0.0, 0.0
        for b in range(B):
            y = ref_label_matrix(labels[b], binarize=False)
            y_up, y_down = y[:G].sum(0), y[G:].sum(0)
            p = ref_neuralsort(s[b], 200.0)
            glob = glob + (-torch.log(p + EPS) * y).mean()
            if v2:
                col = p.sum(0).detach() + EPS
                relax = relax + ((-torch.log(p[:m].sum(0) / col + EPS) * y_up).mean()
                                 + (-torch.log(p[m:].sum(0) / col + EPS) * y_down).mean()) * float(n > m)
            else:
                relax = relax + (-torch.log(p[:m].mean(0) + EPS) * y_up).mean() * float(n > m)
        total = total + 0.5 / w[i] ** 2 * (glob / B) + relax / B + torch.log(w[i])
    return total


# ------------------------------------------------------------------------------------------------ tests


def _weights(n_st: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(7 + seed)
    return (torch.rand(n_st, generator=g, dtype=torch.float64) - 0.5).requires_grad_()  # log w ∈ (−0.5, 0.5)


@pytest.mark.parametrize("n_st,shuffled,seed", CASES)
def test_lcron(n_st, shuffled, seed):
    labels, logits, log_w = make_labels(n_st, shuffled, seed), make_logits(n_st, seed, ties=seed == 1), \
        _weights(n_st, seed)
    assert_close(lambda: lcron_loss(logits, labels, LcronConfig(), log_w)[0],
                 lambda: ref_lcron(logits, labels, torch.exp(log_w)), logits + [log_w])


@pytest.mark.parametrize("n_st,shuffled,seed", CASES)
def test_bce(n_st, shuffled, seed):
    labels, logits = make_labels(n_st, shuffled, seed), make_logits(n_st, seed, ties=seed == 1)
    assert_close(lambda: CascadeLoss("bce", QUOTAS[n_st])(logits, labels)[0],
                 lambda: ref_bce(logits, labels), logits)


@pytest.mark.parametrize("n_st,shuffled,seed", CASES)
def test_icc(n_st, shuffled, seed):
    labels = make_labels(n_st, shuffled, seed)
    logits = make_logits(n_st, seed, scale=3e-3)  # scores within a few σ-widths of κ: the gates carry gradient
    assert_close(lambda: CascadeLoss("icc", QUOTAS[n_st])(logits, labels)[0],
                 lambda: ref_icc(logits, labels), logits)


@pytest.mark.parametrize("n_st,shuffled,seed", CASES)
def test_rankflow(n_st, shuffled, seed):
    labels, logits = make_labels(n_st, shuffled, seed), make_logits(n_st, seed)
    assert_close(lambda: CascadeLoss("rankflow", QUOTAS[n_st])(logits, labels)[0],
                 lambda: ref_rankflow(logits, labels), logits)


@pytest.mark.parametrize("n_st,shuffled,seed", CASES)
def test_fs_ranknet(n_st, shuffled, seed):
    labels, logits = make_labels(n_st, shuffled, seed), make_logits(n_st, seed, ties=seed == 1)
    assert_close(lambda: CascadeLoss("fs_ranknet", QUOTAS[n_st])(logits, labels)[0],
                 lambda: ref_fs_ranknet(logits, labels), logits)


@pytest.mark.parametrize("n_st,shuffled,seed", [c for c in CASES if c[2] == 0])
def test_fs_lambdaloss(n_st, shuffled, seed):
    labels, logits = make_labels(n_st, shuffled, seed), make_logits(n_st, seed)
    assert_close(lambda: CascadeLoss("fs_lambdaloss", QUOTAS[n_st])(logits, labels)[0],
                 lambda: ref_fs_lambdaloss(logits, labels), logits)


@pytest.mark.parametrize("v2", [False, True])
@pytest.mark.parametrize("n_st,shuffled,seed", CASES)
def test_arf(n_st, shuffled, seed, v2):
    labels, logits = make_labels(n_st, shuffled, seed), make_logits(n_st, seed, ties=seed == 1)
    crit = CascadeLoss("arf_v2" if v2 else "arf", QUOTAS[n_st])
    with torch.no_grad():
        crit.log_w.copy_(torch.linspace(-0.4, 0.3, n_st))
    w = torch.exp(crit.log_w)
    assert_close(lambda: crit(logits, labels)[0], lambda: ref_arf(logits, labels, w, v2), logits + [crit.log_w])


# ------------------------------------------------------------------------------------------------ the departures


def _grad(fn, inputs):
    return torch.autograd.grad(fn(), inputs)


def test_the_references_see_the_old_departures():
    """siftkit's earlier forms differ from upstream beyond the tolerance, so the tests above would have caught them."""
    labels, logits, log_w = make_labels(2, True, 0), make_logits(2, 0), _weights(2, 0)
    # LCRON: the negative term through top instead of 1 − bot: same value, another gradient
    from siftkit.cascade.loss import label_matrix, neuralsort, top_mass
    y = label_matrix(labels)
    p = [neuralsort(s, 50.0) for s in logits]
    prod = top_mass(p[0], G) * top_mass(p[1], G)
    y_up = y[:, :G].sum(-2)
    old = (-torch.log(1 - prod + EPS) * (1 - y_up).clamp(0, 1)).mean()
    prod_new = torch.ones_like(prod)
    for pi in p:
        c = pi.sum(-2).detach() + EPS
        prod_new = prod_new * (1 - pi[:, G:].sum(-2) / c)
    new = (-torch.log(1 - prod_new + EPS) * (1 - y_up).clamp(0, 1)).mean()
    assert float(old.detach()) == pytest.approx(float(new.detach()), rel=1e-4)
    g_old, g_new = torch.autograd.grad(old, logits[0], retain_graph=True)[0], torch.autograd.grad(new, logits[0])[0]
    assert float((g_old - g_new).abs().max()) > 1e-3 * float(g_new.abs().max())
    # ICC: a detached κ gives the k-th item a large gradient of its own
    small = make_logits(2, 0, scale=3e-3)
    g_up = _grad(lambda: icc_loss(small, labels, [30, 30])[0], small)[0]
    g_det = _grad(lambda: icc_loss(small, labels, [30, 30], detach_kappa=True)[0], small)[0]
    assert float((g_up - g_det).abs().max()) > 1e-2 * float(g_up.abs().max())


def test_rankflow_chain_option_drops_the_two_ranking_terms():
    labels, logits = make_labels(3, False, 0), make_logits(3, 0)
    full, diag = rankflow_loss(logits, labels, QUOTAS[3])
    chain, diag_chain = rankflow_loss(logits, labels, QUOTAS[3], chain=True)
    assert float((full - chain).detach()) == pytest.approx(diag["rank_1"] + diag["rank_2"], rel=1e-9)
    assert "rank_1" not in diag_chain


def test_fs_ranknet_all_zero_logits_is_one_log2_per_anchor_group():
    for n_st in (2, 3):
        labels = make_labels(n_st, False, 0)
        loss, _ = fs_ranknet_loss([torch.zeros(B, labels.shape[1])], labels)
        assert float(loss) == pytest.approx((n_st + 1) * math.log(2))  # 3 (4) anchor groups, each mean softplus(0)


def test_increasing_quotas_are_refused_with_one_line():
    for bad in ([20, 30], [30, 30], [40, 20, 30]):
        with pytest.raises(InputError) as err:
            TrainConfig(stages=["dssm", "mlp", "din"][:len(bad)], quotas=bad)
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith("siftkit: ") and "quotas" in msg and str(bad) in msg
    assert TrainConfig(stages=["dssm", "din"], quotas=[30, 20]).quotas == [30, 20]
