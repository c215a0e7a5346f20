"""SetPooling.forward_table: on the CPU the item layers run on the real items only and the first layer on each
distinct row once; training must give what the padded computation gives with dropout drawn for the real items
(same outputs, same gradients), evaluation what it gives outright, and a traced (exported) graph keeps the padded
computation."""
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


def _padded_with_mask(pool: SetPooling, table, idx, keep: torch.Tensor) -> torch.Tensor:
    """The padded computation written out, with dropout's mask ``keep`` [R, hidden] (already scaled by 1/(1-p))
    placed on the real items in row-major order and nothing on the padding."""
    first, act, _, last = pool.item
    mask = idx >= 0
    full = torch.zeros(*mask.shape, keep.shape[-1])
    full[mask] = keep
    return pool._pool(last(act(first(table[idx.clamp_min(0)])) * full), mask)


def test_packed_training_matches_the_padded_computation():
    """Dropout draws one mask row per real item (not per padded slot), and the outputs and gradients are those of
    the padded computation under that mask."""
    table, idx = _inputs()
    torch.manual_seed(1)
    pool = SetPooling(6, 8, dropout=0.5).train()
    real = int((idx >= 0).sum())
    torch.manual_seed(2)
    keep = torch.nn.functional.dropout(torch.ones(real, 8), 0.5)   # the draw the packed layers make
    after_reference = torch.rand(4)
    outs, grads = [], []
    for f in (pool.forward_table, lambda t, i: _padded_with_mask(pool, t, i, keep)):
        torch.manual_seed(2)
        pool.zero_grad()
        out = f(table, idx)
        (out * torch.arange(out.numel()).reshape(out.shape)).sum().backward()
        outs.append(out.detach())
        grads.append([p.grad.clone() for p in pool.parameters()])
        if len(outs) == 1:
            assert torch.equal(torch.rand(4), after_reference)  # it drew exactly R x hidden numbers
    assert torch.allclose(outs[0], outs[1], atol=1e-6)
    assert torch.equal(outs[0][4], torch.zeros(16))          # no item: zero, as before
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)


def _padded_signed(pool: SetPooling, table, idx, extra, negated) -> torch.Tensor:
    """The padded computation with excluded items and extra vectors, written out."""
    first = pool.item[0]
    h = first(table[idx.clamp_min(0)])
    h = torch.where(negated.unsqueeze(-1), 2 * first.bias - h, h) + extra
    return pool._pool(pool.item[1:](h), idx >= 0)


def test_packed_computation_keeps_negation_and_extra():
    table, idx = _inputs()
    negated = torch.zeros_like(idx, dtype=torch.bool)
    negated[1, :2] = True
    extra = torch.randn(*idx.shape, 8, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(1)
    pool = SetPooling(6, 8, dropout=0.0)
    for mode in (pool.train, pool.eval):
        mode()
        assert torch.allclose(pool.forward_table(table, idx, extra, negated),
                              _padded_signed(pool, table, idx, extra, negated), atol=1e-6)


def test_evaluation_matches_the_padded_computation_for_small_and_large_tables():
    """A table smaller than the batch's items (each distinct row once) and one far larger (rows gathered first)."""
    _, idx = _inputs()
    torch.manual_seed(1)
    pool = SetPooling(6, 8, dropout=0.5).eval()
    for rows in (40, 4000):
        table = torch.randn(rows, 6, generator=torch.Generator().manual_seed(rows))
        with torch.no_grad():
            assert torch.allclose(pool.forward_table(table, idx), _padded(pool, table, idx), atol=1e-6)


def test_a_traced_graph_keeps_the_padded_shapes():
    """ONNX export traces forward_table: the traced graph must not bake in this batch's count of real items."""
    table, idx = _inputs()

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = SetPooling(6, 8, dropout=0.0)

        def forward(self, t, i):
            return self.pool.forward_table(t, i)
    model = Pooled().eval()
    pool = model.pool
    with torch.no_grad():
        traced = torch.jit.trace(model, (table, idx), check_trace=False)
    other = idx.clone()
    other[1, :] = -1                                           # fewer real items than the traced batch
    with torch.no_grad():
        assert torch.allclose(traced(table, other), _padded(pool, table, other), atol=1e-6)


def test_training_is_bitwise_repeatable_on_the_cpu():
    """Rows that repeat (a batch's items share concepts) must not make two identical steps differ: the backward of
    plain indexing adds repeated rows' gradients in a thread-dependent order on the CPU."""
    g = torch.Generator().manual_seed(0)
    table = torch.randn(300, 64, generator=g)
    idx = torch.randint(0, 300, (512, 32), generator=g)          # far more items than rows: the distinct-row path
    idx[:, 20:] = -1
    grads = []
    for _ in range(2):
        torch.manual_seed(1)
        pool = SetPooling(64, 128, dropout=0.1).train()
        pool.forward_table(table, idx).pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in pool.parameters()]))
    assert torch.equal(grads[0], grads[1])
