"""Neighbour sampling for large graphs: the sampler's subgraphs, and the sampled GNN against the full one."""
from __future__ import annotations

import csv
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chance import ALPHA, p_group  # noqa: E402
from conftest import TINY  # noqa: E402

from kgdistill.gnn import GNNS  # noqa: E402
from kgdistill.gnn.concepts import GraphConcepts  # noqa: E402
from kgdistill.gnn.sampling import NeighbourSampler  # noqa: E402


def _graph(n=300, m=3000, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, m), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    return ei, torch.randn(n, 16, generator=g)


def test_fanout_bounds_in_edges_and_full_fanout_takes_every_in_edge():
    ei, _ = _graph()
    s = NeighbourSampler(ei, 300, [4, 3])
    seeds = torch.tensor([5, 17, 42, 99])
    torch.manual_seed(0)
    sub = s.sample(ei, seeds)
    glob = sub.nodes[sub.edge_index]                    # back to global ids: every edge is a real edge
    assert torch.equal(glob, ei[:, sub.edge_ids])
    assert torch.equal(sub.nodes[sub.seed_pos], seeds)
    first_hop = sub.edge_ids[torch.isin(ei[1, sub.edge_ids], seeds)]
    assert torch.bincount(ei[1, first_hop], minlength=300)[seeds].max() <= 4
    full = s.sample(ei, seeds, [-1, -1])
    for v in seeds.tolist():                            # every in-edge of every seed, and of their in-neighbours
        into_v = set(torch.nonzero(ei[1] == v).flatten().tolist())
        assert into_v <= set(full.edge_ids.tolist())
        for u in ei[0, list(into_v)].tolist():
            assert set(torch.nonzero(ei[1] == u).flatten().tolist()) <= set(full.edge_ids.tolist())


def test_whole_neighbourhood_evaluation_equals_the_full_graph_gnn():
    """GAT and R-GCN aggregate over a node's incoming edges only, so its L-hop in-neighbourhood gives exactly the
    full-graph output (GCN's symmetric norm also reads the outer nodes' degrees: close, not equal)."""
    ei, x = _graph()
    data = SimpleNamespace(edge_index=ei, edge_type=torch.zeros(ei.shape[1], dtype=torch.long),
                           edge_weight=torch.ones(ei.shape[1]))
    cands = torch.arange(0, 300, 7)
    for name in ("gat", "rgcn"):
        torch.manual_seed(1)
        own = {"heads": 2} if name == "gat" else {}
        gnn = GNNS.build(name, in_dim=16, out_dim=8, hidden=32, layers=2, dropout=0.0, num_relations=1, **own)
        same = GNNS.build(name, in_dim=16, out_dim=8, hidden=32, layers=2, dropout=0.0, num_relations=1, **own,
                          fixed_graph=False)
        same.load_state_dict(gnn.state_dict())
        full = GraphConcepts(gnn, x, data, cands).eval()
        sampled = GraphConcepts(same, x, data, cands, sampler=NeighbourSampler(ei, 300, [5, 5]), eval_chunk=10).eval()
        with torch.no_grad():
            assert torch.allclose(sampled(), full(), atol=1e-5), name
        sampled.train()
        out = sampled()                                 # a training step: sampled, differentiable, right shape
        out.sum().backward()
        assert out.shape == (len(cands), 8) and same.out.weight.grad is not None


def test_pipeline_trains_with_sampled_neighbourhoods(tmp_path):
    from kgdistill.config import load_config, packaged_config
    from kgdistill.pipeline import run_pipeline

    cfg = load_config(packaged_config("quick"), TINY + ["gnn.num_neighbors=[5,5]", "teacher.epochs=30",
                                                         "teacher.batch_size=16", "teacher.lr=0.003",
                                                         "eval.plots=false"])
    rd = run_pipeline(cfg, tmp_path / "run", progress=False, log=lambda *_: None)
    m = rd.metrics()
    # the teacher, whose GNN trained on sampled neighbourhoods, on 30 seen test samples of 12 diseases: top-1 and
    # MRR a random ranking reaches with p < 1/1000 (binomial tail / Hoeffding; about 26 of 30, p ~ 1e-24, seen).
    # Not kg_guided: fused with the training-free text baseline it is perfect here whatever the GNN does.
    seen = m["methods"]["teacher"]["seen"]
    assert p_group(seen, 12, "top1") < ALPHA and p_group(seen, 12, "mrr") < ALPHA, seen
    val = [float(r["val_mrr"]) for r in csv.DictReader((rd.path / "logs" / "teacher.csv").open())]
    assert max(val) > val[0] + 0.05  # the teacher and its sampled GNN learn


def test_the_sampler_moves_with_the_model_and_saves_nothing():
    ei, x = _graph()
    gnn = GNNS.build("gcn", in_dim=16, out_dim=8, hidden=16, layers=2, fixed_graph=False)
    data = SimpleNamespace(edge_index=ei, edge_type=torch.zeros(ei.shape[1], dtype=torch.long),
                           edge_weight=torch.ones(ei.shape[1]))
    src = GraphConcepts(gnn, x, data, torch.arange(10), sampler=NeighbourSampler(ei, 300, [5, 5]))
    assert not any(k.startswith("sampler") for k in src.state_dict())
    src.to(torch.float64)  # a dtype move leaves the integer index as it is
    assert src.sampler.rowptr.dtype == src.sampler.order.dtype == torch.long
    src.to("meta")  # a device move (meta: no data, any machine) takes the index along with the graph
    assert {b.device.type for b in src.sampler.buffers()} == {src.edge_index.device.type} == {"meta"}
    with pytest.raises(ValueError, match="the sampler indexes"):
        src.sampler.sample(ei[:, :10], torch.arange(3))
    with pytest.raises(ValueError, match="fixed_graph=False"):
        GraphConcepts(GNNS.build("gcn", in_dim=16, out_dim=8, hidden=16, layers=2), x, data, torch.arange(10),
                      sampler=NeighbourSampler(ei, 300, [5, 5]))
