"""The calibration rule: no seen accuracy given up for a held-out gain that does not pay for it."""
from __future__ import annotations

import pytest
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
    assert cal.gamma == 0.0 and cal.beta == 0.0
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


def _trade_off() -> tuple[torch.Tensor, torch.Tensor]:
    """test_real_trade_off_is_still_chosen's patients: gamma 0.1 exposes every held-out concept."""
    rows, y = [], []
    for i in range(10):
        r = [0.5, 0.5, 0.5, 0.5, 0.2, 0.2]
        r[i % 4] = 0.9
        rows.append(r)
        y.append(i % 4)
    for i in range(10):
        r = [0.8, 0.3, 0.3, 0.3, 0.1, 0.1]
        r[4 + i % 2] = 0.75
        rows.append(r)
        y.append(4 + i % 2)
    return _scores(rows), torch.tensor(y)


def test_each_method_gets_the_calibration_its_flags_ask_for():
    """(calibrate, fusion) per method: no calibration keeps gamma 0, no fusion keeps beta 0, and a fused method
    also gets ``<name>_no_fusion`` (its gamma chosen without the baseline) when there is a baseline."""
    from kgdistill.eval.calibration import choose_calibrations

    scores, y = _trade_off()
    # a baseline that puts every held-out patient's truth far ahead: beta 1.0 wins once allowed
    base = torch.zeros_like(scores)
    base[torch.arange(10, 20), y[10:]] = 1.0
    base[torch.arange(10), y[:10]] = 1.0
    flags = {"cal": (True, False), "fuse": (False, True), "both": (True, True), "none": (False, False)}
    out = choose_calibrations(flags, {m: scores for m in flags}, y, TRAINED, HELD, base, GAMMAS, [0.0, 1.0])
    assert set(out) == {"cal", "fuse", "both", "none", "fuse_no_fusion", "both_no_fusion"}
    assert (out["cal"].gamma, out["cal"].beta) == (0.1, 0.0)
    assert (out["fuse"].gamma, out["fuse"].beta) == (0.0, 1.0)
    assert out["fuse"].val_seen_top1 == 1.0 and out["fuse"].val_heldout_top1 == 1.0
    assert (out["both"].gamma, out["both"].beta) == (0.1, 0.0)  # equal results: the smaller gamma + beta
    assert (out["both_no_fusion"].gamma, out["both_no_fusion"].beta) == (0.1, 0.0)
    assert (out["fuse_no_fusion"].gamma, out["fuse_no_fusion"].beta) == (0.0, 0.0)
    assert out["fuse_no_fusion"].val_heldout_top1 == 0.0
    assert (out["none"].gamma, out["none"].beta) == (0.0, 0.0) and out["none"].val_heldout_top1 == 0.0
    # without a baseline there is nothing to fuse: no _no_fusion twins, beta stays 0
    out = choose_calibrations(flags, {m: scores for m in flags}, y, TRAINED, HELD, None, GAMMAS, [0.0, 1.0])
    assert set(out) == set(flags) and all(c.beta == 0.0 for c in out.values())
    assert out["fuse"].gamma == 0.0 and out["both"].gamma == 0.1


