"""Derive data/cwru/cwru_12k.npz from a checkout of srigas/CWRU_Bearing_NumPy (commit b1179d2), byte for byte.

    python scripts/derive_cwru.py CHECKOUT               # re-derive the shipped file and compare its checksum
    python scripts/derive_cwru.py CHECKOUT --discover    # pick the sources from the checkout, write a new manifest

Sources (listed with their git blob ids in data/cwru/manifest.json): every 12 kHz fault recording that has
both a drive-end (DE) and a fan-end (FE) accelerometer (drive-end faults ``*_DE12``, fan-end faults ``*_FE``)
and every normal baseline (48 kHz, decimated to 12 kHz).  Each keeps ``seconds`` of both sensors as float16.

Decimation 48 -> 12 kHz: ``scipy.signal.resample_poly(x, 1, 4, window=h)`` with ``h`` a Kaiser-window
low-pass FIR (``scipy.signal.firwin``; length and beta from ``kaiserord`` for 80 dB stopband attenuation,
passband edge 5.4 kHz, stopband edge 6.0 kHz = the new Nyquist frequency), so nothing above 6 kHz folds back.
The first output samples, which the filter computes from the zero padding before the recording, are skipped.

The .npz is a zip written with fixed member order, timestamps (1980-01-01) and permissions, deflate level 9:
the same inputs give the same bytes with the same zlib (manifest: versions); ``content_sha256`` (the arrays'
.npy bytes) checks the content where another zlib compresses differently.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import scipy
from scipy import signal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kgdistill.data.cwru import KEYS, RATE_HZ, parse_file_name  # noqa: E402
from kgdistill.errors import KGDistillError  # noqa: E402

OUT = ROOT / "data" / "cwru"
NPZ = "cwru_12k.npz"
SECONDS = 5.0
SENSORS = ("DE", "FE")
PASS_HZ, STOP_HZ, ATTEN_DB = 5400.0, 6000.0, 80.0
UPSTREAM = {"repository": "https://github.com/srigas/CWRU_Bearing_NumPy",
            "commit": "b1179d28761048530daa4f04a5c1659eff529499"}
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def git_blob_id(data: bytes) -> str:
    """The id git gives a file's content: which upstream version a source is, independent of the checkout."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def antialias_filter(rate_in: int, rate_out: int = RATE_HZ) -> np.ndarray:
    """Kaiser-window low-pass FIR for ``rate_in -> rate_out`` (odd length, unit gain at DC)."""
    nyq = rate_in / 2
    numtaps, beta = signal.kaiserord(ATTEN_DB, (STOP_HZ - PASS_HZ) / nyq)
    numtaps |= 1
    return signal.firwin(numtaps, (PASS_HZ + STOP_HZ) / 2, window=("kaiser", beta), fs=rate_in)


