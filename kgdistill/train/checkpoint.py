"""Weights saved as safetensors (no pickle: loading never executes code), written atomically."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import RunDirError


def save_tensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


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
