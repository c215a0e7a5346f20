"""Loss terms against values worked out by hand on tiny tensors, plus gradients, degenerate batches,
bf16 autocast and the weighted sum."""
from __future__ import annotations

import math

import pytest
import torch

from kgdistill.errors import ConfigError
from kgdistill.losses import LOSSES, DistillBatch, WeightedLoss

SQ2, SQ5 = math.sqrt(2.0), math.sqrt(5.0)


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def batch(z_s, logits_s=None, labels=None, **extra) -> DistillBatch:
    z_s = t(z_s)
    n = z_s.shape[0]
    logits_s = torch.zeros(n, 2) if logits_s is None else t(logits_s)
    labels = torch.full((n,), -1) if labels is None else torch.tensor(labels)
    return DistillBatch(z_s, logits_s, labels, **{k: t(v) for k, v in extra.items()})


def huber(x: float) -> float:  # smooth L1 with beta=1
    return 0.5 * x * x if abs(x) < 1 else abs(x) - 0.5


def close(value: torch.Tensor, expected: float) -> None:
    assert value.dim() == 0 and value.dtype == torch.float32
    assert value.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


# ----------------------------------------------------------------------------------- hand values
def test_ce_masks_unlabelled_and_smooths():
    b = batch([[0, 0]] * 3, logits_s=[[2, 0], [0, 0], [9, -9]], labels=[0, 1, -1])
    # sample 0: -log(e^2 / (e^2 + 1)) = log(1 + e^-2); sample 1: log 2; sample 2 is unlabelled.
    close(LOSSES.build("ce")(b), (math.log(1 + math.exp(-2)) + math.log(2)) / 2)
    # smoothing eps=0.2 over K=2: target (0.9, 0.1); log p0 = -log(1+e^-2), log p1 = -log(1+e^2);
    # sample 1 has uniform logits so stays log 2.
    smoothed = 0.9 * math.log(1 + math.exp(-2)) + 0.1 * math.log(1 + math.exp(2))
    close(LOSSES.build("ce", label_smoothing=0.2)(b), (smoothed + math.log(2)) / 2)


def test_graph_soft_labels_hand_value():
    # K=3, truth 0, sim row (1, 0.5, 0), beta = ln 2: the other two share the smoothing as 2^0.5 : 2^0
    sim = [[1.0, 0.5, 0.0], [0.5, 1.0, 0.5], [0.0, 0.5, 1.0]]
    term = LOSSES.build("graph_soft_labels", smoothing=0.3, beta=math.log(2))
    b = batch([[0, 0]] * 2, logits_s=[[0, 0, 0], [5, 1, 2]], labels=[0, -1], concept_sim=sim)
    # uniform logits: -sum q log(1/3) = log 3 whatever q is; sample 1 is unlabelled.
    close(term(b), math.log(3))
    b = batch([[0, 0]], logits_s=[[math.log(4), 0, 0]], labels=[0], concept_sim=sim)
    # p = (4, 1, 1) / 6; q = (0.7, 0.3 * sqrt2 / (1 + sqrt2), 0.3 / (1 + sqrt2))
    q = [0.7, 0.3 * SQ2 / (1 + SQ2), 0.3 / (1 + SQ2)]
    close(term(b), -(q[0] * math.log(4 / 6) + (q[1] + q[2]) * math.log(1 / 6)))
    # beta = 0 is plain label smoothing over the other concepts: (0.7, 0.15, 0.15), same value here
    close(LOSSES.build("graph_soft_labels", smoothing=0.3, beta=0.0)(b), -(0.7 * math.log(4 / 6) + 0.3 * math.log(1 / 6)))
    # the two other concepts at different graph distances AND predicted differently, so their split shows:
    # p = (4, 2, 1) / 7; q as above (sqrt2 : 1); beta = 0 would split 1 : 1, dropping beta splits 2^0.5 : 2^0 -> e^0.5 : 1
    b = batch([[0, 0]], logits_s=[[math.log(4), math.log(2), 0]], labels=[0], concept_sim=sim)
    close(term(b), -(q[0] * math.log(4 / 7) + q[1] * math.log(2 / 7) + q[2] * math.log(1 / 7)))
    close(LOSSES.build("graph_soft_labels", smoothing=0.3, beta=0.0)(b),
          -(0.7 * math.log(4 / 7) + 0.15 * math.log(2 / 7) + 0.15 * math.log(1 / 7)))
    # a single candidate: nothing to spread to, and log p = 0
    one = batch([[0, 0]], logits_s=[[1.5]], labels=[0], concept_sim=[[1.0]])
    close(term(one), 0.0)


