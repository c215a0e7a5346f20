"""Writing a file so that readers see the old version or the new one, never half of either.

Every result, checkpoint and cache shard kgdistill writes goes through ``atomic_write``: the content goes to a
hidden temporary name beside the target, is flushed to the disk, and is renamed over the target (atomic on
POSIX).  A kill, a full disk or a failed write leaves the previous file whole and no temporary behind.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` fills a temporary file, which then replaces ``path``; on any error the temporary is removed
    and the error re-raised (``path`` untouched)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # the rename itself survives a power loss
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
