"""The training-free text baselines (set matching, likelihood over the links), by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kgdistill.errors import ConfigError
from kgdistill.eval.text_baseline import (TEXT_BASELINES, ConceptLinks, LinkLikelihood, build_text_baseline,
                                          concept_text_means)
from kgdistill.graph.kg import GraphBuilder

# four findings in a 2-d text space, at 0, 90, 180 and 45 degrees
FINDINGS = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]])


def links() -> ConceptLinks:
    # concept 0 links to findings 0 (weight 1) and 1 (weight 3); concept 1 links to finding 2 only
    return ConceptLinks(FINDINGS[[0, 1, 2]], torch.tensor([0, 0, 1]), torch.tensor([1.0, 3.0, 1.0]), 2)


def test_set_match_by_hand():
    table = torch.tensor([[2.0, 0.0], [1.0, 1.0]])    # sentence 0 along finding 0; sentence 1 at 45 degrees
    x = torch.tensor([[0, 1], [1, -1]])               # note 0: both sentences; note 1: sentence 1 and padding
    s = links().set_match(x, table)
    r = 1 / math.sqrt(2)
    # note 0, concept 0: sentences' best findings 1 and r (mean (1 + r)/2); findings' best sentences 1 and r,
    # weighted 1:3 -> (1 + 3r)/4.  Concept 1: best cosines -1 and -r -> (-1 - r)/2, finding 2's best is -r.
    # note 1 (one sentence at 45 degrees): concept 0: r + r; concept 1: -r + -r
    expected = torch.tensor([[(1 + r) / 2 + (1 + 3 * r) / 4, (-1 - r) / 2 - r], [2 * r, -2 * r]])
    assert torch.allclose(s, expected, atol=1e-6)


def test_batches_and_padding_do_not_change_scores():
    rng = torch.Generator().manual_seed(0)
    table = torch.randn(30, 2, generator=rng)
    x = torch.randint(0, 30, (9, 5), generator=rng)
    x[::2, 3:] = -1
    full = links().set_match(x, table)
    assert torch.allclose(full, links().set_match(x, table, max_elements=2 * 5 * 3), atol=1e-6)  # 2 samples a batch
    assert torch.allclose(full, links().set_match(x, table, max_elements=1), atol=1e-6)          # 1 sample a batch
    assert torch.allclose(full[:1], links().set_match(x[:1, :3], table), atol=1e-6)  # padding is ignored


def test_links_from_a_graph_and_back_through_tensors():
    b = GraphBuilder("g")
    for n in ("D1", "D2", "P1", "P2"):
        b.add_node(n, n)
    b.add_edge("D1", "P1", "has_phenotype", weight=0.5)
    b.add_edge("D1", "P2", "has_phenotype", weight=1.0)
    b.add_edge("D2", "P1", "has_phenotype", weight=0.0)          # no evidence: left out
    kg = b.build()
    name_emb = torch.eye(4)
    cand = np.array([kg.index["D1"], kg.index["D2"]])
    ln = ConceptLinks.from_graph(kg, cand, name_emb)
    assert ln.concept.tolist() == [0, 0, 1]                     # D2 links to nothing: its own name
    assert ln.weight.tolist() == [0.5, 1.0, 1.0] and (ln.num_concepts, ln.dim) == (2, 4)
    back = ConceptLinks.from_tensors(ln.tensors())
    x, table = torch.tensor([[0, 1]]), torch.randn(2, 4)
    assert torch.equal(back.set_match(x, table), ln.set_match(x, table))
    # the same weighted links as the mean baseline reads (for weights >= 0)
    mean = torch.zeros(2, 4).index_add_(0, ln.concept, ln.weight.unsqueeze(1) * ln.emb)
    assert torch.allclose(torch.nn.functional.normalize(mean, dim=-1), concept_text_means(kg, cand, name_emb))
    # built by name, each baseline is the one above: set_match scores as ConceptLinks.set_match, mean as the
    # mean item embedding against those concept means (D1: (0, 0, 0.5, 1) / |.|, D2: its own name (0, 1, 0, 0))
    assert torch.equal(build_text_baseline("set_match", kg, cand, name_emb).scores(x, table), ln.set_match(x, table))
    mb = build_text_baseline("mean", kg, cand, name_emb)
    assert torch.allclose(mb.concepts, torch.tensor([[0, 0, 0.5, 1.0], [0, 1.0, 0, 0]]) / torch.tensor([[1.25 ** 0.5],
                                                                                                       [1.0]]))
    q = torch.tensor([[0, -1], [1, 0]])
    items = torch.eye(4)[[kg.index["P2"], kg.index["D2"]]]  # item 0: P2's vector, item 1: D2's name
    expected = torch.nn.functional.normalize(torch.stack([items[0], items.mean(0)]), dim=-1) @ mb.concepts.T
    assert torch.allclose(mb.scores(q, items), expected)


def likelihood_graph():
    """D1 names P1 (weight 0.5) and P2 (weight 1); D2 names P3; P1 is_a P3."""
    b = GraphBuilder("g")
    for n in ("D1", "D2", "P1", "P2", "P3"):
        b.add_node(n, n)
    b.add_edge("D1", "P1", "has_phenotype", weight=0.5)
    b.add_edge("D1", "P2", "has_phenotype", weight=1.0)
    b.add_edge("D2", "P3", "has_phenotype", weight=1.0)
    b.add_edge("P1", "P3", "is_a")
    kg = b.build()
    return kg, np.array([kg.index["D1"], kg.index["D2"]]), torch.eye(5)[[kg.index[n] for n in kg.ids]]


def test_likelihood_by_hand():
    kg, cand, name_emb = likelihood_graph()
    lk = LinkLikelihood.from_graph(kg, cand, name_emb, temperature=0.5, floor=0.01, parent_share=0.2)
    # vocabulary: P1, P2, P3 (the nodes that are not candidates).  D1: P1 keeps 0.8 of its 0.5 and gives 0.1 to
    # its parent P3; P2 has no parent: over a total of 1.5 -> P1 0.4/1.5, P2 1/1.5, P3 0.1/1.5.  D2: P3 alone.
    dense = lk.links.to_dense()
    assert torch.allclose(dense, torch.tensor([[0.4 / 1.5, 1 / 1.5, 0.1 / 1.5], [0.0, 0.0, 1.0]]))
    assert lk.emb.shape == (3, 5) and lk.num_concepts == 2
    table = name_emb[[kg.index["P1"], kg.index["P2"]]]   # sentence 0 names P1, sentence 1 names P2
    x = torch.tensor([[0, 1], [1, -1]])
    s = lk.scores(x, table)
    e2 = math.exp(2.0)                                    # cos 1 / temperature 0.5, against cos 0 for the others
    q0 = torch.tensor([e2, 1.0, 1.0]) / (e2 + 2)          # sentence 0 over P1, P2, P3
    q1 = torch.tensor([1.0, e2, 1.0]) / (e2 + 2)
    lik = lambda q: torch.log(0.01 + dense @ q)          # noqa: E731  [D1, D2]
    expected = torch.stack([(lik(q0) + lik(q1)) / 2, lik(q1)])
    assert torch.allclose(s, expected, atol=1e-6)
    assert s[0].argmax() == 0 and s[1].argmax() == 0      # P1 and P2 are D1's findings


def test_likelihood_batches_padding_and_round_trip():
    kg, cand, name_emb = likelihood_graph()
    lk = LinkLikelihood.from_graph(kg, cand, name_emb)
    rng = torch.Generator().manual_seed(0)
    table = torch.randn(20, 5, generator=rng)
    x = torch.randint(0, 20, (7, 4), generator=rng)
    x[1::2, 2:] = -1
    full = lk.scores(x, table)
    assert torch.allclose(full, lk.scores(x, table, max_elements=1), atol=1e-6)
    assert torch.allclose(full[:1], lk.scores(x[:1, :4], table), atol=1e-6)
    assert torch.allclose(full[1:2], lk.scores(x[1:2, :2], table), atol=1e-6)   # padding is ignored
    back = TEXT_BASELINES.get("likelihood").from_tensors(lk.tensors())
    assert torch.equal(back.scores(x, table), full)


@pytest.mark.parametrize("params, needle", [
    ({"temprature": 0.1}, "eval.text_baseline.temprature: unknown key; text baseline 'likelihood' takes: "
                          "temperature, floor, parent_share"),
    ({"floor": 0.0}, "eval.text_baseline.floor: 0.0; expected a number > 0"),
    ({"parent_share": 1.5}, "eval.text_baseline.parent_share: 1.5; expected a number in [0, 1]"),
    ({"floor": "true"}, "eval.text_baseline.floor: True; expected a number"),
])
def test_bad_baseline_settings_fail_at_config_load(params, needle):
    from kgdistill.config import load_config, packaged_config

    sets = ["eval.text_baseline=likelihood"] + [f"eval.text_baseline.{k}={v}" for k, v in params.items()]
    with pytest.raises(ConfigError) as exc:
        load_config(packaged_config("quick"), sets)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_an_unknown_baseline_fails_at_config_load_naming_the_registered_ones():
    from kgdistill.config import load_config, packaged_config

    with pytest.raises(ConfigError, match=r"eval\.text_baseline: unknown text baseline 'bayes'; expected one of: "
                                          r"likelihood, mean, phenomizer, set_match"):
        load_config(packaged_config("quick"), ["eval.text_baseline=bayes"])
    with pytest.raises(ConfigError, match=r"eval\.text_baseline\.floor: unknown key; text baseline 'set_match' "
                                          r"takes: none"):
        load_config(packaged_config("quick"), ["eval.text_baseline=set_match", "eval.text_baseline.floor=0.1"])


def test_a_gnn_key_of_another_gnn_fails_at_load_naming_it():
    """Each GNN's own keys are checked against it: ``heads`` is GAT's (every GNN's config carried it before, so on
    another GNN it is dropped with a warning); a typo names the keys ``gnn:`` takes."""
    from kgdistill.config import load_config, packaged_config

    assert load_config(packaged_config("quick"), ["gnn.name=gat", "gnn.heads=4"]).gnn.build_params()["heads"] == 4
    with pytest.warns(FutureWarning, match=r"gnn.heads dropped \(only gat reads it\)"):
        assert "heads" not in load_config(packaged_config("quick"), ["gnn.heads=4"]).gnn.build_params()
    with pytest.raises(ConfigError, match=r"gnn\.hiden: unknown key; gnn 'gcn' takes: dropout, eval_chunk, hidden, "
                                          r"input_dim, layers, name, num_neighbors, self_feature_dropout"):
        load_config(packaged_config("quick"), ["gnn.hiden=4"])
    with pytest.raises(ConfigError, match=r"gnn\.negative_slope: unknown key; gnn 'gat' takes: dropout, eval_chunk, "
                                          r"heads, hidden, "):
        load_config(packaged_config("quick"), ["gnn.name=gat", "gnn.negative_slope=0.1"])


def test_old_baseline_keys_still_work_with_a_warning():
    """``eval.prototype`` / ``eval.prototype_params`` (before the rename) load as ``eval.text_baseline``."""
    from kgdistill.config import load_config, packaged_config

    with pytest.warns(FutureWarning, match="eval.prototype -> eval.text_baseline"):
        cfg = load_config(packaged_config("quick"), ["eval.prototype=likelihood", "eval.prototype_params.floor=0.01"])
    assert cfg.eval.text_baseline.name == "likelihood" and cfg.eval.text_baseline.params == {"floor": 0.01}


def test_the_model_reads_each_saved_baseline_and_refuses_a_damaged_one(tmp_path):
    """Runs saved before the ``text_baseline.*`` key (``prototype.*``, ``concept_links.*``,
    ``prototype_concepts``) read as they ran."""
    from types import SimpleNamespace

    from kgdistill.errors import RunDirError
    from kgdistill.eval.text_baseline import MeanTextBaseline
    from kgdistill.model import _saved_text_baseline

    def read(kind: str, extra: dict, candidates=("D1", "D2")):
        cfg = SimpleNamespace(eval=SimpleNamespace(text_baseline=SimpleNamespace(name=kind)))
        return _saved_text_baseline(cfg, extra, len(candidates), tmp_path / "concepts.safetensors")

    kg, cand, name_emb = likelihood_graph()
    lk = LinkLikelihood.from_graph(kg, cand, name_emb)
    for prefix in ("text_baseline.", "prototype."):
        got = read("likelihood", {f"{prefix}{k}": v for k, v in lk.tensors().items()})
        assert isinstance(got, LinkLikelihood) and torch.equal(got.links.to_dense(), lk.links.to_dense())
    old_set_match = {f"concept_links.{k}": v for k, v in links().tensors().items()} | {"prototype_concepts": torch.eye(2)}
    assert isinstance(read("set_match", old_set_match), ConceptLinks)
    assert isinstance(read("mean", {"prototype_concepts": torch.eye(2)}), MeanTextBaseline)
    assert read("mean", {"seen": torch.ones(2)}) is None          # not a text student
    saved = {f"text_baseline.{k}": v for k, v in lk.tensors().items()}
    for damaged in ({k: v for k, v in saved.items() if k != "text_baseline.floor"},          # a tensor missing
                    saved | {"text_baseline.temperature": torch.tensor(0.0)},                # a setting out of range
                    saved | {"text_baseline.links_value": -saved["text_baseline.links_value"]},  # not probabilities
                    saved | {"text_baseline.links_index": saved["text_baseline.links_index"] * 7},  # beyond the terms
                    saved | {"text_baseline.floor": torch.tensor(0.0)}):
        with pytest.raises(RunDirError, match="saved likelihood text baseline has missing or invalid tensors"):
            read("likelihood", damaged)
    with pytest.raises(RunDirError, match="text baseline scores 2 concepts, the run has 3 candidates"):
        read("likelihood", saved, candidates=("D1", "D2", "D3"))


def test_nearest_centroid_scores_by_hand():
    """Negative distance to each concept's centroid of labelled samples; a concept without samples sits below
    every scored one (the lowest score minus 1), so it ranks last."""
    from kgdistill.eval.text_baseline import centroid_scores

    x_train = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])  # centroids: concept 0 (1, 0), concept 1 (0, 4)
    y_train = torch.tensor([0, 0, 1])
    x_eval = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    s = centroid_scores(x_train, y_train, x_eval, 3)
    floor = -math.sqrt(17) - 1
    assert s.tolist() == [pytest.approx([0.0, -math.sqrt(17), floor]), pytest.approx([-math.sqrt(2), -3.0, floor])]
    # samples of any shape are flattened; no labelled sample at all: every concept at -1
    s3 = centroid_scores(x_train.reshape(3, 1, 2), y_train, x_eval.reshape(2, 2, 1), 3)
    assert torch.allclose(s3, s)
    none = centroid_scores(x_train[:0], y_train[:0], x_eval, 3)
    assert none.tolist() == [[-1.0, -1.0, -1.0], [-1.0, -1.0, -1.0]]


def test_mean_item_embedding_by_hand():
    from kgdistill.eval.text_baseline import mean_item_embedding

    table = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    x = torch.tensor([[0, 1, -1], [2, -1, -1], [-1, -1, -1]])  # -1: padding, not an item
    out = mean_item_embedding(x, table)
    h = 1 / math.sqrt(2)
    assert out.tolist() == [pytest.approx([h, h]), pytest.approx([0.6, 0.8]), [0.0, 0.0]]


def test_likelihood_note_is_the_mean_of_its_sentences():
    """Each distinct sentence is scored once: a sentence repeated within a note or shared between notes counts
    at every place it stands, and a note scores the mean of its sentences' own scores."""
    kg, cand, name_emb = likelihood_graph()
    lk = LinkLikelihood.from_graph(kg, cand, name_emb)
    table = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
    x = torch.tensor([[3, 3, 1, -1], [1, 5, -1, -1], [-1, -1, -1, -1]])
    one = lk.scores(torch.arange(6).unsqueeze(1), table)         # each sentence alone
    s = lk.scores(x, table)
    assert torch.allclose(s[0], (2 * one[3] + one[1]) / 3, atol=1e-6)
    assert torch.allclose(s[1], (one[1] + one[5]) / 2, atol=1e-6)
    assert torch.equal(s[2], torch.zeros(2))                     # no sentence: no evidence


