"""The real-patient task: phenopacket-store 0.1.24 (shipped) as a dataset folder, the demo's and the medical
benchmark's data (``data.source: phenopackets``, settings in ``data.patients``).

- Splits by publication: patients joined by a PubMed id always share a split.  A fifth of the store's diseases
  (``heldout_diseases``) is held out whole: their publications go to validation or test only.  Seen diseases
  are those with training patients; the others (held out, or the long tail whose few papers all fell outside
  training) are unseen.
- The teacher (curated observed and excluded terms) learns from every training patient's label; the student
  (a rendered note) sees at most ``labelled_per_disease`` labelled notes per seen disease, the rest of its
  training notes paired and unlabelled.
- Graph ``published``: HPO and the annotations as released; ``independent``: without the validation and test
  publications (``kgdistill.data.independent_graph``), what was removed and recounted kept in the meta.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .from_phenopackets import SPLIT_NAMES, Assignment, candidate_diseases, publication_groups, write_dataset
from .independent_graph import independent_annotations
from .notes import NoteSpec
from .phenopackets import STORE_RELEASE, PhenopacketRecord, ReadResult, load_store_table, store_table_path


def split_patients(records: list[PhenopacketRecord], fractions: list[float], heldout: float,
                   seed: int) -> tuple[list[str], list[str]]:
    """Each record's split, and the diseases held out whole.  Publication groups that hold a patient of a
    held-out disease are placed first, in validation or test; then the rest, in a seeded order, each into the
    split furthest below its share."""
    rng = np.random.default_rng([seed, 16])
    diseases = sorted({r.disease_id for r in records})
    held = set(np.asarray(diseases)[rng.permutation(len(diseases))[:int(round(heldout * len(diseases)))]].tolist())
    groups = publication_groups(records)
    order = [groups[g] for g in rng.permutation(len(groups))]
    is_held = [any(records[i].disease_id in held for i in g) for g in order]
    target = np.asarray(fractions, dtype=np.float64) * len(records)
    filled = np.zeros(3)
    out = [""] * len(records)
    for g, h in sorted(zip(order, is_held), key=lambda gh: not gh[1]):   # stable: held-out groups first
        room = target - filled
        if h:
            room[0] = -np.inf
        k = int(np.argmax(room))
        filled[k] += len(g)
        for i in g:
            out[i] = SPLIT_NAMES[k]
    return out, sorted(held)


def choose_labelled(records: list[PhenopacketRecord], splits: list[str], per_disease: int, seed: int) -> list[bool]:
    """At most ``per_disease`` training patients per disease whose note the student sees labelled (seeded);
    validation and test patients are marked labelled (their labels score, never train)."""
    rng = np.random.default_rng([seed, 17])
    labelled = [s != "train" for s in splits]
    by_disease: dict[str, list[int]] = {}
    for i in rng.permutation(len(records)).tolist():
        if splits[i] == "train":
            by_disease.setdefault(records[i].disease_id, []).append(i)
    for idx in by_disease.values():
        for i in idx[:per_disease]:
            labelled[i] = True
    return labelled


def assign_patients(records: list[PhenopacketRecord], spec: Any, candidates: list[str], seed: int) -> Assignment:
    splits, held = split_patients(records, list(spec.fractions), spec.heldout_diseases, seed)
    labelled = choose_labelled(records, splits, spec.labelled_per_disease, seed)
    seen = {r.disease_id for r, s in zip(records, splits) if s == "train"}
    meta: dict[str, Any] = {
        "task": "phenopacket-store real patients", "store_release": STORE_RELEASE, "graph_kind": spec.graph,
        "split_seed": seed,
        "diseases_held_out_whole": len(held), "seen_diseases": len(seen),
        "unseen_store_diseases": len({r.disease_id for r in records} - seen),
        "student_labelled_train_notes": sum(1 for s, lab in zip(splits, labelled) if s == "train" and lab),
        "train_notes": splits.count("train"), "labelled_per_disease": spec.labelled_per_disease}
    annotations = None
    if spec.graph == "independent":
        out_pmids = {p for r, s in zip(records, splits) if s != "train" for p in r.pmids}
        out_patients = [r for r, s in zip(records, splits) if s != "train"]
        annotations, report = independent_annotations(out_pmids, out_patients, candidates)
        meta["independent_graph"] = report.as_dict() | {"heldout_publications": len(out_pmids)}
    return Assignment(splits, labelled, annotations, meta,
                      name=f"phenopacket-store-{STORE_RELEASE} ({spec.graph} graph)")


def write_patients(out: Path, data: Any, seed: int) -> Path:
    """Write the real-patient dataset folder ``out`` from the shipped store table; returns its dataset.yaml."""
    spec = data.patients
    store = load_store_table()
    if spec.candidates == "omim":
        candidates = candidate_diseases("omim")
    else:
        known = set(candidate_diseases("omim"))
        candidates = sorted({r.disease_id for r in store} & known)
    result = ReadResult(records=list(store), files=len(store))
    note_seed = seed if spec.note_seed is None else spec.note_seed
    write_dataset(result, out, source=str(store_table_path()), fractions=list(spec.fractions), seed=note_seed,
                  notes=NoteSpec(omit_fraction=spec.omit_fraction), candidates=candidates,
                  assign=lambda recs: assign_patients(recs, spec, candidates, seed))
    return Path(out) / "dataset.yaml"
