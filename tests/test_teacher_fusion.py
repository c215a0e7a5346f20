"""Graph-fused teacher targets: the weight is chosen on validation labels, and the fused logits keep the
plain teacher's scale."""
from __future__ import annotations

import pytest
import torch

from kgdistill.errors import DataError
from kgdistill.train.distill import choose_teacher_fusion, fused_teacher_logits

COS = torch.tensor([[0.9, 0.8], [0.2, 0.5]])
PROTO = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
Y = torch.tensor([1, 0])


def test_the_weight_with_the_best_validation_mrr_wins():
    # beta 0: both truths rank 2 (MRR 0.5); beta 1: [0.9, 1.8] and [1.2, 0.5] put both first (MRR 1)
    beta, mrr = choose_teacher_fusion(COS, PROTO, Y, [0.0, 1.0])
    assert beta == 1.0
    assert mrr == {0.0: pytest.approx(0.5), 1.0: pytest.approx(1.0)}


def test_ties_go_to_the_smaller_weight():
    # beta 0.5 already ranks both truths first: [0.9, 1.3] and [0.7, 0.5]
    beta, mrr = choose_teacher_fusion(COS, PROTO, Y, [0.0, 1.0, 0.5, 4.0])
    assert beta == 0.5 and mrr[0.5] == mrr[1.0] == mrr[4.0] == pytest.approx(1.0)


def test_a_prototype_that_only_hurts_is_left_out():
    # the teacher alone ranks both truths first; the prototype favours the other concept of each row
    beta, mrr = choose_teacher_fusion(COS, PROTO, torch.tensor([0, 1]), [0.0, 0.5, 2.0])
    assert beta == 0.0 and mrr == {0.0: pytest.approx(1.0), 0.5: pytest.approx(0.5), 2.0: pytest.approx(0.5)}


def test_fused_logits_by_hand():
    out = fused_teacher_logits(COS, PROTO, 0.5, 0.1)
    # (0.9 + 0.5 * 0) / 1.5 / 0.1 = 6.0; (0.8 + 0.5) / 1.5 / 0.1 = 8.667; row 2: (0.2 + 0.5) / 0.15, 0.5 / 0.15
    assert torch.allclose(out, torch.tensor([[6.0, 26 / 3], [14 / 3, 10 / 3]]))
    assert torch.equal(fused_teacher_logits(COS, PROTO, 0.0, 0.1), COS / 0.1)  # beta 0: the plain teacher


def test_no_validation_labels_is_a_clear_error():
    with pytest.raises(DataError, match="teacher_fusion needs validation samples"):
        choose_teacher_fusion(COS[:0], PROTO[:0], Y[:0], [0.0, 1.0])
