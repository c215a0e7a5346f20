"""GCN (Kipf & Welling): symmetric-normalised weighted neighbour averaging; fast and a strong default."""
from __future__ import annotations

from torch_geometric.nn import GCNConv

from .base import GNNS, ConceptGNN


@GNNS.register("gcn")
class GCN(ConceptGNN):
    def make_conv(self, hidden, num_relations, heads):
        return GCNConv(hidden, hidden, cached=self.fixed_graph, add_self_loops=True)

    def conv(self, layer, h, edge_index, edge_type, edge_weight):
        return layer(h, edge_index, edge_weight)
