"""SetPooling.forward_table: training on the CPU runs the item layers on the real items only, and must give what
the padded computation gives (same dropout draw, same outputs, same gradients)."""
from __future__ import annotations

import torch

from kgdistill.encoders.base import SetPooling


def _inputs():
    g = torch.Generator().manual_seed(0)
    table = torch.randn(40, 6, generator=g)
    idx = torch.randint(0, 40, (5, 7), generator=g)
    idx[0, 3:] = -1
    idx[2, 1:] = -1
    idx[4, :] = -1                       # a sample with no item at all
    return table, idx


def _padded(pool: SetPooling, table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Every slot through the item layers, padding included: what forward_table computed before packing."""
    return pool(table[idx.clamp_min(0)], idx >= 0)


def test_packed_training_matches_the_padded_computation():
    table, idx = _inputs()
    torch.manual_seed(1)
    pool = SetPooling(6, 8, dropout=0.5).train()
    outs, grads, after = [], [], []
    for f in (pool.forward_table, lambda t, i: _padded(pool, t, i)):
        torch.manual_seed(2)                                  # the same dropout stream for both
        pool.zero_grad()
        out = f(table, idx)
        (out * torch.arange(out.numel()).reshape(out.shape)).sum().backward()
        outs.append(out.detach())
        grads.append([p.grad.clone() for p in pool.parameters()])
        after.append(torch.rand(4))                           # the random stream continues alike
    assert torch.allclose(outs[0], outs[1], atol=1e-6) and torch.equal(after[0], after[1])
    assert torch.equal(outs[0][4], torch.zeros(16))          # no item: zero, as before
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)


def test_packed_training_keeps_negation_and_extra():
    table, idx = _inputs()
    negated = torch.zeros_like(idx, dtype=torch.bool)
    negated[1, :2] = True
    extra = torch.randn(*idx.shape, 8, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(1)
    pool = SetPooling(6, 8, dropout=0.0)
    packed = pool.train().forward_table(table, idx, extra, negated)
    padded = pool.eval().forward_table(table, idx, extra, negated)   # eval: the padded path; dropout 0 either way
    assert torch.allclose(packed, padded, atol=1e-6)