def test_graph_soft_labels_charge_far_mistakes_more():
    """The same wrong guess costs less when it lands on a concept near the truth in the graph; no smoothing is
    plain cross-entropy."""
    sim = [[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]]
    near = batch([[0, 0]], logits_s=[[0, 3, 0]], labels=[0], concept_sim=sim)  # guesses concept 1, near 0
    far = batch([[0, 0]], logits_s=[[0, 0, 3]], labels=[0], concept_sim=sim)   # guesses concept 2, far
    term = LOSSES.build("graph_soft_labels", smoothing=0.2, beta=5.0)
    assert term(near).item() < term(far).item()
    ce = LOSSES.build("ce")
    assert ce(near).item() == pytest.approx(ce(far).item())
    close(LOSSES.build("graph_soft_labels", smoothing=0.0)(near), ce(near).item())


def test_kd_hand_value():
    # T=2: teacher logits (2 log 3, 0)/2 -> p_t = (3/4, 1/4); student (0, 0) -> p_s = (1/2, 1/2).
    # KL = 3/4 log(3/2) + 1/4 log(1/2); x T^2 = 4; sample 2 has student == teacher (KL 0); mean over 2.
    b = batch([[0, 0]] * 2, logits_s=[[0, 0], [1, 5]], logits_teacher=[[2 * math.log(3), 0], [1, 5]])
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    close(LOSSES.build("kd", temperature=2.0)(b), 4 * kl / 2)
    # three samples over two classes (KL summed over the classes of each sample, then the mean over samples)
    b = batch([[0, 0]] * 3, logits_s=[[0, 0], [1, 5], [1, 5]], logits_teacher=[[2 * math.log(3), 0], [1, 5], [1, 5]])
    close(LOSSES.build("kd", temperature=2.0)(b), 4 * kl / 3)


def test_feature_hand_values():
    b = batch([[1, 0], [3, 4]], z_teacher=[[0, 2], [6, 8]])
    # normalised: (1,0) vs (0,1) -> squared errors 1, 1; (3,4)/5 == (6,8)/10 -> 0; mean of 4 elements.
    close(LOSSES.build("feature")(b), 2 / 4)
    # raw: (1-0)^2 + (0-2)^2 + (3-6)^2 + (4-8)^2 = 1 + 4 + 9 + 16 over 4 elements.
    close(LOSSES.build("feature", normalize=False)(b), 30 / 4)
    # 1 - cos: 1 for the orthogonal pair, 0 for the parallel pair.
    close(LOSSES.build("feature", metric="cosine")(b), 0.5)
    # in 3 dimensions the two differ: squared error 2 over 6 elements (1/3) against 1 - cos = 1/2 on average
    b3 = batch([[1, 0, 0], [3, 4, 0]], z_teacher=[[0, 2, 0], [6, 8, 0]])
    close(LOSSES.build("feature")(b3), 2 / 6)
    close(LOSSES.build("feature", metric="cosine")(b3), 0.5)


