"""Ranking metrics over all candidate concepts, split by seen and unseen true concepts."""
from __future__ import annotations

import numpy as np
import torch


def ranks_of_truth(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1-based rank of the true concept in each row (ties count against the truth)."""
    target = scores.gather(1, y.unsqueeze(1))
    return (scores > target).sum(1) + 1


def ranking_metrics(ranks: torch.Tensor, top_k: tuple[int, ...] = (1, 10)) -> dict[str, float]:
    if ranks.numel() == 0:
        return {}
    r = ranks.float()
    out = {f"top{k}": float((r <= k).float().mean()) for k in top_k}
    out["mrr"] = float((1.0 / r).mean())
    out["n"] = int(ranks.numel())
    return out


def grouped_metrics(scores: torch.Tensor, y: torch.Tensor, seen_mask: torch.Tensor,
                    top_k: tuple[int, ...] = (1, 10)) -> dict[str, dict[str, float]]:
    """``{"seen": {...}, "unseen": {...}, "all": {...}}``; a group without samples is left out."""
    ranks = ranks_of_truth(scores, y)
    is_seen = seen_mask[y]
    out: dict[str, dict[str, float]] = {"all": ranking_metrics(ranks, top_k)}
    for name, sel in (("seen", is_seen), ("unseen", ~is_seen)):
        if bool(sel.any()):
            out[name] = ranking_metrics(ranks[sel], top_k)
    return out


def harmonic_mean(a: float, b: float) -> float:
    return 0.0 if a + b <= 0 else 2 * a * b / (a + b)


def concept_similarity(reach: list[set[int]]) -> np.ndarray:
    """Jaccard similarity of the concepts' implication sets (themselves plus everything they reach)."""
    from scipy import sparse

    k = len(reach)
    rows = np.repeat(np.arange(k), [len(r) for r in reach])
    cols = np.fromiter((c for r in reach for c in r), dtype=np.int64, count=int(sum(len(r) for r in reach)))
    m = sparse.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(k, int(cols.max()) + 1 if len(cols) else 1))
    inter = (m @ m.T).toarray()
    size = np.asarray(m.sum(1)).ravel()
    union = size[:, None] + size[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def mistake_severity(scores: torch.Tensor, y: torch.Tensor, similarity: torch.Tensor) -> dict[str, float | None]:
    """How far wrong top-1 guesses land from the truth in the graph: mean of 1 - Jaccard (lower is better).
    With no wrong guess there is no severity: ``mean`` is None (not 0, which would read as a perfect severity and
    pull an average over seeds down)."""
    pred = scores.argmax(1)
    wrong = pred != y
    if not bool(wrong.any()):
        return {"mean": None, "n_mistakes": 0}
    sev = 1.0 - similarity[pred[wrong], y[wrong]]
    return {"mean": float(sev.mean()), "n_mistakes": int(wrong.sum())}
