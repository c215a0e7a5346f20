"""The training objective: a weighted sum of registered loss terms, built from config specs."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from torch import Tensor, nn

from ..errors import ConfigError
from .base import LOSSES, DistillBatch, LossTerm, float_param


class WeightedLoss(nn.Module):
    """``total = sum(weight_i * term_i(batch))`` over specs ``[{"name": "kd", "weight": 1.0, **params}]``.

    ``weight`` defaults to 1.0 and must be a finite float >= 0; each name may appear once.
    ``forward`` returns ``(total, parts)`` where ``parts[name]`` is the *unweighted*, detached term
    value (a 0-dim tensor, for logging without a host sync).
    """

    def __init__(self, specs: Sequence[Mapping[str, Any]]):
        super().__init__()
        if not specs:
            raise ConfigError(f"no loss terms given; expected some of: {', '.join(LOSSES.names())}")
        self.terms = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        for spec in specs:
            if not isinstance(spec, Mapping) or "name" not in spec:
                raise ConfigError(f"a loss spec must be a mapping with a 'name' key, got {spec!r}")
            params = dict(spec)
            name = str(params.pop("name")).lower()
            if name in self.terms:
                raise ConfigError(f"loss {name!r} is listed twice")
            weight = params.pop("weight", 1.0)
            self.terms[name] = LOSSES.build(name, **params)
            self.weights[name] = float_param(name, "weight", weight, low=0.0)

    @classmethod
    def from_specs(cls, specs: Sequence[Any]) -> "WeightedLoss":
        """From config parts (``LossSpec``: ``name``, ``weight`` and the term's own keys) or plain mappings."""
        return cls([s if isinstance(s, Mapping) else {"name": s.name, "weight": s.weight, **s.params} for s in specs])

    @property
    def required_fields(self) -> frozenset[str]:
        """DistillBatch fields any term needs: tells the trainer whether the teacher/graph must run."""
        return frozenset(f for term in self.terms.values() for f in term.required_fields)

    def forward(self, batch: DistillBatch) -> tuple[Tensor, dict[str, Tensor]]:
        parts: dict[str, Tensor] = {}
        total: Tensor | None = None
        for name, term in self.terms.items():
            assert isinstance(term, LossTerm)
            value = term(batch)
            parts[name] = value.detach()
            weighted = self.weights[name] * value
            total = weighted if total is None else total + weighted
        assert total is not None
        return total, parts
