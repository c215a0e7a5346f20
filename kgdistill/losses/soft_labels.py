"""Cross-entropy against a label smoothed along the graph (soft labels in the spirit of Bertinetto et al.,
2020, "Making Better Mistakes"): the true concept keeps ``1 - smoothing`` of the target, and the rest goes to
the other concepts by ``softmax(beta * concept_sim[y, c])``, so mostly to the truth's graph neighbours.  A
wrong guess near the truth then costs less than a far one, and the model's mistakes move towards related
concepts.  Keeping the truth's share fixed makes ``smoothing`` mean the same on a 4-concept taxonomy as on
a 1,000-disease ontology; ``beta`` says how much the neighbours stand out (0: plain label smoothing)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import LOSSES, DistillBatch, LossTerm, float_param, masked_mean


@LOSSES.register("graph_soft_labels")
class GraphSoftLabelLoss(LossTerm):
    """Mean over labelled samples of ``-sum_c q_c log p_c``,
    ``q = (1 - smoothing) * onehot(y) + smoothing * softmax_{c != y}(beta * concept_sim[y, c])``."""

    requires = ("concept_sim",)

    def __init__(self, smoothing: float = 0.2, beta: float = 10.0):
        super().__init__()
        self.smoothing = float_param(self.registry_name, "smoothing", smoothing, low=0.0, high=1.0, high_open=True)
        self.beta = float_param(self.registry_name, "beta", beta, low=0.0)

    def forward(self, batch: DistillBatch) -> Tensor:
        assert batch.concept_sim is not None
        logits = batch.logits_student.float()
        labels = batch.labels.clamp_min(0)
        truth = F.one_hot(labels, logits.shape[1]).bool()
        spread = self.beta * batch.concept_sim.float()[labels]  # [B, K]
        # a single candidate leaves nothing to spread to: softmax over all -inf is NaN, taken as 0
        others = torch.softmax(spread.masked_fill(truth, float("-inf")), dim=1).nan_to_num(0.0)
        target = (1.0 - self.smoothing) * truth.float() + self.smoothing * others
        per_sample = -(target * F.log_softmax(logits, dim=1)).sum(1)
        return masked_mean(per_sample, batch.labels >= 0)
