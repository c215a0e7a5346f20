"""The image (conv2d) and audio (logmel) encoders: the mel front end against hand-computed filters, and each
encoder learning a small synthetic separation task far above chance."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kgdistill.config import Part
from kgdistill.data.prepare import PreparedModality
from kgdistill.encoders import ENCODERS, build_encoder
from kgdistill.encoders.spectrogram import LogMel, mel_filterbank
from kgdistill.errors import ConfigError


def test_mel_filterbank_matches_hand_computed_triangles():
    # 8 kHz, 16-point FFT: bins every 500 Hz. Two bands from 0 to 4000 Hz: corners at 0, 1/3, 2/3, 1 of
    # mel(4000) = 2595 log10(1 + 4000/700) = 2146.06 mel, i.e. 0, 620.58, 1791.33, 4000 Hz.
    bank = mel_filterbank(8000, 16, 2, f_min=0.0, f_max=4000.0)
    assert bank.shape == (9, 2)
    expected = [[0, 0], [0.80570, 0], [0.67592, 0.32408], [0.24884, 0.75116], [0, 0.90552], [0, 0.67914],
                [0, 0.45276], [0, 0.22638], [0, 0]]
    np.testing.assert_allclose(bank.numpy(), expected, atol=1e-5)


def test_a_tone_lights_the_band_around_its_frequency():
    rate = 8000
    front = LogMel(rate, n_mels=20, f_min=0.0)
    t = torch.arange(rate // 2) / rate
    out = front(torch.sin(2 * math.pi * 1000 * t)[None])        # [1, 20, frames]
    assert out.shape == (1, 20, 1 + (rate // 2) // 80)            # centred frames: 1 + T // hop
    # band centres: 20 equally spaced mel points inside (0, mel(4000)); the tone's band is the nearest centre
    mels = [2146.0645 * (k + 1) / 21 for k in range(20)]
    centres = [700 * (10 ** (m / 2595) - 1) for m in mels]
    nearest = min(range(20), key=lambda k: abs(centres[k] - 1000))
    assert out[0, :, 5:-5].mean(-1).argmax().item() == nearest == 9    # centre 1034 Hz (mel 1022)


def test_bad_front_end_settings_name_the_parameter():
    prepared = PreparedModality("v", "audio", torch.zeros(2, 100), {"rate": torch.tensor([8000])})
    with pytest.raises(ConfigError, match=r"student.encoder.n_mels: mel band \d+ of 200 covers no FFT bin"):
        build_encoder(Part(name="logmel", n_mels=200), prepared, 8, "student.encoder")
    with pytest.raises(ConfigError, match=r"student.encoder: expected 0 <= f_min < f_max <= rate/2 = 4000 Hz"):
        build_encoder(Part(name="logmel", f_max=6000), prepared, 8, "student.encoder")
    with pytest.raises(ConfigError, match=r"encoder 'conv2d' reads image input, but modality 'v' is audio"):
        build_encoder(Part(name="conv2d"), prepared, 8, "student.encoder")


@pytest.fixture
def one_thread():
    """Small models train far faster on one thread than on two contended ones; the setting is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fit(enc: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, classes: int, steps: int = 150) -> None:
    head = torch.nn.Linear(enc.dim, classes)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=3e-3)
    g = torch.Generator().manual_seed(1)
    enc.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (32,), generator=g)
        loss = torch.nn.functional.cross_entropy(head(enc(x[idx])), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    enc.head_for_test = head


def _accuracy(enc, x, y) -> float:
    enc.eval()
    with torch.no_grad():
        return (enc.head_for_test(enc(x)).argmax(1) == y).float().mean().item()


def digit_like_images(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """8x8 grey images of four shapes at random places, in noise: vertical bar, horizontal bar, diagonal, box."""
    y = torch.randint(0, 4, (n,), generator=g)
    x = 0.4 * torch.randn(n, 1, 8, 8, generator=g)
    for i, c in enumerate(y.tolist()):
        r, s = torch.randint(1, 7, (2,), generator=g).tolist()
        if c == 0:
            x[i, 0, :, s] += 1.0
        elif c == 1:
            x[i, 0, r, :] += 1.0
        elif c == 2:
            x[i, 0].diagonal().add_(1.0)
        else:
            a, b = min(r, 4), min(s, 4)
            x[i, 0, a:a + 3, b:b + 3] += 1.0
            x[i, 0, a + 1, b + 1] -= 1.0
    return x, y


def test_image_encoder_learns_shapes(one_thread):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x, y = digit_like_images(600, g)
    enc = ENCODERS.get("conv2d").from_modality(PreparedModality("i", "image", x), 16, hidden=16)
    _fit(enc, x[:300], y[:300], 4)
    assert _accuracy(enc, x[300:], y[300:]) > 0.9          # chance 0.25


def sounds(n: int, rate: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """0.25 s of noise with a 60-120 ms sound at a random time and loudness: a 500 Hz tone, a 1500 Hz tone,
    a chirp rising 500 -> 1500 Hz, or the same chirp falling (same frequencies, only their order differs)."""
    y = torch.randint(0, 4, (n,), generator=g)
    x = 0.05 * torch.randn(n, rate // 4, generator=g)
    for i, c in enumerate(y.tolist()):
        length = int(torch.randint(rate * 6 // 100, rate * 12 // 100, (1,), generator=g))
        start = int(torch.randint(0, rate // 4 - length, (1,), generator=g))
        t = torch.arange(length) / rate
        dur = length / rate
        f0, f1 = [(500, 500), (1500, 1500), (500, 1500), (1500, 500)][c]
        phase = 2 * math.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * dur))
        amp = 0.2 + 0.8 * torch.rand(1, generator=g)
        x[i, start:start + length] += amp * torch.sin(phase)
    return x, y


def test_audio_encoder_learns_tones_and_chirp_direction(one_thread):
    rate = 8000
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x, y = sounds(600, rate, g)
    enc = ENCODERS.get("logmel").from_modality(
        PreparedModality("a", "audio", x, {"rate": torch.tensor([rate])}), 16, n_mels=32, hidden=32, layers=3)
    _fit(enc, x[:300], y[:300], 4)
    assert _accuracy(enc, x[300:], y[300:]) > 0.9          # chance 0.25
    assert "features.bank" not in enc.state_dict()          # recomputed from the rate, never saved
