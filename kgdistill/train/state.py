"""Exact resume: a stage's whole training state, written atomically, and a graceful stop on SIGTERM/Ctrl-C.

A checkpoint holds what continuing needs to give the same result as never stopping:
weights, optimiser, scheduler, the best state so far, the batch-order generator as it
was at the start of the epoch plus the number of batches already taken (the sampler
position), and the RNG state of every library and rank.  It is a safetensors file (no
code runs on load) written to a temporary name and renamed into place, so a kill or a
full disk at any moment leaves the previous good checkpoint whole.
"""
from __future__ import annotations

import contextlib
import errno
import random
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ..errors import RunDirError
from ..fileio import atomic_write, read_state, write_state


# ------------------------------------------------------------------ graceful stop
_stop: dict[str, int | None] = {"signum": None}


def stop_requested() -> int | None:
    """The signal that asked training to stop, if any (a plain Python read: no device sync)."""
    return _stop["signum"]


@contextlib.contextmanager
def graceful_stop() -> Iterator[None]:
    """While active, SIGTERM and the first Ctrl-C only set a flag that the training loop checks after each
    step; a second Ctrl-C interrupts at once (the last checkpoint on disk is still whole)."""
    _stop["signum"] = None
    previous: dict[int, Any] = {}

    def handler(signum, frame):
        if _stop["signum"] is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        _stop["signum"] = signum

    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: signals stay with the caller
        previous.clear()
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)
        _stop["signum"] = None


# ------------------------------------------------------------------ RNG state
def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state["numpy"] = {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------ checkpoint files
@dataclass
class StageCheckpoint:
    """Where one stage keeps its resume state (``<stage>.pt``) and, once finished, its result (``<stage>.done.pt``)."""

    folder: Path
    stage: str

    @property
    def path(self) -> Path:
        return self.folder / f"{self.stage.replace(':', '_')}.pt"

    @property
    def done_path(self) -> Path:
        return self.folder / f"{self.stage.replace(':', '_')}.done.pt"

    def load(self) -> dict[str, Any] | None:
        return _load(self.path)

    def load_done(self) -> dict[str, Any] | None:
        return _load(self.done_path)

    def save(self, state: dict[str, Any]) -> None:
        _save_atomic(state, self.path, what=f"training checkpoint of stage {self.stage!r}")

    def finish(self, result: dict[str, Any]) -> None:
        """Record the stage's final weights and history; its resume state is no longer needed."""
        _save_atomic(result, self.done_path, what=f"result of stage {self.stage!r}")
        self.path.unlink(missing_ok=True)


def _load(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return read_state(path)
    except Exception as exc:
        raise RunDirError(f"damaged training checkpoint ({type(exc).__name__}); delete it to restart this stage",
                          source=str(path)) from None


def _save_atomic(obj: Any, path: Path, what: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: write_state(obj, tmp))
    except OSError as exc:
        reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                  errno.EACCES: "permission denied", errno.EROFS: "the file system is read-only",
                  errno.EFBIG: "the file size limit is exceeded"}.get(exc.errno, exc.strerror or str(exc))
        kept = "the last good checkpoint is intact" if path.exists() else "no earlier checkpoint existed"
        raise RunDirError(f"cannot write the {what}: {reason}; {kept}; free space or fix permissions, then "
                          "continue with --resume", source=str(path)) from None
