"""Readers for the modality files of a paired dataset, each checking what it reads.

Kinds: ``vector`` (.npy [N, D] or .csv), ``timeseries`` (.npy [N, C, T]),
``text`` (.txt, one sample per line), ``concept_set`` (.txt, one sample per line,
graph concept ids separated by whitespace, ``,`` or ``;``); ``image`` and ``audio``
live in their own modules (image.py, audio.py), registered when ``kgdistill.data`` is imported.

A reader is called ``reader(name, path, **options)``, the options being the modality's
other keys in dataset.yaml (``rate`` for audio); a reader lists the ones it takes in
``reader.options`` and rejects a bad value with ``OptionError("key: what was expected")``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import DataError
from ..registry import Registry

class OptionError(ValueError):
    """A modality option in dataset.yaml has a bad value; the loader names the key and the file."""


MODALITY_READERS: Registry[Callable[[str, Path], "Modality"]] = Registry("modality kind")


@dataclass
class Modality:
    name: str
    kind: str
    path: Path
    values: Any  # np.ndarray for vector/timeseries/image/audio, list[str] for text, list[list[str]] for concept_set
    meta: dict[str, Any] = field(default_factory=dict)  # what the values need beside them: audio's sample rate

    def __len__(self) -> int:
        return len(self.values)

    def subset(self, idx: np.ndarray) -> "Modality":
        vals = self.values[idx] if isinstance(self.values, np.ndarray) else [self.values[i] for i in idx]
        return Modality(self.name, self.kind, self.path, vals, dict(self.meta))


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError("file not found", source=str(path))
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError("empty file; expected one line per sample", source=str(path))
    try:
        text = raw.decode("utf-8-sig")  # a leading byte-order mark is dropped
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError("not UTF-8 text; re-encode the file as UTF-8", source=str(path), line=line) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.rstrip("\r") for ln in lines]


def check_finite(arr: np.ndarray, path: Path) -> None:
    bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"row {row} has NaN or infinite values ({int(bad.sum())} rows in all); expected finite numbers",
                        source=str(path), line=row + 1 if path.suffix != ".npy" else None)


def _load_array(path: Path) -> np.ndarray:
    """A checked float32 array: numbers, at least one row, all finite."""
    arr = read_number_array(path).astype(np.float32)
    check_finite(arr, path)
    return arr


def read_number_array(path: Path) -> np.ndarray:
    """An .npy/.csv/.tsv array of numbers with at least one row, in the file's own dtype (not yet checked finite)."""
    if not path.is_file():
        raise DataError("file not found", source=str(path))
    if path.suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise DataError(f"not a readable .npy array: {exc}", source=str(path)) from None
    elif path.suffix in (".csv", ".tsv", ".txt"):
        delim = "\t" if path.suffix == ".tsv" else ","
        rows = []
        for n, line in enumerate(read_lines(path), start=1):
            if not line.strip():
                raise DataError("empty line; expected one row of numbers per sample", source=str(path), line=n)
            try:
                rows.append([float(x) for x in line.split(delim)])
            except ValueError:
                raise DataError(f"expected numbers separated by {delim!r}", source=str(path), line=n) from None
            if len(rows[-1]) != len(rows[0]):
                raise DataError(f"{len(rows[-1])} values, expected {len(rows[0])} like line 1", source=str(path), line=n)
        arr = np.asarray(rows, dtype=np.float32)
    else:
        raise DataError(f"unsupported extension {path.suffix!r}; expected .npy, .csv or .tsv", source=str(path))
    if arr.dtype.kind not in "fiub":
        raise DataError(f"array of dtype {arr.dtype}; expected numbers", source=str(path))
    if arr.ndim == 0:
        raise DataError("a single number, not an array; expected one row per sample", source=str(path))
    if arr.size == 0 or len(arr) == 0:
        raise DataError("empty array; expected one row per sample", source=str(path))
    return arr


@MODALITY_READERS.register("vector")
def read_vector(name: str, path: Path) -> Modality:
    arr = _load_array(path)
    if arr.ndim != 2:
        raise DataError(f"array of shape {arr.shape}; a vector modality needs [samples, features]", source=str(path))
    return Modality(name, "vector", path, arr)


@MODALITY_READERS.register("timeseries")
def read_timeseries(name: str, path: Path) -> Modality:
    arr = _load_array(path)
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3:
        raise DataError(f"array of shape {arr.shape}; a time-series modality needs [samples, channels, steps]",
                        source=str(path))
    return Modality(name, "timeseries", path, arr)


@MODALITY_READERS.register("text")
def read_text(name: str, path: Path) -> Modality:
    lines = read_lines(path)
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataError("empty text; expected one non-empty text per line", source=str(path), line=n)
    return Modality(name, "text", path, lines)


_SEP = re.compile(r"[\s,;]+")


@MODALITY_READERS.register("concept_set")
def read_concept_set(name: str, path: Path) -> Modality:
    sets = []
    for n, line in enumerate(read_lines(path), start=1):
        items = [x for x in _SEP.split(line.strip()) if x]
        if not items:
            raise DataError("empty concept set; expected at least one concept id", source=str(path), line=n)
        sets.append(list(dict.fromkeys(items)))
    return Modality(name, "concept_set", path, sets)



_SENTENCE = re.compile(r"(?<=[.!?;])\s+")


def split_sentences(text: str) -> list[str]:
    """Notes are read sentence by sentence: each sentence is one finding, mostly."""
    parts = [p.strip() for p in _SENTENCE.split(text.strip())]
    return [p for p in parts if p] or [text.strip()]
