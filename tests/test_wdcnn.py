"""The WDCNN encoder: the published layer sizes, and that it learns to tell two kinds of vibration apart."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from kgdistill.config import Part
from kgdistill.data.prepare import PreparedModality
from kgdistill.encoders import ENCODERS, build_encoder
from kgdistill.errors import ConfigError


def signals(n: int, gen: torch.Generator, steps: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Half 200 Hz, half 230 Hz sines at 12 kHz (random phase), buried in noise of the same power."""
    y = torch.arange(n) % 2
    freq = torch.where(y == 0, 200.0, 230.0)[:, None]
    t = torch.arange(steps) / 12_000
    phase = torch.rand(n, 1, generator=gen) * 2 * math.pi
    x = torch.sin(2 * math.pi * freq * t + phase) + torch.randn(n, steps, generator=gen) * 0.7
    return x[:, None, :], y


def test_published_layer_sizes():
    enc = ENCODERS.get("wdcnn")(channels=1, steps=2048, dim=32)
    convs = [m for m in enc.conv if isinstance(m, nn.Conv1d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in convs] == [
        (16, 64, 16, 24), (32, 3, 1, 1), (64, 3, 1, 1), (64, 3, 1, 1), (64, 3, 1, 0)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in enc.modules()) == 6
    # 2048 -> 128 (stride 16) -> 64 -> 32 -> 16 -> 8 -> 6 (unpadded) -> 3: 64 x 3 features into 100 units
    assert enc._out_length(2048) == 3 and enc.head[1].in_features == 192 and enc.head[1].out_features == 100
    assert enc(torch.randn(4, 1, 2048)).shape == (4, 32)


def test_separates_two_vibrations_in_a_few_steps():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    x, y = signals(256, gen)
    xt, yt = signals(200, gen)
    enc = build_encoder(Part(name="wdcnn"), PreparedModality("fe", "timeseries", x), 16, "student.encoder")
    model = nn.Sequential(enc, nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(15):
        idx = torch.randperm(256, generator=gen)[:32]
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    assert acc >= 0.9, acc   # chance: 0.5


def test_too_short_series_is_a_config_error():
    p = PreparedModality("acc", "timeseries", torch.randn(4, 3, 100))
    with pytest.raises(ConfigError, match=r"teacher.encoder: wdcnn: series of 100 steps are too short"):
        build_encoder(Part(name="wdcnn"), p, 16, "teacher.encoder")
    enc = build_encoder(Part(name="wdcnn", filters=[8, 8], first_kernel=8, first_stride=2),
                        p, 16, "teacher.encoder")
    assert enc(p.x).shape == (4, 16)
    with pytest.raises(ConfigError, match="teacher.encoder: wdcnn: filters \\[8\\]"):
        build_encoder(Part(name="wdcnn", filters=[8]), p, 16, "teacher.encoder")
