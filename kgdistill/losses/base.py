"""What every loss term reads (:class:`DistillBatch`), what it is (:class:`LossTerm`) and where it is
registered (:data:`LOSSES`), plus the small tensor helpers the terms share.

Terms never sync the host: no ``.item()``, no python branching on tensor values; empty selections
are handled with masked means that return 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import Registry


@dataclass
class DistillBatch:
    """One batch of B paired samples in the shared d-dim space, scored against K candidate concepts."""

    z_student: Tensor  # [B, d] embeddings of the model being trained (not necessarily normalised)
    logits_student: Tensor  # [B, K] logits over the K training candidates, already divided by tau
    labels: Tensor  # [B] long, index into the K candidates, -1 where the sample carries no label
    z_teacher: Tensor | None = None  # [B, d] teacher embeddings (detached by the trainer)
    logits_teacher: Tensor | None = None  # [B, K]
    concept_emb: Tensor | None = None  # [K, d] candidate concept embeddings, may require grad
    concept_sim: Tensor | None = None  # [K, K] graph similarity of candidates in [0, 1], 1 on the diagonal


class LossTerm(nn.Module):
    """Base class: subclasses implement ``forward(batch) -> 0-dim float32 Tensor``.

    Calling a term checks that the fields it needs are present (a :class:`ConfigError` naming the
    term and the field) and runs ``forward`` with autocast disabled, so the term computes in float32
    even inside a bf16 autocast region (terms still cast their inputs with ``.float()``).
    """

    registry_name: ClassVar[str] = "?"  # set by LOSSES.register
    requires: ClassVar[tuple[str, ...]] = ()  # DistillBatch fields that must be non-None

    @property
    def required_fields(self) -> tuple[str, ...]:
        """Fields this instance needs; terms whose needs depend on their parameters override it."""
        return self.requires

    def check(self, batch: DistillBatch) -> None:
        for name in self.required_fields:
            if getattr(batch, name) is None:
                raise ConfigError(
                    f"loss {self.registry_name!r} needs batch field {name!r}, which is None "
                    "(put the teacher/graph in the loop or drop this term)"
                )

    def __call__(self, batch: DistillBatch) -> Tensor:
        self.check(batch)
        with torch.autocast(device_type=batch.z_student.device.type, enabled=False):
            return super().__call__(batch)


LOSSES: Registry[type[LossTerm]] = Registry("loss")


def float_param(
    term: str, name: str, value: object, *, low: float, high: float = math.inf,
    low_open: bool = False, high_open: bool = False,
) -> float:
    """``value`` as a finite float in the given interval, else a ConfigError naming the term."""
    bounds = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"loss {term!r}: {name} must be a number in {bounds}, got {value!r}")
    x = float(value)
    ok = math.isfinite(x) and (x > low if low_open else x >= low) and (x < high if high_open else x <= high)
    if not ok:
        raise ConfigError(f"loss {term!r}: {name} must be in {bounds}, got {value!r}")
    return x


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` where ``mask`` holds, 0 when it holds nowhere (no host sync)."""
    m = mask.to(values.dtype)
    return (values * m).sum() / m.sum().clamp_min(1.0)


def off_diagonal(n: int, device: torch.device) -> Tensor:
    """[n, n] bool mask, True off the diagonal."""
    return ~torch.eye(n, dtype=torch.bool, device=device)


def cosine_matrix(a: Tensor, b: Tensor) -> Tensor:
    """[n, m] cosine similarities between the rows of ``a`` [n, d] and ``b`` [m, d], in float32."""
    return F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T


def assignments(batch: DistillBatch, use_teacher: bool) -> tuple[Tensor, Tensor]:
    """Concept index per sample and whether it has one: the label if labelled, else (when
    ``use_teacher`` and teacher logits are present) the teacher's argmax."""
    labelled = batch.labels >= 0
    if use_teacher and batch.logits_teacher is not None:
        pseudo = batch.logits_teacher.argmax(dim=-1)
        return torch.where(labelled, batch.labels, pseudo), torch.ones_like(labelled)
    return batch.labels.clamp_min(0), labelled