def test_rkd_distance_hand_value():
    # teacher (0,0),(1,0),(0,1): distances 1, 1, sqrt2, mean (2+sqrt2)/3;
    # student (0,0),(2,0),(0,1): distances 2, 1, sqrt5, mean (3+sqrt5)/3; pairs (01),(02),(12).
    b = batch([[0, 0], [2, 0], [0, 1]], z_teacher=[[0, 0], [1, 0], [0, 1]])
    mt, ms = (2 + SQ2) / 3, (3 + SQ5) / 3
    pairs = [(2 / ms, 1 / mt), (1 / ms, 1 / mt), (SQ5 / ms, SQ2 / mt)]
    close(LOSSES.build("rkd_distance")(b), sum(huber(s - q) for s, q in pairs) / 3)


def test_rkd_angle_hand_value():
    # cos of the angle at each anchor (the other two points' order does not matter, so 3 anchors):
    # teacher (0,0),(1,0),(0,1): anchor 0: 0; anchor 1: (-1,0).(-1,1)/sqrt2 = 1/sqrt2; anchor 2: 1/sqrt2.
    # student (0,0),(2,0),(0,1): anchor 0: 0; anchor 1: (-1,0).(-2,1)/sqrt5 = 2/sqrt5; anchor 2: 1/sqrt5.
    b = batch([[0, 0], [2, 0], [0, 1]], z_teacher=[[0, 0], [1, 0], [0, 1]])
    expected = (huber(0) + huber(2 / SQ5 - 1 / SQ2) + huber(1 / SQ5 - 1 / SQ2)) / 3
    close(LOSSES.build("rkd_angle")(b), expected)


def test_sp_hand_value():
    # G_t = I (rows already unit); G_s = [[1,1],[1,2]] -> rows (1,1)/sqrt2, (1,2)/sqrt5; / B^2 = 4.
    b = batch([[1, 0], [1, 1]], z_teacher=[[1, 0], [0, 1]])
    sq = (1 / SQ2 - 1) ** 2 + (1 / SQ2) ** 2 + (1 / SQ5) ** 2 + (2 / SQ5 - 1) ** 2
    close(LOSSES.build("sp")(b), sq / 4)
    # the same samples in 3 dimensions: the Gram matrices and B^2 = 4 (the batch, not the width) are unchanged
    b3 = batch([[1, 0, 0], [1, 1, 0]], z_teacher=[[1, 0, 0], [0, 1, 0]])
    close(LOSSES.build("sp")(b3), sq / 4)


@pytest.mark.parametrize("name", ["rkd_distance", "rkd_angle"])
def test_rkd_ignores_where_the_points_are(name):
    """Relational terms read distances and angles only: moving every student (or teacher) point by the same
    offset leaves the value as it was (the hand-value batches above all hold the origin, which hides a sum of
    points taken for their difference)."""
    b = batch([[0, 0], [2, 0], [0, 1]], z_teacher=[[0, 0], [1, 0], [0, 1]])
    moved = batch([[3, -1], [5, -1], [3, 0]], z_teacher=[[1, 2], [2, 2], [1, 3]])
    close(LOSSES.build(name)(moved), LOSSES.build(name)(b).item())


def test_contrastive_hand_value():
    # student (1,0),(0,1); teacher (1,0),(1,1)/sqrt2; cos = [[1, 1/sqrt2], [0, 1/sqrt2]]; / 0.5:
    # logits [[2, sqrt2], [0, sqrt2]], targets on the diagonal.
    b = batch([[1, 0], [0, 1]], z_teacher=[[1, 0], [1, 1]])
    s2t = ((math.log(math.exp(2) + math.exp(SQ2)) - 2) + (math.log(1 + math.exp(SQ2)) - SQ2)) / 2
    # transposed [[2, 0], [sqrt2, sqrt2]]: row 0 -> log(e^2 + 1) - 2; row 1 -> log 2.
    t2s = ((math.log(math.exp(2) + 1) - 2) + math.log(2)) / 2
    close(LOSSES.build("contrastive", temperature=0.5, symmetric=False)(b), s2t)
    close(LOSSES.build("contrastive", temperature=0.5)(b), (s2t + t2s) / 2)