def test_calibrations_and_validation_scores_round_trip(tmp_path):
    from kgdistill.errors import RunDirError
    from kgdistill.eval.calibration import (Calibration, ValidationScores, calibrations_from_json,
                                            calibrations_to_json)
    from kgdistill.fileio import save_tensors

    cals = {"a": Calibration(0.1, 0.5, 0.75, 0.25), "b": Calibration()}
    as_json = calibrations_to_json(cals)
    assert as_json["a"] == {"gamma": 0.1, "beta": 0.5, "val_seen_top1": 0.75, "val_heldout_top1": 0.25}
    assert calibrations_from_json(as_json)["a"] == cals["a"]
    b = calibrations_from_json(as_json)["b"]
    assert (b.gamma, b.beta) == (0.0, 0.0) and b.val_seen_top1 != b.val_seen_top1  # NaN: never measured
    assert Calibration(0.2, 0.5).apply(_scores([[1.0, 1.0]]), torch.tensor([True, False]),
                                       _scores([[0.0, 2.0]])).tolist() == [pytest.approx([0.8, 2.0])]
    assert Calibration(0.2, 0.5).apply(_scores([[1.0, 1.0]]), torch.tensor([True, False]), None).tolist() == \
        [pytest.approx([0.8, 1.0])]

    vs = ValidationScores(torch.tensor([3, 7]), torch.tensor([True, False, False]),
                          {"kg": _scores([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]), "kd": torch.zeros(2, 3)})
    vs.save(tmp_path / "v.safetensors")
    back = ValidationScores.load(tmp_path / "v.safetensors")
    assert back.val.tolist() == [3, 7] and back.held.tolist() == [True, False, False]
    assert set(back.scores) == {"kg", "kd"} and torch.equal(back.scores["kg"], vs.scores["kg"])
    assert ValidationScores.load(tmp_path / "none.safetensors") is None
    bad = {"val": torch.tensor([3, 7]), "held": torch.tensor([True, False, False])}
    for broken in ({**bad, "val": torch.tensor([3.0, 7.0])}, {**bad, "held": torch.tensor([1, 0, 0])},
                   {"held": bad["held"]}, {"val": bad["val"]}, {**bad, "scores.kg": torch.zeros(2, 4)},
                   {**bad, "scores.kg": torch.zeros(3, 3)}, {**bad, "scores.kg": torch.zeros(2, 3, dtype=torch.long)},
                   {**bad, "val": torch.tensor([[3, 7]])}, {**bad, "held": torch.tensor([[True, False, False]])}):
        save_tensors(broken, tmp_path / "b.safetensors")
        with pytest.raises(RunDirError) as exc:
            ValidationScores.load(tmp_path / "b.safetensors")
        assert str(exc.value) == (f"{tmp_path / 'b.safetensors'}: expected tensors val (int64 [n]), held (bool "
                                  "[candidates]) and scores.<method> (float [n, candidates])")


# two trained patients (truths 0, 1) and two held-out ones (truths 4, 5), worked out by hand:
#   t1: truth 0.9, concept 4 at 0.5 -> wrong once gamma > 0.4      t2: truth 0.9, concept 4 at 0.0 -> right below 0.9
#   h1: truth 0.7, concept 0 at 0.8 -> right once gamma > 0.1      h2: truth 0.0, concept 0 at 0.8 -> right above 0.8
EVEN = _scores([[0.9, 0.0, 0.0, 0.0, 0.5, 0.0], [0.0, 0.9, 0.0, 0.0, 0.0, 0.0],
                [0.8, 0.0, 0.0, 0.0, 0.7, 0.0], [0.8, 0.0, 0.0, 0.0, 0.0, 0.0]])
EVEN_Y = torch.tensor([0, 1, 4, 5])


def test_an_even_trade_is_allowed_and_a_refused_gamma_does_not_end_the_search():
    """gamma 0: seen 1, held-out 0 (sum 1, H 0).  gamma 0.5: seen 1/2, held-out 1/2 (sum 1: an even trade,
    allowed; H 1/2).  A third trained patient (truth 2 at 0.9, concept 5 at 0.6) makes gamma 0.5 a losing trade
    (seen 1/3 + held-out 1/2 < 1), which is skipped, not the end of the search: gamma 0.2 after it still wins."""
    cal = choose_calibration(EVEN, EVEN_Y, TRAINED, HELD, None, [0.0, 0.5], [0.0])
    assert (cal.gamma, cal.beta, cal.val_seen_top1, cal.val_heldout_top1) == (0.5, 0.0, 0.5, 0.5)
    three = torch.cat([EVEN, _scores([[0.0, 0.0, 0.9, 0.0, 0.0, 0.6]])])
    y = torch.cat([EVEN_Y, torch.tensor([2])])
    cal = choose_calibration(three, y, TRAINED, HELD, None, [0.0, 0.5, 0.2], [0.0])
    assert (cal.gamma, cal.val_seen_top1, cal.val_heldout_top1) == (0.2, 1.0, 0.5)


