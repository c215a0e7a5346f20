"""Readers for the modality files of a paired dataset, each checking what it reads.

Kinds: ``vector`` (.npy [N, D] or .csv), ``timeseries`` (.npy [N, C, T]),
``text`` (.txt, one sample per line), ``concept_set`` (.txt, one sample per line,
graph concept ids separated by whitespace, ``,`` or ``;``; an id written ``-ID`` is a finding
explicitly absent, e.g. an excluded phenotype, which is information, not a missing value); ``image``
and ``audio`` live in their own modules (image.py, audio.py), registered when ``kgdistill.data`` is imported.

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
from ..text.sentences import split_sentences  # noqa: F401  (the text kind reads notes so)

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


def check_finite(arr: np.ndarray, path: Path, lines: list[int] | None = None) -> None:
    """NaN or infinity: named by the line a text editor shows (text files) or the sample number (.npy)."""
    bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        where = "" if lines is not None else f"sample {row + 1} (array row {row}) "
        raise DataError(f"{where}has NaN or infinite values ({int(bad.sum())} rows in all); expected finite numbers",
                        source=str(path), line=lines[row] if lines is not None else None)


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _read_number_rows(path: Path) -> tuple[np.ndarray, list[int]]:
    """Rows of numbers from a .csv / .tsv / .txt file, and the line each came from.

    A first line with no number in it is a header (column names, as spreadsheets and pandas write them) and is
    skipped, provided it has as many fields as the rows below it.
    """
    delim = "\t" if path.suffix == ".tsv" else ","
    lines = read_lines(path)
    start = 1
    if lines and lines[0].strip() and not any(_is_number(x) for x in lines[0].split(delim)):
        start = 2  # a header: checked against the first row below
    rows, where = [], []
    for n, line in enumerate(lines[start - 1:], start=start):
        if not line.strip():
            raise DataError("empty line; expected one row of numbers per sample", source=str(path), line=n)
        try:
            rows.append([float(x) for x in line.split(delim)])
        except ValueError:
            hint = "; a header line is taken only when none of its fields is a number" if n == 1 else ""
            raise DataError(f"expected numbers separated by {delim!r}{hint}", source=str(path), line=n) from None
        if len(rows[-1]) != len(rows[0]):
            raise DataError(f"{len(rows[-1])} values, expected {len(rows[0])} like line {where[0]}",
                            source=str(path), line=n)
        where.append(n)
    if start == 2:
        names = len(lines[0].split(delim))
        if not rows:
            raise DataError("only a header line; expected one row of numbers per sample after it", source=str(path),
                            line=1)
        if names != len(rows[0]):
            raise DataError(f"header line has {names} column names but the rows have {len(rows[0])} values",
                            source=str(path), line=1)
    return np.asarray(rows, dtype=np.float32), where


def _load_array(path: Path) -> np.ndarray:
    """A checked float32 array: numbers, at least one row, all finite."""
    arr, lines = _read_array(path)
    arr = arr.astype(np.float32)
    check_finite(arr, path, lines)
    return arr


def read_number_array(path: Path) -> np.ndarray:
    """An .npy/.csv/.tsv array of numbers with at least one row, in the file's own dtype (not yet checked finite)."""
    return _read_array(path)[0]


def _read_array(path: Path) -> tuple[np.ndarray, list[int] | None]:
    """The array, and for a text file the line each row came from."""
    if not path.is_file():
        raise DataError("file not found", source=str(path))
    lines = None
    if path.suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise DataError(f"not a readable .npy array: {exc}", source=str(path)) from None
    elif path.suffix in (".csv", ".tsv", ".txt"):
        arr, lines = _read_number_rows(path)
    else:
        raise DataError(f"unsupported extension {path.suffix!r}; expected .npy, .csv or .tsv", source=str(path))
    if arr.dtype.kind not in "fiub":
        raise DataError(f"array of dtype {arr.dtype}; expected numbers", source=str(path))
    if arr.ndim == 0:
        raise DataError("a single number, not an array; expected one row per sample", source=str(path))
    if arr.size == 0 or len(arr) == 0:
        raise DataError("empty array; expected one row per sample", source=str(path))
    return arr, lines


@MODALITY_READERS.register("vector")
def read_vector(name: str, path: Path) -> Modality:
    arr = _load_array(path)
    if arr.ndim != 2:
        raise DataError(f"array of shape {arr.shape}; a vector modality needs [samples, features]", source=str(path))
    return Modality(name, "vector", path, arr)


@MODALITY_READERS.register("timeseries")
def read_timeseries(name: str, path: Path, rate: float | None = None) -> Modality:
    """``rate`` (Hz, optional): series that give one are windows of the same moments (checked by the loader)."""
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < float("inf")):
        raise OptionError(f"rate: expected a sampling rate in Hz (a positive number), got {rate!r}")
    arr = _load_array(path)
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3:
        raise DataError(f"array of shape {arr.shape}; a time-series modality needs [samples, channels, steps]",
                        source=str(path))
    return Modality(name, "timeseries", path, arr, {} if rate is None else {"rate": float(rate)})


read_timeseries.options = ("rate",)  # type: ignore[attr-defined]


@MODALITY_READERS.register("text")
def read_text(name: str, path: Path) -> Modality:
    lines = read_lines(path)
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataError("empty text; expected one non-empty text per line", source=str(path), line=n)
    return Modality(name, "text", path, lines)


_SEP = re.compile(r"[\s,;]+")


EXCLUDED_PREFIX = "-"


def split_signed(item: str) -> tuple[str, bool]:
    """A concept-set item as (concept id, excluded): ``-HP:0000365`` is hearing impairment explicitly absent."""
    if item.startswith(EXCLUDED_PREFIX):
        return item[len(EXCLUDED_PREFIX):], True
    return item, False


def concept_ids(items: list[str]) -> list[str]:
    """The graph concepts a concept set names, present or excluded."""
    return [split_signed(x)[0] for x in items]


@MODALITY_READERS.register("concept_set")
def read_concept_set(name: str, path: Path) -> Modality:
    sets = []
    for n, line in enumerate(read_lines(path), start=1):
        items = list(dict.fromkeys(x for x in _SEP.split(line.strip()) if x))
        if not items:
            raise DataError("empty concept set; expected at least one concept id", source=str(path), line=n)
        signed = [split_signed(x) for x in items]
        if bad := next((x for x, (c, _) in zip(items, signed) if not c or c.startswith(EXCLUDED_PREFIX)), None):
            raise DataError(f"{bad!r} is not a concept id; expected ID or -ID (an excluded finding)",
                            source=str(path), line=n)
        present = {c for c, excluded in signed if not excluded}
        if both := sorted(c for c, excluded in signed if excluded and c in present):
            raise DataError(f"{both[0]} is both present and excluded ({both[0]} and -{both[0]})",
                            source=str(path), line=n)
        sets.append(items)
    return Modality(name, "concept_set", path, sets)
