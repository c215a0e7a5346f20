"""Feature vectors (lab panels, hand-crafted descriptors): an MLP into the shared space."""
from __future__ import annotations

import torch

from .base import ENCODERS, Encoder, mlp


@ENCODERS.register("mlp")
class MLPEncoder(Encoder):
    kinds = ("vector",)

    def __init__(self, in_dim: int, dim: int, hidden: int = 256, layers: int = 2, dropout: float = 0.1):
        super().__init__(dim)
        self.net = mlp(in_dim, hidden, dim, layers=layers + 1, dropout=dropout)

    @classmethod
    def from_modality(cls, prepared, dim: int, **params) -> "MLPEncoder":
        return cls(prepared.x.shape[1], dim, **params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
