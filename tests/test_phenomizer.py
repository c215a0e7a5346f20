"""Phenomizer (Resnik best-match average): hand-computed on a small graph, and equal to pyhpo's own
``HPOSet.similarity`` on real patients of phenopacket-store against real OMIM diseases."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from kgdistill.errors import ConfigError
from kgdistill.eval.phenomizer import PhenomizerBaseline, ResnikBMA
from kgdistill.eval.text_baseline import TEXT_BASELINES
from kgdistill.graph.kg import GraphBuilder


def _graph():
    """R <- A <- A1, A <- A2, R <- B; D1 -> A1, D2 -> A2 and B, D3 -> B."""
    b = GraphBuilder()
    for n in ("R", "A", "A1", "A2", "B", "D1", "D2", "D3"):
        b.add_node(n, n)
    for child, parent in (("A", "R"), ("A1", "A"), ("A2", "A"), ("B", "R")):
        b.add_edge(child, parent, "is_a")
    for d, t in (("D1", "A1"), ("D2", "A2"), ("D2", "B"), ("D3", "B")):
        b.add_edge(d, t, "has_phenotype", 0.5)
    return b.build()


L3, L15 = math.log(3), math.log(1.5)   # IC of A1, A2 (1 of 3 diseases) and of A, B (2 of 3)


def _baseline(**params):
    kg = _graph()
    cand = np.array([kg.index[d] for d in ("D1", "D2", "D3")])
    return kg, PhenomizerBaseline.from_graph(kg, cand, torch.eye(kg.num_nodes), **params)


def test_information_content_and_scores_by_hand():
    kg, proto = _baseline()
    ic = dict(zip((kg.ids[int(n)] for n in proto.node_of_term), proto.bma.ic.tolist()))
    assert ic == pytest.approx({"R": 0.0, "A": L15, "A1": L3, "A2": L3, "B": L15})
    n = kg.num_nodes
    x = torch.tensor([[kg.index["A1"], kg.index["B"], kg.index["A2"] + n, -1]])   # A1, B present; A2 excluded
    # patient -> disease: D1 (A1: ln3, B: 0), D2 (A1~A2 via A, B: B), D3 (A1: 0, B: B)
    assert proto.concept_set_scores(x)[0].tolist() == pytest.approx([L3 / 2, L15, L15 / 2])
    _, sym = _baseline(symmetric=1.0)
    # disease -> patient: D1 (A1: ln3), D2 (A2~A1: A, B: B), D3 (B: B)
    assert sym.concept_set_scores(x)[0].tolist() == pytest.approx([(L3 / 2 + L3) / 2, L15, (L15 / 2 + L15) / 2])


def test_text_path_reads_sentences_as_terms_and_saves_whole():
    kg, proto = _baseline(min_similarity=0.5)
    table = torch.zeros(3, kg.num_nodes)
    table[0, kg.index["A1"]] = 1.0
    table[1, kg.index["B"]] = 1.0
    table[2, kg.index["D1"]] = 1.0          # names no term at all: ignored (cosine 0 < 0.5 with every term)
    text = proto.scores(torch.tensor([[0, 1, 2], [2, -1, -1]]), table)
    assert text[0].tolist() == pytest.approx([L3 / 2, L15, L15 / 2]) and text[1].tolist() == [0.0, 0.0, 0.0]
    again = PhenomizerBaseline.from_tensors(proto.tensors())
    assert torch.equal(again.scores(torch.tensor([[0, 1, 2]]), table), text[:1])


def test_a_config_picks_it_and_its_settings_are_checked(tiny_config_with):
    cfg = tiny_config_with("eval.text_baseline={name: phenomizer, symmetric: 1}")
    assert cfg.eval.text_baseline.name == "phenomizer" and TEXT_BASELINES.get("phenomizer") is PhenomizerBaseline
    with pytest.raises(ConfigError, match="symmetric: 0.5; expected 0 .* or 1"):
        tiny_config_with("eval.text_baseline={name: phenomizer, symmetric: 0.5}")
    with pytest.raises(ConfigError, match="temperature: unknown key; text baseline 'phenomizer' takes"):
        tiny_config_with("eval.text_baseline={name: phenomizer, temperature: 0.1}")


@pytest.fixture(scope="module")
def pyhpo_omim():
    """pyhpo's ontology and its OMIM annotations as ResnikBMA structures (IC computed by ResnikBMA)."""
    from pyhpo import Ontology

    Ontology()
    terms = sorted(Ontology, key=lambda t: t.index)
    pos = {t.index: i for i, t in enumerate(terms)}
    diseases = sorted(Ontology.omim_diseases, key=lambda d: d.id)
    bma = ResnikBMA.from_lists([[pos[t.index]] + [pos[a.index] for a in t.all_parents] for t in terms],
                               [[pos[h] for h in d.hpo] for d in diseases])
    return Ontology, terms, pos, diseases, bma