def _anchor_batch() -> DistillBatch:
    # C = (1,0), (0,1). sample 0 labelled 0, z=(1,1): 1 - 1/sqrt2, weight 1.
    # sample 1 unlabelled, teacher (0, log 3) -> concept 1 with p=3/4, z=(3,0): 1 - 0 = 1.
    # sample 2 unlabelled, teacher (log 4, 0) -> concept 0 with p=4/5, z=(1,0): 0.
    return batch(
        [[1, 1], [3, 0], [1, 0]], labels=[0, -1, -1],
        logits_teacher=[[0, 0], [0, math.log(3)], [math.log(4), 0]], concept_emb=[[1, 0], [0, 1]],
    )


def test_anchor_hand_values():
    b = _anchor_batch()
    close(LOSSES.build("anchor")(b), ((1 - 1 / SQ2) + 0.75 * 1 + 0.8 * 0) / (1 + 0.75 + 0.8))
    # min_confidence 0.78 drops sample 1 (p=0.75) and keeps sample 2 (p=0.8).
    close(LOSSES.build("anchor", min_confidence=0.78)(b), (1 - 1 / SQ2) / 1.8)
    close(LOSSES.build("anchor", pseudo_labels=False)(b), 1 - 1 / SQ2)


def test_anchor_keeps_a_pseudo_label_exactly_at_min_confidence():
    """The threshold is inclusive: a teacher at exactly min_confidence (logits (0, 0): p = 1/2 exactly) still
    anchors its sample, with weight 1/2.  Sample 0 labelled 0 at z = (1, 1): 1 - 1/sqrt2; sample 1 unlabelled,
    argmax concept 0 (the first of a tie), z = (0, 1): 1 - 0."""
    b = batch([[1, 1], [0, 1]], labels=[0, -1], logits_teacher=[[5, 0], [0, 0]], concept_emb=[[1, 0], [0, 1]])
    close(LOSSES.build("anchor", min_confidence=0.5)(b), ((1 - 1 / SQ2) + 0.5 * 1) / 1.5)
    close(LOSSES.build("anchor", min_confidence=0.5 + 1e-6)(b), 1 - 1 / SQ2)
    # pseudo labels only, total weight 1/2: still a weighted mean (1 - 0), not the sum over a total of 1
    alone = batch([[0, 1]], labels=[-1], logits_teacher=[[0, 0]], concept_emb=[[1, 0], [0, 1]])
    close(LOSSES.build("anchor", min_confidence=0.5)(alone), 1.0)


def _graph_batch(**drop) -> DistillBatch:
    # assignments: labels 0, 1, then teacher argmax 0 for the unlabelled sample -> (0, 1, 0).
    b = batch(
        [[1, 0], [1, 0], [0, 1]], labels=[0, 1, -1], z_teacher=[[1, 0], [0, 1], [1, 1]],
        logits_teacher=[[0, 0], [0, 0], [1, 0]], concept_sim=[[1, 0.5], [0.5, 1]],
    )
    for name in drop:
        setattr(b, name, None)
    return b


def test_graph_relational_hand_values():
    # pairs (01), (02), (12): S_s = 1, 0, 0; S_t = 0, 1/sqrt2, 1/sqrt2; S_g = 0.5, 1, 0.5.
    s_s, s_t, s_g = (1, 0, 0), (0, 1 / SQ2, 1 / SQ2), (0.5, 1, 0.5)

    def expected(alpha: float, pairs=range(3)) -> float:
        return sum((s_s[p] - (1 - alpha) * s_t[p] - alpha * s_g[p]) ** 2 for p in pairs) / len(pairs)

    close(LOSSES.build("graph_relational")(_graph_batch()), expected(0.5))
    close(LOSSES.build("graph_relational", alpha=0.0)(_graph_batch(concept_sim=True)), expected(0.0))
    close(LOSSES.build("graph_relational", alpha=1.0)(_graph_batch(z_teacher=True)), expected(1.0))
    # without teacher logits the unlabelled sample 2 has no concept: only pair (01) remains.
    close(LOSSES.build("graph_relational")(_graph_batch(logits_teacher=True)), expected(0.5, [0]))
    close(LOSSES.build("graph_relational", use_teacher_assignment=False)(_graph_batch()), expected(0.5, [0]))


