"""Encoders, GNNs and the stage loop: shapes, gradients, registry errors, and that training learns."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kgdistill.data.prepare import PreparedModality
from kgdistill.encoders import ENCODERS
from kgdistill.errors import ConfigError
from kgdistill.gnn import GNNS
from kgdistill.gnn.concepts import FixedConcepts, GraphConcepts, LearnedConcepts, cosine_logits
from kgdistill.graph import load_graph
from kgdistill.losses import WeightedLoss
from kgdistill.train.trainer import StageData, StageSettings, fit_stage


def prepared(kind: str) -> PreparedModality:
    g = torch.Generator().manual_seed(0)
    if kind == "vector":
        return PreparedModality("v", kind, torch.randn(6, 5, generator=g))
    if kind == "timeseries":
        return PreparedModality("t", kind, torch.randn(6, 3, 40, generator=g))
    if kind == "concept_set":
        x = torch.tensor([[0, 2, -1], [1, -1, -1], [3, 4, 5], [0, 1, 2], [5, -1, -1], [4, 3, -1]])
        return PreparedModality("c", kind, x, {"node_features": torch.randn(6, 8, generator=g)})
    x = torch.tensor([[0, 1, -1], [2, -1, -1], [0, 2, 3], [3, -1, -1], [1, 2, -1], [0, -1, -1]])
    return PreparedModality("s", kind, x, {"sentences": torch.randn(4, 8, generator=g)}, sentences=list("abcd"))


@pytest.mark.parametrize("name,kind", [("mlp", "vector"), ("conv1d", "timeseries"), ("concept_set", "concept_set"),
                                       ("text", "text")])
def test_encoders_map_to_the_shared_space(name, kind):
    p = prepared(kind)
    enc = ENCODERS.get(name).from_modality(p, 16, hidden=12)
    z = enc(p.x)
    assert z.shape == (6, 16) and torch.isfinite(z).all()
    z.sum().backward()
    assert all(q.grad is not None for q in enc.parameters() if q.requires_grad)


def test_padding_does_not_leak_into_set_encoders():
    p = prepared("concept_set")
    enc = ENCODERS.get("concept_set").from_modality(p, 8, hidden=12).eval()
    a = enc(torch.tensor([[0, 2, -1, -1]]))
    b = enc(torch.tensor([[0, 2]]))
    assert torch.allclose(a, b, atol=1e-6)


def test_unknown_encoder_names_the_choices():
    with pytest.raises(ConfigError, match="unknown encoder 'cnn'; expected one of: concept_set, conv1d, conv2d, logmel, mlp, text, "
                                          "wdcnn"):
        ENCODERS.get("cnn")


@pytest.mark.parametrize("name", ["gcn", "gat", "rgcn"])
def test_gnns_embed_every_node(name):
    kg = load_graph("graphs/machine_faults.ttl")
    data = kg.to_pyg()
    gnn = GNNS.build(name, in_dim=10, out_dim=16, hidden=32, layers=2, num_relations=len(data.relations))
    x = torch.randn(kg.num_nodes, 10)
    out = gnn(x, data.edge_index, data.edge_type, data.edge_weight)
    assert out.shape == (kg.num_nodes, 16) and torch.isfinite(out).all()
    out[:5].sum().backward()
    assert gnn.inp[0].weight.grad is not None


@pytest.mark.parametrize("name", ["gcn", "gat", "rgcn"])
def test_gnn_output_rows_equal_the_full_graph_rows(name):
    """Asking for some nodes only (the last layer and projection on those rows) changes no value or gradient."""
    kg = load_graph("graphs/machine_faults.ttl")
    data = kg.to_pyg()
    torch.manual_seed(0)
    gnn = GNNS.build(name, in_dim=10, out_dim=16, hidden=32, layers=2, num_relations=len(data.relations)).eval()
    x = torch.randn(kg.num_nodes, 10)
    rows = torch.tensor([7, 2, 11, 0])
    full = gnn(x, data.edge_index, data.edge_type, data.edge_weight)
    full[rows].square().sum().backward()
    grads = [p.grad.clone() for p in gnn.parameters()]
    gnn.zero_grad()
    part = gnn(x, data.edge_index, data.edge_type, data.edge_weight, rows)
    part.square().sum().backward()
    assert torch.allclose(part, full[rows], atol=1e-5)
    for g, p in zip(grads, gnn.parameters()):
        assert torch.allclose(p.grad, g, atol=1e-5)


def test_gcn_cached_sparse_path_equals_pyg_message_passing():
    """The fixed-graph GCN (own normalised CSR, prebuilt transpose for backward, (A X) W order) computes what
    PyG's GCNConv computes over the weighted edge list, values and gradients, a weighted self-loop included;
    in float64 too."""
    kg = load_graph("graphs/machine_faults.ttl")
    data = kg.to_pyg()
    ei = torch.cat([data.edge_index, torch.tensor([[3], [3]])], dim=1)  # PyG keeps an input self-loop's weight
    w = torch.cat([torch.rand(data.edge_index.shape[1], generator=torch.Generator().manual_seed(1)) + 0.5,
                   torch.tensor([9.0])])
    et = torch.zeros(ei.shape[1], dtype=torch.long)
    torch.manual_seed(0)
    fast = GNNS.build("gcn", in_dim=10, out_dim=16, hidden=32, layers=2).eval()
    ref = GNNS.build("gcn", in_dim=10, out_dim=16, hidden=32, layers=2, fixed_graph=False).eval()
    ref.load_state_dict(fast.state_dict())
    for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-10)):
        fast, ref = fast.to(dtype), ref.to(dtype)
        x = torch.randn(kg.num_nodes, 10, dtype=dtype)
        outs = []
        for model in (fast, ref):
            model.zero_grad()
            out = model(x, ei, et, w.to(dtype))
            out.square().sum().backward()
            outs.append((out, [p.grad for p in model.parameters()]))
        assert torch.allclose(outs[0][0], outs[1][0], atol=tol)
        for a, b in zip(outs[0][1], outs[1][1]):
            assert torch.allclose(a, b, atol=10 * tol)


def test_gcn_adjacency_cache_follows_the_graph_not_its_address():
    """A new graph (even at a reused address or as a view), new weights, or an in-place edit: never a stale
    adjacency.  Repeated output rows are each computed."""
    torch.manual_seed(0)
    gnn = GNNS.build("gcn", in_dim=4, out_dim=3, hidden=8, layers=2).eval()
    x, et = torch.randn(30, 4), torch.zeros(200, dtype=torch.long)

    def fresh(ei, w):
        ref = GNNS.build("gcn", in_dim=4, out_dim=3, hidden=8, layers=2, fixed_graph=False).eval()
        ref.load_state_dict(gnn.state_dict())
        return ref(x, ei, et[: ei.shape[1]], w)

    for seed in range(5):  # freed and reallocated graphs of one shape
        ei = torch.randint(0, 30, (2, 200), generator=torch.Generator().manual_seed(seed))
        w = torch.ones(200)
        assert torch.allclose(gnn(x, ei, et, w), fresh(ei, w), atol=1e-5)
    half = ei[:, :100]  # a view sharing the address
    assert torch.allclose(gnn(x, half, et[:100], w[:100]), fresh(half, w[:100]), atol=1e-5)
    w2 = torch.rand(200) + 0.5
    assert torch.allclose(gnn(x, ei, et, w2), fresh(ei, w2), atol=1e-5)
    w2[:50] = 3.0  # in place
    assert torch.allclose(gnn(x, ei, et, w2), fresh(ei, w2), atol=1e-5)
    rows = torch.tensor([3, 3, 5, 0, 3])
    assert torch.allclose(gnn(x, ei, et, w2, rows), fresh(ei, w2)[rows], atol=1e-5)


def test_node_dropout_zeroes_p_of_the_entries_and_keeps_the_mean():
    from kgdistill.gnn.base import NodeDropout

    drop = NodeDropout(0.25).train()
    x = torch.ones(400, 500, requires_grad=True)
    y = drop(x)
    zero = (y == 0).float().mean().item()
    assert abs(zero - 0.25) < 0.01 and abs(y.mean().item() - 1) < 0.02
    assert torch.equal(torch.unique(y), torch.tensor([0.0, 4 / 3]))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # gradient flows through the kept entries, scaled the same way
    assert torch.equal(drop.eval()(x), x)


def test_principal_components_are_deterministic_ordered_and_signed():
    from kgdistill.gnn.features import principal_components

    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 3, generator=g) @ torch.tensor([[5.0, 0, 0], [0, 2.0, 0], [0, 0, 0.5]]) + 7
    z = principal_components(x, 2)
    assert z.shape == (500, 2)
    assert torch.allclose(z.mean(0), torch.zeros(2), atol=1e-4)
    var = z.var(0)
    assert 20 < var[0] < 30 and 3 < var[1] < 5  # the two largest axes, largest first
    assert abs(torch.corrcoef(z.T)[0, 1]) < 1e-4  # uncorrelated
    assert torch.equal(z, principal_components(x.clone(), 2))
    # each direction's largest loading is positive: here the directions are +e1 and +e2
    assert torch.corrcoef(torch.stack([z[:, 0], x[:, 0]]))[0, 1] > 0.99
    assert torch.corrcoef(torch.stack([z[:, 1], x[:, 1]]))[0, 1] > 0.99
    assert torch.allclose(principal_components(-x, 2), -z, atol=1e-4)
    with pytest.raises(ConfigError, match=r"gnn.input_dim: 4 is more than the 3 dimensions of the node features"):
        principal_components(x, 4)


def test_principal_components_in_chunks_equal_one_pass(monkeypatch):
    import kgdistill.gnn.features as features

    x = torch.randn(1000, 12, generator=torch.Generator().manual_seed(3)) * torch.arange(1, 13)
    whole = features.principal_components(x, 5)
    monkeypatch.setattr(features, "CHUNK", 64)  # 16 chunks, the last one short
    assert torch.allclose(features.principal_components(x, 5), whole, atol=1e-4)


def test_candidates_without_own_features_are_defined_by_neighbours():
    kg = load_graph("graphs/machine_faults.ttl")
    data = kg.to_pyg()
    gnn = GNNS.build("gcn", in_dim=10, out_dim=8, hidden=16, layers=2, num_relations=len(data.relations))
    x = torch.randn(kg.num_nodes, 10)
    cands = torch.tensor([kg.index["fault:OuterRaceDefect"], kg.index["fault:Imbalance"]])
    src = GraphConcepts(gnn, x, data, cands, self_feature_dropout=1.0).eval()
    before = src()
    x2 = x.clone()
    x2[cands] = torch.randn(2, 10) * 100  # the candidates' own features do not matter
    src2 = GraphConcepts(gnn, x2, data, cands, self_feature_dropout=1.0).eval()
    assert torch.allclose(before, src2(), atol=1e-5)
    assert FixedConcepts(before)().shape == LearnedConcepts(2, 8)().shape == (2, 8)


def test_cosine_logits():
    z = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    c = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    expected = torch.tensor([[1.0, 0.0], [2 ** -0.5, 2 ** -0.5]]) / 0.5
    assert torch.allclose(cosine_logits(z, c, 0.5), expected)


def test_stage_loop_learns_and_keeps_the_best_state():
    """Three well-separated clusters: validation MRR must reach nearly 1 from a random start."""
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 6, generator=g) * 3
    y = torch.arange(60) % 3
    x = centers[y] + 0.3 * torch.randn(60, 6, generator=g)
    p = PreparedModality("v", "vector", x)
    enc = ENCODERS.get("mlp").from_modality(p, 8, hidden=16)
    concepts = LearnedConcepts(3, 8)
    data = StageData(x=x[:45], labels=y[:45], x_val=x[45:], y_val=y[45:])
    res = fit_stage("t", enc, concepts, torch.arange(3), WeightedLoss([{"name": "ce"}]), data,
                    StageSettings(epochs=30, batch_size=16, lr=1e-2, weight_decay=0.0, patience=30, temperature=0.1,
                                  progress=False), device=torch.device("cpu"))
    first, best = res.history[0]["val_mrr"], res.best_val
    assert best > 0.95 and best >= first
    assert res.history[-1]["loss_total"] < res.history[0]["loss_total"]
    with torch.no_grad():
        acc = (cosine_logits(enc(x[45:]), concepts(), 0.1).argmax(1) == y[45:]).float().mean()
    assert float(acc) > 0.9
    assert np.isfinite([h["loss_total"] for h in res.history]).all()


def test_non_finite_loss_stops_the_stage_naming_the_term():
    from kgdistill.errors import TrainingError

    x = torch.randn(20, 4)
    x[7] = float("inf")  # one poisoned sample: the first batch that holds it diverges
    y = torch.arange(20) % 2
    p = PreparedModality("v", "vector", x)
    enc = ENCODERS.get("mlp").from_modality(p, 8, hidden=8)
    data = StageData(x=x, labels=y, x_val=x[:4].nan_to_num(posinf=0.0), y_val=y[:4])
    with pytest.raises(TrainingError, match=r"stage 'bad': loss term 'ce' became NaN or infinite \(epoch 0, step \d+\)"):
        fit_stage("bad", enc, LearnedConcepts(2, 8), torch.arange(2), WeightedLoss([{"name": "ce"}]), data,
                  StageSettings(epochs=2, batch_size=5, lr=1e-2, weight_decay=0.0, patience=5, temperature=0.1,
                                progress=False), device=torch.device("cpu"))


def test_text_encoder_finetune_mode_trains_the_transformer():
    """Fine-tuning mode runs MiniLM (from the local package folder) on the batch's sentences and updates it."""
    from kgdistill.encoders.text_embedder import TextEmbedder, default_model_path

    sentences = ["The patient presents with seizures.", "Hypotonia was noted.", "No fever."]
    table = torch.from_numpy(TextEmbedder().embed(sentences))
    p = PreparedModality("note", "text", torch.tensor([[0, 1], [2, -1]]), {"sentences": table},
                         sentences=sentences, text_model=default_model_path())
    frozen = ENCODERS.get("text").from_modality(p, 8, hidden=16)
    tuned = ENCODERS.get("text").from_modality(p, 8, hidden=16, mode="finetune")
    tuned.load_state_dict(frozen.state_dict(), strict=False)
    # before any update, both modes see the same sentence vectors
    assert torch.allclose(tuned._sentence_vectors(p.x), frozen._sentence_vectors(p.x), atol=1e-4)
    before = tuned.transformer.encoder.layer[0].attention.self.query.weight.detach().clone()
    opt = torch.optim.SGD(tuned.parameters(), lr=0.1)
    tuned(p.x).pow(2).sum().backward()
    opt.step()
    assert not torch.equal(before, tuned.transformer.encoder.layer[0].attention.self.query.weight)
    with pytest.raises(ValueError, match="mode: 'thaw'; expected one of frozen, finetune, lora"):
        ENCODERS.get("text").from_modality(p, 8, mode="thaw")


