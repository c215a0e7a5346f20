#!/usr/bin/env python3
"""Write an example paired dataset over graphs/machine_faults.ttl in kgdistill's generic format.

Teacher modality: the symptom findings an expert recorded (a concept set).  Student
modality: a cheap 32-channel vibration feature vector, simulated as a fixed random
mixing of the fault's symptoms plus sensor noise.  Some faults have no training
samples at all (unseen): only the graph links them to their symptoms.

    python scripts/make_fault_example.py OUT_DIR [--seed 0]
    kgdistill train configs/machine_faults.yaml --set data.path=OUT_DIR
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import yaml

from kgdistill.graph import load_graph

GRAPH = Path(__file__).resolve().parents[1] / "graphs" / "machine_faults.ttl"


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", type=int, default=30, help="training samples per seen fault")
    ap.add_argument("--labelled", type=int, default=3, help="of which the student sees the label")
    ap.add_argument("--test", type=int, default=10, help="val and test samples per fault")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    g = load_graph(GRAPH)
    rel = g.relations.index("ex:hasSymptom")
    sel = g.edge_rel == rel
    symptoms_of: dict[str, list[str]] = {}
    for s, d in zip(g.edge_src[sel].tolist(), g.edge_dst[sel].tolist()):
        symptoms_of.setdefault(g.ids[s], []).append(g.ids[d])
    faults = sorted(f for f, s in symptoms_of.items() if len(s) >= 2)
    all_symptoms = sorted({s for v in symptoms_of.values() for s in v})
    col = {s: i for i, s in enumerate(all_symptoms)}
    mixing = rng.normal(size=(len(all_symptoms), 32)) / np.sqrt(len(all_symptoms))
    unseen = set(rng.choice(faults, size=max(2, len(faults) // 6), replace=False).tolist())

    def sample(fault: str) -> tuple[list[str], np.ndarray]:
        syms = [s for s in symptoms_of[fault] if rng.random() < 0.85] or [symptoms_of[fault][0]]
        if rng.random() < 0.5:
            syms.append(all_symptoms[int(rng.integers(len(all_symptoms)))])
        syms = sorted(set(syms))
        x = np.zeros(len(all_symptoms))
        x[[col[s] for s in syms]] = rng.uniform(0.6, 1.4, size=len(syms))
        return syms, (x @ mixing + rng.normal(scale=0.15, size=32)).astype(np.float32)

    rows, sets, vecs = [], [], []
    for f in faults:
        plan = ([] if f in unseen else [("train", i < args.labelled) for i in range(args.train)])
        plan += [("val", True)] * args.test + [("test", True)] * args.test
        for split, labelled in plan:
            syms, x = sample(f)
            rows.append((f"s{len(rows):05d}", f, split, int(labelled)))
            sets.append(" ".join(syms))
            vecs.append(x)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "samples.tsv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["id", "label", "split", "student_labelled"])
        w.writerows(rows)
    (out / "symptoms.txt").write_text("\n".join(sets) + "\n", encoding="utf-8")
    np.save(out / "vibration.npy", np.stack(vecs))
    (out / "candidates.txt").write_text("\n".join(faults) + "\n", encoding="utf-8")
    spec = {"name": "machine-faults-example", "graph": str(GRAPH), "samples": "samples.tsv",
            "candidates": "candidates.txt", "teacher": "symptoms", "student": "vibration",
            "modalities": {"symptoms": {"kind": "concept_set", "path": "symptoms.txt"},
                           "vibration": {"kind": "vector", "path": "vibration.npy"}}}
    (out / "dataset.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    print(out / "dataset.yaml")
    return out / "dataset.yaml"


if __name__ == "__main__":
    main()