# ------------------------------------------------------------------------------ generic properties
ALL_TERMS = LOSSES.names()


def random_batch(n: int = 5, d: int = 4, k: int = 3, *, grad: bool = False, seed: int = 0) -> DistillBatch:
    g = torch.Generator().manual_seed(seed)
    concept_sim = torch.rand(k, k, generator=g)
    concept_sim = ((concept_sim + concept_sim.T) / 2).fill_diagonal_(1.0)
    return DistillBatch(
        z_student=torch.randn(n, d, generator=g).requires_grad_(grad),
        logits_student=torch.randn(n, k, generator=g).requires_grad_(grad),
        labels=torch.tensor([0, -1, 2, -1, 1, -1][:n]),
        z_teacher=torch.randn(n, d, generator=g),
        logits_teacher=torch.randn(n, k, generator=g),
        concept_emb=torch.randn(k, d, generator=g).requires_grad_(grad),
        concept_sim=concept_sim,
    )


@pytest.mark.parametrize("name", ALL_TERMS)
def test_term_is_differentiable(name):
    b = random_batch(grad=True)
    b.z_student.data[1] = b.z_student.data[0]  # coincident points: distances/angles at zero
    value = LOSSES.build(name)(b)
    assert value.dim() == 0 and torch.isfinite(value)
    value.backward()
    grads = [x.grad for x in (b.z_student, b.logits_student, b.concept_emb) if x.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize(
    "name, params",
    [("kd", {}), ("feature", {}), ("feature", {"metric": "cosine"}), ("rkd_distance", {}),
     ("rkd_angle", {}), ("sp", {}), ("graph_relational", {"alpha": 0.0})],
)
def test_zero_when_student_equals_teacher(name, params):
    b = random_batch()
    b.z_teacher, b.logits_teacher = b.z_student.clone(), b.logits_student.clone()
    assert LOSSES.build(name, **params)(b).abs().item() < 1e-6


@pytest.mark.parametrize("name, params", [("ce", {}), ("anchor", {"pseudo_labels": False})])
def test_zero_without_labels(name, params):
    b = random_batch(grad=True)
    b.labels = torch.full_like(b.labels, -1)
    value = LOSSES.build(name, **params)(b)
    assert value.item() == 0.0
    value.backward()  # still a valid graph node
    assert torch.isfinite(b.z_student.grad if b.z_student.grad is not None else b.logits_student.grad).all()


def test_degenerate_batch_sizes():
    for name in ALL_TERMS:
        value = LOSSES.build(name)(random_batch(n=1))
        assert torch.isfinite(value), name


@pytest.mark.parametrize("name", ["kd", "contrastive"])
@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), "4"])
def test_bad_temperature(name, temperature):
    with pytest.raises(ConfigError, match=f"{name}.*temperature"):
        LOSSES.build(name, temperature=temperature)


@pytest.mark.parametrize(
    "name, params",
    [("ce", {"label_smoothing": 1.0}), ("feature", {"metric": "l1"}), ("anchor", {"min_confidence": 2}),
     ("graph_relational", {"alpha": 1.5}), ("kd", {"temp": 2.0}), ("graph_soft_labels", {"beta": -1.0}),
     ("graph_soft_labels", {"smoothing": 1.0})],
)
def test_bad_params_name_the_term(name, params):
    with pytest.raises(ConfigError, match=repr(name)):
        LOSSES.build(name, **params)