def test_compiled_stage_matches_eager():
    """train.compile: the stage's model goes through torch.compile and trains to the same losses."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, 16, generator=g), torch.randint(0, 5, (256,), generator=g)
    curves = []
    for compile_ in (False, True):
        torch.manual_seed(3)
        enc = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 8))
        res = fit_stage("s", enc, LearnedConcepts(5, 8), torch.arange(5), WeightedLoss([{"name": "ce"}]),
                        StageData(x=x, labels=y, x_val=x[:50], y_val=y[:50]),
                        StageSettings(epochs=2, batch_size=64, lr=1e-2, weight_decay=0.0, patience=10,
                                      temperature=0.1, progress=False, compile=compile_),
                        device=torch.device("cpu"), seed=1)
        curves.append([h["loss_total"] for h in res.history])
    assert curves[1] == pytest.approx(curves[0], rel=1e-4)


def test_residual_concepts_fit_trained_concepts_and_leave_the_others_on_the_graph():
    """concepts: gnn_residual: frozen GNN embedding + learned correction; untrained concepts keep their embedding."""
    from kgdistill.gnn.concepts import ResidualConcepts

    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, 8, generator=g)
    src = ResidualConcepts(base)
    assert torch.equal(src(), base) and [n for n, p in src.named_parameters()] == ["delta"]
    x = torch.randn(120, 4, generator=g)
    y = torch.randint(0, 4, (120,), generator=g)  # concepts 0-3 trained, 4-5 never
    enc = torch.nn.Linear(4, 8)
    fit_stage("r", enc, src, torch.arange(4), WeightedLoss([{"name": "ce"}]),
              StageData(x=x, labels=y, x_val=x[:30], y_val=y[:30]),
              StageSettings(epochs=3, batch_size=32, lr=1e-2, weight_decay=0.0, patience=10, temperature=0.1,
                            progress=False), device=torch.device("cpu"))
    out = src().detach()
    assert not torch.allclose(out[:4], base[:4]) and torch.equal(out[4:], base[4:])
