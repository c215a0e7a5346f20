"""Where a model's concept prototypes come from: the GNN over the graph, or a learned table.

Both return the [K, d] embeddings of the K candidate concepts; classification is by
cosine similarity to them, which is what lets a graph-fed model rank concepts that
have no labelled example.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import ConceptGNN


def cosine_logits(z: torch.Tensor, concepts: torch.Tensor, temperature: float) -> torch.Tensor:
    return nn.functional.normalize(z, dim=-1) @ nn.functional.normalize(concepts, dim=-1).T / temperature


class GraphConcepts(nn.Module):
    """GNN embeddings of the candidate nodes, computed over the whole (restricted) graph."""

    def __init__(self, gnn: ConceptGNN, node_features: torch.Tensor, graph_data, candidate_nodes: torch.Tensor,
                 self_feature_dropout: float = 0.0):
        super().__init__()
        self.gnn = gnn
        self.self_feature_dropout = self_feature_dropout
        self.register_buffer("x", node_features.float(), persistent=False)
        self.register_buffer("edge_index", graph_data.edge_index, persistent=False)
        self.register_buffer("edge_type", graph_data.edge_type, persistent=False)
        self.register_buffer("edge_weight", graph_data.edge_weight, persistent=False)
        self.register_buffer("candidates", candidate_nodes.long(), persistent=False)

    def all_nodes(self) -> torch.Tensor:
        return self.gnn(self._inputs(), self.edge_index, self.edge_type, self.edge_weight)

    def _inputs(self) -> torch.Tensor:
        """Candidates' own text features are dropped at random (always, at p=1) while training, so their
        embedding must come from their graph neighbourhood: the only thing an unseen concept shares with seen ones."""
        p = self.self_feature_dropout
        if p <= 0 or (not self.training and p < 1):
            return self.x
        keep = torch.ones(self.x.shape[0], 1, device=self.x.device, dtype=self.x.dtype)
        drop = torch.rand(len(self.candidates), device=self.x.device) < p if p < 1 else torch.ones(
            len(self.candidates), dtype=torch.bool, device=self.x.device)
        keep[self.candidates] = (~drop).to(self.x.dtype).unsqueeze(1)
        return self.x * keep

    def forward(self) -> torch.Tensor:
        return self.all_nodes()[self.candidates]


class LearnedConcepts(nn.Module):
    """A free prototype per candidate: the classic classifier head, blind to the graph."""

    def __init__(self, num_concepts: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_concepts, dim) / dim**0.5)

    def forward(self) -> torch.Tensor:
        return self.weight


class FixedConcepts(nn.Module):
    """Concept embeddings frozen after the teacher stage: the shared space students align to."""

    def __init__(self, embeddings: torch.Tensor):
        super().__init__()
        self.register_buffer("embeddings", embeddings.detach().float().clone())

    def forward(self) -> torch.Tensor:
        return self.embeddings