@pytest.mark.parametrize("name, params, message", [
    ("contrastive", {"temperature": 0.0}, "loss 'contrastive': temperature must be in (0.0, inf], got 0.0"),
    ("kd", {"temperature": "4"}, "loss 'kd': temperature must be a number in (0.0, inf], got '4'"),
    ("graph_soft_labels", {"smoothing": 1.0}, "loss 'graph_soft_labels': smoothing must be in [0.0, 1.0), got 1.0"),
    ("graph_soft_labels", {"beta": -1.0}, "loss 'graph_soft_labels': beta must be in [0.0, inf], got -1.0"),
    ("feature", {"metric": "l1"}, "loss 'feature': metric must be one of mse, cosine, got 'l1'"),
    ("ce", {"label_smoothing": 1.0}, "loss 'ce': label_smoothing must be in [0.0, 1.0), got 1.0"),
    ("graph_relational", {"alpha": 1.5}, "loss 'graph_relational': alpha must be in [0.0, 1.0], got 1.5"),
    ("anchor", {"min_confidence": 2}, "loss 'anchor': min_confidence must be in [0.0, 1.0], got 2"),
])
def test_bad_params_say_which_setting_and_what_it_must_be(name, params, message):
    """The whole message: the term, the setting's name, the interval (open or closed ends) and the value."""
    with pytest.raises(ConfigError) as exc:
        LOSSES.build(name, **params)
    assert str(exc.value) == message


@pytest.mark.parametrize("name", ALL_TERMS)
def test_bf16_autocast_matches_float32(name):
    term = LOSSES.build(name)
    b = random_batch(n=6, d=8, k=4)
    lowp = DistillBatch(**{k: (v.bfloat16() if v.is_floating_point() else v) for k, v in vars(b).items()})
    rounded = DistillBatch(**{k: (v.float() if v.is_floating_point() else v) for k, v in vars(lowp).items()})
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got_lowp, got_f32_inputs = term(lowp), term(b)
    # bf16 inputs: computed in float32, exactly as float32 on the same rounded values.
    assert got_lowp.dtype == torch.float32 and torch.isfinite(got_lowp)
    torch.testing.assert_close(got_lowp, term(rounded), rtol=1e-5, atol=1e-6)
    # float32 inputs inside autocast: no matmul silently drops to bf16.
    torch.testing.assert_close(got_f32_inputs, term(b), rtol=1e-5, atol=1e-6)
    # and close to the float32 value on the unrounded inputs.
    torch.testing.assert_close(got_lowp, term(b), rtol=5e-2, atol=5e-3)


# ---------------------------------------------------------------------------------- weighted sum
def test_weighted_sum_is_exact():
    b = random_batch()
    loss = WeightedLoss([{"name": "ce", "weight": 0.5}, {"name": "kd", "weight": 2, "temperature": 2.0},
                         {"name": "graph_relational", "alpha": 0.25}])
    total, parts = loss(b)
    ce, kd = LOSSES.build("ce")(b), LOSSES.build("kd", temperature=2.0)(b)
    gr = LOSSES.build("graph_relational", alpha=0.25)(b)
    assert set(parts) == {"ce", "kd", "graph_relational"}
    torch.testing.assert_close(parts["ce"], ce)
    torch.testing.assert_close(parts["kd"], kd)
    torch.testing.assert_close(parts["graph_relational"], gr)
    torch.testing.assert_close(total, 0.5 * ce + 2.0 * kd + 1.0 * gr)
    assert not any(p.requires_grad for p in parts.values())


def test_weighted_gradients_and_zero_weight():
    b = random_batch(grad=True)
    total, parts = WeightedLoss([{"name": "ce"}, {"name": "anchor", "weight": 0.0}])(b)
    total.backward()
    assert torch.isfinite(b.logits_student.grad).all()
    assert b.concept_emb.grad is None or not b.concept_emb.grad.any()  # weight 0 contributes nothing
    assert parts["anchor"] > 0


def test_weighted_required_fields():
    assert WeightedLoss([{"name": "ce"}]).required_fields == frozenset()
    loss = WeightedLoss([{"name": "kd"}, {"name": "anchor"}, {"name": "graph_relational", "alpha": 1.0}])
    assert loss.required_fields == {"logits_teacher", "concept_emb", "concept_sim"}
    assert WeightedLoss([{"name": "graph_relational", "alpha": 0}]).required_fields == {"z_teacher"}


