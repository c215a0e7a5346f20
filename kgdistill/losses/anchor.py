"""Concept anchoring: pulls each embedding towards its concept's (GNN) embedding, ``1 - cos(z_i, C[y_i])``,
so the shared space stays organised by the knowledge graph; unlabelled samples may use the
teacher's confident predictions as pseudo labels."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import LOSSES, DistillBatch, LossTerm, assignments, float_param


@LOSSES.register("anchor")
class AnchorLoss(LossTerm):
    """Weighted mean: labelled samples weigh 1; with ``pseudo_labels`` an unlabelled sample anchors to
    the teacher's argmax with weight the teacher's max probability (0 below ``min_confidence``)."""

    def __init__(self, pseudo_labels: bool = True, min_confidence: float = 0.0):
        super().__init__()
        self.pseudo_labels = bool(pseudo_labels)
        self.min_confidence = float_param(self.registry_name, "min_confidence", min_confidence, low=0.0, high=1.0)

    @property
    def required_fields(self) -> tuple[str, ...]:
        return ("concept_emb", "logits_teacher") if self.pseudo_labels else ("concept_emb",)

    def forward(self, batch: DistillBatch) -> Tensor:
        assert batch.concept_emb is not None
        labelled = batch.labels >= 0
        index, _ = assignments(batch, self.pseudo_labels)
        weight = labelled.float()
        if self.pseudo_labels:
            assert batch.logits_teacher is not None
            confidence = batch.logits_teacher.detach().float().softmax(dim=-1).amax(dim=-1)
            weight = torch.where(labelled, 1.0, confidence * (confidence >= self.min_confidence))
        target = batch.concept_emb.float()[index]
        per_sample = 1.0 - F.cosine_similarity(batch.z_student.float(), target, dim=-1)
        return (weight * per_sample).sum() / weight.sum().clamp_min(1e-12)
