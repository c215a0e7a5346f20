"""Generalised zero-shot calibration, chosen on validation data only.

A model trained on seen concepts scores them higher than unseen ones; calibrated
stacking (Chao et al. 2016) subtracts ``gamma`` from every seen concept's score (a negative one is a bonus, for
when unseen concepts' embeddings crowd out the seen ones).
Graph-guided students may also add ``beta`` times the training-free text baseline's
score.  Both are picked on validation patients where some *seen* concepts were held
out of training to stand in for unseen ones, so unseen concepts are never tuned on.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import RunDirError
from ..fileio import load_tensors, save_tensors
from .metrics import harmonic_mean, ranks_of_truth


@dataclass(frozen=True)
class Calibration:
    gamma: float = 0.0
    beta: float = 0.0
    val_seen_top1: float = float("nan")
    val_heldout_top1: float = float("nan")

    def apply(self, scores: torch.Tensor, seen_mask: torch.Tensor, baseline: torch.Tensor | None) -> torch.Tensor:
        out = scores - self.gamma * seen_mask.to(scores.dtype)
        if self.beta and baseline is not None:
            out = out + self.beta * baseline
        return out


@dataclass(frozen=True)
class ValidationScores:
    """The calibration pass's scores on the validation patients of seen concepts, for the fused methods.

    Their calibration is the only part of a run that reads the text baseline during training's pass, so
    a run keeps these to choose it again under another baseline without training anything
    (``kgdistill eval RUN --set eval.text_baseline=...``)."""

    val: torch.Tensor  # int64 sample indices of the validation patients scored
    held: torch.Tensor  # bool per candidate: a seen concept held out of the calibration pass's training
    scores: dict[str, torch.Tensor]  # method -> [len(val), num_candidates] raw cosine scores

    def save(self, path: str | Path) -> None:
        save_tensors({"val": self.val, "held": self.held} | {f"scores.{m}": s for m, s in self.scores.items()},
                     path)

    @classmethod
    def load(cls, path: str | Path) -> "ValidationScores | None":
        """None when the run has none (made before they were kept, or with calibration off)."""
        if not Path(path).is_file():
            return None
        t = load_tensors(path)
        val, held = t.get("val"), t.get("held")
        scores = {k.split(".", 1)[1]: v for k, v in t.items() if k.startswith("scores.")}
        if (val is None or held is None or val.dtype != torch.int64 or val.dim() != 1 or held.dtype != torch.bool
                or held.dim() != 1 or any(not s.is_floating_point() or s.shape != (len(val), len(held))
                                          for s in scores.values())):
            raise RunDirError("expected tensors val (int64 [n]), held (bool [candidates]) and scores.<method> "
                              "(float [n, candidates])", source=str(path))
        return cls(val, held, scores)


def calibrations_to_json(cal: dict[str, Calibration]) -> dict[str, dict[str, float]]:
    return {m: asdict(c) for m, c in cal.items()}


def calibrations_from_json(obj: Any) -> dict[str, Calibration]:
    """Per-method calibrations as saved; TypeError/AttributeError when ``obj`` is not that shape."""
    return {m: Calibration(**c) for m, c in obj.items()}


def choose_calibrations(methods: dict[str, tuple[bool, bool]], scores: dict[str, torch.Tensor], y: torch.Tensor,
                        trained_mask: torch.Tensor, heldout_mask: torch.Tensor, baseline: torch.Tensor | None,
                        gammas: list[float], betas: list[float], metric: str = "top1") -> dict[str, Calibration]:
    """Each method's calibration, ``methods``: name -> (calibrate, fusion); ``scores``: their raw scores on
    validation samples with truth ``y``, from models trained without the seen concepts ``heldout_mask``;
    ``baseline``: the text baseline's scores of those samples (what a fused method adds; None: there is none).
    A fused method also gets ``<name>_no_fusion``, its calibration without the baseline, when there is one to
    leave out (without, the two rows would be the same)."""
    out: dict[str, Calibration] = {}
    for m, (do_cal, fusion) in methods.items():
        g = gammas if do_cal else [0.0]
        out[m] = choose_calibration(scores[m], y, trained_mask, heldout_mask, baseline if fusion else None, g,
                                    betas if fusion else [0.0], metric)
        if fusion and baseline is not None:
            out[m + "_no_fusion"] = choose_calibration(scores[m], y, trained_mask, heldout_mask, None, g, [0.0],
                                                       metric)
    return out


def choose_calibration(scores: torch.Tensor, y: torch.Tensor, trained_mask: torch.Tensor, heldout_mask: torch.Tensor,
                       baseline: torch.Tensor | None, gammas: list[float], betas: list[float],
                       metric: str = "top1") -> Calibration:
    """Grid search: the highest harmonic mean of trained vs held-out ``metric`` (top-1 or MRR) among the settings
    that pay for every point of trained-concept ``metric`` they give up with at least one point on the held-out
    concepts.

    Maximising the harmonic mean alone lets a model with no unseen ability (held-out top-1 ~0, e.g.
    KD with a learned embedding table) buy a ~1% held-out gain with most of its seen accuracy, since H
    near zero rewards any non-zero held-out figure.  The constraint keeps the mean of the two figures at or
    above the uncalibrated model's (gamma = beta = 0), so such a model stays at gamma = 0 while a model that
    ranks held-out concepts still trades a little seen accuracy for a large gain.  The saved ``val_*_top1``
    are top-1 whichever metric chose.
    """
    if metric not in ("top1", "mrr"):
        raise ValueError(f"calibration metric {metric!r}; expected top1 or mrr")
    is_trained = trained_mask[y]
    is_held = heldout_mask[y]

    def figures(cal: Calibration) -> tuple[float, float, float, float]:
        """(trained, held-out) by ``metric``, then (trained, held-out) top-1."""
        ranks = ranks_of_truth(cal.apply(scores, trained_mask, baseline), y).float()
        per = {"top1": (ranks == 1).float(), "mrr": 1.0 / ranks}

        def mean(v: torch.Tensor, mask: torch.Tensor) -> float:
            return float(v[mask].mean()) if bool(mask.any()) else 0.0
        return (mean(per[metric], is_trained), mean(per[metric], is_held),
                mean(per["top1"], is_trained), mean(per["top1"], is_held))

    a0, b0, t0, h0 = figures(Calibration())
    best: tuple[float, float, float, Calibration] = (harmonic_mean(a0, b0), a0, 0.0, Calibration(0.0, 0.0, t0, h0))
    for beta in (betas if baseline is not None else [0.0]):
        for gamma in gammas:
            a, b, t, h = figures(Calibration(gamma, beta))
            if a + b < a0 + b0:  # gives up more trained accuracy than it gains on held-out concepts
                continue
            key = (harmonic_mean(a, b), a, -abs(gamma) - beta)  # ties: the smallest move
            if key > best[:3]:
                best = (*key, Calibration(gamma, beta, t, h))
    return best[3]
