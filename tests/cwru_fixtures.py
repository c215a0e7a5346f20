"""Small CWRU-format files for the bearing tests: random signals under real upstream file names."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from kgdistill.data.cwru import KEYS, CwruData


def tiny_cwru(n: int = 12_000, files: tuple[str, ...] = ("1797_Normal", "1797_IR_7_DE12"), seed: int = 0) -> CwruData:
    from kgdistill.data.cwru import parse_file_name

    recs = [parse_file_name(f)[0] for f in files]
    sig = np.random.default_rng(seed).normal(size=(len(recs), 2, n)).astype(np.float16)
    return CwruData(sig, ("DE", "FE"), recs, 12_000, 1.0, "tiny.npz")


def save(data: CwruData, path: Path) -> Path:
    r = data.recordings
    arrays = dict(signals=data.signals, sensor=np.asarray(data.sensors), file=np.asarray([x.file for x in r]),
             load_hp=np.int8([x.load_hp for x in r]), rpm=np.int16([x.rpm for x in r]),
             fault_end=np.asarray([x.fault_end for x in r]), location=np.asarray([x.location for x in r]),
             clock=np.int8([x.clock for x in r]), size_mil=np.int8([x.size_mil for x in r]),
             source_rate_hz=np.int32([12_000] * len(r)), start=np.int32([0] * len(r)), rate_hz=np.int32(12_000),
             scale=np.float32(1.0))
    with zipfile.ZipFile(path, "w") as zf:  # np.savez cannot take an array called 'file'
        for k, a in arrays.items():
            with zf.open(f"{k}.npy", "w") as fh:
                np.lib.format.write_array(fh, np.asarray(a), allow_pickle=False)
    assert set(np.load(path).files) == set(KEYS)
    return path
