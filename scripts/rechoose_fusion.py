#!/usr/bin/env python3
"""Diagnosis: a finished run's fused methods (kg_guided) with their calibration chosen again under other
``calibration.*`` choice settings, from the validation scores the run kept; no training.

Only the fused methods' validation scores are kept, so only their rows change: every other row keeps the
calibration it was trained with (under a new ``calibration.metric`` its choice could differ; a new run tells).
Writes the chosen calibrations and every row's test metrics as JSON, and prints the fused rows.

    python scripts/rechoose_fusion.py RUN_DIR --out rechosen.json --set calibration.metric=mrr \\
        --set 'calibration.fusion_weights=[0.0, 0.05, 0.1, 0.25]'
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHOICE_KEYS = ("metric", "gammas", "fusion_weights")  # what chooses, not what trains


def main() -> None:
    from kgdistill.config import apply_overrides, read_yaml, validate_config
    from kgdistill.model import DistilledModel
    from kgdistill.task import build_task
    from kgdistill.results import evaluate
    from kgdistill.run_dir import RunDir
    from kgdistill.reevaluate import rechoose_from_kept
    from kgdistill.train.calibration_pass import calibrated_methods

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="calibration.KEY=VALUE")
    args = p.parse_args()
    for o in args.overrides:
        key = o.partition("=")[0]
        if key not in {f"calibration.{k}" for k in CHOICE_KEYS}:
            p.error(f"--set {o!r}: expected one of {', '.join(f'calibration.{k}' for k in CHOICE_KEYS)}")
    rd = RunDir.open(args.run)
    cfg = validate_config(apply_overrides(read_yaml(rd.path / "config.yaml"), args.overrides),
                          source=f"{rd.path / 'config.yaml'} with --set")
    cpu = torch.device("cpu")
    task = build_task(cfg, rd.path, cpu, progress=False)
    model = DistilledModel.load(rd.path, task)
    kept, fused = model.validation_scores, calibrated_methods(cfg, fused_only=True)
    if kept is None or not fused.keys() <= kept.scores.keys():
        p.error(f"{rd.path}: no kept validation scores of {', '.join(fused)} (checkpoints/validation_scores)")
    new = rechoose_from_kept(cfg, task, kept, rd.path)   # the check and choice `kgdistill eval` makes
    model.calibrations = dict(model.calibrations) | new
    methods, _ = evaluate(cfg, task, model, cpu)
    args.out.write_text(json.dumps({"run": str(rd.path), "overrides": args.overrides,
                                    "calibration": cfg.calibration.model_dump(),
                                    "rechosen": {m: vars(c) for m, c in new.items()}, "methods": methods},
                                   indent=1, default=float))
    for m, c in new.items():
        e = methods[m]
        print(f"{m}: gamma {c.gamma} beta {c.beta}; top-1 seen {e['seen']['top1']:.3f} unseen "
              f"{e['unseen']['top1']:.3f}, unseen top-10 {e['unseen']['top10']:.3f}, H {e['harmonic_top1']:.3f}, "
              f"severity {e['mistake_severity']:.4f}")


if __name__ == "__main__":
    main()
