"""Files kgdistill writes and reads back: whole or not at all, and never code on load.

``atomic_write``: the content goes to a hidden temporary name beside the target, is flushed to the disk, and is
renamed over the target (atomic on POSIX), so a kill, a full disk or a failed write leaves the previous file whole
and no temporary behind.  Every result, checkpoint and cache shard goes through it.  Tensors are safetensors (no
pickle: loading never executes code); nested training state (optimiser, scheduler) is safetensors plus a JSON tree.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from safetensors import safe_open
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save_file as _safetensors_save

from .errors import RunDirError


def save_file(tensors: dict[str, torch.Tensor], path: str, metadata: dict[str, str] | None = None) -> None:
    """safetensors' save_file, with an I/O failure raised as the OSError it is: its Rust writer reports a full
    disk as ``SafetensorError: ... I/O error: No space left on device (os error 28)``, which the callers that
    turn OSErrors into one-line messages (a full disk, permission denied) would otherwise miss."""
    try:
        _safetensors_save(tensors, path, metadata=metadata)
    except SafetensorError as exc:
        code = re.search(r"\(os error (\d+)\)", str(exc))
        if code is None:
            raise
        n = int(code.group(1))
        raise OSError(n, os.strerror(n) if n in errno.errorcode else str(exc), path) from exc


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


@contextlib.contextmanager
def new_folder(out: Path) -> Iterator[Path]:
    """A folder built beside ``out`` (absent or empty) and renamed to it only once the body ends without error;
    on any error it is removed, so a reader never finds half a folder at ``out``.  Its mode is an ordinary
    folder's (mkdtemp's would be private)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        work.chmod(0o777 & ~umask)
        yield work
        if out.exists():
            out.rmdir()
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def strict_json(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float as None: JSON (RFC 8259) has no NaN, and strict parsers
    (JavaScript's JSON.parse, jq) refuse a file that holds one.  A figure that does not exist is null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # numpy / torch scalars
        return strict_json(obj.item())
    return obj


def write_json_atomic(path: Path, obj: Any) -> None:
    """Strict JSON (no NaN: see :func:`strict_json`), written atomically."""
    text = json.dumps(strict_json(obj), indent=2, sort_keys=False, allow_nan=False, default=float) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))



def save_tensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise RunDirError("checkpoint missing", source=str(path))
    try:
        return load_file(str(path))
    except Exception as exc:
        raise RunDirError(f"not a readable safetensors checkpoint: {exc}", source=str(path)) from None


def load_state(module: torch.nn.Module, path: str | Path, prefix: str = "") -> None:
    """Load weights saved by this project; a shape mismatch means another configuration."""
    tensors = load_tensors(path)
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        why = next((ln for ln in lines if ln.startswith(("size mismatch", "Missing key", "Unexpected key"))),
                   lines[0] if lines else "mismatch")
        raise RunDirError(f"checkpoint does not fit this configuration ({why[:200]})", source=str(path)) from None


# ------------------------------------------------------------------ nested training state
# Optimiser and scheduler states are nested dicts with int keys, tuples and tensors.  They are stored as
# safetensors (the tensors) plus a JSON tree in the file's metadata that says where each tensor goes and keeps
# int keys and tuples as they were, so a resumed optimiser gets back exactly what it saved.
_TREE = "kgdistill.state"


def _encode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        key = str(len(tensors))
        tensors[key] = obj.detach().cpu().clone().contiguous()
        return {"$t": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {"$d": {k: _encode(v, tensors) for k, v in obj.items()}}
        return {"$m": [[_encode(k, tensors), _encode(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"$u": [_encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a training checkpoint")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "$t" in obj:
        return tensors[obj["$t"]]
    if "$d" in obj:
        return {k: _decode(v, tensors) for k, v in obj["$d"].items()}
    if "$m" in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["$m"]}
    return tuple(_decode(v, tensors) for v in obj["$u"])


def write_state(obj: Any, path: Path) -> None:
    """Write a nested state to ``path`` in one go (the caller makes it atomic)."""
    tensors: dict[str, torch.Tensor] = {}
    tree = json.dumps(_encode(obj, tensors))
    save_file(tensors, str(path), metadata={_TREE: tree})


def read_state(path: Path) -> Any:
    with safe_open(str(path), framework="pt") as fh:
        tree = (fh.metadata() or {})[_TREE]
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    return _decode(json.loads(tree), tensors)