def test_likelihood_defaults_and_parent_share_at_its_bounds():
    """Defaults: temperature 0.05, floor 1e-4, parent_share 0.3 (D1: P1 keeps 0.7 of its 0.5, P3 gets 0.15, over
    1.5).  parent_share 0 moves nothing to the parent; 1 moves all of P1's weight to P3 (both ends allowed)."""
    kg, cand, name_emb = likelihood_graph()
    lk = LinkLikelihood.from_graph(kg, cand, name_emb)
    assert (lk.temperature, lk.floor) == (0.05, 1e-4)
    assert torch.allclose(lk.links.to_dense(), torch.tensor([[0.35 / 1.5, 1 / 1.5, 0.15 / 1.5], [0.0, 0.0, 1.0]]))
    none = LinkLikelihood.from_graph(kg, cand, name_emb, parent_share=0)
    assert torch.allclose(none.links.to_dense(), torch.tensor([[0.5 / 1.5, 1 / 1.5, 0.0], [0.0, 0.0, 1.0]]))
    every = LinkLikelihood.from_graph(kg, cand, name_emb, parent_share=1)
    assert torch.allclose(every.links.to_dense(), torch.tensor([[0.0, 1 / 1.5, 0.5 / 1.5], [0.0, 0.0, 1.0]]))
    # built by name with its settings: the same baseline as from_graph with them
    built = build_text_baseline("likelihood", kg, cand, name_emb, temperature=0.5, floor=0.01, parent_share=0)
    assert (built.temperature, built.floor) == (0.5, 0.01) and torch.equal(built.links.to_dense(),
                                                                           none.links.to_dense())
    for key, value, expected in (("temperature", 0.0, "a number > 0"), ("floor", -1e-9, "a number > 0"),
                                 ("parent_share", -1e-9, "a number in [0, 1]"),
                                 ("parent_share", 1 + 1e-9, "a number in [0, 1]")):
        with pytest.raises(ConfigError) as exc:
            LinkLikelihood.from_graph(kg, cand, name_emb, **{key: value})
        assert str(exc.value) == f"{key}: {value}; expected {expected}"


