"""Fixed node features, reduced before the GNN reads them.

On a large graph the GNN's first product (every node's features times the input weight, and its gradient)
is among the costliest of a step and grows with the feature width; the name and definition embeddings are
768-d and mostly redundant.  Their leading principal components keep most of the variance at a fraction of
the cost.  Only training reads them: students and evaluation use the concept embeddings saved after the
teacher stage, so a rebuilt model on another machine (other rounding) changes no reported figure.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError

CHUNK = 65536  # rows per product: no full-size float64 copy of a million-node feature matrix


def principal_components(x: torch.Tensor, k: int, key: str = "gnn.input_dim") -> torch.Tensor:
    """``x`` centred and projected onto its ``k`` leading principal directions, [n, k] float32.

    Deterministic on one machine (covariance accumulated in float64, eigen-decomposed, each direction's sign
    fixed so that its largest loading is positive).  Zero rows of ``x`` (features hidden by
    ``self_feature_dropout``) are re-zeroed by the caller after the projection: 0 then means the average node."""
    n, d = x.shape
    if k > d:
        raise ConfigError(f"{key}: {k} is more than the {d} dimensions of the node features; use at most {d}")
    mean = x.sum(0, dtype=torch.float64) / n
    cov = torch.zeros(d, d, dtype=torch.float64, device=x.device)
    for chunk in x.split(CHUNK):
        c = chunk.double() - mean
        cov += c.T @ c
    _, vecs = torch.linalg.eigh(cov)                       # ascending eigenvalues
    top = vecs[:, -k:].flip(1)                             # [d, k], leading first
    top = top * torch.sign(top[top.abs().argmax(0), torch.arange(k, device=x.device)])
    top, mean = top.float(), mean.float()
    return torch.cat([(chunk.float() - mean) @ top for chunk in x.split(CHUNK)])
