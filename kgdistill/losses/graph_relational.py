"""Graph-consistent relational KD (this project's own term; relational in the sense of RKD, Park et al.
2019): the student's pairwise cosine similarities follow a blend of the teacher's and the knowledge
graph's similarity between the samples' concepts, ``T = (1 - alpha) * S_t + alpha * concept_sim[a_i, a_j]``."""
from __future__ import annotations

from torch import Tensor

from .base import (
    LOSSES, DistillBatch, LossTerm, assignments, cosine_matrix, float_param, masked_mean, off_diagonal,
)


@LOSSES.register("graph_relational")
class GraphRelationalLoss(LossTerm):
    """Mean over off-diagonal pairs of ``(S_s - T)^2``; the target is detached. A sample's concept
    ``a_i`` is its label, else (``use_teacher_assignment`` and teacher logits present) the teacher's
    argmax; when ``alpha > 0``, pairs with a sample lacking a concept are left out."""

    def __init__(self, alpha: float = 0.5, use_teacher_assignment: bool = True):
        super().__init__()
        self.alpha = float_param(self.registry_name, "alpha", alpha, low=0.0, high=1.0)
        self.use_teacher_assignment = bool(use_teacher_assignment)

    @property
    def required_fields(self) -> tuple[str, ...]:
        return (("z_teacher",) if self.alpha < 1.0 else ()) + (("concept_sim",) if self.alpha > 0.0 else ())

    def forward(self, batch: DistillBatch) -> Tensor:
        z = batch.z_student
        s_s = cosine_matrix(z, z)
        mask = off_diagonal(z.shape[0], z.device)
        target = s_s.new_zeros(())
        if self.alpha < 1.0:
            assert batch.z_teacher is not None
            target = (1.0 - self.alpha) * cosine_matrix(batch.z_teacher, batch.z_teacher)
        if self.alpha > 0.0:
            assert batch.concept_sim is not None
            index, assigned = assignments(batch, self.use_teacher_assignment)
            s_g = batch.concept_sim.float()[index][:, index]
            target = target + self.alpha * s_g
            mask = mask & assigned.unsqueeze(0) & assigned.unsqueeze(1)
        return masked_mean((s_s - target.detach()).pow(2), mask)
