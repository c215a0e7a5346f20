"""Paired multi-modal data: the one format both the generic path and the HPO benchmark use.

A dataset is a folder with ``dataset.yaml``::

    name: my-task
    graph: graph/              # any graph file or folder load_graph accepts (relative to this file)
    samples: samples.tsv       # columns: id, label, split (train|val|test), student_labelled (0/1)
    candidates: candidates.txt # optional: concept ids to rank, one per line (unseen ones included)
    teacher: findings          # default teacher modality
    student: note              # default student modality
    modalities:
      findings: {kind: concept_set, path: findings.txt}
      note: {kind: text, path: note.txt}

Row *i* of every modality file belongs to row *i* of ``samples.tsv``.
See docs/data-format.md for each modality kind.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import DataError
from .modalities import MODALITY_READERS, Modality

SPLITS = ("train", "val", "test")


@dataclass
class PairedDataset:
    name: str
    root: Path
    sample_ids: list[str]
    labels: list[str]             # concept id, "" where the sample has no label at all
    splits: np.ndarray            # str array of train/val/test
    student_labelled: np.ndarray  # bool: the student may see this sample's label
    modalities: dict[str, Modality]
    candidates: list[str]
    graph_path: Path | None
    teacher: str
    student: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sample_ids)

    def split_idx(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.splits == split)

    @property
    def seen(self) -> list[str]:
        """Concepts with at least one labelled training sample."""
        tr = self.split_idx("train")
        return sorted({self.labels[i] for i in tr if self.labels[i]})

    def validate_against(self, concept_ids: set[str] | dict) -> None:
        """Every label, candidate and concept-set member must be a concept of the graph."""
        src = str(self.root / "samples.tsv")
        for i, lab in enumerate(self.labels):
            if lab and lab not in concept_ids:
                raise DataError(f"label {lab!r} of sample {self.sample_ids[i]!r} is not a concept of the graph",
                                source=src, line=i + 2)
        for c in self.candidates:
            if c not in concept_ids:
                raise DataError(f"candidate {c!r} is not a concept of the graph", source=str(self.root / "candidates"))
        for mod in self.modalities.values():
            if mod.kind == "concept_set":
                for i, items in enumerate(mod.values):
                    for c in items:
                        if c not in concept_ids:
                            raise DataError(f"unknown concept {c!r}; expected ids of the graph",
                                            source=str(mod.path), line=i + 1)


def _read_samples(path: Path) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError("file not found", source=str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text (byte {exc.start})", source=str(path)) from None
    rows = list(csv.reader(text.splitlines(), delimiter="\t"))
    if not rows:
        raise DataError("empty file; expected a header 'id<TAB>label<TAB>split[<TAB>student_labelled]'", source=str(path))
    header = [h.strip() for h in rows[0]]
    for col in ("id", "label", "split"):
        if col not in header:
            raise DataError(f"missing column {col!r} in header {header}", source=str(path), line=1)
    ci, cl, cs = header.index("id"), header.index("label"), header.index("split")
    cu = header.index("student_labelled") if "student_labelled" in header else None
    ids, labels, splits, sl = [], [], [], []
    seen_ids: set[str] = set()
    for n, row in enumerate(rows[1:], start=2):
        if not any(x.strip() for x in row):
            continue
        if len(row) < len(header):
            raise DataError(f"expected {len(header)} tab-separated fields, got {len(row)}", source=str(path), line=n)
        sid, lab, split = row[ci].strip(), row[cl].strip(), row[cs].strip()
        if sid in seen_ids:
            raise DataError(f"duplicate sample id {sid!r}", source=str(path), line=n)
        seen_ids.add(sid)
        if split not in SPLITS:
            raise DataError(f"split {split!r}; expected one of {', '.join(SPLITS)}", source=str(path), line=n)
        if split != "train" and not lab:
            raise DataError(f"{split} sample {sid!r} has no label; evaluation samples need one", source=str(path), line=n)
        flag = True
        if cu is not None:
            v = row[cu].strip()
            if v not in ("0", "1"):
                raise DataError(f"student_labelled {v!r}; expected 0 or 1", source=str(path), line=n)
            flag = v == "1"
        ids.append(sid)
        labels.append(lab)
        splits.append(split)
        sl.append(flag and bool(lab))
    if not ids:
        raise DataError("no samples; expected one row per sample after the header", source=str(path))
    return ids, labels, np.asarray(splits), np.asarray(sl, dtype=bool)


def load_paired(path: str | Path) -> PairedDataset:
    """Read and check a dataset folder (or its dataset.yaml)."""
    path = Path(path)
    yml = path / "dataset.yaml" if path.is_dir() else path
    if not yml.is_file():
        raise DataError("file not found; expected a dataset folder with dataset.yaml", source=str(yml))
    root = yml.parent
    try:
        spec = yaml.safe_load(yml.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise DataError(f"not valid YAML: {getattr(exc, 'problem', exc)}", source=str(yml),
                        line=None if line is None else line + 1) from None
    if not isinstance(spec, dict):
        raise DataError("expected a mapping with keys name, samples, modalities", source=str(yml))
    allowed = {"name", "graph", "samples", "candidates", "teacher", "student", "modalities", "meta"}
    if unknown := sorted(set(spec) - allowed):
        raise DataError(f"unknown key {unknown[0]!r}; expected one of {sorted(allowed)}", source=str(yml))
    mods_spec = spec.get("modalities")
    if not isinstance(mods_spec, dict) or len(mods_spec) < 1:
        raise DataError("key 'modalities': expected a mapping of modality name -> {kind, path}", source=str(yml))
    ids, labels, splits, sl = _read_samples(root / str(spec.get("samples", "samples.tsv")))
    modalities: dict[str, Modality] = {}
    for name, m in mods_spec.items():
        if not isinstance(m, dict) or "kind" not in m or "path" not in m:
            raise DataError(f"modalities.{name}: expected {{kind, path}}", source=str(yml))
        kind = str(m["kind"])
        if kind not in MODALITY_READERS:
            raise DataError(f"modalities.{name}.kind {kind!r}; expected one of {MODALITY_READERS.names()}", source=str(yml))
        mod = MODALITY_READERS.get(kind)(name, root / str(m["path"]))
        if len(mod) != len(ids):
            raise DataError(f"{len(mod)} rows, expected {len(ids)} (one per sample in samples.tsv)", source=str(mod.path))
        modalities[name] = mod
    names = list(modalities)
    teacher = str(spec.get("teacher", names[0]))
    student = str(spec.get("student", names[-1]))
    for role, m in (("teacher", teacher), ("student", student)):
        if m not in modalities:
            raise DataError(f"{role}: modality {m!r} is not listed under modalities ({', '.join(names)})", source=str(yml))
    if "candidates" in spec:
        cpath = root / str(spec["candidates"])
        if not cpath.is_file():
            raise DataError("file not found", source=str(cpath))
        candidates = [ln.strip() for ln in cpath.read_text(encoding="utf-8").splitlines() if ln.strip()]
        extra = sorted({lab for lab in labels if lab} - set(candidates))
        if extra:
            raise DataError(f"label {extra[0]!r} is not among the candidates", source=str(cpath))
    else:
        candidates = sorted({lab for lab in labels if lab})
    if len(candidates) < 2:
        raise DataError("fewer than 2 candidate concepts; nothing to rank", source=str(yml))
    graph_path = root / str(spec["graph"]) if spec.get("graph") else None
    return PairedDataset(
        name=str(spec.get("name", root.name)), root=root, sample_ids=ids, labels=labels, splits=splits,
        student_labelled=sl, modalities=modalities, candidates=candidates, graph_path=graph_path,
        teacher=teacher, student=student, meta=dict(spec.get("meta") or {}),
    )