def test_unknown_loss_lists_known_names():
    with pytest.raises(ConfigError) as err:
        WeightedLoss([{"name": "kld"}])
    assert "kld" in str(err.value) and all(n in str(err.value) for n in ALL_TERMS)


@pytest.mark.parametrize(
    "specs, match",
    [([], "no loss terms"), ([{"weight": 1.0}], "'name'"), ([{"name": "kd", "weight": -1.0}], "'kd'.*weight"),
     ([{"name": "kd", "weight": float("inf")}], "weight"), ([{"name": "kd", "weight": True}], "weight"),
     ([{"name": "kd"}, {"name": "KD"}], "twice"), ([{"name": "sp", "beta": 1}], "'sp'")],
)
def test_weighted_bad_specs(specs, match):
    with pytest.raises(ConfigError, match=match):
        WeightedLoss(specs)


def test_weighted_messages_and_specs_as_mappings():
    """No term at all names every registered one, comma-separated; a bad weight names its term and the setting.
    from_specs takes plain mappings as they are (and config parts, elsewhere)."""
    with pytest.raises(ConfigError) as exc:
        WeightedLoss([])
    assert str(exc.value) == "no loss terms given; expected some of: " + ", ".join(sorted(ALL_TERMS))
    with pytest.raises(ConfigError) as exc:
        WeightedLoss([{"name": "kd", "weight": -1.0}])
    assert str(exc.value) == "loss 'kd': weight must be in [0.0, inf], got -1.0"
    b = random_batch()
    total, parts = WeightedLoss.from_specs([{"name": "ce", "weight": 2.0}])(b)
    torch.testing.assert_close(total, 2.0 * LOSSES.build("ce")(b))


def test_missing_field_names_term_and_field():
    b = random_batch()
    b.logits_teacher = None
    with pytest.raises(ConfigError, match="'kd'.*'logits_teacher'"):
        WeightedLoss([{"name": "ce"}, {"name": "kd"}])(b)
    with pytest.raises(ConfigError) as exc:
        LOSSES.build("anchor")(b)
    assert str(exc.value) == ("loss 'anchor' needs batch field 'logits_teacher', which is None (put the teacher/graph "
                              "in the loop or drop this term)")
    LOSSES.build("anchor", pseudo_labels=False)(b)  # no teacher needed without pseudo labels


# the defaults a configuration gets when it names a term without parameters
DEFAULTS = [("ce", {"label_smoothing": 0.0}, {"label_smoothing": 0.3}),
            ("kd", {"temperature": 4.0}, {"temperature": 2.0}),
            ("contrastive", {"temperature": 0.1, "symmetric": True}, {"temperature": 0.5}),
            ("contrastive", {"temperature": 0.1, "symmetric": True}, {"symmetric": False}),
            ("feature", {"metric": "mse", "normalize": True}, {"normalize": False}),
            ("anchor", {"pseudo_labels": True, "min_confidence": 0.0}, {"min_confidence": 0.9}),
            ("graph_relational", {"alpha": 0.5, "use_teacher_assignment": True}, {"alpha": 0.1}),
            ("graph_relational", {"alpha": 0.5, "use_teacher_assignment": True}, {"use_teacher_assignment": False}),
            ("graph_soft_labels", {"smoothing": 0.2, "beta": 10.0}, {"beta": 5.0}),
            ("graph_soft_labels", {"smoothing": 0.2, "beta": 10.0}, {"smoothing": 0.1})]


@pytest.mark.parametrize("name, defaults, other", DEFAULTS)
def test_defaults_are_the_documented_ones(name, defaults, other):
    """A term built without parameters scores a batch (labelled and unlabelled samples) exactly as one built with
    the documented defaults, and changing one of them changes the value (so the batch can tell)."""
    b = random_batch()
    value = LOSSES.build(name)(b).item()
    assert value == LOSSES.build(name, **defaults)(b).item()
    assert value != pytest.approx(LOSSES.build(name, **{**defaults, **other})(b).item(), rel=1e-4)
