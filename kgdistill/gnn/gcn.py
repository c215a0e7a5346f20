"""GCN (Kipf & Welling): symmetric-normalised weighted neighbour averaging; fast and a strong default.

On a fixed graph the adjacency is built once as a sparse CSR matrix, so a layer is one sparse-dense product
rather than one message per edge: about 7x faster on the whole HPO graph, and no per-edge activations kept
for the backward pass.  Sampled subgraphs (``fixed_graph=False``) change every step and use the edge list.
"""
from __future__ import annotations

import warnings

import torch
from torch_geometric.nn import GCNConv
from torch_geometric.utils import to_torch_csr_tensor

from .base import GNNS, ConceptGNN


@GNNS.register("gcn")
class GCN(ConceptGNN):
    def make_conv(self, hidden, num_relations, heads):
        return GCNConv(hidden, hidden, cached=self.fixed_graph, add_self_loops=True)

    def conv(self, layer, h, edge_index, edge_type, edge_weight):
        if not self.fixed_graph:
            return layer(h, edge_index, edge_weight)
        with torch.autocast(h.device.type, enabled=False):  # sparse products run in float32
            return layer(h.float(), self._adjacency(edge_index, edge_weight, h.shape[0]))

    def _adjacency(self, edge_index: torch.Tensor, edge_weight: torch.Tensor, n: int) -> torch.Tensor:
        """The transposed weighted adjacency (what PyG's sparse path expects); self-loops are left to GCNConv,
        which adds one of weight 1 per node."""
        adj = getattr(self, "_adj_t", None)
        if adj is None or adj.device != edge_index.device or adj.shape[0] != n:
            keep = edge_index[0] != edge_index[1]
            with warnings.catch_warnings():  # torch calls sparse CSR "beta"; the indices are ours and valid
                warnings.simplefilter("ignore", UserWarning)
                adj = to_torch_csr_tensor(edge_index[:, keep].flip(0), edge_weight[keep].float(), size=(n, n))
            self._adj_t = adj
        return adj
