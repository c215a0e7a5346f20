"""Weights and training state saved as safetensors (no pickle: loading never executes code), written atomically."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..errors import RunDirError
from ..fileio import atomic_write


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
