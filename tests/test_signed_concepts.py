"""Signed concept sets: ``-ID`` is a finding explicitly absent, carried through reader, graph restriction,
preparation and the concept-set encoder as information."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from kgdistill.data.modalities import Modality, concept_ids, read_concept_set, split_signed
from kgdistill.data.prepare import prepare_modality
from kgdistill.encoders.concept_set import ConceptSetEncoder
from kgdistill.errors import DataError
from kgdistill.graph.kg import GraphBuilder
from kgdistill.task import restrict_graph


def _graph():
    b = GraphBuilder()
    for n in ("HP:1", "HP:2", "HP:3", "HP:4", "D:1"):
        b.add_node(n, n)
    b.add_edge("HP:2", "HP:1", "is_a")
    b.add_edge("HP:3", "HP:1", "is_a")
    b.add_edge("D:1", "HP:2", "has_phenotype")
    return b.build()


def test_reader_keeps_the_sign_and_checks_it(tmp_path: Path):
    f = tmp_path / "f.txt"
    f.write_text("HP:2 -HP:3, HP:2\n-HP:3\n", encoding="utf-8")
    mod = read_concept_set("findings", f)
    assert mod.values == [["HP:2", "-HP:3"], ["-HP:3"]]
    assert split_signed("-HP:3") == ("HP:3", True) and split_signed("HP:3") == ("HP:3", False)
    assert concept_ids(mod.values[0]) == ["HP:2", "HP:3"]
    for text, msg in (("HP:2 -\n", r"f.txt:1: '-' is not a concept id; expected ID or -ID"),
                      ("HP:2\n--HP:3\n", r"f.txt:2: '--HP:3' is not a concept id"),
                      ("HP:2 -HP:2\n", r"f.txt:1: HP:2 is both present and excluded")):
        f.write_text(text, encoding="utf-8")
        with pytest.raises(DataError, match=msg):
            read_concept_set("findings", f)


def test_graph_restriction_and_preparation_read_excluded_concepts():
    kg = _graph()
    mod = Modality("findings", "concept_set", Path("f.txt"), [["HP:2", "-HP:3"], ["-HP:4"]])
    ds = SimpleNamespace(candidates=["D:1"], modalities={"findings": mod})
    kept = restrict_graph(kg, ds)
    assert sorted(kept.ids) == ["D:1", "HP:1", "HP:2", "HP:3", "HP:4"]   # HP:4 only ever excluded, still kept
    nf = torch.randn(kg.num_nodes, 6)
    prep = prepare_modality(mod, graph=kg, node_features=nf, embedder=None, train_idx=np.arange(2))
    i = kg.index
    assert prep.x.tolist() == [[i["HP:2"], i["HP:3"] + 5], [i["HP:4"] + 5, -1]]


def test_encoder_reads_an_excluded_finding_as_its_negation():
    torch.manual_seed(0)
    nf = torch.randn(5, 6)
    enc = ConceptSetEncoder(nf, dim=4, hidden=8, dropout=0.0).eval()
    torch.nn.init.normal_(enc.node_emb.weight)
    x = torch.tensor([[1, 2 + 5, -1]])                  # HP:2 present, HP:3 excluded, padding
    first, rest = enc.pool.item[0], enc.pool.item[1:]
    e = enc.node_emb.weight
    h_present = rest(first(nf[1]) + e[1])
    h_excluded = rest(first(-nf[2]) - e[2])              # W(-f) + b, minus the learned embedding
    items = torch.stack([h_present, h_excluded])
    expected = enc.head(torch.cat([items.mean(0), items.amax(0)]))
    with torch.no_grad():
        out = enc(x)[0]
        assert torch.allclose(out, expected, atol=1e-6)
        # the sign is information: HP:3 excluded, HP:3 present and HP:3 absent from the set give three answers
        present = enc(torch.tensor([[1, 2, -1]]))[0]
        alone = enc(torch.tensor([[1, -1, -1]]))[0]
        assert (out - present).abs().max() > 1e-3 and (out - alone).abs().max() > 1e-3
        # unsigned sets are computed exactly as before signed sets existed
        old = enc.head(enc.pool.forward_table(nf, torch.tensor([[1, 2, -1]]), enc.node_emb(torch.tensor([[1, 2, 0]]))))
        assert torch.equal(present, old[0])


def test_an_unknown_excluded_concept_is_named_without_its_sign():
    from kgdistill.data.paired import PairedDataset

    mod = Modality("findings", "concept_set", Path("f.txt"), [["HP:2"], ["HP:2", "-HP:9"]])
    fake = SimpleNamespace(root=Path("."), labels=["D:1", "D:1"], sample_ids=["a", "b"], candidates=["D:1"],
                           modalities={"findings": mod}, samples_path=None, sample_lines=[], candidates_path=None,
                           candidate_lines=[])
    with pytest.raises(DataError, match=r"f.txt:2: unknown concept 'HP:9'; expected ids of the graph"):
        PairedDataset.validate_against(fake, {"D:1": 0, "HP:2": 1})
