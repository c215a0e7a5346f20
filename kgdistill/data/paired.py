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
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..yamlfile import load_yaml_file
from .modalities import MODALITY_READERS, Modality, OptionError

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
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark (Excel's UTF-8 export) is dropped, not read as 'id'
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); re-encode the file as UTF-8", source=str(path),
                        line=raw.count(b"\n", 0, exc.start) + 1) from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t")
    try:
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise DataError(f"bad tab-separated row: {exc}", source=str(path), line=reader.line_num) from None
    if not rows:
        raise DataError("empty file; expected a header 'id<TAB>label<TAB>split[<TAB>student_labelled]'", source=str(path))
    header = [h.strip() for h in rows[0][1]]
    for col in ("id", "label", "split"):
        if col not in header:
            raise DataError(f"missing column {col!r} in header {header}", source=str(path), line=1)
    ci, cl, cs = header.index("id"), header.index("label"), header.index("split")
    cu = header.index("student_labelled") if "student_labelled" in header else None
    ids, labels, splits, sl = [], [], [], []
    seen_ids: set[str] = set()
    for n, row in rows[1:]:
        if not any(x.strip() for x in row):
            continue
        if len(row) < len(header):
            raise DataError(f"expected {len(header)} tab-separated fields, got {len(row)}", source=str(path), line=n)
        sid, lab, split = row[ci].strip(), row[cl].strip(), row[cs].strip()
        if not sid:
            raise DataError("empty sample id", source=str(path), line=n)
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


def dataset_file(root: Path, value: Any, key: str, yml: Path) -> Path:
    """A file that dataset.yaml names under ``key``: relative to the dataset folder and kept inside it.

    An absolute path is taken as given (the author asked for that file); a relative one whose ``..`` parts
    climb out of the folder is refused, so a dataset cannot make kgdistill read files the user did not name.
    (``graph`` is exempt: an ontology is often shared by several datasets, e.g. ``graph: ../hp.obo``.)
    """
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{key}: expected a file name relative to the dataset folder, got {value!r}", source=str(yml))
    rel = Path(value)
    if rel.is_absolute():
        return rel
    if Path(os.path.normpath(rel)).parts[:1] == ("..",):
        raise DataError(f"{key}: {value!r} points outside the dataset folder; use a path inside it or an absolute path",
                        source=str(yml))
    return root / rel


def load_paired(path: str | Path) -> PairedDataset:
    """Read and check a dataset folder (or its dataset.yaml)."""
    path = Path(path)
    yml = path / "dataset.yaml" if path.is_dir() else path
    if not yml.is_file():
        raise DataError("file not found; expected a dataset folder with dataset.yaml", source=str(yml))
    root = yml.parent
    spec = load_yaml_file(yml, DataError)
    if not isinstance(spec, dict):
        raise DataError("expected a mapping with keys name, samples, modalities", source=str(yml))
    allowed = {"name", "graph", "samples", "candidates", "teacher", "student", "modalities", "meta"}
    if unknown := sorted(str(k) for k in spec if k not in allowed):
        raise DataError(f"unknown key {unknown[0]!r}; expected one of {sorted(allowed)}", source=str(yml))
    mods_spec = spec.get("modalities")
    if not isinstance(mods_spec, dict) or len(mods_spec) < 1:
        raise DataError("key 'modalities': expected a mapping of modality name -> {kind, path}", source=str(yml))
    if not isinstance(spec.get("meta") or {}, dict):
        raise DataError(f"meta: expected a mapping, got {type(spec['meta']).__name__}", source=str(yml))
    ids, labels, splits, sl = _read_samples(dataset_file(root, spec.get("samples", "samples.tsv"), "samples", yml))
    modalities: dict[str, Modality] = {}
    for name, m in mods_spec.items():
        name = str(name)
        if not isinstance(m, dict) or "kind" not in m or "path" not in m:
            raise DataError(f"modalities.{name}: expected {{kind, path}}", source=str(yml))
        kind = str(m["kind"])
        if kind not in MODALITY_READERS:
            raise DataError(f"modalities.{name}.kind {kind!r}; expected one of {MODALITY_READERS.names()}", source=str(yml))
        reader = MODALITY_READERS.get(kind)
        options = {str(k): v for k, v in m.items() if k not in ("kind", "path")}
        allowed = getattr(reader, "options", ())
        if unknown := sorted(set(options) - set(allowed)):
            raise DataError(f"modalities.{name}: unknown key {unknown[0]!r} for kind {kind}; expected kind, path"
                            + "".join(f", {k}" for k in allowed), source=str(yml))
        try:
            mod = reader(name, dataset_file(root, m["path"], f"modalities.{name}.path", yml), **options)
        except OptionError as exc:  # an option's value: "rate: expected ..."
            raise DataError(f"modalities.{name}.{exc}", source=str(yml)) from None
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
        cpath = dataset_file(root, spec["candidates"], "candidates", yml)
        if not cpath.is_file():
            raise DataError("file not found", source=str(cpath))
        craw = cpath.read_bytes()
        try:
            ctext = craw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DataError(f"not UTF-8 text (byte 0x{craw[exc.start]:02x}); re-encode the file as UTF-8",
                            source=str(cpath), line=craw.count(b"\n", 0, exc.start) + 1) from None
        candidates = list(dict.fromkeys(ln.strip() for ln in ctext.split("\n") if ln.strip()))
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