def test_equal_to_pyhpo_on_real_patients_and_diseases(pyhpo_omim):
    from pyhpo import HPOSet

    from kgdistill.data.phenopackets import load_store_table

    ontology, terms, pos, diseases, bma = pyhpo_omim
    assert len(diseases) == 8359        # every OMIM id of pyhpo 4.0.0's phenotype.hpoa, as pyhpo counts them
    # equal to the last bits but one: pyhpo sums in another order (0.014338458795638706 vs ...704 seen)
    assert bma.ic.tolist() == pytest.approx([t.information_content.omim for t in terms], rel=1e-12, abs=0)
    rng = random.Random(0)
    patients = rng.sample([r for r in load_store_table() if len(r.observed) >= 2], 40)
    sets = [[pos[ontology.get_hpo_object(t).index] for t in r.observed] for r in patients]
    p2d, d2p = bma.patient_to_disease(sets), bma.disease_to_patient(sets)
    index = {f"OMIM:{d.id}": k for k, d in enumerate(diseases)}
    checked = 0
    for i, r in enumerate(patients):
        mine = HPOSet.from_queries(list(r.observed))
        for k in (index.get(r.disease_id, 0), rng.randrange(len(diseases))):   # the patient's own and another
            if not diseases[k].hpo:
                continue
            theirs = HPOSet([ontology[h] for h in diseases[k].hpo])
            rows = list(HPOSet._sim_score(mine, theirs, "omim", "resnik").rows)
            one_way = sum(max(row) for row in rows) / len(rows)
            assert p2d[i, k].item() == pytest.approx(one_way, abs=1e-5)
            assert 0.5 * (p2d[i, k] + d2p[i, k]).item() == pytest.approx(
                mine.similarity(theirs, kind="omim", method="resnik", combine="funSimAvg"), abs=1e-5)
            checked += 1
    assert checked >= 70


def test_concept_sets_keep_present_terms_only():
    """Node 0 (R, IC 0) is a term and counts, as a 0 in the mean; a candidate node (D1) is no term and an excluded
    term (index + number of nodes, here R's: exactly the number of nodes) is left out.  Defaults: patient ->
    disease (bma.scores' default too), every sentence read whatever its best cosine (min_similarity 0)."""
    kg, proto = _baseline()
    n = kg.num_nodes
    assert kg.index["R"] == 0 and (proto.symmetric, proto.min_similarity) == (0.0, 0.0)
    x = torch.tensor([[kg.index["A1"], kg.index["R"], kg.index["D1"], n, -1]])
    assert proto.term_sets_of_nodes(x) == [[int(proto.term_of_node[kg.index["A1"]]), int(proto.term_of_node[0])]]
    assert proto.concept_set_scores(x)[0].tolist() == pytest.approx([L3 / 2, L15 / 2, 0.0])
    sets = proto.term_sets_of_nodes(x)
    assert torch.equal(proto.bma.scores(sets), proto.bma.patient_to_disease(sets))


def test_sentence_terms_threshold_blocks_and_directions():
    """A sentence is read as its closest term when the cosine is at least min_similarity (inclusive: 1/2 exactly
    is kept at 0.5), in blocks of any size; only the direction of a term's name or a sentence's vector counts."""
    kg, proto = _baseline(min_similarity=0.5)
    term = {kg.ids[int(nd)]: t for t, nd in enumerate(proto.node_of_term)}
    table = torch.zeros(4, kg.num_nodes)
    table[0, [kg.index[t] for t in ("R", "A", "A1", "A2")]] = 1.0   # cosine exactly 1/2 with each: the first, R
    table[1, kg.index["B"]] = 3.0                                    # B, at any length
    table[2, kg.index["D1"]] = 1.0                                   # no term: -1
    table[3, [kg.index["A1"], kg.index["B"]]] = torch.tensor([1.0, 2.0])  # closest B (cosine 0.894 >= 0.5)
    want = [term["R"], term["B"], -1, term["B"]]
    assert proto.sentence_terms(table, torch.arange(4)).tolist() == want
    assert proto.sentence_terms(table, torch.arange(4), block=1).tolist() == want
    strict = _baseline(min_similarity=0.9)[1]
    assert strict.sentence_terms(table, torch.arange(4)).tolist() == [-1, term["B"], -1, -1]
    # name embeddings of any length, and not orthogonal: still the term each sentence points along
    names = (torch.eye(kg.num_nodes) + 0.1) * torch.arange(1.0, kg.num_nodes + 1).unsqueeze(1)
    scaled = PhenomizerBaseline.from_graph(kg, np.array([kg.index[d] for d in ("D1", "D2", "D3")]), names,
                                           min_similarity=0.99)
    assert scaled.sentence_terms(names, torch.tensor([kg.index["A2"], kg.index["B"]])).tolist() == \
        [term["A2"], term["B"]]


