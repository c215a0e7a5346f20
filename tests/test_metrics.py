"""kgdistill/eval/metrics.py and eval/evaluate.py against rankings worked out by hand.

Every expected figure below is written as the arithmetic that gives it, so a wrong formula (MRR as the mean of
1/sqrt(rank), severity as similarity instead of 1 - similarity, an optimistic tie rule) fails here."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kgdistill.eval.calibration import Calibration
from kgdistill.eval.evaluate import method_metrics
from kgdistill.eval.metrics import (chance_levels, concept_similarity, grouped_metrics, harmonic_mean,
                                    mistake_severity, ranking_metrics, ranks_of_truth)

# four samples over four candidates; the truth's rank under the pessimistic tie rule in the comment
SCORES = torch.tensor([
    [0.9, 0.1, 0.5, 0.3],   # y=2: only 0.9 is higher                         -> rank 2
    [0.2, 0.2, 0.2, 0.2],   # y=1: tied with all three others, ranks below them -> rank 4
    [0.1, 0.7, 0.7, 0.0],   # y=1: tied with candidate 2                      -> rank 2
    [0.0, 0.0, 0.0, 1.0],   # y=3: alone at the top                           -> rank 1
])
Y = torch.tensor([2, 1, 1, 3])
SEEN = torch.tensor([True, True, False, False])  # candidates 0, 1 seen; 2, 3 unseen

# a small graph: 0 is the root, 1 and 2 its children, 3 a child of 1; each concept implies itself and its ancestors
REACH = [{0}, {1, 0}, {2, 0}, {3, 1, 0}]
# Jaccard |a & b| / |a | b| of those sets, by hand
SIM = [[1, 1 / 2, 1 / 2, 1 / 3],
       [1 / 2, 1, 1 / 3, 2 / 3],
       [1 / 2, 1 / 3, 1, 1 / 4],
       [1 / 3, 2 / 3, 1 / 4, 1]]


def test_ranks_follow_the_pessimistic_tie_rule():
    assert ranks_of_truth(SCORES, Y).tolist() == [2, 4, 2, 1]


def test_a_constant_model_ranks_the_truth_last_not_first():
    """Scoring every candidate alike is no better than chance: every truth is last (an optimistic rule gave 1)."""
    scores = torch.zeros(5, 7)
    y = torch.arange(5)
    assert ranks_of_truth(scores, y).tolist() == [7] * 5
    assert ranking_metrics(ranks_of_truth(scores, y))["top1"] == 0.0


def test_a_nan_score_of_the_truth_ranks_it_last():
    scores = torch.tensor([[float("nan"), 0.1, 0.2], [0.3, float("nan"), 0.1]])
    assert ranks_of_truth(scores, torch.tensor([0, 0])).tolist() == [3, 1]  # a NaN rival does not outrank it


def test_top_k_and_mrr_by_hand():
    m = ranking_metrics(torch.tensor([2, 4, 2, 1]), top_k=(1, 2, 3, 10))
    assert m["top1"] == pytest.approx(1 / 4)
    assert m["top2"] == pytest.approx(3 / 4)
    assert m["top3"] == pytest.approx(3 / 4)        # rank 4 is not within 3
    assert m["top10"] == pytest.approx(1.0)         # k beyond the candidates: every truth is within
    assert m["mrr"] == pytest.approx((1 / 2 + 1 / 4 + 1 / 2 + 1) / 4)  # 0.5625; mean 1/sqrt(rank) is 0.729
    assert m["n"] == 4
    assert set(m) == {"top1", "top2", "top3", "top10", "mrr", "n"}


def test_no_ranks_no_metrics():
    assert ranking_metrics(torch.tensor([], dtype=torch.long)) == {}


def test_seen_unseen_split_by_the_truth_of_each_sample():
    g = grouped_metrics(SCORES, Y, SEEN, top_k=(1, 2))
    # seen truths (candidates 0, 1): samples 1 and 2, ranks 4 and 2; unseen (2, 3): samples 0 and 3, ranks 2 and 1
    assert g["seen"] == {"top1": 0.0, "top2": 0.5, "mrr": pytest.approx((1 / 4 + 1 / 2) / 2), "n": 2}
    assert g["unseen"] == {"top1": 0.5, "top2": 1.0, "mrr": pytest.approx((1 / 2 + 1) / 2), "n": 2}
    assert g["all"] == {"top1": 0.25, "top2": 0.75, "mrr": pytest.approx(0.5625), "n": 4}


def test_a_group_without_samples_is_left_out():
    g = grouped_metrics(SCORES, Y, torch.zeros(4, dtype=torch.bool), top_k=(1,))
    assert set(g) == {"all", "unseen"} and g["unseen"]["n"] == 4
    g = grouped_metrics(SCORES, Y, torch.ones(4, dtype=torch.bool), top_k=(1,))
    assert set(g) == {"all", "seen"} and g["seen"]["n"] == 4


@pytest.mark.parametrize("a,b,h", [(0.5, 0.25, 2 * 0.5 * 0.25 / 0.75), (0.2, 0.8, 0.32), (1.0, 1.0, 1.0),
                                   (0.6, 0.6, 0.6), (0.0, 0.9, 0.0), (0.9, 0.0, 0.0), (0.0, 0.0, 0.0)])
def test_harmonic_mean(a, b, h):
    assert harmonic_mean(a, b) == pytest.approx(h)
    assert harmonic_mean(b, a) == pytest.approx(h)


def test_chance_levels_are_a_random_rankings_expectation():
    c = chance_levels(4, (1, 2, 10))
    assert c == {"top1": 0.25, "top2": 0.5, "top10": 1.0, "mrr": pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)}
    assert chance_levels(1) == {"top1": 1.0, "top10": 1.0, "mrr": 1.0}
    # the mean over every ranking of 25 candidates, counted out
    ranks = torch.arange(1, 26)
    by_count = ranking_metrics(ranks, (1, 10))
    c25 = chance_levels(25)
    assert c25["top1"] == pytest.approx(by_count["top1"]) == pytest.approx(1 / 25)
    assert c25["top10"] == pytest.approx(by_count["top10"]) == pytest.approx(10 / 25)
    assert c25["mrr"] == pytest.approx(by_count["mrr"]) == pytest.approx(3.8159582 / 25)  # H_25 / 25


def test_concept_similarity_is_the_jaccard_of_implication_sets():
    s = concept_similarity(REACH)
    assert s.dtype == np.float32 and s.shape == (4, 4)
    np.testing.assert_allclose(s, np.array(SIM), rtol=1e-6)


def test_concept_similarity_with_an_empty_set_and_sparse_ids():
    s = concept_similarity([{5}, set(), {5, 9}])
    # {5} vs {5, 9}: 1/2; the empty set is like nothing (0), not even itself (no union to divide by)
    np.testing.assert_allclose(s, np.array([[1, 0, 0.5], [0, 0, 0], [0.5, 0, 1]]), rtol=1e-6)
    assert concept_similarity([set(), set()]).tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_mistake_severity_on_a_small_graph_by_hand():
    sim = torch.tensor(SIM)
    scores = torch.tensor([
        [0.1, 0.8, 0.0, 0.5],   # y=3, guess 1 (its parent):      1 - 2/3
        [0.1, 0.0, 0.9, 0.5],   # y=3, guess 2 (a cousin):        1 - 1/4
        [0.9, 0.1, 0.0, 0.5],   # y=0, guess 0: right, no severity
        [0.7, 0.1, 0.7, 0.0],   # y=2 tied with 0: wrong under the tie rule, the guess is 0: 1 - 1/2
    ])
    y = torch.tensor([3, 3, 0, 2])
    out = mistake_severity(scores, y, sim)
    assert out["n_mistakes"] == 3
    assert out["mean"] == pytest.approx(((1 - 2 / 3) + (1 - 1 / 4) + (1 - 1 / 2)) / 3)  # 19/36; inverted: 17/36


def test_a_near_miss_is_less_severe_than_a_far_one():
    sim = torch.tensor(SIM)
    y = torch.tensor([3])
    near = mistake_severity(torch.tensor([[0.0, 1.0, 0.0, 0.5]]), y, sim)["mean"]   # guessed the parent
    far = mistake_severity(torch.tensor([[0.0, 0.0, 1.0, 0.5]]), y, sim)["mean"]    # guessed a cousin
    assert near == pytest.approx(1 / 3) and far == pytest.approx(3 / 4)


def test_no_mistake_no_severity():
    out = mistake_severity(torch.eye(3), torch.arange(3), torch.tensor(SIM)[:3, :3])
    assert out == {"mean": None, "n_mistakes": 0}


def test_method_metrics_table_by_hand():
    """The results table: ranking groups, severity, harmonic top-1, a calibrated method's calibration and its
    own figures before calibration, and a seen-only row without unseen figures."""
    sim = torch.tensor(SIM)
    raw = SCORES.clone()
    cal = Calibration(gamma=0.5, beta=0.0, val_seen_top1=0.75, val_heldout_top1=0.25)
    final = {"a": cal.apply(raw, SEEN, None), "b": SCORES, "c": SCORES}
    out = method_metrics(final, {"a": raw}, {"a": cal}, Y, SEEN, sim, (1, 2), seen_only=("c",))
    # "a" after gamma 0.5 off the seen candidates: ranks [1, 4, 2, 1]
    a = out["a"]
    assert a["all"] == {"top1": 0.5, "top2": 0.75, "mrr": pytest.approx((1 + 1 / 4 + 1 / 2 + 1) / 4), "n": 4}
    assert a["seen"]["top1"] == 0.0 and a["unseen"]["top1"] == 1.0
    assert a["harmonic_top1"] == 0.0
    assert a["calibration"] == {"gamma": 0.5, "beta": 0.0, "val_seen_top1": 0.75, "val_heldout_top1": 0.25}
    u = a["uncalibrated"]  # the raw ranks [2, 4, 2, 1]: seen 4, 2; unseen 2, 1
    assert set(u) == {"seen", "unseen", "harmonic_top1"} and set(u["seen"]) == {"top1", "top2", "mrr", "n"}
    assert u["seen"]["top1"] == 0.0 and u["unseen"]["top1"] == 0.5 and u["harmonic_top1"] == 0.0
    # "a": wrong rows 1 (y=1 at -0.3, 2 and 3 at 0.2: the first best, 2: 1 - 1/3) and 2 (guess 2: 1 - 1/3)
    assert a["mistake_severity"] == pytest.approx(((1 - 1 / 3) + (1 - 1 / 3)) / 2)
    b = out["b"]
    assert b["harmonic_top1"] == pytest.approx(0.0) and "calibration" not in b and "uncalibrated" not in b
    # "b": wrong rows 0 (guess 0: 1 - 1/2), 1 (all tied: first other, 0: 1 - 1/2), 2 (y=1 tied with 2: 1 - 1/3)
    assert b["mistake_severity"] == pytest.approx(((1 - 1 / 2) + (1 - 1 / 2) + (1 - 1 / 3)) / 3)
    assert "unseen" not in out["c"] and "harmonic_top1" not in out["c"] and "seen" in out["c"]


def test_harmonic_top1_of_a_method_that_ranks_both_groups():
    scores = torch.tensor([[1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0], [0, 0, 0, 1.0]])
    y = torch.tensor([0, 2, 2, 3])  # seen: sample 0 right; unseen: samples 1, 3 right of 1, 2, 3
    out = method_metrics({"m": scores}, {}, {}, y, SEEN, torch.tensor(SIM), (1,))["m"]
    assert out["seen"]["top1"] == 1.0 and out["unseen"]["top1"] == pytest.approx(2 / 3)
    assert out["harmonic_top1"] == pytest.approx(2 * 1.0 * (2 / 3) / (1 + 2 / 3))  # 0.8
    assert math.isclose(out["mistake_severity"], 1 - 1 / 4, rel_tol=1e-6)  # y=2 guessed 3


def test_the_chance_helper_of_the_it_learns_tests():
    """tests/chance.py: exact binomial tails for top-k, Hoeffding for MRR."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from chance import ALPHA, chance_mrr, mrr_bound, p_group, p_mrr, p_topk, topk_bound

    assert p_topk(2, 4, 1, 2) == pytest.approx(1 / 16)          # both samples right at 1/4 each
    assert p_topk(2, 4, 1, 0) == 1.0
    assert p_topk(3, 4, 2, 2) == pytest.approx(0.5)             # P(>= 2 of 3) at 1/2: (3 + 1) / 8
    assert p_topk(5, 4, 10, 5) == 1.0                           # k beyond the candidates: always within
    b = topk_bound(36, 12, 1)
    assert p_topk(36, 12, 1, b) < ALPHA <= p_topk(36, 12, 1, b - 1)
    with pytest.raises(ValueError):
        topk_bound(2, 4, 1)                                     # 1/16 at best: 2 samples cannot show it
    assert chance_mrr(4) == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    assert p_mrr(10, 4, chance_mrr(4)) == 1.0 and p_mrr(10, 4, 0.1) == 1.0
    # Hoeffding: t = 0.25 over 50 samples in a range of 3/4: exp(-2 * 50 * 0.0625 / 0.5625)
    assert p_mrr(50, 4, chance_mrr(4) + 0.25) == pytest.approx(math.exp(-100 * 0.0625 / 0.5625))
    assert p_mrr(50, 4, mrr_bound(50, 4)) == pytest.approx(ALPHA)
    assert p_group({"n": 2, "top1": 1.0, "mrr": 1.0}, 4) == pytest.approx(1 / 16)
    assert p_group({"n": 50, "top1": 0.0, "mrr": chance_mrr(4) + 0.25}, 4, "mrr") == pytest.approx(
        math.exp(-100 * 0.0625 / 0.5625))


def test_a_seen_only_row_without_unseen_samples():
    """All test samples seen: nothing to leave out of a seen-only row, and no harmonic mean anywhere."""
    y = torch.tensor([0, 1])
    out = method_metrics({"c": SCORES[:2]}, {}, {}, y, SEEN, torch.tensor(SIM), (1,), seen_only=("c",))
    assert set(out["c"]) == {"all", "seen", "mistake_severity"}
