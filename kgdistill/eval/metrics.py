"""Ranking metrics over all candidate concepts, split by seen and unseen true concepts.

Tie rule (pessimistic): a true concept tied with other candidates ranks below all of them, so its rank is the
number of candidates scoring at least as high as it (itself included).  A model that scores every candidate alike
therefore ranks the truth last, not first: ties can never make a model look better than chance."""
from __future__ import annotations

import numpy as np
import torch


def ranks_of_truth(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1-based rank of the true concept in each row; a tie counts against the truth (the module's tie rule), and
    so does a NaN score of the truth (ranked last, never first)."""
    target = scores.gather(1, y.unsqueeze(1))
    return ((scores >= target) | target.isnan()).sum(1)


def chance_levels(num_candidates: int, top_k: tuple[int, ...] = (1, 10)) -> dict[str, float]:
    """What a uniformly random ranking of ``num_candidates`` scores on average: top-k = min(k, K) / K and
    MRR = (1 + 1/2 + ... + 1/K) / K (the truth is equally likely at every rank)."""
    out = {f"top{k}": min(k, num_candidates) / num_candidates for k in top_k}
    out["mrr"] = float(sum(1.0 / r for r in range(1, num_candidates + 1)) / num_candidates)
    return out


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
    pull an average over seeds down).  A wrong guess is a row whose truth is not ranked first under the tie rule;
    the guess is then the best-scoring other candidate."""
    wrong = ranks_of_truth(scores, y) > 1
    if not bool(wrong.any()):
        return {"mean": None, "n_mistakes": 0}
    rows = scores[wrong].scatter(1, y[wrong].unsqueeze(1), float("-inf"))
    sev = 1.0 - similarity[rows.argmax(1), y[wrong]]
    return {"mean": float(sev.mean()), "n_mistakes": int(wrong.sum())}