def test_likelihood_normalises_each_sentence_over_the_terms():
    """P(term | sentence) is a softmax over the vocabulary (per sentence), not over the sentences of a note: a note
    of two sentences that both name P2 scores D1 as one such sentence does, log(floor + (1/1.5) q) with q the
    softmax weight of P2 (temperature 1: e / (e + 2))."""
    kg, cand, name_emb = likelihood_graph()
    lk = LinkLikelihood.from_graph(kg, cand, name_emb, temperature=1.0, floor=0.01, parent_share=0)
    table = name_emb[[kg.index["P2"]]]
    e = math.e
    one = math.log(0.01 + (1 / 1.5) * e / (e + 2) + (0.5 / 1.5) / (e + 2))
    assert lk.scores(torch.tensor([[0, 0]]), table)[0, 0].item() == pytest.approx(one, rel=1e-6)
    assert lk.scores(torch.tensor([[0, -1]]), table)[0, 0].item() == pytest.approx(one, rel=1e-6)


def test_batch_size_holds_at_least_one_sample():
    from kgdistill.eval.text_baseline import _batch_size

    assert _batch_size(10, 100) == 10 and _batch_size(10, 105) == 10
    assert _batch_size(10, 5) == 1          # one sample over the budget still goes, alone
    assert _batch_size(0, 8) == 8           # notes with no sentences: the budget, not a division by zero


