"""teacher.concepts: annotations: each candidate read by the teacher's own set encoder from its links."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from kgdistill.config import validate_config
from kgdistill.encoders.concept_set import ConceptSetEncoder
from kgdistill.errors import ConfigError
from kgdistill.gnn.concepts import AnnotationConcepts, cosine_logits, linked_sets
from kgdistill.gnn.teacher_concepts import annotation_concepts
from kgdistill.graph.kg import GraphBuilder
from kgdistill.losses import WeightedLoss
from kgdistill.train.trainer import StageData, StageSettings, StageLoop


def small_graph():
    b = GraphBuilder("test")
    for n in ("D1", "D2", "D3", "t1", "t2", "t3"):
        b.add_node(n)
    b.add_edge("D1", "t1", "has_phenotype", 0.2)
    b.add_edge("D1", "t2", "has_phenotype", 0.9)
    b.add_edge("D1", "t3", "has_phenotype", 0.5)
    b.add_edge("D3", "t1", "has_phenotype", 1.0)
    b.add_edge("t1", "t2", "is_a", 1.0)   # not a candidate's link
    return b.build()


def test_linked_sets_are_strongest_first_padded_and_truncated():
    kg = small_graph()
    ix = kg.index
    items, weights = linked_sets(kg, [ix["D1"], ix["D2"], ix["D3"]], max_items=2)
    assert items.tolist() == [[ix["t2"], ix["t3"]], [ix["D2"], -1], [ix["t1"], -1]]  # D2 has no link: itself
    assert torch.allclose(weights, torch.tensor([[0.9, 0.5], [1.0, 0.0], [1.0, 0.0]]))
    wide, _ = linked_sets(kg, [ix["D1"], ix["D3"]], max_items=10)
    assert wide.shape == (2, 3)  # as wide as the longest set, not max_items


def test_training_keeps_each_link_with_its_weight_and_always_the_strongest():
    items = torch.tensor([[10, 11, 12], [13, -1, -1]])
    weights = torch.tensor([[0.05, 0.3, 0.01], [0.2, 0.0, 0.0]])  # 0.05 stays first: it is the given order
    src = AnnotationConcepts(nn.Identity(), items, weights, min_keep=0.1).train()  # returns the sets it reads
    torch.manual_seed(0)
    draws = torch.stack([src() for _ in range(4000)])            # [4000, 2, 3]
    kept = (draws >= 0).float().mean(0)
    assert kept[0, 0] == 1.0 and kept[1, 0] == 1.0                 # the first link, always
    assert kept[0, 1] == pytest.approx(0.3, abs=0.03)              # its weight
    assert kept[0, 2] == pytest.approx(0.1, abs=0.02)              # floored at min_keep
    assert kept[1, 1:].sum() == 0                                  # padding stays padding
    rows = src(torch.tensor([1]))
    assert rows.shape == (1, 3) and rows[0, 0] == 13               # only the rows asked for


def test_evaluation_reads_every_link_in_chunks():
    g = torch.Generator().manual_seed(0)
    enc = ConceptSetEncoder(torch.randn(20, 8, generator=g), dim=4, hidden=16).eval()
    items = torch.randint(0, 20, (5, 4), generator=g)
    items[1, 2:] = -1
    src = AnnotationConcepts(enc, items, torch.full((5, 4), 0.01), eval_chunk=2).eval()
    with torch.no_grad():
        assert torch.allclose(src(), enc(items), atol=1e-6)


def test_the_encoder_trains_once_and_places_diseases_no_patient_was_labelled_with():
    """Six diseases, each annotated with three of 18 findings.  A patient shows two of its disease's findings and
    three loud findings that every disease's patients show alike (features three times larger, no annotation).
    The teacher trains on diseases 0-3 only; diseases 4 and 5 are then ranked by reading their annotations: a
    random encoder is swamped by the loud findings, the trained one has learnt to look past them."""
    g = torch.Generator().manual_seed(0)
    features = torch.cat([torch.randn(18, 12, generator=g), 3 * torch.randn(12, 12, generator=g)])
    items = torch.arange(18).view(6, 3)
    enc = ConceptSetEncoder(features, dim=16, hidden=32, dropout=0.0)
    src = AnnotationConcepts(enc, items, torch.full((6, 3), 0.7), min_keep=0.5)

    def patients(diseases, n):
        y = diseases[torch.randint(0, len(diseases), (n,), generator=g)]
        own = torch.stack([items[d][torch.randperm(3, generator=g)[:2]] for d in y])
        loud = torch.stack([18 + torch.randperm(12, generator=g)[:3] for _ in range(n)])
        return torch.cat([own, loud], 1), y

    x, y = patients(torch.arange(4), 400)
    x_new, y_new = patients(torch.tensor([4, 5]), 100)

    def unseen_top1():
        with torch.no_grad():
            return (cosine_logits(enc.eval()(x_new), src.eval()(), 0.1).argmax(1) == y_new).float().mean().item()

    before = unseen_top1()
    loop = StageLoop("t", enc, src, torch.arange(4), WeightedLoss([{"name": "ce"}]),
                     StageData(x=x[:300], labels=y[:300], x_val=x[300:], y_val=y[300:]),
                     StageSettings(epochs=15, batch_size=32, lr=1e-2, weight_decay=0.0, patience=15,
                                   temperature=0.1, progress=False), device=torch.device("cpu"))
    params = [p for g_ in loop.opt.param_groups for p in g_["params"]]
    assert len(params) == len({id(p) for p in params}) == len(list(enc.parameters()))  # shared, so listed once
    res = loop.run()
    assert res.best_val > 0.95
    after = unseen_top1()
    assert before < 0.4 and after > 0.7  # 0.29 and 0.76 (chance among six: 0.17)


def test_a_bad_source_or_setting_fails_at_load_naming_it():
    tree = {"teacher": {"encoder": {"name": "concept_set"}, "losses": [{"name": "ce"}],
                        "concepts": {"name": "annotations", "max_item": 3}},
            "student": {"encoder": {"name": "text"}, "methods": {"kg_guided": {"losses": [{"name": "ce"}]}}}}
    with pytest.raises(ConfigError, match="max_item: unknown key; teacher concept source 'annotations' takes: "
                                          "max_items, min_keep"):
        validate_config(tree)
    tree["teacher"]["concepts"] = "graph"
    with pytest.raises(ConfigError, match="unknown teacher concept source 'graph'; expected one of: annotations, gnn"):
        validate_config(tree)
    tree["teacher"]["concepts"] = {"name": "annotations", "max_items": 32}
    assert validate_config(tree).teacher.concepts.params == {"max_items": 32}
    with pytest.raises(ConfigError, match="teacher.concepts: 'annotations' needs a teacher that reads sets of graph "
                                          r"concepts \(teacher.encoder.name: concept_set\); this teacher's encoder "
                                          "is Linear"):
        annotation_concepts(cfg=None, task=None, encoder=nn.Linear(2, 2))


def test_a_run_with_annotation_concepts_ranks_unseen_diseases_and_is_read_back_as_trained(tmp_path, tiny_config_with):
    """The tiny HPO run with teacher.concepts: annotations through the real pipeline: the teacher ranks the
    unseen diseases (no patient of theirs was trained on) well above chance from their annotations, the report
    names the source, and evaluating the saved run again gives the saved figures."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from chance import ALPHA, p_group

    from kgdistill.pipeline import run_pipeline
    from kgdistill.reevaluate import evaluate_run

    # 8 test patients per disease: the 2 unseen diseases give 16, enough to tell a model from chance at ALPHA
    rd = run_pipeline(tiny_config_with("teacher.concepts=annotations", "teacher.epochs=15", "eval.plots=false",
                                       "data.hpo.test_per_disease=8"),
                      tmp_path / "run", progress=False, log=lambda *_: None).path
    m = json.loads((rd / "metrics.json").read_text())
    assert m["roles"]["teacher_concepts"] == "annotations"
    assert "concept embeddings from `annotations`" in (rd / "report.md").read_text()
    teacher = m["methods"]["teacher"]
    assert p_group(teacher["unseen"], m["num_candidates"], "top1") < ALPHA, teacher["unseen"]
    again = evaluate_run(rd)["methods"]
    for method in ("teacher", "kg_guided"):
        assert again[method]["all"]["mrr"] == pytest.approx(m["methods"][method]["all"]["mrr"], abs=1e-6)
