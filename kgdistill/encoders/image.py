"""Images (digits, photos, spectrogram-like grids): a small 2-D CNN with global pooling."""
from __future__ import annotations

import torch
from torch import nn

from .base import ENCODERS, Encoder, mlp


@ENCODERS.register("conv2d")
class ImageEncoder(Encoder):
    """3x3 convolution blocks (BatchNorm, GELU), 2x2 max-pooling between them, channels doubling up to
    four times ``hidden``; mean and max over the last feature map, so any image size works."""

    kinds = ("image",)

    def __init__(self, channels: int, dim: int, hidden: int = 32, layers: int = 3, dropout: float = 0.1):
        super().__init__(dim)
        if hidden < 1 or layers < 1:
            raise ValueError(f"hidden and layers must be at least 1, got hidden={hidden}, layers={layers}")
        blocks: list[nn.Module] = []
        c = channels
        for i in range(layers):
            width = hidden * 2 ** min(i, 2)
            blocks += [nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.GELU()]
            if i < layers - 1:
                blocks.append(nn.MaxPool2d(2, ceil_mode=True))  # ceil: an 8x8 digit survives three poolings
            c = width
        self.conv = nn.Sequential(*blocks)
        self.head = mlp(2 * c, 2 * c, dim, layers=2, dropout=dropout)

    @classmethod
    def from_modality(cls, prepared, dim: int, **params) -> "ImageEncoder":
        return cls(prepared.x.shape[1], dim, **params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        return self.head(torch.cat([h.mean((-2, -1)), h.amax((-2, -1))], dim=-1))
