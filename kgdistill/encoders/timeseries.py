"""Multichannel time series (wearables, vibration sensors): a 1-D CNN with global pooling."""
from __future__ import annotations

import torch
from torch import nn

from .base import ENCODERS, Encoder, mlp


@ENCODERS.register("conv1d")
class TimeSeriesEncoder(Encoder):
    kinds = ("timeseries",)

    def __init__(self, channels: int, dim: int, hidden: int = 64, layers: int = 3, kernel_size: int = 5,
                 dropout: float = 0.1):
        super().__init__(dim)
        blocks: list[nn.Module] = []
        c = channels
        for i in range(layers):
            blocks += [nn.Conv1d(c, hidden, kernel_size, padding=kernel_size // 2, dilation=1),
                       nn.BatchNorm1d(hidden), nn.GELU()]
            if i < layers - 1:
                blocks.append(nn.MaxPool1d(2, ceil_mode=True))
            c = hidden
        self.conv = nn.Sequential(*blocks)
        self.head = mlp(2 * hidden, 2 * hidden, dim, layers=2, dropout=dropout)

    @classmethod
    def from_modality(cls, prepared, dim: int, **params) -> "TimeSeriesEncoder":
        return cls(prepared.x.shape[1], dim, **params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        return self.head(torch.cat([h.mean(-1), h.amax(-1)], dim=-1))
