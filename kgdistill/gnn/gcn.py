"""GCN (Kipf & Welling): symmetric-normalised weighted neighbour averaging; fast and a strong default.

On a fixed graph the normalised adjacency is built once as a sparse CSR matrix, with its transpose for the
backward pass, so a layer is one sparse-dense product each way: no message per edge, no per-edge activations
kept, and no transpose (a sort of every edge) at each backward.  A layer propagates first and projects after,
(A X) W rather than A (X W) (equal: the projection has no bias), so the last layer, asked for the candidates'
rows only, projects those rows alone.  Sampled subgraphs (``fixed_graph=False``) change every step and use
PyG's edge list; both paths normalise exactly as PyG's ``GCNConv`` does.
"""
from __future__ import annotations

import warnings

import torch
from torch_geometric.nn import GCNConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_torch_csr_tensor

from .base import GNNS, ConceptGNN


class _SparseProduct(torch.autograd.Function):
    """``m @ x`` whose backward uses a prebuilt ``m_t`` (= m transposed) instead of transposing ``m`` each step."""

    @staticmethod
    def forward(ctx, m: torch.Tensor, m_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.m_t = m_t
        return m @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, None, ctx.m_t @ grad if ctx.needs_input_grad[2] else None


def _csr(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    with warnings.catch_warnings():  # torch calls sparse CSR "beta"; the indices are ours and valid
        warnings.simplefilter("ignore", UserWarning)
        return to_torch_csr_tensor(torch.stack([rows, cols]), values, size=size)


class _Adjacency:
    """The normalised adjacency of one graph (and one row set), valid while the very same tensors, unchanged
    in place, are passed in: checked by identity and version counter, never by address or shape."""

    def __init__(self, edge_index, edge_weight, rows, n: int, dtype: torch.dtype):
        self.edge_index, self.edge_weight, self.rows, self.n, self.dtype = edge_index, edge_weight, rows, n, dtype
        self.versions = (edge_index._version, edge_weight._version, None if rows is None else rows._version)
        ei, w = gcn_norm(edge_index, edge_weight.to(dtype), n, add_self_loops=True)  # PyG's GCNConv, exactly
        src, dst = ei                                                  # out[dst] += w * x[src]
        height, self.inverse = n, None
        if rows is not None:  # destination rows only; a repeated row is computed once and repeated after
            uniq, self.inverse = torch.unique(rows, return_inverse=True)
            pos = torch.full((n,), -1, dtype=torch.long, device=ei.device)
            pos[uniq] = torch.arange(len(uniq), device=ei.device)
            sel = pos[dst] >= 0
            src, dst, w, height = src[sel], pos[dst[sel]], w[sel], len(uniq)
        self.m, self.m_t = _csr(dst, src, w, (height, n)), _csr(src, dst, w, (n, height))

    def of_graph(self, edge_index, edge_weight, n: int, dtype: torch.dtype) -> bool:
        """Built from these very tensors, unchanged since (whatever its rows)."""
        return (self.edge_index is edge_index and self.edge_weight is edge_weight and (self.n, self.dtype) == (n, dtype)
                and self.versions[:2] == (edge_index._version, edge_weight._version))

    def matches(self, edge_index, edge_weight, rows, n: int, dtype: torch.dtype) -> bool:
        return (self.of_graph(edge_index, edge_weight, n, dtype) and self.rows is rows
                and self.versions[2] == (None if rows is None else rows._version))

    def product(self, x: torch.Tensor) -> torch.Tensor:
        out = _SparseProduct.apply(self.m, self.m_t, x)
        return out if self.inverse is None else out[self.inverse]


@GNNS.register("gcn")
class GCN(ConceptGNN):
    def make_conv(self, hidden, num_relations):
        return GCNConv(hidden, hidden, add_self_loops=True)

    def conv(self, layer, h, edge_index, edge_type, edge_weight):
        if not self.fixed_graph:
            return layer(h, edge_index, edge_weight)
        return self._propagate(layer, h, edge_index, edge_weight, None)

    def conv_rows(self, layer, h, edge_index, edge_type, edge_weight, rows):
        if not self.fixed_graph:
            return super().conv_rows(layer, h, edge_index, edge_type, edge_weight, rows)
        return self._propagate(layer, h, edge_index, edge_weight, rows)

    def _propagate(self, layer: GCNConv, h: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor,
                   rows: torch.Tensor | None) -> torch.Tensor:
        dtype = torch.promote_types(h.dtype, torch.float32)  # sparse products run in float32 (or float64)
        with torch.autocast(h.device.type, enabled=False):
            adj = self._adjacency(edge_index, edge_weight, rows, h.shape[0], dtype)
            return layer.lin(adj.product(h.to(dtype))) + layer.bias

    def _adjacency(self, edge_index, edge_weight, rows, n: int, dtype: torch.dtype) -> _Adjacency:
        """Cached per graph: the full adjacency and the last layer's rows, two entries; another graph replaces
        them.  A plain attribute, not a buffer: rebuilt (not moved) after ``.to()``, never saved."""
        cache: list[_Adjacency] = self.__dict__.setdefault("_adjacencies", [])
        for adj in cache:
            if adj.matches(edge_index, edge_weight, rows, n, dtype):
                return adj
        cache[:] = [a for a in cache if a.of_graph(edge_index, edge_weight, n, dtype)][-1:]  # other rows, same graph
        cache.append(_Adjacency(edge_index, edge_weight, rows, n, dtype))
        return cache[-1]
