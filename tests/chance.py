"""How likely a random model is to pass an "it learns" bound, so that each such test can state it (< 1/1000).

A random model ranks the truth uniformly among the K candidates, independently per test sample.  Then the
number of top-k hits over n samples is Binomial(n, min(k, K) / K), whose tail is exact; a sample's reciprocal
rank lies in [1/K, 1] with mean H_K / K, so Hoeffding's inequality bounds the chance that the mean over n
samples (the MRR) reaches a value: P(MRR >= mu + t) <= exp(-2 n t^2 / (1 - 1/K)^2).  No sampling, so the figures
are the same every run."""
from __future__ import annotations

import math

from scipy.stats import binom

ALPHA = 1e-3  # the most a random model may pass an "it learns" test with


def p_topk(n: int, num_candidates: int, k: int, hits: int) -> float:
    """P(a random ranking puts the truth within the top k for at least ``hits`` of ``n`` samples), exact."""
    return float(binom.sf(hits - 1, n, min(k, num_candidates) / num_candidates))


def topk_bound(n: int, num_candidates: int, k: int, alpha: float = ALPHA) -> int:
    """The fewest top-k hits of ``n`` that a random ranking reaches with probability below ``alpha``."""
    for hits in range(n + 1):
        if p_topk(n, num_candidates, k, hits) < alpha:
            return hits
    raise ValueError(f"no bound: {n} samples cannot tell a model from chance at {alpha}")


def chance_mrr(num_candidates: int) -> float:
    return sum(1.0 / r for r in range(1, num_candidates + 1)) / num_candidates


def p_mrr(n: int, num_candidates: int, mrr: float) -> float:
    """An upper bound (Hoeffding) on P(a random ranking's MRR over ``n`` samples >= ``mrr``)."""
    t = mrr - chance_mrr(num_candidates)
    if t <= 0:
        return 1.0
    return min(1.0, math.exp(-2 * n * t * t / (1 - 1 / num_candidates) ** 2))


def mrr_bound(n: int, num_candidates: int, alpha: float = ALPHA) -> float:
    """An MRR that a random ranking of ``n`` samples reaches with probability below ``alpha`` (Hoeffding)."""
    bound = chance_mrr(num_candidates) + (1 - 1 / num_candidates) * math.sqrt(math.log(1 / alpha) / (2 * n))
    if bound > 1:
        raise ValueError(f"no bound: {n} samples cannot tell a model from chance at {alpha}")
    return bound


def p_group(group: dict, num_candidates: int, key: str = "top1") -> float:
    """P(a random ranking does at least as well as ``group`` (a metrics.json seen/unseen entry) on ``key``):
    top-k exactly, MRR bounded (Hoeffding)."""
    n = int(group["n"])
    if key == "mrr":
        return p_mrr(n, num_candidates, group["mrr"])
    return p_topk(n, num_candidates, int(key[3:]), round(group[key] * n))


def p_sign(wins: int, losses: int) -> float:
    """Exact sign test: P(at least ``wins`` of the ``wins + losses`` samples where two models disagree go to the
    first) if both were equally good (each disagreement a fair coin)."""
    return float(binom.sf(wins - 1, wins + losses, 0.5))
