"""Writes a run's ``alignments/`` folder: what ``align push`` reads back (:func:`kgdistill.store.read_run_dir`).

``concepts.csv`` (id, name, type, seen), ``embeddings.safetensors`` (each concept's GNN embedding and its teacher /
student centroid over the test samples), ``samples.csv`` (the top-k of every test sample in each modality) and
``per_concept.csv`` (test samples and top-1 accuracy per concept).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from ..fileio import save_file


@dataclass
class AlignmentInputs:
    """A run's test results in the shape the alignment files need."""

    candidates: Sequence[str]
    names: Sequence[str]                  # per candidate
    types: Sequence[str]                  # per candidate
    seen: np.ndarray                      # [K] bool
    sample_ids: Sequence[str]             # per test sample
    y: np.ndarray                         # [n] candidate index of each test sample's truth
    concepts: torch.Tensor                # [K, d] GNN embeddings
    scores: dict[str, torch.Tensor]       # "teacher" / "student" -> [n, K] final scores
    z_t: torch.Tensor                     # [n, d] normalised teacher embeddings of the test samples
    z_s: torch.Tensor                     # [n, d] normalised student embeddings


def write_alignments(folder: Path, a: AlignmentInputs, top_k: int) -> None:
    folder = Path(folder)
    _write_embeddings(folder / "embeddings.safetensors", a)
    with open(folder / "concepts.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "name", "type", "seen"])
        for i, c in enumerate(a.candidates):
            w.writerow([c, a.names[i], a.types[i], int(a.seen[i])])
    top1 = _write_samples(folder / "samples.csv", a, top_k)
    with open(folder / "per_concept.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "n_test", "teacher_top1", "student_top1"])
        for c in range(len(a.candidates)):
            sel = a.y == c
            n = int(sel.sum())
            t1 = float((top1["teacher"][sel] == c).mean()) if n else 0.0
            s1 = float((top1["student"][sel] == c).mean()) if n else 0.0
            w.writerow([a.candidates[c], n, f"{t1:.4f}", f"{s1:.4f}"])


def _write_embeddings(path: Path, a: AlignmentInputs) -> None:
    base = torch.nn.functional.normalize(a.concepts.cpu(), dim=-1)
    cent_t, cent_s = base.clone(), base.clone()
    yt = torch.as_tensor(a.y)
    for c in np.unique(a.y):
        sel = yt == int(c)
        cent_t[c] = torch.nn.functional.normalize(a.z_t[sel].mean(0), dim=0)
        cent_s[c] = torch.nn.functional.normalize(a.z_s[sel].mean(0), dim=0)
    save_file({"concept_gnn": base.contiguous(), "concept_teacher": cent_t.contiguous(),
               "concept_student": cent_s.contiguous()}, str(path))


def _write_samples(path: Path, a: AlignmentInputs, top_k: int) -> dict[str, np.ndarray]:
    top1 = {}
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["sample_id", "split", "modality", "true_id", "concept_id", "rank", "score"])
        for modality in ("teacher", "student"):
            vals, idx = a.scores[modality].topk(min(top_k, len(a.candidates)), dim=1)
            top1[modality] = idx[:, 0].numpy()
            for r, sid in enumerate(a.sample_ids):
                for j in range(idx.shape[1]):
                    w.writerow([sid, "test", modality, a.candidates[a.y[r]], a.candidates[int(idx[r, j])], j + 1,
                                f"{float(vals[r, j]):.6f}"])
    return top1
