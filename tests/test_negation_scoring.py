"""Negation is information, never support: the text baselines, the student and the evidence `predict` shows read
negated sentences against their findings, and hypothetical or family-history sentences as no support."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kgdistill.eval.phenomizer import PhenomizerBaseline
from kgdistill.eval.text_baseline import LinkLikelihood, MeanTextBaseline, with_polarity
from kgdistill.graph.kg import GraphBuilder
from kgdistill.text.negation import sentence_polarity

ISSUE_NOTE = ("The child has seizures and global developmental delay. MRI showed cerebellar hypoplasia. "
              "No hearing loss.")


def test_sentence_polarity_of_negated_hypothetical_and_family_sentences():
    sentences = ["The child has seizures and global developmental delay.", "MRI showed cerebellar hypoplasia.",
                 "No hearing loss.", "Scoliosis was excluded.", "There was no hypotonia.",
                 "Possible cardiomyopathy.", "Evaluated for hearing loss.", "His mother has epilepsy.",
                 "Family history of deafness.", "Parents report seizures."]
    assert sentence_polarity(sentences).tolist() == [1, 1, -1, -1, -1, 0, 0, 0, 0, 1]


def test_with_polarity_keeps_only_one_kind_of_sentence():
    x = torch.tensor([[0, 1, 2, -1], [2, 3, -1, -1]])
    pol = torch.tensor([1.0, -1.0, 0.0, 1.0])
    assert with_polarity(x, pol, 1.0).tolist() == [[0, -1, -1, -1], [-1, 3, -1, -1]]
    assert with_polarity(x, pol, -1.0).tolist() == [[-1, 1, -1, -1], [-1, -1, -1, -1]]
    assert with_polarity(x, None, 1.0) is x


@pytest.fixture(scope="module")
def hearing_graph():
    """Two diseases: A links seizures and hearing loss, B links seizures and cerebellar hypoplasia."""
    b = GraphBuilder(source="test")
    terms = {"HP:0000118": "Phenotypic abnormality", "HP:0001250": "Seizure",
             "HP:0000365": "Hearing impairment", "HP:0001321": "Cerebellar hypoplasia"}
    for t, name in terms.items():
        b.add_node(t, name, "", type="term")
    for t in ("HP:0001250", "HP:0000365", "HP:0001321"):
        b.add_edge(t, "HP:0000118", "is_a")
    b.add_node("D:A", "Disease A", "", type="disease")
    b.add_node("D:B", "Disease B", "", type="disease")
    for d, t in (("D:A", "HP:0001250"), ("D:A", "HP:0000365"), ("D:B", "HP:0001250"), ("D:B", "HP:0001321")):
        b.add_edge(d, t, "has_phenotype", 1.0)
    return b.build()


@pytest.fixture(scope="module")
def embed():
    from kgdistill.config import TextConfig
    from kgdistill.encoders.text_embedder import TextEmbedder

    emb = TextEmbedder.from_config(TextConfig(), torch.device("cpu"))
    return lambda texts: torch.from_numpy(emb.embed(list(texts)))


def _scores(baseline, embed, sentences, polarity):
    table = embed(sentences)
    x = torch.arange(len(sentences)).unsqueeze(0)
    return baseline.scores(x, table, None if polarity is None else torch.tensor(polarity, dtype=torch.float32))[0]


@pytest.mark.parametrize("name", ["likelihood", "phenomizer"])
def test_a_denied_finding_counts_against_the_diseases_that_have_it(hearing_graph, embed, name):
    kg = hearing_graph
    cand = np.array([kg.index["D:A"], kg.index["D:B"]])
    cls = LinkLikelihood if name == "likelihood" else PhenomizerBaseline
    base = cls.from_graph(kg, cand, embed(kg.names))
    note = ["The child has seizures.", "No hearing loss."]
    read_as_affirmed = _scores(base, embed, note, None)
    negated = _scores(base, embed, note, [1, -1])
    seizures_only = _scores(base, embed, note[:1], None)
    assert read_as_affirmed[0] > read_as_affirmed[1]       # read naively, "hearing loss" supports A
    assert negated[0] < negated[1]                          # read as denied, it counts against A
    assert negated[0] < seizures_only[0]
    # a hypothetical or family sentence is no support and no evidence against: as if it were not there
    assert torch.allclose(_scores(base, embed, note, [1, 0]), seizures_only, atol=1e-5)


def test_the_mean_baseline_drops_non_affirmed_sentences(hearing_graph, embed):
    kg = hearing_graph
    cand = np.array([kg.index["D:A"], kg.index["D:B"]])
    base = MeanTextBaseline.from_graph(kg, cand, embed(kg.names))
    note = ["The child has seizures.", "No hearing loss."]
    assert torch.allclose(_scores(base, embed, note, [1, -1]), _scores(base, embed, note[:1], None), atol=1e-5)


def test_the_student_reads_a_negated_sentence_as_the_negation_of_its_vector():
    from kgdistill.encoders.text import TextEncoder

    torch.manual_seed(0)
    table = torch.randn(3, 8)
    enc = TextEncoder(table, dim=4, hidden=16, dropout=0.0).eval()
    negated = TextEncoder(torch.cat([table, -table[1:2]]), dim=4, hidden=16, dropout=0.0).eval()
    negated.load_state_dict(enc.state_dict())
    enc.set_polarity(torch.tensor([1.0, -1.0, 0.0]))
    x = torch.tensor([[0, 1, 2]])
    # sentence 1 negated = the row -table[1]; sentence 2 hypothetical = left out
    assert torch.allclose(enc(x), negated(torch.tensor([[0, 3, -1]])), atol=1e-6)


def test_predict_never_cites_a_denied_finding_as_support(tiny_run):
    from kgdistill.predict import Predictor

    p = Predictor.from_run_dir(tiny_run)
    for pred in p.predict_texts([ISSUE_NOTE], top_k=len(p.candidates))[0]:
        for e in pred.evidence:
            assert e.against == (e.text == "No hearing loss.")
    # a disease of the run with its own findings named three ways
    node = next(i for i, t in enumerate(p.graph.types) if t == "disease"
                and len(p.graph.edge_dst[p.graph.edge_src == i]) > 0)
    finding = p.graph.names[int(p.graph.edge_dst[p.graph.edge_src == node][0])]
    sentences = [f"{finding}.", f"No {finding.lower()}.", f"Family history of {finding.lower()}."]
    ev = p._evidence(node, sentences, torch.from_numpy(p.model.embedder.embed(sentences)),
                     torch.from_numpy(sentence_polarity(sentences)))
    assert [(e.text, e.against) for e in ev] == [(sentences[0], False), (sentences[1], True)]
