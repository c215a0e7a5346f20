"""The concept encoder: a GNN over the knowledge graph whose output lives in the shared space.

Concept embeddings come from the concept's own text features *and* its neighbours,
so a concept with no labelled example (an unseen disease) still gets a meaningful
place next to the concepts it shares findings with.  Subclasses only choose the
convolution; layers are residual with LayerNorm.
"""
from __future__ import annotations

import torch
from torch import nn

from ..registry import Registry

GNNS: Registry[type["ConceptGNN"]] = Registry("gnn")


class ConceptGNN(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, hidden: int = 256, layers: int = 2, dropout: float = 0.1,
                 num_relations: int = 1, heads: int = 2, fixed_graph: bool = True):
        super().__init__()
        self.fixed_graph = fixed_graph  # False when each call sees another (sampled) subgraph: nothing is cached
        self.inp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU())
        self.convs = nn.ModuleList(self.make_conv(hidden, num_relations, heads) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, out_dim)

    def make_conv(self, hidden: int, num_relations: int, heads: int) -> nn.Module:  # pragma: no cover
        raise NotImplementedError

    def conv(self, layer: nn.Module, h: torch.Tensor, edge_index: torch.Tensor, edge_type: torch.Tensor,
             edge_weight: torch.Tensor) -> torch.Tensor:
        return layer(h, edge_index)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_type: torch.Tensor,
                edge_weight: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for layer, norm in zip(self.convs, self.norms):
            h = h + self.drop(nn.functional.gelu(norm(self.conv(layer, h, edge_index, edge_type, edge_weight))))
        return self.out(h)
