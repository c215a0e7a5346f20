"""GAT (Velickovic et al.): attention over neighbours, with the edge weight as an edge feature."""
from __future__ import annotations

from torch_geometric.nn import GATv2Conv

from .base import GNNS, ConceptGNN


@GNNS.register("gat")
class GAT(ConceptGNN):
    def __init__(self, in_dim: int, out_dim: int, *, heads: int = 2, **kwargs):
        if heads < 1 or kwargs.get("hidden", 256) % heads:
            raise ValueError(f"heads {heads} must be >= 1 and divide hidden ({kwargs.get('hidden', 256)})")
        self.heads = heads  # read by make_conv, which the base class calls
        super().__init__(in_dim, out_dim, **kwargs)

    def make_conv(self, hidden, num_relations):
        return GATv2Conv(hidden, hidden // self.heads, heads=self.heads, edge_dim=1, add_self_loops=True)

    def conv(self, layer, h, edge_index, edge_type, edge_weight):
        return layer(h, edge_index, edge_attr=edge_weight.unsqueeze(-1))
