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
      # time series may give their sampling rate (Hz): rate-tagged series are paired windows of one moment,
      # so they must share rate and length
      # accel: {kind: timeseries, path: accel.npy, rate: 12000}

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
from .modalities import MODALITY_READERS, Modality, OptionError, split_signed

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
    samples_path: Path | None = None                          # the file dataset.yaml names under 'samples'
    sample_lines: list[int] = field(default_factory=list)     # the line of that file each sample is on
    candidates_path: Path | None = None                       # candidates.txt, when the dataset names one
    candidate_lines: list[int] = field(default_factory=list)  # the line of candidates.txt each candidate is on
    rates: dict[str, float] = field(default_factory=dict)  # modality -> sampling rate (Hz), where given

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
        src = str(self.samples_path or self.root / "samples.tsv")
        for i, lab in enumerate(self.labels):
            if lab and lab not in concept_ids:
                raise DataError(f"label {lab!r} of sample {self.sample_ids[i]!r} is not a concept of the graph",
                                source=src, line=self.sample_lines[i] if self.sample_lines else i + 2)
        for i, c in enumerate(self.candidates):
            if c not in concept_ids:
                raise DataError(f"candidate {c!r} is not a concept of the graph",
                                source=str(self.candidates_path or self.root / "candidates.txt"),
                                line=self.candidate_lines[i] if self.candidate_lines else None)
        for mod in self.modalities.values():
            if mod.kind == "concept_set":
                for i, items in enumerate(mod.values):
                    for c, _ in map(split_signed, items):
                        if c not in concept_ids:
                            raise DataError(f"unknown concept {c!r}; expected ids of the graph",
                                            source=str(mod.path), line=i + 1)


def _read_samples(path: Path) -> tuple[list[str], list[str], np.ndarray, np.ndarray, list[int]]:
    """Ids, labels, splits, student-labelled flags, and the line each sample is on (for messages)."""
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
    ids, labels, splits, sl, lines = [], [], [], [], []
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
        lines.append(n)
    if not ids:
        raise DataError("no samples; expected one row per sample after the header", source=str(path))
    return ids, labels, np.asarray(splits), np.asarray(sl, dtype=bool), lines


def _read_candidates(path: Path) -> tuple[list[str], list[int]]:
    """Candidate ids in first-seen order (a repeat is kept once) and the line each is on."""
    if not path.is_file():
        raise DataError("file not found", source=str(path))
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); re-encode the file as UTF-8",
                        source=str(path), line=raw.count(b"\n", 0, exc.start) + 1) from None
    first: dict[str, int] = {}
    for n, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            first.setdefault(line.strip(), n)
    return list(first), list(first.values())


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
    spath = dataset_file(root, spec.get("samples", "samples.tsv"), "samples", yml)
    ids, labels, splits, sl, sample_lines = _read_samples(spath)
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
            hint = ""
            if len(mod) == len(ids) + 1 and mod.path.suffix in (".csv", ".tsv", ".txt") and kind in ("vector", "timeseries"):
                hint = "; is line 1 a header of column numbers (as pandas writes 0,1,2,...)? remove it"
            raise DataError(f"{len(mod)} rows, expected {len(ids)} (one per sample in {spath.name}){hint}",
                            source=str(mod.path))
        modalities[name] = mod
    rates = {n: float(mod.meta["rate"]) for n, mod in modalities.items() if mod.kind == "timeseries" and "rate" in mod.meta}
    _check_paired_series(modalities, rates, yml)
    names = list(modalities)
    teacher = str(spec.get("teacher", names[0]))
    student = str(spec.get("student", names[-1]))
    for role, m in (("teacher", teacher), ("student", student)):
        if m not in modalities:
            raise DataError(f"{role}: modality {m!r} is not listed under modalities ({', '.join(names)})", source=str(yml))
    cpath, cand_lines = None, []
    if "candidates" in spec:
        cpath = dataset_file(root, spec["candidates"], "candidates", yml)
        candidates, cand_lines = _read_candidates(cpath)
        listed = set(candidates)
        for i, lab in enumerate(labels):
            if lab and lab not in listed:
                raise DataError(f"label {lab!r} of sample {ids[i]!r} is not among the candidates of {cpath.name}",
                                source=str(spath), line=sample_lines[i])
    else:
        candidates = sorted({lab for lab in labels if lab})
    if len(candidates) < 2:
        raise DataError("fewer than 2 candidate concepts; nothing to rank", source=str(yml))
    graph_path = root / str(spec["graph"]) if spec.get("graph") else None
    return PairedDataset(
        name=str(spec.get("name", root.name)), root=root, sample_ids=ids, labels=labels, splits=splits,
        student_labelled=sl, modalities=modalities, candidates=candidates, graph_path=graph_path,
        teacher=teacher, student=student, meta=dict(spec.get("meta") or {}), samples_path=spath,
        sample_lines=sample_lines, candidates_path=cpath, candidate_lines=cand_lines, rates=rates,
    )


def _check_paired_series(modalities: dict[str, Modality], rates: dict[str, float], yml: Path) -> None:
    """Time series that give a rate are windows of the same moments: one rate, one length for all of them."""
    tagged = [n for n in modalities if n in rates]
    for name in tagged[1:]:
        first, mod = tagged[0], modalities[name]
        if rates[name] != rates[first]:
            raise DataError(f"modalities.{name}.rate: {rates[name]:g} Hz, but {first} is sampled at "
                            f"{rates[first]:g} Hz; paired series need one rate (resample one of them)", source=str(yml))
        steps, ref = mod.values.shape[-1], modalities[first].values.shape[-1]
        if steps != ref:
            raise DataError(f"windows of {steps} samples, but {first}'s have {ref} at the same rate "
                            f"({rates[first]:g} Hz); paired windows must cover the same time", source=str(mod.path))