def test_a_group_without_patients_counts_as_zero_and_nothing_moves():
    """Only held-out patients: seen top-1 is 0 (not NaN, not 1); only trained ones: held-out top-1 is 0.
    Without a reason to move, gamma and beta stay 0 even when a baseline and fusion weights are offered."""
    held_only = choose_calibration(EVEN[2:], EVEN_Y[2:], TRAINED, HELD, None, [0.0], [0.0])
    assert held_only.val_seen_top1 == 0.0 and held_only.val_heldout_top1 == 0.0
    trained_only = choose_calibration(EVEN[:2], EVEN_Y[:2], TRAINED, HELD, torch.zeros(2, 6), [0.0, 0.3], [0.0, 1.0])
    assert trained_only.val_heldout_top1 == 0.0 and trained_only.val_seen_top1 == 1.0
    assert (trained_only.gamma, trained_only.beta) == (0.0, 0.0)
    # gamma helps (0.2 exposes h1) and no baseline is given: the fusion weights offered are not used
    cal = choose_calibration(EVEN, EVEN_Y, TRAINED, HELD, None, [0.0, 0.2], [0.0, 1.0])
    assert (cal.gamma, cal.beta) == (0.2, 0.0)
    # even when the only fusion weight offered is 1: without a baseline beta is 0, whatever the grid
    cal = choose_calibration(EVEN, EVEN_Y, TRAINED, HELD, None, [0.0, 0.2], [1.0])
    assert (cal.gamma, cal.beta) == (0.2, 0.0)


def test_a_losing_trade_is_refused_even_when_its_harmonic_mean_is_higher():
    """The rule compares the sums of the two top-1 figures, not their difference.  Five trained patients (truth
    0.9; two have held-out concept 4 at 0.75, so gamma 0.2 loses them) and four held-out ones (h1 right at any
    gamma, h2 truth 0.7 under concept 0's 0.8, right once gamma > 0.1, h3-h4 out of reach).
    gamma 0: seen 1, held-out 1/4 (sum 1.25, H 0.4).  gamma 0.2: seen 3/5, held-out 2/4 (sum 1.1, H 6/11 ~ 0.545):
    a higher H bought with more seen accuracy (0.4) than it gains held out (0.25), so gamma stays 0."""
    trained = [[0.9, 0.0, 0.0, 0.0, 0.75, 0.0], [0.9, 0.0, 0.0, 0.0, 0.75, 0.0], [0.0, 0.0, 0.9, 0.0, 0.0, 0.0],
               [0.0, 0.0, 0.0, 0.9, 0.0, 0.0], [0.0, 0.9, 0.0, 0.0, 0.0, 0.0]]
    held = [[0.0, 0.0, 0.0, 0.0, 0.9, 0.0], [0.8, 0.0, 0.0, 0.0, 0.0, 0.7],
            [0.8, 0.0, 0.0, 0.0, 0.0, 0.0], [0.8, 0.0, 0.0, 0.0, 0.0, 0.0]]
    scores, y = _scores(trained + held), torch.tensor([0, 0, 2, 3, 1, 4, 5, 4, 5])
    cal = choose_calibration(scores, y, TRAINED, HELD, None, [0.0, 0.2], [0.0])
    assert (cal.gamma, cal.val_seen_top1, cal.val_heldout_top1) == (0.0, 1.0, 0.25)
    # the refused setting, worked out above: what a rule on the difference (1.1 >= 1 - 1/4) would have taken
    hit = (scores - 0.2 * TRAINED.float()).argmax(1) == y
    assert hit.tolist() == [False, False, True, True, True, True, True, False, False]


def test_an_exact_tie_keeps_the_first_setting_of_the_grid():
    """Tie rule: settings equal on harmonic mean, seen top-1 and gamma + beta keep the first one searched (betas
    outer, gammas inner).  A baseline of -1 on trained concepts makes beta act as gamma does, so only gamma + beta
    matters: the held-out patient (truth 0.3 under concept 0's 1.0) is right once it passes 0.7, and the trained
    one (truth 2.0) stays right.  gamma + beta 0.5: wrong; 0.75 twice: (gamma 0.5, beta 0.25) first, then
    (0.25, 0.5); 1.0: right but a larger offset."""
    scores = _scores([[2.0, 0.0, 0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.3, 0.0]])
    y = torch.tensor([0, 4])
    base = -TRAINED.float().expand(2, 6)
    cal = choose_calibration(scores, y, TRAINED, HELD, base, [0.25, 0.5], [0.25, 0.5])
    assert (cal.gamma, cal.beta, cal.val_seen_top1, cal.val_heldout_top1) == (0.5, 0.25, 1.0, 1.0)
    cal = choose_calibration(scores, y, TRAINED, HELD, base, [0.5, 0.25], [0.5, 0.25])
    assert (cal.gamma, cal.beta) == (0.25, 0.5)


