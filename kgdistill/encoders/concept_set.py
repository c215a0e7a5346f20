"""Sets of graph concepts (structured findings): each item is read through the concept's
text features, so a finding the model never saw in training still means something.

An excluded finding (``-ID`` in the file; index + number of nodes once prepared) is information,
not padding: it enters as the negation of its concept's features and learned embedding, so
"no hearing loss" points away from "hearing loss" from the first step, and adds no parameters
(runs saved before signed sets existed load unchanged)."""
from __future__ import annotations

import torch
from torch import nn

from .base import ENCODERS, Encoder, SetPooling, mlp


@ENCODERS.register("concept_set")
class ConceptSetEncoder(Encoder):
    kinds = ("concept_set",)

    def __init__(self, node_features: torch.Tensor, dim: int, hidden: int = 256, dropout: float = 0.1,
                 learn_embeddings: bool = True):
        super().__init__(dim)
        self.register_buffer("node_features", node_features.float(), persistent=False)
        f = node_features.shape[1]
        self.node_emb = nn.Embedding(node_features.shape[0], hidden) if learn_embeddings else None
        if self.node_emb is not None:
            nn.init.zeros_(self.node_emb.weight)
        self.pool = SetPooling(f, hidden, dropout)
        self.head = mlp(self.pool.out_dim, hidden, dim, layers=2, dropout=dropout)

    @classmethod
    def from_modality(cls, prepared, dim: int, **params) -> "ConceptSetEncoder":
        return cls(prepared.tables["node_features"], dim, **params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.node_features.shape[0]
        excluded = x >= n
        idx = torch.where(excluded, x - n, x)
        extra = None if self.node_emb is None else self.node_emb(idx.clamp_min(0))
        if extra is not None:
            extra = torch.where(excluded.unsqueeze(-1), -extra, extra)
        return self.head(self.pool.forward_table(self.node_features, idx, extra, excluded))
