"""Logit distillation (Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"):
``T^2 * KL(softmax(t/T) || softmax(s/T))``, averaged over all samples, labelled or not."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .base import LOSSES, DistillBatch, LossTerm, float_param


@LOSSES.register("kd")
class KDLoss(LossTerm):
    requires = ("logits_teacher",)

    def __init__(self, temperature: float = 4.0):
        super().__init__()
        self.temperature = float_param(self.registry_name, "temperature", temperature, low=0.0, low_open=True)

    def forward(self, batch: DistillBatch) -> Tensor:
        assert batch.logits_teacher is not None
        t = self.temperature
        log_p_s = F.log_softmax(batch.logits_student.float() / t, dim=-1)
        log_p_t = F.log_softmax(batch.logits_teacher.float() / t, dim=-1)
        kl = F.kl_div(log_p_s, log_p_t, reduction="none", log_target=True).sum(dim=-1)
        return kl.mean() * (t * t)