def to_12k(x: np.ndarray, rate_in: int) -> tuple[np.ndarray, int]:
    """The recording at 12 kHz and the source sample its first kept sample sits at."""
    if rate_in == RATE_HZ:
        return x, 0
    q = rate_in // RATE_HZ
    if q * RATE_HZ != rate_in:
        raise ValueError(f"{rate_in} Hz is not a multiple of {RATE_HZ} Hz")
    h = antialias_filter(rate_in)
    y = signal.resample_poly(x, 1, q, window=h)
    skip = math.ceil((len(h) - 1) // 2 / q)  # outputs reaching before the first input sample
    return y[skip:], skip * q


def discover(checkout: Path) -> list[dict]:
    """Every 12 kHz fault file with DE and FE, and every normal baseline, in a fixed order."""
    found = []
    for path in sorted((checkout / "Data").glob("*/*.npz")):
        rec, rate = parse_file_name(path.stem)
        if path.stem.endswith("DE48"):
            continue
        with np.load(path, allow_pickle=False) as z:
            if not set(SENSORS) <= set(z.files):
                continue
        found.append({"file": path.stem, "path": str(path.relative_to(checkout)), "rate_hz": rate,
                      "blob": git_blob_id(path.read_bytes())})
    ends = {"none": 0, "drive_end": 1, "fan_end": 2}

    def order(s: dict):
        r = parse_file_name(s["file"])[0]
        return r.load_hp, ends[r.fault_end], r.location, r.clock, r.size_mil
    return sorted(found, key=order)


def derive(checkout: Path, sources: list[dict], seconds: float, check_blobs: bool = True) -> dict[str, np.ndarray]:
    """The arrays of the derived file (keys: ``kgdistill.data.cwru.KEYS``)."""
    n = int(round(seconds * RATE_HZ))
    sig = np.zeros((len(sources), len(SENSORS), n), dtype=np.float16)
    meta: dict[str, list] = {k: [] for k in ("file", "load_hp", "rpm", "fault_end", "location", "clock", "size_mil",
                                             "source_rate_hz", "start")}
    for i, src in enumerate(sources):
        path = checkout / src["path"]
        raw = path.read_bytes()
        if check_blobs and git_blob_id(raw) != src["blob"]:
            raise SystemExit(f"{path}: git blob {git_blob_id(raw)}, expected {src['blob']} (another upstream version?)")
        rec, rate = parse_file_name(src["file"])
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            for s, name in enumerate(SENSORS):
                x, start = to_12k(np.asarray(z[name], dtype=np.float64).reshape(-1), rate)
                if len(x) < n:
                    raise SystemExit(f"{path}: {name} has {len(x)} samples at 12 kHz, fewer than {seconds} s")
                sig[i, s] = x[:n]
        for k, v in (("file", rec.file), ("load_hp", rec.load_hp), ("rpm", rec.rpm), ("fault_end", rec.fault_end),
                     ("location", rec.location), ("clock", rec.clock), ("size_mil", rec.size_mil),
                     ("source_rate_hz", rate), ("start", start)):
            meta[k].append(v)
    if not np.isfinite(sig).all():
        raise SystemExit("float16 overflow: rescale before storing")
    arrays = {"signals": sig, "sensor": np.asarray(SENSORS)}
    dtypes = {"load_hp": np.int8, "rpm": np.int16, "clock": np.int8, "size_mil": np.int8,
              "source_rate_hz": np.int32, "start": np.int32}
    for k, v in meta.items():
        arrays[k] = np.asarray(v, dtype=dtypes.get(k))
    arrays["rate_hz"] = np.asarray(RATE_HZ, dtype=np.int32)
    arrays["scale"] = np.asarray(1.0, dtype=np.float32)
    assert tuple(arrays) == KEYS
    return arrays


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(a, order="C"), allow_pickle=False)
    return buf.getvalue()


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz (a zip of .npy members) whose bytes depend only on the arrays (and zlib)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for k, a in arrays.items():
            info = zipfile.ZipInfo(f"{k}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, npy_bytes(a), compresslevel=9)
    tmp.replace(path)


def content_sha256(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k, a in arrays.items():
        h.update(k.encode() + b"\0" + npy_bytes(a))
    return h.hexdigest()


def float16_error(checkout: Path, sources: list[dict], arrays: dict[str, np.ndarray]) -> float:
    """Largest relative RMS error float16 storage adds to any kept signal (vs the float64 12 kHz signal)."""
    worst = 0.0
    n = arrays["signals"].shape[-1]
    for i, src in enumerate(sources):
        with np.load(checkout / src["path"], allow_pickle=False) as z:
            for s, name in enumerate(SENSORS):
                x = to_12k(np.asarray(z[name], dtype=np.float64).reshape(-1), src["rate_hz"])[0][:n]
                err = arrays["signals"][i, s].astype(np.float64) - x
                worst = max(worst, float(np.sqrt(np.mean(err ** 2)) / np.sqrt(np.mean(x ** 2))))
    return worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkout", type=Path, help="a checkout of srigas/CWRU_Bearing_NumPy (holds Data/)")
    ap.add_argument("--out", type=Path, default=OUT, help=f"folder of {NPZ} and manifest.json (default: data/cwru)")
    ap.add_argument("--discover", action="store_true", help="choose the sources from the checkout; new manifest")
    ap.add_argument("--seconds", type=float, default=SECONDS, help="with --discover: seconds kept per recording")
    args = ap.parse_args(argv)
    manifest_path = args.out / "manifest.json"
    try:
        if args.discover:
            old = None
            sources, seconds = discover(args.checkout), args.seconds
        else:
            old = json.loads(manifest_path.read_text(encoding="utf-8"))
            sources, seconds = old["sources"], old["seconds"]
        arrays = derive(args.checkout, sources, seconds)
    except KGDistillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    write_npz(args.out / NPZ, arrays)
    data = (args.out / NPZ).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if old is not None:
        same = digest == old["output"]["sha256"]
        same_content = content_sha256(arrays) == old["output"]["content_sha256"]
        print(f"{args.out / NPZ}: {len(data)} bytes, sha256 {digest}: "
              f"{'identical to' if same else 'DIFFERS from'} the manifest"
              + ("" if same else f" (content {'identical' if same_content else 'DIFFERS'})"))
        return 0 if same_content else 1
    h = antialias_filter(48_000)
    manifest = {
        "upstream": UPSTREAM,
        "seconds": seconds, "rate_hz": RATE_HZ, "sensors": list(SENSORS), "scale": 1.0,
        "decimation": {"function": "scipy.signal.resample_poly(x, 1, 4, window=h)",
                       "filter": f"firwin Kaiser low-pass, {len(h)} taps, beta from kaiserord({ATTEN_DB:g} dB, "
                                 f"{STOP_HZ - PASS_HZ:g} Hz), cutoff {(PASS_HZ + STOP_HZ) / 2:g} Hz at 48 kHz",
                       "passband_hz": PASS_HZ, "stopband_hz": STOP_HZ, "attenuation_db": ATTEN_DB, "taps": len(h)},
        "float16_max_relative_rms_error": round(float16_error(args.checkout, sources, arrays), 8),
        "max_abs_value": float(np.abs(arrays["signals"].astype(np.float32)).max()),
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "zlib": zlib.ZLIB_RUNTIME_VERSION},
        "output": {"file": NPZ, "bytes": len(data), "sha256": digest, "content_sha256": content_sha256(arrays)},
        "sources": sources,
    }
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"{args.out / NPZ}: {len(sources)} recordings x {seconds:g} s, {len(data)} bytes, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
