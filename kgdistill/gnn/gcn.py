"""GCN (Kipf & Welling): symmetric-normalised weighted neighbour averaging; fast and a strong default.

On a fixed graph the normalised adjacency is built once as a sparse CSR matrix, together with its transpose
for the backward pass, so a layer is one sparse-dense product each way: no message per edge, no per-edge
activations kept, and no transpose (a sort of every edge) at each backward.  A layer propagates first and
projects after, (A X) W rather than A (X W) (equal: the projection has no bias), so the last layer, asked for
the candidates' rows only, projects those rows alone.  Sampled subgraphs (``fixed_graph=False``) change every step and use PyG's edge list.
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
        return None, None, ctx.m_t @ grad


def _csr(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    with warnings.catch_warnings():  # torch calls sparse CSR "beta"; the indices are ours and valid
        warnings.simplefilter("ignore", UserWarning)
        return to_torch_csr_tensor(torch.stack([rows, cols]), values, size=size)


@GNNS.register("gcn")
class GCN(ConceptGNN):
    def make_conv(self, hidden, num_relations, heads):
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
        m, m_t = self._adjacency(edge_index, edge_weight, h.shape[0], rows)
        with torch.autocast(h.device.type, enabled=False):  # sparse products run in float32
            return layer.lin(_SparseProduct.apply(m, m_t, h.float())) + layer.bias

    def _adjacency(self, edge_index: torch.Tensor, edge_weight: torch.Tensor, n: int,
                   rows: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """GCN's D^-1/2 (A + I) D^-1/2 as ``out[dst] += w * x[src]`` (PyG's source-to-target flow), restricted to
        the destination ``rows``, and its transpose; cached per row set while the graph stays the same."""
        key = (edge_index.data_ptr(), edge_index.device, n, None if rows is None else (rows.data_ptr(), len(rows)))
        cache = self.__dict__.setdefault("_adj_cache", {})
        if key not in cache:
            if len(cache) >= 4:  # another graph or row set: drop the old ones rather than grow
                cache.clear()
            keep = edge_index[0] != edge_index[1]  # GCN adds one self-loop of weight 1 per node itself
            ei, w = gcn_norm(edge_index[:, keep], edge_weight[keep].float(), n, add_self_loops=True)
            src, dst = ei
            height = n
            if rows is not None:
                pos = torch.full((n,), -1, dtype=torch.long, device=ei.device)
                pos[rows] = torch.arange(len(rows), device=ei.device)
                sel = pos[dst] >= 0
                src, dst, w, height = src[sel], pos[dst[sel]], w[sel], len(rows)
            cache[key] = (_csr(dst, src, w, (height, n)), _csr(src, dst, w, (n, height)))
        return cache[key]
