#!/usr/bin/env python3
"""The training-free rankings of the real-patient task at full size (every OMIM disease of the annotations), with
no training: the likelihood text baseline and Phenomizer on the notes, Phenomizer on the curated terms.

    .venv/bin/python scripts/bench_patients_free.py [--graph independent published] [--seeds 0] [--out FILE]

A reference for what the trained models of ``scripts/bench_quality.py --tasks patients_independent`` must beat,
when training at that size does not fit the machine.  Writes a JSON of every figure (default:
runs/bench-patients-free/free.json).
"""
from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

import torch

from kgdistill.config import load_config, packaged_config
from kgdistill.eval.evaluate import method_metrics
from kgdistill.eval.phenomizer import PhenomizerBaseline
from kgdistill.task import build_task
from kgdistill.train.device import pick_device


def free_rows(graph: str, seed: int, work: Path) -> dict:
    cfg = load_config(packaged_config("patients"), [f"seed={seed}", f"data.patients.graph={graph}"])
    t0 = time.perf_counter()
    task = build_task(cfg, work / f"{graph}-seed{seed}", pick_device("cpu"))
    built = time.perf_counter() - t0
    te = task.idx("test")
    i = torch.as_tensor(te)
    t1 = time.perf_counter()
    scores = {"text_baseline": task.baseline_scores(te)}
    pz = PhenomizerBaseline.from_graph(task.kg, task.cand_nodes, task.name_emb)
    scores["phenomizer"] = pz.scores(task.student.x[i], task.student.tables["sentences"],
                                     task.student.tables.get("polarity"))
    scores["phenomizer_terms"] = pz.concept_set_scores(task.teacher.x[i])
    ranked = time.perf_counter() - t1
    methods = method_metrics(scores, {}, {}, torch.as_tensor(task.y[te]), torch.as_tensor(task.seen),
                             task.concept_sim, tuple(cfg.eval.top_k))
    return {"graph": graph, "seed": seed, "num_candidates": task.num_candidates, "num_test": int(len(te)),
            "num_seen": int(task.seen.sum()), "methods": methods, "seconds_build": round(built, 1),
            "seconds_rank": round(ranked, 1), "independent_graph": task.ds.meta.get("independent_graph")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graph", nargs="+", default=["independent", "published"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out", type=Path, default=Path("runs/bench-patients-free/free.json"))
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for graph in args.graph:
        for seed in args.seeds:
            rows.append(free_rows(graph, seed, args.out.parent))
            m = rows[-1]["methods"]
            print(graph, seed, {k: (round(100 * v["seen"]["top1"], 1), round(100 * v["unseen"]["top10"], 1),
                                    round(100 * v["all"]["top1"], 1), round(100 * v["all"]["top10"], 1))
                                for k, v in m.items()}, flush=True)
            args.out.write_text(json.dumps({"date": date.today().isoformat(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
