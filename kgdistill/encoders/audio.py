"""Speech and other sounds: log-mel spectrogram in the model, then a 1-D CNN over time (mel bands as channels)."""
from __future__ import annotations

import torch
from torch import nn

from .base import ENCODERS, Encoder
from .spectrogram import LogMel
from .timeseries import TimeSeriesEncoder


@ENCODERS.register("logmel")
class AudioEncoder(Encoder):
    """The waveform's log-mel spectrogram (``spectrogram.LogMel``, on the model's device), each band
    normalised by BatchNorm, read by the ``conv1d`` time-series encoder."""

    kinds = ("audio",)

    def __init__(self, rate: int, dim: int, n_mels: int = 40, window_ms: float = 32.0, hop_ms: float = 10.0,
                 f_min: float = 20.0, f_max: float | None = None, hidden: int = 64, layers: int = 4,
                 kernel_size: int = 5, dropout: float = 0.1):
        super().__init__(dim)
        self.features = LogMel(rate, n_mels, window_ms, hop_ms, f_min, f_max)
        self.norm = nn.BatchNorm1d(n_mels)
        self.body = TimeSeriesEncoder(n_mels, dim, hidden=hidden, layers=layers, kernel_size=kernel_size,
                                      dropout=dropout)

    @classmethod
    def from_modality(cls, prepared, dim: int, **params) -> "AudioEncoder":
        return cls(int(prepared.tables["rate"].item()), dim, **params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.norm(self.features(x)))
