"""Cross-modal InfoNCE (in the spirit of CRD, Tian et al. 2020, without a memory bank): each student
embedding must pick its paired teacher embedding among the batch's, and (symmetric) vice versa."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import LOSSES, DistillBatch, LossTerm, cosine_matrix, float_param


@LOSSES.register("contrastive")
class ContrastiveLoss(LossTerm):
    requires = ("z_teacher",)

    def __init__(self, temperature: float = 0.1, symmetric: bool = True):
        super().__init__()
        self.temperature = float_param(self.registry_name, "temperature", temperature, low=0.0, low_open=True)
        self.symmetric = bool(symmetric)

    def forward(self, batch: DistillBatch) -> Tensor:
        assert batch.z_teacher is not None
        logits = cosine_matrix(batch.z_student, batch.z_teacher) / self.temperature  # [B_s, B_t]
        target = torch.arange(logits.shape[0], device=logits.device)
        loss = F.cross_entropy(logits, target)
        if self.symmetric:
            loss = 0.5 * (loss + F.cross_entropy(logits.T, target))
        return loss
