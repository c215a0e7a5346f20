"""Similarity-preserving KD (Tung & Mori 2019): the student's row-normalised batch Gram matrix
matches the teacher's, ``||G_s - G_t||_F^2 / B^2``."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .base import LOSSES, DistillBatch, LossTerm


def _gram(z: Tensor) -> Tensor:
    return F.normalize(z @ z.T, dim=1)


@LOSSES.register("sp")
class SimilarityPreservingLoss(LossTerm):
    requires = ("z_teacher",)

    def forward(self, batch: DistillBatch) -> Tensor:
        assert batch.z_teacher is not None
        n = batch.z_student.shape[0]
        diff = _gram(batch.z_student.float()) - _gram(batch.z_teacher.float())
        return diff.pow(2).sum() / (n * n)
