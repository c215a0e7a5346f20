"""Generalised zero-shot calibration, chosen on validation data only.

A model trained on seen concepts scores them higher than unseen ones; calibrated
stacking (Chao et al. 2016) subtracts ``gamma`` from every seen concept's score.
Graph-guided students may also add ``beta`` times the training-free graph prototype
score.  Both are picked on validation patients where some *seen* concepts were held
out of training to stand in for unseen ones, so unseen concepts are never tuned on.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .metrics import harmonic_mean, ranks_of_truth


@dataclass(frozen=True)
class Calibration:
    gamma: float = 0.0
    beta: float = 0.0
    val_seen_top1: float = float("nan")
    val_heldout_top1: float = float("nan")

    def apply(self, scores: torch.Tensor, seen_mask: torch.Tensor, prototype: torch.Tensor | None) -> torch.Tensor:
        out = scores - self.gamma * seen_mask.to(scores.dtype)
        if self.beta and prototype is not None:
            out = out + self.beta * prototype
        return out


def choose_calibration(scores: torch.Tensor, y: torch.Tensor, trained_mask: torch.Tensor, heldout_mask: torch.Tensor,
                       prototype: torch.Tensor | None, gammas: list[float], betas: list[float]) -> Calibration:
    """Grid search maximising the harmonic mean of top-1 on trained vs held-out concepts."""
    is_trained = trained_mask[y]
    is_held = heldout_mask[y]
    best: tuple[float, float, float, Calibration] | None = None
    for beta in (betas if prototype is not None else [0.0]):
        for gamma in gammas:
            cal = Calibration(gamma, beta)
            hit = ranks_of_truth(cal.apply(scores, trained_mask, prototype), y) == 1
            a = float(hit[is_trained].float().mean()) if bool(is_trained.any()) else 0.0
            b = float(hit[is_held].float().mean()) if bool(is_held.any()) else 0.0
            key = (harmonic_mean(a, b), a, -gamma - beta)
            if best is None or key > best[:3]:
                best = (*key, Calibration(gamma, beta, a, b))
    assert best is not None
    return best[3]
