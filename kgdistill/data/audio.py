"""The ``audio`` modality kind: mono waveforms at one sample rate, from WAV files (stdlib ``wave``) or an ``.npy``.

Options (the modality's keys in dataset.yaml beside kind and path):

- ``rate``: samples per second. Required for an ``.npy`` [N, T]; for WAV files a check (every file must have it;
  without it, every file must have the first file's rate).
- ``seconds``: every recording is cut, or padded with silence at its end, to this duration. Without it, WAV
  recordings are padded to the longest one and an ``.npy`` is taken as it is.

Integer PCM (WAV files, integer ``.npy``) is scaled to [-1, 1) (int16 / 32768, 8-bit unsigned around 128), so a
model sees the same numbers from either form; several channels are averaged to mono.
"""
from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np

from ..errors import DataError
from .filelist import listed_files
from .modalities import MODALITY_READERS, Modality, OptionError, check_finite, read_number_array

OPTIONS = ("rate", "seconds")


def _rate(value) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise OptionError(f"rate: expected a positive whole number of samples per second, got {value!r}")
    return value


def _seconds(value) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
                              or value == float("inf")):
        raise OptionError(f"seconds: expected a positive duration in seconds, got {value!r}")
    return None if value is None else float(value)


def pcm_to_float(arr: np.ndarray, path: Path) -> np.ndarray:
    """Integer PCM scaled to [-1, 1); floats kept as they are."""
    if arr.dtype.kind == "f":
        return arr.astype(np.float32)
    half = 2.0 ** (8 * arr.dtype.itemsize - 1)
    if arr.dtype.kind == "i":
        return (arr / half).astype(np.float32)
    if arr.dtype.kind == "u":
        return ((arr - half) / half).astype(np.float32)
    raise DataError(f"array of dtype {arr.dtype}; expected waveform numbers", source=str(path))


def _decode(raw: bytes, width: int, channels: int) -> np.ndarray:
    if width == 3:  # 24-bit little-endian: widen to int32 with the sign bit carried
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)).astype(np.float32)
    else:
        x = pcm_to_float(np.frombuffer(raw, {1: "u1", 2: "<i2", 4: "<i4"}[width]), Path())
    return x.reshape(-1, channels).mean(axis=1, dtype=np.float32)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """One PCM WAV file: the mono waveform in [-1, 1) and its sample rate."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(frames)
    except (wave.Error, EOFError, OSError, struct.error, ValueError) as exc:
        raise DataError(f"not a readable PCM WAV file ({exc or type(exc).__name__}); expected integer PCM",
                        source=str(path)) from None
    if frames == 0:
        raise DataError("no audio frames; expected a recording", source=str(path))
    if len(raw) != frames * channels * width:
        raise DataError(f"truncated: the header promises {frames} frames, the file holds "
                        f"{len(raw) // (channels * width)}", source=str(path))
    return _decode(raw, width, channels), rate


def fit_length(clips, length: int) -> np.ndarray:
    """[N, length]: each clip cut at ``length`` samples or padded with zeros (silence) at its end."""
    out = np.zeros((len(clips), length), dtype=np.float32)
    for i, c in enumerate(clips):
        n = min(len(c), length)
        out[i, :n] = c[:n]
    return out


def _read_wavs(files: list[Path], rate: int | None) -> tuple[list[np.ndarray], int]:
    clips, expected = [], rate
    for f in files:
        x, r = read_wav(f)
        if expected is None:
            expected = r
        elif r != expected:
            why = f"rate: {rate}" if rate is not None else f"like {files[0].name}"
            raise DataError(f"sample rate {r} Hz; expected {expected} Hz ({why})", source=str(f))
        clips.append(x)
    assert expected is not None
    return clips, expected


@MODALITY_READERS.register("audio")
def read_audio(name: str, path: Path, rate: int | None = None, seconds: float | None = None) -> Modality:
    rate, seconds = _rate(rate), _seconds(seconds)
    if path.is_dir() or path.suffix.lower() == ".txt":
        clips, rate = _read_wavs(listed_files(path, ".wav"), rate)
        values = fit_length(clips, round(seconds * rate) if seconds else max(len(c) for c in clips))
    elif path.suffix == ".npy":
        if rate is None:
            raise OptionError("rate: an .npy of waveforms needs its sample rate; add rate: <samples per second> "
                             "to this modality")
        arr = read_number_array(path)
        if arr.ndim != 2:
            raise DataError(f"array of shape {arr.shape}; an audio modality needs [samples, time steps] "
                            "(mono waveforms)", source=str(path))
        values = pcm_to_float(arr, path)
        check_finite(values, path)
        if seconds:
            values = fit_length(values, round(seconds * rate))
    else:
        raise DataError(f"unsupported extension {path.suffix!r}; an audio modality is an .npy array [N, T], "
                        "a folder of .wav files or a .txt listing of them", source=str(path))
    if values.shape[1] < 1:
        raise DataError("recordings of length 0; expected at least one sample each", source=str(path))
    return Modality(name, "audio", path, values, {"rate": rate})


read_audio.options = OPTIONS  # type: ignore[attr-defined]