def test_concept_means_weigh_links_and_fall_back_to_the_own_name_only_without_evidence():
    """D1's only evidence is one link of weight 0.5 (a total below 1 is still evidence), followed by a link of
    weight 0 that adds none; D2 has no link: its own name."""
    b = GraphBuilder("g")
    for n in ("D1", "D2", "P1", "P2"):
        b.add_node(n, n)
    b.add_edge("D1", "P1", "has_phenotype", weight=0.5)
    b.add_edge("D1", "P2", "has_phenotype", weight=0.0)
    kg = b.build()
    cand = np.array([kg.index["D1"], kg.index["D2"]])
    means = concept_text_means(kg, cand, torch.eye(4) * 3.0)
    assert means.tolist() == torch.eye(4)[[kg.index["P1"], kg.index["D2"]]].tolist()


def test_mean_and_set_match_read_only_affirmed_sentences():
    """A negated (-1) or hypothetical (0) sentence is no support for mean and set_match: the note scores as its
    affirmed sentences alone; polarity all +1 scores as no polarity."""
    from kgdistill.eval.text_baseline import MeanTextBaseline

    table = torch.tensor([[2.0, 0.0], [0.0, 1.0], [-1.0, 1.0]])
    x = torch.tensor([[0, 1, 2]])
    pol = torch.tensor([1.0, -1.0, 0.0])
    for base in (links(), MeanTextBaseline(FINDINGS[[0, 1]])):
        got = base.scores(x, table, pol)
        assert torch.allclose(got, base.scores(torch.tensor([[0, -1, -1]]), table), atol=1e-6)
        assert not torch.allclose(got, base.scores(x, table), atol=1e-3)
        assert torch.equal(base.scores(x, table, torch.ones(3)), base.scores(x, table))
    # mean: sentence 0 alone lies along concept 0 and across concept 1
    assert MeanTextBaseline(FINDINGS[[0, 1]]).scores(x, table, pol).tolist() == [[1.0, 0.0]]
    back = TEXT_BASELINES.get("mean").from_tensors(MeanTextBaseline(FINDINGS[[0, 1]]).tensors())
    assert set(MeanTextBaseline(FINDINGS[[0, 1]]).tensors()) == {"concepts"}
    assert torch.equal(back.concepts, FINDINGS[[0, 1]])


