"""Derive kgdistill/data/fsdd/ (recordings.u8.xz, recordings.tsv) from a checkout of the Free Spoken Digit Dataset.

    git clone https://github.com/Jakobovski/free-spoken-digit-dataset CHECKOUT   # tag v1.0.10 / commit 26eb9aa
    python scripts/derive_fsdd.py CHECKOUT [--out kgdistill/data/fsdd]

Every ``recordings/{digit}_{speaker}_{index}.wav`` (8 kHz, 16-bit mono) is cut to its first second and stored
as 8-bit mu-law codes, in the order (speaker, digit, index), as one xz stream (preset 9); the index lists each
recording with its kept and original length.  Same checkout, same bytes: nothing depends on time or on the
order files are listed in.  The sha256 of both files is printed (they are pinned in kgdistill/data/fsdd.py).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import lzma
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kgdistill.data.audio import read_wav  # noqa: E402
from kgdistill.data.fsdd import COLUMNS, FSDD_DIR, MAX_SAMPLES, RATE, mulaw_encode  # noqa: E402

NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


def recordings(checkout: Path) -> list[tuple[str, int, str, int]]:
    """(file, digit, speaker, index) of every recording, in (speaker, digit, index) order."""
    folder = checkout / "recordings"
    if not folder.is_dir():
        raise SystemExit(f"{folder}: not found; expected a checkout of Jakobovski/free-spoken-digit-dataset")
    found = []
    for p in folder.iterdir():
        m = NAME.match(p.name)
        if p.suffix == ".wav" and not m:
            raise SystemExit(f"{p}: unexpected file name; expected {{digit}}_{{speaker}}_{{index}}.wav")
        if m:
            found.append((p.name, int(m[1]), m[2], int(m[3])))
    return sorted(found, key=lambda r: (r[2], r[1], r[3]))


def derive(checkout: Path, out: Path) -> dict[str, str]:
    rows, codes = [], []
    for name, digit, speaker, index in recordings(checkout):
        x, rate = read_wav(checkout / "recordings" / name)
        if rate != RATE:
            raise SystemExit(f"{name}: {rate} Hz; expected {RATE} Hz")
        kept = x[:MAX_SAMPLES]
        codes.append(mulaw_encode(kept))
        rows.append([name, digit, speaker, index, len(kept), len(x)])
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO(newline="")
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow(COLUMNS)
    w.writerows(rows)
    files = {"recordings.tsv": buf.getvalue().encode("utf-8"),
             "recordings.u8.xz": lzma.compress(np.concatenate(codes).tobytes(), format=lzma.FORMAT_XZ,
                                               check=lzma.CHECK_CRC64, preset=9)}
    for fname, data in files.items():
        (out / fname).write_bytes(data)
    return {fname: hashlib.sha256(data).hexdigest() for fname, data in files.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkout", type=Path)
    ap.add_argument("--out", type=Path, default=FSDD_DIR)
    args = ap.parse_args(argv)
    for fname, digest in derive(args.checkout, args.out).items():
        print(f"{digest}  {args.out / fname}")


if __name__ == "__main__":
    main()
