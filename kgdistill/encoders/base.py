"""Encoders map one modality's batch into the shared space.

Every encoder is built from a :class:`PreparedModality` (so input sizes come from
the data, not from the config) and ends in a projection to ``dim``.  Register new
encoders with ``@ENCODERS.register("name")``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..registry import Registry

ENCODERS: Registry[type["Encoder"]] = Registry("encoder")


class Encoder(nn.Module):
    #: modality kinds this encoder accepts
    kinds: tuple[str, ...] = ()

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    @classmethod
    def from_modality(cls, prepared: Any, dim: int, **params: Any) -> "Encoder":
        raise NotImplementedError

    @classmethod
    def check_params(cls, **params: Any) -> None:
        """Settings that can be checked before any data is read; raise ValueError naming the key."""

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Trainable parameters and their learning rates, the stage's rate first (an encoder with a pretrained
        part gives that part its own rate)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def build_encoder(spec: Any, prepared: Any, dim: int, key: str) -> "Encoder":
    """The encoder a config part names, for a prepared modality; errors name the config key."""
    from ..errors import ConfigError

    cls = ENCODERS.get(spec.name)
    if cls.kinds and prepared.kind not in cls.kinds:
        raise ConfigError(f"{key}: encoder {spec.name!r} reads {'/'.join(cls.kinds)} input, "
                          f"but modality {prepared.name!r} is {prepared.kind}")
    try:
        return cls.from_modality(prepared, dim, **spec.params)
    except (TypeError, ValueError, RuntimeError) as exc:  # a parameter the part rejects: dropout 2, hidden -5
        raise ConfigError(param_error(key, exc, spec.params)) from None


def param_error(key: str, exc: Exception, params: dict[str, Any]) -> str:
    """One line naming the key: ``student.encoder.lora.rank: ...`` when the message starts with a parameter."""
    msg = " ".join(str(exc).split())
    head = msg.split(":", 1)[0]
    return f"{key}.{msg}" if head.split(".")[0] in params and " " not in head else f"{key}: {msg}"


@torch.no_grad()
def embed(encoder: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Encoder outputs in evaluation mode, in batches (float32)."""
    encoder.eval()
    out = [encoder(x[s:s + batch_size]).float() for s in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.zeros(0)


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 2, dropout: float = 0.1) -> nn.Sequential:
    """Linear-GELU-Dropout blocks; the last layer is linear."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(max(layers - 1, 0)):
        mods += [nn.Linear(d, hidden), nn.GELU(), nn.Dropout(dropout)]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


def take_rows(t: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``t[rows]`` for long ``rows`` of any shape, through ``index_select``: where rows repeat, the backward of
    ``t[rows]`` on the CPU adds their gradients in a thread-dependent order (runs with one seed differed from the
    first epoch); ``index_select``'s is deterministic."""
    return t.index_select(0, rows.reshape(-1)).reshape(*rows.shape, t.shape[-1])


def _first_layer(first: nn.Linear, table: torch.Tensor, rows: torch.Tensor, distinct: bool) -> torch.Tensor:
    """``first(table[rows])``; with ``distinct``, each distinct row through the layer once when rows repeat (a
    batch's items share concepts and sentences).  Finding them has a data-dependent size, so without it (a traced
    graph for export; an accelerator, where it would wait on the device every step) the layer runs on the table or
    the gathered rows, whichever is smaller."""
    if not distinct:
        return take_rows(first(table), rows) if rows.numel() > table.shape[0] else first(take_rows(table, rows))
    if rows.numel() > table.shape[0] // 4:
        uniq, inverse = torch.unique(rows, return_inverse=True)
        return take_rows(first(take_rows(table, uniq)), inverse)
    return first(take_rows(table, rows))


class SetPooling(nn.Module):
    """DeepSets over a padded set of item vectors: per-item MLP, then masked mean and max.

    Both concept sets (structured findings) and notes read sentence by sentence are
    sets of vectors, so one pooling serves both encoders.
    """

    def __init__(self, in_dim: int, hidden: int, dropout: float = 0.1):
        super().__init__()
        self.item = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, hidden))
        self.out_dim = 2 * hidden

    def forward(self, items: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self._pool(self.item(items), mask)

    def forward_table(self, table: torch.Tensor, idx: torch.Tensor, extra: torch.Tensor | None = None,
                      negated: torch.Tensor | None = None) -> torch.Tensor:
        """Items given as rows of a table (concepts, sentences): the first linear layer runs on each distinct row
        the batch reads (:func:`_first_layer`), so cost follows the batch, not the padding or the table.
        ``negated`` (bool per item): such an item enters as the negation of its row, ``W(-x) + b = 2b - (Wx + b)``
        (an absent finding); the others are computed exactly as without it.  On the CPU the item layers run on the
        real items only (:meth:`_packed_rest`): notes fill about a quarter of their padded slots."""
        mask = idx >= 0
        # data-dependent shapes only in eager CPU code: an exported graph keeps fixed shapes, and on an accelerator
        # they would wait on the device
        packed = idx.device.type == "cpu" and not torch.jit.is_tracing()
        pick = (lambda t: t[mask]) if packed else (lambda t: t)
        first = self.item[0]
        h = _first_layer(first, table, pick(idx.clamp_min(0)), distinct=packed)
        if negated is not None:
            h = torch.where(pick(negated).unsqueeze(-1), 2 * first.bias - h, h)
        if extra is not None:
            h = h + pick(extra)
        return self._pool(self._packed_rest(h, mask) if packed else self.item[1:](h), mask)

    def _packed_rest(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The item layers after the first on the real items ``h`` [R, hidden], scattered into the padded
        [B, n, hidden] (zero at padding, which pooling ignores).  Dropout draws its mask for the real items only:
        drawing it over every padded slot was a fifth of a teacher step on the real-patient task (padding fills
        most of a batch), for slots that pooling ignores."""
        out = h.new_zeros(*mask.shape, self.item[-1].out_features)
        out[mask] = self.item[1:](h)
        return out

    def _pool(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(h.dtype)
        mean = (h * m).sum(1) / m.sum(1).clamp_min(1.0)
        mx = h.masked_fill(~mask.unsqueeze(-1), torch.finfo(h.dtype).min).amax(1)
        mx = torch.where(mask.any(1, keepdim=True), mx, torch.zeros_like(mx))
        return torch.cat([mean, mx], dim=-1)