def test_mrr_chooses_where_no_stand_in_reaches_rank_one():
    """Among thousands of candidates a few stand-ins seldom reach rank 1: by top-1 fusion only costs (a trained
    patient falls to rank 2, the stand-in rises from rank 5 to rank 2), by MRR it pays for itself."""
    scores = _scores([[0.9, 0.5, 0.5, 0.5, 0.1, 0.1],     # trained, truth 0: rank 1, rank 2 with the baseline
                      [0.1, 0.1, 0.9, 0.1, 0.1, 0.1],     # trained, truth 2: rank 1 either way
                      [0.8, 0.6, 0.6, 0.6, 0.1, 0.0]])    # stand-in, truth 4: rank 5, rank 2 with the baseline
    baseline = _scores([[0.0, 0.5, 0.0, 0.0, 0.0, 0.0], [0.0] * 6, [0.0, 0.0, 0.0, 0.0, 0.65, 0.0]])
    y = torch.tensor([0, 2, 4])
    by_top1 = choose_calibration(scores, y, TRAINED, HELD, baseline, [0.0], [0.0, 1.0])
    assert by_top1.beta == 0.0     # top-1: trained 1 -> 0.5, held-out 0 -> 0: a loss
    by_mrr = choose_calibration(scores, y, TRAINED, HELD, baseline, [0.0], [0.0, 1.0], metric="mrr")
    # MRR: trained (1 + 1) / 2 -> (1/2 + 1) / 2 = 0.75, held-out 1/5 -> 1/2; sum 1.2 -> 1.25, H 0.33 -> 0.6
    assert by_mrr.beta == 1.0
    assert by_mrr.val_seen_top1 == 0.5 and by_mrr.val_heldout_top1 == 0.0   # the saved figures stay top-1
    with pytest.raises(ValueError, match="expected top1 or mrr"):
        choose_calibration(scores, y, TRAINED, HELD, baseline, [0.0], [0.0], metric="top10")


def test_a_negative_gamma_gives_crowded_out_seen_concepts_a_bonus():
    """Unseen concepts whose embeddings are as good as the seen ones' can crowd them out: a seen patient's truth
    sits just below a held-out concept.  A negative gamma (a bonus) restores them while the held-out patients,
    far ahead of every trained concept, stay right; a grid of penalties only could not."""
    rows, y = [], []
    for i in range(10):  # trained patients: truth 0.7, a held-out concept 0.75
        r = [0.2, 0.2, 0.2, 0.2, 0.75, 0.1]
        r[i % 4] = 0.7
        rows.append(r)
        y.append(i % 4)
    for i in range(10):  # held-out patients: truth 0.9, the best trained concept 0.6
        r = [0.6, 0.1, 0.1, 0.1, 0.1, 0.1]
        r[4 + i % 2] = 0.9
        rows.append(r)
        y.append(4 + i % 2)
    scores, y = _scores(rows), torch.tensor(y)
    penalties = choose_calibration(scores, y, TRAINED, HELD, None, GAMMAS, [0.0])
    assert penalties.gamma == 0.0 and penalties.val_seen_top1 == 0.0
    bonus = choose_calibration(scores, y, TRAINED, HELD, None, [-0.2, -0.1, *GAMMAS], [0.0])
    assert bonus.gamma == -0.1  # -0.1 suffices (0.8 > 0.75, held-out 0.9 > 0.7); ties keep the smaller move
    assert bonus.val_seen_top1 == 1.0 and bonus.val_heldout_top1 == 1.0
    bumped = (scores - bonus.gamma * TRAINED.float()).argmax(1)
    assert torch.equal(bumped, y)
