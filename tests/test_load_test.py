"""The load script's memory verdict (``scripts/load_test.py``): flat means no trend once warmed up."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from script_loader import load_script  # noqa: E402


@pytest.fixture(scope="module")
def load_test():
    return load_script("load_test", "load_test_script")


def test_a_steady_rise_is_its_slope_and_a_noisy_band_is_flat(load_test):
    # samples every 0.5 s: 240 a minute
    minutes = np.arange(1200) / 120
    rising = load_test.rss_summary(list(200 + 3.0 * minutes))
    assert rising["mb_per_minute_after_first_tenth"] == pytest.approx(3.0)
    assert rising["third_means"] == pytest.approx([200 + 3.0 * minutes[:400].mean(), 200 + 3.0 * minutes[400:800]
                                                   .mean(), 200 + 3.0 * minutes[800:].mean()], abs=0.05)
    assert (rising["start"], rising["max"], rising["samples"]) == (200.0, pytest.approx(200 + 3.0 * minutes[-1]), 1200)
    assert rising["trace_every_5s"][:2] == [200.0, 200.2]
    # a warm-up step, then a band of +-20 MB with no trend
    band = [150.0] * 100 + list(280 + 20 * np.sin(np.arange(1100)))
    flat = load_test.rss_summary(band)
    assert abs(flat["mb_per_minute_after_first_tenth"]) < 0.2
    assert flat["third_means"][1] == pytest.approx(flat["third_means"][2], abs=1.0)


def test_server_environment_pairs(load_test):
    preload = "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
    assert load_test.parse_server_env([preload, "MALLOC_CONF=a=b"]) == {
        "LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "MALLOC_CONF": "a=b"}
    for bad in ("LD_PRELOAD", "=x"):
        with pytest.raises(ValueError, match=f"--server-env '{bad}': expected KEY=VALUE"):
            load_test.parse_server_env([preload, bad])
