"""Supervised cross-entropy on the labelled samples of the batch (unlabelled ones, label -1, are
ignored); the plain task loss every stage starts from."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .base import LOSSES, DistillBatch, LossTerm, float_param, masked_mean


@LOSSES.register("ce")
class CrossEntropyLoss(LossTerm):
    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = float_param(
            self.registry_name, "label_smoothing", label_smoothing, low=0.0, high=1.0, high_open=True
        )

    def forward(self, batch: DistillBatch) -> Tensor:
        labelled = batch.labels >= 0
        per_sample = F.cross_entropy(
            batch.logits_student.float(), batch.labels.clamp_min(0),
            reduction="none", label_smoothing=self.label_smoothing,
        )
        return masked_mean(per_sample, labelled)
