"""WDCNN (Zhang et al. 2017, Sensors 17:425): the published 1-D CNN baseline for raw bearing vibration.

A wide first kernel (64 samples, stride 16) sees a whole impact and its ringing while cutting the sequence 16-fold,
so the small-kernel layers after it stay cheap on 2,048-sample windows; every convolution is followed by batch
norm (what AdaBN re-estimates on a new load), ReLU and 2x max pooling.  The published network: 16, 32, 64, 64, 64
filters, kernels 64/3/3/3/3 (the last one unpadded), a 100-unit layer; here that layer feeds the shared space.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import ENCODERS, Encoder


def _block(c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> list[nn.Module]:
    return [nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=padding), nn.BatchNorm1d(c_out), nn.ReLU(),
            nn.MaxPool1d(2)]


@ENCODERS.register("wdcnn")
class WDCNNEncoder(Encoder):
    kinds = ("timeseries",)

    def __init__(self, channels: int, steps: int, dim: int, filters: tuple[int, ...] = (16, 32, 64, 64, 64),
                 first_kernel: int = 64, first_stride: int = 16, hidden: int = 100, dropout: float = 0.0):
        super().__init__(dim)
        if len(filters) < 2 or min(filters) < 1 or first_kernel < 1 or first_stride < 1 or hidden < 1:
            raise ValueError(f"wdcnn: filters {list(filters)} (at least two layers), first_kernel {first_kernel}, "
                             f"first_stride {first_stride}, hidden {hidden}: expected positive sizes")
        layers = _block(channels, filters[0], first_kernel, first_stride, (first_kernel - first_stride) // 2)
        for i, (a, b) in enumerate(zip(filters, filters[1:])):
            layers += _block(a, b, 3, 1, 0 if i == len(filters) - 2 else 1)
        self.conv = nn.Sequential(*layers)
        length = self._out_length(steps)
        if length < 1:
            raise ValueError(f"wdcnn: series of {steps} steps are too short for {len(filters)} layers after a "
                             f"stride-{first_stride} first layer; give longer windows or fewer filters")
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(filters[-1] * length, hidden), nn.BatchNorm1d(hidden),
                                  nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim))

    def _out_length(self, steps: int) -> int:
        n = steps
        for m in self.conv:
            if isinstance(m, nn.Conv1d):
                n = (n + 2 * m.padding[0] - m.kernel_size[0]) // m.stride[0] + 1
            elif isinstance(m, nn.MaxPool1d):
                n //= 2
            if n < 1:
                return 0
        return n

    @classmethod
    def from_modality(cls, prepared, dim: int, **params) -> "WDCNNEncoder":
        if "filters" in params:
            params["filters"] = tuple(params["filters"])
        return cls(prepared.x.shape[1], prepared.x.shape[-1], dim, **params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x))
