"""R-GCN (Schlichtkrull et al.): one weight per relation type (is_a, has_phenotype and their reverses)."""
from __future__ import annotations

from torch_geometric.nn import RGCNConv

from .base import GNNS, ConceptGNN


@GNNS.register("rgcn")
class RGCN(ConceptGNN):
    def make_conv(self, hidden, num_relations):
        return RGCNConv(hidden, hidden, num_relations, num_bases=min(num_relations, 8))

    def conv(self, layer, h, edge_index, edge_type, edge_weight):
        return layer(h, edge_index, edge_type)
