"""An exported model folder: its file names and its manifest, which records where the model came from and a
SHA-256 of every file, checked on every load so an altered or truncated file is refused with one clear line.

Standard library only: the loader and the server read it without the training code."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..errors import ArtefactError

MANIFEST = "manifest.json"
MODEL = "model.onnx"                # the student's scoring (text: from sentence vectors)
SENTENCES = "sentences.onnx"        # text: the sentence transformer (tokens -> sentence vectors)
CONCEPTS = "concepts.json"          # candidates in score order: id, name, seen, linked findings (evidence)
FINDINGS = "findings.safetensors"   # text: unit vectors of the linked findings' names (evidence)
TOKENIZER = "tokenizer"             # text: the sentence transformer's tokenizer files
FORMAT = 2                          # 2: text's sentence encoder in a file of its own


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_checksums(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` but the manifest, by relative POSIX path."""
    return {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MANIFEST}


def write_manifest(folder: Path, info: dict[str, Any]) -> dict[str, Any]:
    """Written last: a folder without a manifest is an unfinished export."""
    manifest = {"format": FORMAT, **info, "files": file_checksums(folder)}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)
    return manifest


def read_manifest(folder: str | Path, verify: bool = True) -> dict[str, Any]:
    """The manifest, after checking that every file it lists is present with its recorded checksum."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ArtefactError(f"no {MANIFEST}: not an exported model (or its export did not finish)", source=str(folder))
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = dict(manifest["files"])
    except (ValueError, KeyError, TypeError):
        raise ArtefactError("damaged manifest; expected JSON with a 'files' table", source=str(path)) from None
    if manifest.get("format") != FORMAT:
        raise ArtefactError(f"manifest format {manifest.get('format')!r}; this version reads {FORMAT}: export the "
                            "run again", source=str(path))
    for name, digest in files.items() if verify else ():
        f = folder / name
        if not f.is_file():
            raise ArtefactError(f"{name} is listed in the manifest but missing", source=str(folder))
        if sha256(f) != digest:
            raise ArtefactError(f"{name} does not match its checksum in the manifest (changed since export)",
                                source=str(folder))
    return manifest


def is_export(folder: str | Path) -> bool:
    return (Path(folder) / MANIFEST).is_file()
