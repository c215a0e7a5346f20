"""Which files, in which order, make one modality whose samples are separate files (PNG images, WAV recordings).

Two ways to give them, both fixing row *i* of ``samples.tsv`` to one file:

- a folder: every file with the extension, sorted by name as plain strings (``0009.png`` before ``0010.png``,
  but ``10.png`` before ``9.png``: zero-pad numbered names);
- a listing ``.txt``: one file per line, relative to the listing's folder (or absolute), in row order.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError
from .modalities import read_lines


def listed_files(path: Path, suffix: str) -> list[Path]:
    """The files of one modality in row order; ``suffix`` is the extension of a folder's files (``.png``)."""
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() == suffix and p.is_file()), key=lambda p: p.name)
        if not files:
            raise DataError(f"no {suffix} files in this folder; expected one file per sample", source=str(path))
        return files
    if path.suffix.lower() != ".txt":
        raise DataError(f"expected a folder of {suffix} files or a .txt listing of them", source=str(path))
    files = []
    for n, line in enumerate(read_lines(path), start=1):
        name = line.strip()
        if not name:
            raise DataError(f"empty line; expected one {suffix} file name per line", source=str(path), line=n)
        rel = Path(name)
        if not rel.is_absolute() and Path(os.path.normpath(rel)).parts[:1] == ("..",):
            raise DataError(f"{name!r} points outside the listing's folder; use a path inside it or an absolute path",
                            source=str(path), line=n)
        file = rel if rel.is_absolute() else path.parent / rel
        if not file.is_file():
            raise DataError(f"file not found: {name}", source=str(path), line=n)
        files.append(file)
    return files
