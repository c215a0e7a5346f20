"""The calibration pass: every model trained once more without a fifth of the seen concepts, which then stand in
for unseen ones; each method's calibration (eval/calibration.py) is chosen on the validation samples of seen
concepts.  Real unseen concepts are never tuned on.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..config import RunConfig
from ..eval.calibration import Calibration, ValidationScores, choose_calibrations
from ..model import TEACHER
from ..task import Task
from .distill import fit_models


def choose_holdout(task: Task, fraction: float, seed: int) -> np.ndarray:
    """[K] bool: the seen concepts held out of the calibration pass's training."""
    seen_idx = np.flatnonzero(task.seen)
    n = max(1, int(round(fraction * len(seen_idx))))
    rng = np.random.default_rng(seed + 7919)
    held = np.zeros_like(task.seen)
    held[rng.choice(seen_idx, size=n, replace=False)] = True
    return held


def calibration_samples(task: Task) -> np.ndarray:
    """Validation samples of seen concepts only: real unseen concepts are never tuned on."""
    va = task.idx("val")
    return va[task.seen[task.y[va]]]


def calibrated_methods(cfg: RunConfig, students: list[str] | None = None, *, fused_only: bool = False
                       ) -> dict[str, tuple[bool, bool]]:
    """Student method -> (calibrate, fusion), for ``students`` (None: all) or only the fused ones."""
    return {m: (c.calibrate, c.fusion) for m, c in cfg.student.methods.items()
            if (students is None or m in students) and (c.fusion or not fused_only)}


def skip_reason(cfg: RunConfig, task: Task) -> str | None:
    """Why the calibration pass does not run (None: it runs).  It needs seen concepts to hold out (at least 5)
    and unseen ones to calibrate for."""
    if not cfg.calibration.enabled:
        return "calibration.enabled is false"
    if task.seen.all():
        return "every candidate has labelled training samples (no unseen concept to calibrate for)"
    if task.seen.sum() < 5:
        return f"only {int(task.seen.sum())} candidates have labelled training samples (at least 5 are held out from)"
    return None


def can_calibrate(cfg: RunConfig, task: Task) -> bool:
    return skip_reason(cfg, task) is None


def choose_for_task(cfg: RunConfig, task: Task, methods: dict[str, tuple[bool, bool]], va: np.ndarray,
                    held: np.ndarray, scores: dict[str, torch.Tensor]) -> dict[str, Calibration]:
    """``scores``: the methods' raw scores on the samples ``va`` from models trained without ``held``."""
    fused = any(fusion for _, fusion in methods.values())
    baseline = task.baseline_scores(va) if fused and task.text_baseline is not None else None
    return choose_calibrations(methods, scores, torch.as_tensor(task.y[va]), torch.as_tensor(task.seen & ~held),
                               torch.as_tensor(held), baseline, cfg.calibration.gammas, cfg.calibration.fusion_weights,
                               cfg.calibration.metric)


def calibrate(cfg: RunConfig, task: Task, device, log_dir: Path | None, progress: bool,
              state_dir: Path | None = None, students: list[str] | None = None
              ) -> tuple[dict[str, Calibration], ValidationScores | None]:
    """Per method: calibrated-stacking gamma (and fusion beta) chosen on held-out seen concepts; and the fused
    methods' validation scores, which let a finished run choose their calibration again under another text
    baseline.  ``students``: only these students (and the teacher, which they learn from); each is trained with
    its own seed, so its calibration equals the one a pass over every method chooses."""
    methods = {TEACHER: (True, False)} | calibrated_methods(cfg, students)
    if not can_calibrate(cfg, task):
        return {m: Calibration() for m in methods}, None
    held = choose_holdout(task, cfg.calibration.holdout_fraction, cfg.seed)
    model, _ = fit_models(cfg, task, task.seen & ~held, device, log_dir, progress, methods=students,
                          state_dir=state_dir)
    va = calibration_samples(task)
    scores = model.task_scores(task, va, device)
    fused = {m: scores[m] for m, (_, fusion) in methods.items() if fusion}
    kept = None  # nothing to choose again without fused methods reading a text baseline
    if fused and task.text_baseline is not None:
        kept = ValidationScores(torch.as_tensor(va), torch.as_tensor(held), fused)
    return choose_for_task(cfg, task, methods, va, held, scores), kept
