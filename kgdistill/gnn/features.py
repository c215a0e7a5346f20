"""Fixed node features, reduced before the GNN reads them.

On a large graph the GNN's first product (every node's features times the input weight, and its gradient)
is the costliest of a step and grows with the feature width; the name and definition embeddings are 768-d,
mostly redundant.  Their leading principal components keep most of the variance at a fraction of the cost.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError


def principal_components(x: torch.Tensor, k: int, key: str = "gnn.input_dim") -> torch.Tensor:
    """``x`` centred and projected onto its ``k`` leading principal directions, [n, k].

    Deterministic (eigen-decomposition of the covariance in float64, each direction's sign fixed so that its
    largest loading is positive): a rebuilt model reads the same features on any machine, so saved GNN weights
    keep their meaning."""
    n, d = x.shape
    if k > d:
        raise ConfigError(f"{key}: {k} is more than the {d} dimensions of the node features; use at most {d}")
    x = x.double()
    xc = x - x.mean(0)
    _, vecs = torch.linalg.eigh(xc.T @ xc)                 # ascending eigenvalues
    top = vecs[:, -k:].flip(1)                             # [d, k], leading first
    idx = top.abs().argmax(0)
    top = top * torch.sign(top[idx, torch.arange(k)])
    return (xc @ top).float()
