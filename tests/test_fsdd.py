"""The shipped Free Spoken Digit Dataset copy: its checksums, its contents, and the script that derives it."""
from __future__ import annotations

import hashlib
import shutil
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from kgdistill.data.fsdd import FSDD_DIR, SHA256, load_fsdd, mulaw_decode, mulaw_encode
from kgdistill.errors import DataError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from script_loader import load_script  # noqa: E402


def test_shipped_files_have_the_pinned_checksums():
    for name, digest in SHA256.items():
        assert hashlib.sha256((FSDD_DIR / name).read_bytes()).hexdigest() == digest, name
    assert (FSDD_DIR / "recordings.u8.xz").stat().st_size < 12_000_000


def test_shipped_recordings_are_every_speaker_digit_and_take():
    d = load_fsdd()
    assert len(d.waves) == 3000 and d.rate == 8000
    assert sorted(set(d.speakers)) == ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    for s in set(d.speakers):
        for digit in range(10):
            takes = d.index[(d.speakers == s) & (d.digits == digit)]
            assert sorted(takes.tolist()) == list(range(50))
    assert d.files[0] == "0_george_0.wav" and d.files[-1] == "9_yweweler_49.wav"
    lengths = np.array([len(w) for w in d.waves])
    assert lengths.max() == 8000 and (lengths == 8000).sum() == 20 and lengths.min() > 1000
    assert all(np.abs(w).max() <= 1.0 and w.dtype == np.float32 for w in d.waves[::100])


def test_a_damaged_copy_is_refused(tmp_path):
    for name in SHA256:
        shutil.copy(FSDD_DIR / name, tmp_path / name)
    raw = bytearray((tmp_path / "recordings.tsv").read_bytes())
    raw[100] ^= 1
    (tmp_path / "recordings.tsv").write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"recordings.tsv: checksum mismatch"):
        load_fsdd(tmp_path)


def test_mulaw_by_hand():
    assert mulaw_encode(np.array([-1.0, 0.0, 1.0, 2.0])).tolist() == [0, 128, 255, 255]
    # code 128: y = 128/255*2-1 = 1/255; x = expm1(y * ln 256) / 255
    np.testing.assert_allclose(mulaw_decode(np.array([0, 128, 255], dtype=np.uint8)),
                               [-1.0, np.expm1(np.log(256) / 255) / 255, 1.0], rtol=1e-6)
    x = np.linspace(-1, 1, 20001)
    err = np.abs(mulaw_decode(mulaw_encode(x)) - x)
    assert (err <= mulaw_bound(x)).all() and err.max() > 0.5 * mulaw_bound(x).max()


def mulaw_bound(x):
    """Half a code step: x = expm1(|y| ln 256) / 255 with y in steps of 2/255, so the error of a sample is at most
    (e^(ln 256 / 255) - 1)(|x| + 1/255) = 0.02198 (|x| + 1/255): fine near silence, coarse when loud."""
    return (np.expm1(np.log(256) / 255) + 1e-6) * (np.abs(x) + 1 / 255)


def _derive_module():
    return load_script("derive_fsdd")


def test_derivation_is_byte_for_byte_and_decodes_to_the_recordings(tmp_path):
    rec = tmp_path / "checkout" / "recordings"
    rec.mkdir(parents=True)
    rng = np.random.default_rng(0)
    originals = {"3_theo_12.wav": rng.integers(-3000, 3000, 9000), "3_theo_2.wav": rng.integers(-500, 500, 1200),
                 "0_theo_7.wav": rng.integers(-20000, 20000, 4000), "1_anna_0.wav": rng.integers(-100, 100, 10)}
    for name, pcm in originals.items():
        with wave.open(str(rec / name), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
            w.writeframes(pcm.astype("<i2").tobytes())
    derive = _derive_module().derive
    first = derive(tmp_path / "checkout", tmp_path / "a")
    assert derive(tmp_path / "checkout", tmp_path / "b") == first
    for name in first:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    d = load_fsdd(tmp_path / "a", verify=False)
    assert d.files == ["1_anna_0.wav", "0_theo_7.wav", "3_theo_2.wav", "3_theo_12.wav"]  # speaker, digit, index
    assert d.digits.tolist() == [1, 0, 3, 3] and d.index.tolist() == [0, 7, 2, 12]
    assert [len(w) for w in d.waves] == [10, 4000, 1200, 8000]                          # cut at one second
    for name, w in zip(d.files, d.waves):
        x = originals[name][:8000] / 32768
        assert (np.abs(w - x) <= mulaw_bound(x)).all()
    assert (tmp_path / "a" / "recordings.tsv").read_text().splitlines()[4] == "3_theo_12.wav\t3\ttheo\t12\t8000\t9000"
