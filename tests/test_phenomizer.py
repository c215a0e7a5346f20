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
