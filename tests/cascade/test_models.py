import copy

import torch

from siftkit.cascade.models import DIN, DSSM, PreRankMLP, build_cascade

VOCAB = {"ctx": [24, 5, 4], "user": [50, 8, 3, 32, 6], "item": [100, 20, 12, 96, 4, 10, 300, 8]}


def _batch(b=3, n=40, l=7):
    g = torch.Generator().manual_seed(0)
    seq = torch.randint(1, 4, (b, l, 5), generator=g)
    seq[0, :3] = 0  # left padding
    seq[1] = 0  # empty sequence
    return {"ctx": torch.randint(1, 4, (b, 3), generator=g), "user": torch.randint(1, 3, (b, 5), generator=g),
            "seq": seq, "items": torch.randint(1, 4, (b, n, 8), generator=g)}


def test_shapes():
    b = _batch()
    for cls in (DSSM, PreRankMLP, DIN):
        assert cls(VOCAB)(b).shape == (3, 40)


def test_factorised_din_equals_plain_concatenation():
    torch.manual_seed(0)
    fast = DIN(VOCAB, factorised=True)
    slow = copy.deepcopy(fast)
    slow.factorised = False
    b = _batch()
    assert torch.allclose(fast(b), slow(b), atol=1e-5)
    fast(b).sum().backward()
    slow(b).sum().backward()
    for pf, ps in zip(fast.parameters(), slow.parameters()):
        assert (pf.grad is None) == (ps.grad is None)
        if pf.grad is not None:
            assert torch.allclose(pf.grad, ps.grad, atol=1e-4)


def test_padding_is_ignored_by_din():
    torch.manual_seed(0)
    m = DIN(VOCAB)
    b = _batch()
    out = m(b)
    b2 = {k: v.clone() for k, v in b.items()}
    b2["seq"] = torch.cat([torch.zeros(3, 4, 5, dtype=torch.long), b["seq"]], 1)  # more left padding
    assert torch.allclose(out, m(b2), atol=1e-5)


def test_build_cascade_any_length():
    c = build_cascade(["dssm", "mlp", "mlp", "din"], VOCAB)
    assert len(c) == 4
