"""The shipped CWRU file (checksums, values read by hand from upstream) and scripts/derive_cwru.py itself."""
from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from kgdistill.data.cwru import CWRU_FILE, load_cwru, parse_file_name
from kgdistill.errors import DataError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from script_loader import load_script  # noqa: E402

SHA256 = "e8190d69ff6bb67ad649a7c0e8e9a9b4203d39c2e5e0b7b3e51056edd09db09d"
MANIFEST = json.loads((CWRU_FILE.parent / "manifest.json").read_text(encoding="utf-8"))
derive_cwru = load_script("derive_cwru")


def test_shipped_file_checksums():
    assert hashlib.sha256(CWRU_FILE.read_bytes()).hexdigest() == SHA256 == MANIFEST["output"]["sha256"]
    with np.load(CWRU_FILE, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert derive_cwru.content_sha256(arrays) == MANIFEST["output"]["content_sha256"]
    assert MANIFEST["upstream"]["commit"].startswith("b1179d2")


def test_shipped_values_match_upstream_read_by_hand():
    d = load_cwru()
    files = [r.file for r in d.recordings]
    assert d.signals.shape == (98, 2, 54_000) and d.signals.dtype == np.float16
    assert d.sensors == ("DE", "FE") and d.rate_hz == 12_000 and d.scale == 1.0
    # samples 0, 1 and 53,999 of the upstream float64 arrays (np.load of the upstream .npz)
    upstream = {("1730_OR@6_21_DE12", "DE"): [-0.27613972055888225, 0.0625375249500998, -2.1498289421157684],
                ("1730_OR@6_21_DE12", "FE"): [0.3069490909090909, -0.1528581818181818, 0.47685999999999995],
                ("1772_B_7_FE", "FE"): [0.05154337662337663, 0.02422701298701299, 0.06097402597402598]}
    for (f, sensor), vals in upstream.items():
        got = d.channel(sensor)[files.index(f), [0, 1, 53_999]]
        np.testing.assert_array_equal(got, np.asarray(vals, dtype=np.float16))
    r = d.recordings[files.index("1730_OR@6_21_DE12")]
    assert (r.load_hp, r.rpm, r.fault_end, r.location, r.clock, r.size_mil) == (3, 1730, "drive_end", "outer_race", 6, 21)
    assert r.label == "cwru:DE_OR6_021"


def test_shipped_recordings_per_load():
    d = load_cwru()
    counts = Counter((r.load_hp, r.fault_end) for r in d.recordings)
    assert counts == {(0, "none"): 1, (0, "drive_end"): 13, (0, "fan_end"): 12, (1, "drive_end"): 13,
                      (1, "fan_end"): 11, (2, "drive_end"): 13, (2, "fan_end"): 11, (3, "drive_end"): 13,
                      (3, "fan_end"): 11}
    for load in range(4):  # the same 13 drive-end classes at every load, each once
        labels = [r.label for r in d.recordings if r.load_hp == load and r.fault_end == "drive_end"]
        assert len(set(labels)) == 13
        assert {"cwru:DE_IR_007", "cwru:DE_OR3_021", "cwru:DE_OR12_007", "cwru:DE_OR6_014"} <= set(labels)
    normal = d.recordings[0]
    assert normal.file == "1797_Normal" and normal.label == "cwru:Normal"
    assert np.isfinite(d.signals.astype(np.float32)).all()


def test_file_names_parse_and_bad_ones_are_refused():
    rec, rate = parse_file_name("1750_OR@12_7_FE")
    assert (rec.load_hp, rec.fault_end, rec.location, rec.clock, rec.size_mil, rate) == (2, "fan_end", "outer_race",
                                                                                         12, 7, 12_000)
    assert parse_file_name("1772_Normal")[1] == 48_000
    for bad in ("1800_IR_7_DE12", "1797_OR_7_DE12", "1797_IR@3_7_DE12", "1797_IR_7"):
        with pytest.raises(DataError, match="file name"):
            parse_file_name(bad)


def _fake_checkout(root: Path, tone_hz: float = 1000.0) -> Path:
    """Upstream's layout with tiny recordings: a 48 kHz baseline (a tone plus 7 kHz, which must not alias), a
    12 kHz drive-end fault, a DE-only 28 mil file and a 48 kHz fault file (both left out)."""
    folder = root / "Data" / "1797 RPM"
    folder.mkdir(parents=True)
    t48 = np.arange(48_000) / 48_000
    base = np.sin(2 * np.pi * tone_hz * t48)
    np.savez(folder / "1797_Normal.npz", DE=(base + np.sin(2 * np.pi * 7000 * t48))[:, None], FE=base[:, None])
    ramp = (np.arange(12_000) % 100 / 100.0)[:, None]
    np.savez(folder / "1797_IR_7_DE12.npz", DE=ramp, FE=-ramp, BA=ramp)
    np.savez(folder / "1797_B_28_DE12.npz", DE=ramp)
    np.savez(folder / "1797_IR_7_DE48.npz", DE=base[:, None], FE=base[:, None])
    return root


def test_derivation_is_deterministic_and_antialiased(tmp_path):
    checkout = _fake_checkout(tmp_path / "up")
    assert derive_cwru.main([str(checkout), "--out", str(tmp_path / "a"), "--discover", "--seconds", "0.5"]) == 0
    assert derive_cwru.main([str(checkout), "--out", str(tmp_path / "b"), "--discover", "--seconds", "0.5"]) == 0
    first = (tmp_path / "a" / "cwru_12k.npz").read_bytes()
    assert first == (tmp_path / "b" / "cwru_12k.npz").read_bytes()
    # the default mode re-derives from the manifest's sources and finds the same bytes
    assert derive_cwru.main([str(checkout), "--out", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "cwru_12k.npz").read_bytes() == first
    d = load_cwru(tmp_path / "a" / "cwru_12k.npz")
    assert [r.file for r in d.recordings] == ["1797_Normal", "1797_IR_7_DE12"]
    assert d.signals.shape == (2, 2, 6000)
    np.testing.assert_array_equal(d.signals[1, 0, :3], np.float16([0.0, 0.01, 0.02]))
    np.testing.assert_array_equal(d.signals[1, 1, :3], np.float16([0.0, -0.01, -0.02]))
    # the 1 kHz tone keeps its amplitude; the 7 kHz one would alias to 5 kHz and is gone (float16 floor)
    de = d.signals[0, 0].astype(np.float64)
    t = (np.arange(6000) + 51) / 12_000  # kept samples start at 12 kHz sample 51 (upstream sample 204)
    amp = {f: 2 * abs(np.mean(de * np.exp(-2j * np.pi * f * t))) for f in (1000, 5000)}
    assert amp[1000] == pytest.approx(1.0, abs=1e-3)
    assert amp[5000] < 2e-4
    np.testing.assert_allclose(de, np.sin(2 * np.pi * 1000 * t), atol=2e-3)


def test_changed_source_is_refused(tmp_path):
    checkout = _fake_checkout(tmp_path / "up")
    assert derive_cwru.main([str(checkout), "--out", str(tmp_path / "a"), "--discover", "--seconds", "0.5"]) == 0
    _fake_checkout(tmp_path / "other", tone_hz=1500.0)
    with pytest.raises(SystemExit, match="1797_Normal.npz: git blob .*expected"):
        derive_cwru.main([str(tmp_path / "other"), "--out", str(tmp_path / "a")])
