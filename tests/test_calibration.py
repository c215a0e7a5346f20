"""The calibration rule: no seen accuracy given up for a held-out gain that does not pay for it."""
from __future__ import annotations

import torch

from kgdistill.eval.calibration import choose_calibration

GAMMAS = [0.0, 0.1, 0.2, 0.3, 0.6]
# concepts 0-3 trained, 4-5 held out as stand-ins for unseen ones
TRAINED = torch.tensor([True, True, True, True, False, False])
HELD = ~TRAINED


def _scores(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_no_unseen_ability_keeps_gamma_zero():
    """The old failure: a large gamma halves seen top-1 for a 10% held-out gain (H 0 -> 0.17)."""
    rows, y = [], []
    for i in range(10):  # trained patients, all right at gamma 0; half lose to concept 4 beyond gamma 0.35
        r = [0.0] * 6
        r[i % 4], r[4] = 0.9, (0.55 if i < 5 else 0.2)
        rows.append(r)
        y.append(i % 4)
    for i in range(10):  # held-out patients: truth far below a trained concept; one is reached at gamma 0.6
        r = [0.8, 0.1, 0.1, 0.1, 0.0, 0.0]
        r[4 + i % 2] = 0.45 if i == 0 else 0.05
        rows.append(r)
        y.append(4 + i % 2)
    scores, y = _scores(rows), torch.tensor(y)
    cal = choose_calibration(scores, y, TRAINED, HELD, None, GAMMAS, [0.0])
    assert cal.gamma == 0.0
    assert cal.val_seen_top1 == 1.0 and cal.val_heldout_top1 == 0.0
    # what the old rule (maximise H alone) took: gamma 0.6, seen 50%, held-out 10%
    hit = (scores - 0.6 * TRAINED.float()).argmax(1) == y
    assert float(hit[:10].float().mean()) == 0.5 and abs(float(hit[10:].float().mean()) - 0.1) < 1e-6


def test_real_trade_off_is_still_chosen():
    """A model that ranks held-out concepts just below trained ones gets the offset that exposes them."""
    rows, y = [], []
    for i in range(10):  # trained patients: truth 0.9, nearest other 0.5 -> survive gamma up to 0.4
        r = [0.5, 0.5, 0.5, 0.5, 0.2, 0.2]
        r[i % 4] = 0.9
        rows.append(r)
        y.append(i % 4)
    for i in range(10):  # held-out patients: truth 0.75, a trained concept 0.8 -> right from gamma 0.1 on
        r = [0.8, 0.3, 0.3, 0.3, 0.1, 0.1]
        r[4 + i % 2] = 0.75
        rows.append(r)
        y.append(4 + i % 2)
    cal = choose_calibration(_scores(rows), torch.tensor(y), TRAINED, HELD, None, GAMMAS, [0.0])
    assert cal.gamma == 0.1
    assert cal.val_seen_top1 == 1.0 and cal.val_heldout_top1 == 1.0


def test_trade_that_pays_for_itself_is_allowed():
    """Giving up some seen top-1 is fine when the held-out gain is larger."""
    rows, y = [], []
    for i in range(10):  # half the trained patients lose to concept 4 once gamma >= 0.2
        r = [0.0] * 6
        r[i % 4], r[4] = 0.9, (0.75 if i < 5 else 0.2)
        rows.append(r)
        y.append(i % 4)
    for i in range(10):  # every held-out patient needs gamma >= 0.2
        r = [0.85, 0.1, 0.1, 0.1, 0.0, 0.0]
        r[4 + i % 2] = 0.7
        rows.append(r)
        y.append(4 + i % 2)
    cal = choose_calibration(_scores(rows), torch.tensor(y), TRAINED, HELD, None, GAMMAS, [0.0])
    assert cal.gamma == 0.2
    assert cal.val_seen_top1 == 0.5 and cal.val_heldout_top1 == 1.0


def test_fusion_weight_chosen_with_the_same_rule():
    """beta adds the text baseline score; a baseline that ranks held-out concepts is taken up."""
    scores = _scores([[0.9, 0.2, 0.2, 0.2, 0.1, 0.1], [0.9, 0.2, 0.2, 0.2, 0.1, 0.1]])
    proto = _scores([[0.5, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0, 0.0]])
    y = torch.tensor([0, 4])
    cal = choose_calibration(scores, y, TRAINED, HELD, proto, [0.0], [0.0, 1.0])
    assert cal.beta == 1.0 and cal.val_seen_top1 == 1.0 and cal.val_heldout_top1 == 1.0