def test_nearest_centroid_of_scalar_samples():
    """Samples that are single numbers (1-d inputs) are one feature each: centroids 1 and 4."""
    from kgdistill.eval.text_baseline import centroid_scores

    s = centroid_scores(torch.tensor([0.0, 2.0, 4.0]), torch.tensor([0, 0, 1]), torch.tensor([1.0, 3.0]), 3)
    assert s.tolist() == [[0.0, -3.0, -4.0], [-2.0, -1.0, -4.0]]


def test_likelihood_vocabulary_and_parents_on_a_wider_graph():
    """P4 is linked by no candidate but is a term a sentence may name: it stays in the vocabulary, and so does P5,
    linked by nothing at all (the last column, all zero).
    P1 has two parents (P3 and P4, is_a): parent_share 0.2 of its 0.5 is split between them; P2 -> P3 by a link
    that is not is_a / broader gives P2 no parent.  D1: P1 0.4, P2 1, P3 0.05, P4 0.05 over 1.5."""
    b = GraphBuilder("g")
    for n in ("D1", "D2", "P1", "P2", "P3", "P4", "P5"):
        b.add_node(n, n)
    b.add_edge("D1", "P1", "has_phenotype", weight=0.5)
    b.add_edge("D1", "P2", "has_phenotype", weight=1.0)
    b.add_edge("D2", "P3", "has_phenotype", weight=1.0)
    b.add_edge("P1", "P3", "is_a")
    b.add_edge("P1", "P4", "is_a")
    b.add_edge("P2", "P3", "associated_with")
    kg = b.build()
    cand = np.array([kg.index["D1"], kg.index["D2"]])
    lk = LinkLikelihood.from_graph(kg, cand, torch.eye(7), parent_share=0.2)
    assert torch.allclose(lk.links.to_dense(), torch.tensor([[0.4 / 1.5, 1 / 1.5, 0.05 / 1.5, 0.05 / 1.5, 0.0],
                                                             [0.0, 0.0, 1.0, 0.0, 0.0]]))
    assert lk.emb.tolist() == torch.eye(7)[2:].tolist()
    assert LinkLikelihood.from_graph(kg, cand, torch.eye(7), parent_share=0).links.shape == (2, 5)
    with pytest.raises(ConfigError) as exc:
        LinkLikelihood.from_graph(kg, cand, torch.eye(7), floor=float("nan"))
    assert str(exc.value) == "floor: nan; expected a finite number"
    table, x = torch.eye(7)[[5, 3]], torch.tensor([[0, 1], [0, -1]])      # sentences naming P4 and P2
    back = LinkLikelihood.from_tensors(lk.tensors())
    assert torch.equal(back.links.to_dense(), lk.links.to_dense()) and torch.equal(back.scores(x, table),
                                                                                   lk.scores(x, table))
    # parent_share 1 leaves P1 itself a link of probability 0: a valid saved baseline
    every = LinkLikelihood.from_graph(kg, cand, torch.eye(7), parent_share=1)
    assert torch.equal(LinkLikelihood.from_tensors(every.tensors()).links.to_dense(), every.links.to_dense())
    with pytest.raises(ValueError, match=r"^negative link probabilities$"):
        LinkLikelihood.from_tensors(every.tensors() | {"links_value": every.links.values() - 0.5})


@pytest.mark.parametrize("name", ["likelihood", "set_match"])
def test_only_the_direction_of_a_name_embedding_counts(name):
    """likelihood and set_match compare unit vectors: name embeddings rescaled row by row (lengths 1 to 5, not
    orthogonal) score notes exactly as the originals.  (``mean`` weighs the raw vectors, so length counts there.)"""
    kg, cand, _ = likelihood_graph()
    names = torch.eye(5) + 0.3
    longer = names * torch.arange(1.0, 6.0).unsqueeze(1)
    table, x = torch.randn(4, 5, generator=torch.Generator().manual_seed(1)), torch.tensor([[0, 1, 2], [3, -1, -1]])
    one, other = (build_text_baseline(name, kg, cand, e) for e in (names, longer))
    assert torch.allclose(one.scores(x, table), other.scores(x, table), atol=1e-5)