def test_denied_sentences_count_against_diseases_with_their_term():
    """Polarity: affirmed A1 and denied B.  Affirmed A1 alone: [ln3, ln1.5 (A1~A2 via A), 0] (patient -> disease,
    one term).  The denied B's own best-match average ([0, ln1.5, ln1.5]) is taken off at NEGATION_WEIGHT (1/2);
    the second note denies nothing."""
    from kgdistill.eval.phenomizer import NEGATION_WEIGHT

    kg, proto = _baseline()
    table = torch.zeros(3, kg.num_nodes)
    table[0, kg.index["A1"]] = 1.0
    table[1, kg.index["B"]] = 1.0
    x = torch.tensor([[0, 1], [0, -1]])
    got = proto.scores(x, table, torch.tensor([1.0, -1.0, 1.0]))
    assert NEGATION_WEIGHT == 0.5
    assert got.tolist() == [pytest.approx([L3, L15 / 2, -L15 / 2]), pytest.approx([L3, L15, 0.0])]


def test_settings_checked_when_built_and_when_loaded():
    """symmetric in {0, 1}; min_similarity a cosine in [-1, 1] (both ends allowed).  A saved baseline keeps its own
    information content (not recomputed) and its settings are checked again when read."""
    kg, proto = _baseline()
    cand = np.array([kg.index[d] for d in ("D1", "D2", "D3")])
    for ok in (-1.0, 1.0):
        assert PhenomizerBaseline.from_graph(kg, cand, torch.eye(kg.num_nodes), min_similarity=ok).min_similarity == ok
    for key, value, message in (("symmetric", 0.5, "symmetric: 0.5; expected 0 (patient -> disease) or 1 (both ways)"),
                                ("min_similarity", -1.5, "min_similarity: -1.5; expected a cosine in [-1, 1]"),
                                ("min_similarity", 1.5, "min_similarity: 1.5; expected a cosine in [-1, 1]")):
        with pytest.raises(ConfigError) as exc:
            PhenomizerBaseline.from_graph(kg, cand, torch.eye(kg.num_nodes), **{key: value})
        assert str(exc.value) == message
        with pytest.raises(ConfigError) as exc:
            PhenomizerBaseline.from_tensors(proto.tensors() | {key: torch.tensor(value)})
        assert str(exc.value) == message
    own_ic = proto.tensors() | {"ic": proto.bma.ic * 2}
    assert torch.equal(PhenomizerBaseline.from_tensors(own_ic).bma.ic, proto.bma.ic * 2)


def test_ancestors_whatever_the_node_order_and_only_along_the_hierarchy():
    """Children added before their parents still reach them; a link between terms that is not is_a / broader
    (B associated with A2) makes no ancestor."""
    from kgdistill.eval.phenomizer import graph_terms

    b = GraphBuilder()
    for n in ("A1", "A", "R", "B", "D1"):
        b.add_node(n, n)
    for child, parent in (("A1", "A"), ("A", "R"), ("B", "R")):
        b.add_edge(child, parent, "is_a")
    b.add_edge("B", "A1", "associated_with")
    b.add_edge("D1", "A1", "has_phenotype", 1.0)
    kg = b.build()
    terms, ancestors, annotations = graph_terms(kg, np.array([kg.index["D1"]]))
    name = [kg.ids[int(t)] for t in terms]
    assert name == ["A1", "A", "R", "B"]
    assert [sorted(name[a] for a in anc) for anc in ancestors] == [["A", "A1", "R"], ["A", "R"], ["R"], ["B", "R"]]
    assert annotations == [[0]]
