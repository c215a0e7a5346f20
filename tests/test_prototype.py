"""The training-free graph prototype: set matching of sentences with a concept's linked findings, by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kgdistill.eval.prototype import ConceptLinks, concept_text_prototypes
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
    assert ln.weight.tolist() == [0.5, 1.0, 1.0]
    back = ConceptLinks.from_tensors(ln.tensors())
    x, table = torch.tensor([[0, 1]]), torch.randn(2, 4)
    assert torch.equal(back.set_match(x, table), ln.set_match(x, table))
    # the same weighted links as the mean prototype reads (for weights >= 0)
    mean = torch.zeros(2, 4).index_add_(0, ln.concept, ln.weight.unsqueeze(1) * ln.emb)
    assert torch.allclose(torch.nn.functional.normalize(mean, dim=-1), concept_text_prototypes(kg, cand, name_emb))
