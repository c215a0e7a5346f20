"""The Free Spoken Digit Dataset, shipped in a compact derived form (``kgdistill/data/fsdd/``, CC BY-SA 4.0).

3,000 recordings (6 speakers x 10 digits x 50) of Jakobovski/free-spoken-digit-dataset, 8 kHz mono, each cut
to its first second and stored as 8-bit mu-law codes (mu = 255, the continuous companding law of
``torchaudio.functional.mu_law_encoding``) in one xz stream; ``recordings.tsv`` says which slice is which
recording.  ``scripts/derive_fsdd.py CHECKOUT`` writes the same bytes again from a checkout; the credits,
the licence and what was lost are in ``fsdd/README.md``.
"""
from __future__ import annotations

import csv
import hashlib
import lzma
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError

FSDD_DIR = Path(__file__).resolve().parent / "fsdd"
RATE = 8000
MAX_SAMPLES = RATE          # each recording is cut to its first second
MU = 255
# sha256 of the shipped files (checked on load and by tests/test_fsdd.py)
SHA256 = {
    "recordings.u8.xz": "c0de563141f4bd7f770284b8eb8fa0b32020a398fa92dba91bf3846d179c5d08",
    "recordings.tsv": "1aa557bb701e27d4113f1382b6a90d44cd784959d9932415d8b5fbdaaae41f3f",
}
COLUMNS = ["file", "digit", "speaker", "index", "samples", "original_samples"]


def mulaw_encode(x: np.ndarray) -> np.ndarray:
    """Waveform in [-1, 1] -> uint8 codes 0..255 (continuous mu-law, mu = 255)."""
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    y = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
    return np.floor((y + 1.0) / 2.0 * MU + 0.5).astype(np.uint8)


def mulaw_decode(codes: np.ndarray) -> np.ndarray:
    """uint8 codes -> float32 waveform in [-1, 1]."""
    y = codes.astype(np.float64) / MU * 2.0 - 1.0
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(MU)) / MU).astype(np.float32)


@dataclass
class SpokenDigits:
    waves: list[np.ndarray]     # float32 waveforms in [-1, 1], 8 kHz, at most 1 s each
    digits: np.ndarray          # int 0-9
    speakers: np.ndarray        # str
    index: np.ndarray           # int: the recording's number for its speaker and digit (0-49)
    files: list[str]            # the original file names
    rate: int = RATE


def _checked_bytes(path: Path, verify: bool) -> bytes:
    if not path.is_file():
        raise DataError("file not found; the spoken-digit recordings ship inside the package", source=str(path))
    data = path.read_bytes()
    if verify and hashlib.sha256(data).hexdigest() != SHA256[path.name]:
        raise DataError("checksum mismatch: the file is damaged; restore it from the repository or derive it again "
                        "with scripts/derive_fsdd.py", source=str(path))
    return data


def load_fsdd(root: Path = FSDD_DIR, verify: bool = True) -> SpokenDigits:
    """Every recording of the derived FSDD in ``root`` (the shipped copy: checksums verified), decoded."""
    rows = list(csv.DictReader(_checked_bytes(root / "recordings.tsv", verify).decode("utf-8").splitlines(),
                               delimiter="\t"))
    codes = np.frombuffer(lzma.decompress(_checked_bytes(root / "recordings.u8.xz", verify)), dtype=np.uint8)
    lengths = np.array([int(r["samples"]) for r in rows])
    if lengths.sum() != len(codes):
        raise DataError(f"{len(codes)} samples, the index lists {lengths.sum()}", source=str(root / "recordings.u8.xz"))
    waves = np.split(mulaw_decode(codes), np.cumsum(lengths)[:-1])
    return SpokenDigits(waves=waves, digits=np.array([int(r["digit"]) for r in rows]),
                        speakers=np.array([r["speaker"] for r in rows]), index=np.array([int(r["index"]) for r in rows]),
                        files=[r["file"] for r in rows])
