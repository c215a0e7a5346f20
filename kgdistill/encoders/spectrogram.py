"""Log-mel spectrograms computed inside the model, so they run on the model's device (GPU when there is one).

torchaudio has no release for the pinned torch (2.15.0), so this is ``torch.stft`` with a triangular mel
filterbank on the HTK mel scale, the same filters as ``torchaudio.functional.melscale_fbanks(...,
norm=None, mel_scale="htk")``.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def hz_to_mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0)


def mel_filterbank(rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None) -> torch.Tensor:
    """[n_fft // 2 + 1, n_mels]: triangles whose corners are equally spaced in mel between f_min and f_max."""
    f_max = rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= rate / 2:
        raise ValueError(f"expected 0 <= f_min < f_max <= rate/2 = {rate / 2:g} Hz, got f_min={f_min}, f_max={f_max}")
    if n_mels < 1:
        raise ValueError(f"n_mels must be at least 1, got {n_mels}")
    freqs = torch.linspace(0, rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mels = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64)
    corners = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    lower, centre, upper = corners[:-2], corners[1:-1], corners[2:]
    rise = (freqs[:, None] - lower) / (centre - lower)
    fall = (upper - freqs[:, None]) / (upper - centre)
    bank = torch.minimum(rise, fall).clamp_min(0.0)
    empty = (bank.sum(0) == 0).nonzero().flatten()
    if len(empty):
        raise ValueError(f"n_mels: mel band {int(empty[0])} of {n_mels} covers no FFT bin; use fewer bands "
                         f"(n_mels) or a longer window (window_ms)")
    return bank.float()


class LogMel(nn.Module):
    """[B, T] waveforms -> [B, n_mels, frames] log mel power; hann window, frames centred, zero-padded ends."""

    def __init__(self, rate: int, n_mels: int = 40, window_ms: float = 32.0, hop_ms: float = 10.0,
                 f_min: float = 20.0, f_max: float | None = None, floor: float = 1e-6):
        super().__init__()
        self.n_fft = round(window_ms * rate / 1000)
        self.hop = round(hop_ms * rate / 1000)
        if self.n_fft < 2 or self.hop < 1:
            raise ValueError(f"window_ms={window_ms} and hop_ms={hop_ms} give {self.n_fft} and {self.hop} samples "
                             f"at {rate} Hz; expected a window of at least 2 samples and a hop of at least 1")
        self.floor = floor
        # not saved with the weights: recomputed from the rate, and moved with the model by .to(device)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.register_buffer("bank", mel_filterbank(rate, self.n_fft, n_mels, f_min, f_max), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=wave.device.type, enabled=False):  # an FFT in bf16 loses the quiet bands
            spec = torch.stft(wave.float(), self.n_fft, self.hop, window=self.window, center=True,
                              pad_mode="constant", return_complex=True)
            power = spec.real.square() + spec.imag.square()              # [B, n_fft // 2 + 1, frames]
            return torch.log(torch.einsum("bft,fm->bmt", power, self.bank) + self.floor)
