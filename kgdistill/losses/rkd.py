"""Relational KD (Park et al. 2019, "Relational Knowledge Distillation"): the student matches the
teacher's pairwise distances (``rkd_distance``) and triplet angles (``rkd_angle``), not its points."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .base import LOSSES, DistillBatch, LossTerm, masked_mean, off_diagonal

_EPS = 1e-12


def _normalised_distances(e: Tensor, offdiag: Tensor) -> Tensor:
    """Pairwise Euclidean distances [B, B] divided by the mean non-zero off-diagonal distance."""
    sq = (e.unsqueeze(1) - e.unsqueeze(0)).pow(2).sum(dim=-1)
    d = sq.clamp_min(_EPS).sqrt() * offdiag  # clamp keeps sqrt's gradient finite at coincident points
    scale = masked_mean(d, offdiag & (d > 0)).clamp_min(_EPS)
    return d / scale


def _angles(e: Tensor) -> Tensor:
    """[B, B, B]: entry (j, i, k) is the cosine of the angle at anchor j between e_i - e_j and e_k - e_j."""
    diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), dim=-1)  # diff[j, i] = unit(e_i - e_j)
    return diff @ diff.transpose(1, 2)


@LOSSES.register("rkd_distance")
class RKDDistanceLoss(LossTerm):
    """Smooth L1 (beta=1) between normalised distances, mean over off-diagonal pairs."""

    requires = ("z_teacher",)

    def forward(self, batch: DistillBatch) -> Tensor:
        assert batch.z_teacher is not None
        offdiag = off_diagonal(batch.z_student.shape[0], batch.z_student.device)
        d_s = _normalised_distances(batch.z_student.float(), offdiag)
        d_t = _normalised_distances(batch.z_teacher.float(), offdiag)
        return masked_mean(F.smooth_l1_loss(d_s, d_t, reduction="none", beta=1.0), offdiag)


@LOSSES.register("rkd_angle")
class RKDAngleLoss(LossTerm):
    """Smooth L1 (beta=1) between triplet-angle cosines, mean over triplets of distinct samples."""

    requires = ("z_teacher",)

    def forward(self, batch: DistillBatch) -> Tensor:
        assert batch.z_teacher is not None
        n, device = batch.z_student.shape[0], batch.z_student.device
        offdiag = off_diagonal(n, device)
        distinct = offdiag.unsqueeze(2) & offdiag.unsqueeze(1) & offdiag.unsqueeze(0)  # j != i, j != k, i != k
        a_s = _angles(batch.z_student.float())
        a_t = _angles(batch.z_teacher.float())
        return masked_mean(F.smooth_l1_loss(a_s, a_t, reduction="none", beta=1.0), distinct)
