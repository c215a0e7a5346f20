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


class NodeDropout(nn.Dropout):
    """Dropout whose CPU mask comes from ``rand`` (vectorised) rather than ``bernoulli_``: 0.55x the time of a
    forward+backward over the whole HPO's hidden states, same distribution.  CUDA keeps the fused kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not 0 < self.p < 1 or x.device.type != "cpu":
            return super().forward(x)
        return x * torch.rand_like(x).ge_(self.p).mul_(1 / (1 - self.p))


class ConceptGNN(nn.Module):
    """``in_dim``, ``out_dim``, ``num_relations`` and ``fixed_graph`` come from the data and the pipeline; the other
    keyword arguments (and a subclass's own, e.g. GAT's ``heads``) are the ``gnn:`` config part's keys."""

    def __init__(self, in_dim: int, out_dim: int, *, hidden: int = 256, layers: int = 2, dropout: float = 0.1,
                 num_relations: int = 1, fixed_graph: bool = True):
        super().__init__()
        self.fixed_graph = fixed_graph  # False when each call sees another (sampled) subgraph: nothing is cached
        self.inp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU())
        self.convs = nn.ModuleList(self.make_conv(hidden, num_relations) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.drop = NodeDropout(dropout)
        self.out = nn.Linear(hidden, out_dim)

    def make_conv(self, hidden: int, num_relations: int) -> nn.Module:  # pragma: no cover
        raise NotImplementedError

    def conv(self, layer: nn.Module, h: torch.Tensor, edge_index: torch.Tensor, edge_type: torch.Tensor,
             edge_weight: torch.Tensor) -> torch.Tensor:
        return layer(h, edge_index)

    def conv_rows(self, layer: nn.Module, h: torch.Tensor, edge_index: torch.Tensor, edge_type: torch.Tensor,
                  edge_weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The layer's output at ``rows`` only; a convolution that can compute just those overrides this."""
        return self.conv(layer, h, edge_index, edge_type, edge_weight)[rows]

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_type: torch.Tensor,
                edge_weight: torch.Tensor, out_nodes: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings of ``out_nodes`` (every node when None).  Only the inner layers need every node: the last
        layer and the output projection run on ``out_nodes`` alone (the candidates are ~40% of the whole HPO)."""
        h = self.inp(x)
        last = len(self.convs) - 1
        for i, (layer, norm) in enumerate(zip(self.convs, self.norms)):
            if i == last and out_nodes is not None:
                c = self.conv_rows(layer, h, edge_index, edge_type, edge_weight, out_nodes)
                h = h[out_nodes]
            else:
                c = self.conv(layer, h, edge_index, edge_type, edge_weight)
            h = h + self.drop(nn.functional.gelu(norm(c)))
        return self.out(h)
