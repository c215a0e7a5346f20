"""GAT (Velickovic et al.): attention over neighbours, with the edge weight as an edge feature."""
from __future__ import annotations

from torch_geometric.nn import GATv2Conv

from .base import GNNS, ConceptGNN


@GNNS.register("gat")
class GAT(ConceptGNN):
    def make_conv(self, hidden, num_relations, heads):
        return GATv2Conv(hidden, hidden // heads, heads=heads, edge_dim=1, add_self_loops=True)

    def conv(self, layer, h, edge_index, edge_type, edge_weight):
        return layer(h, edge_index, edge_attr=edge_weight.unsqueeze(-1))
