"""Feature matching of student to teacher embeddings in the shared space (FitNets, Romero et al.
2015); the space is shared, so no regressor is needed."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from .base import LOSSES, DistillBatch, LossTerm

METRICS = ("mse", "cosine")


@LOSSES.register("feature")
class FeatureLoss(LossTerm):
    """``mse``: mean squared error over all elements (of the L2-normalised vectors when
    ``normalize``); ``cosine``: mean of ``1 - cos(z_s, z_t)`` (``normalize`` has no effect)."""

    requires = ("z_teacher",)

    def __init__(self, metric: str = "mse", normalize: bool = True):
        super().__init__()
        if metric not in METRICS:
            raise ConfigError(
                f"loss {self.registry_name!r}: metric must be one of {', '.join(METRICS)}, got {metric!r}"
            )
        self.metric = metric
        self.normalize = bool(normalize)

    def forward(self, batch: DistillBatch) -> Tensor:
        assert batch.z_teacher is not None
        s, t = batch.z_student.float(), batch.z_teacher.float()
        if self.metric == "cosine":
            return (1.0 - F.cosine_similarity(s, t, dim=-1)).mean()
        if self.normalize:
            s, t = F.normalize(s, dim=-1), F.normalize(t, dim=-1)
        return F.mse_loss(s, t)
