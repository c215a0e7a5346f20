#!/usr/bin/env python3
"""Time per teacher epoch and peak memory of the concept GNN on synthetic graphs of 10^5 and 10^6 concepts.

    .venv/bin/python scripts/bench_large_graph.py [--sizes 100000 1000000] [--out runs/bench-large/summary.json]

Each (size, mode) runs in its own process on one torch thread (CPU seconds are reported, so a shared machine
does not distort them), so peak RSS is its own.  ``full`` is full-graph message passing
(the default for ontologies the size of HPO); ``sampled`` is ``gnn.num_neighbors: [15, 10]`` (a training step
runs the GNN on sampled neighbourhoods of the candidates; validation on their whole 2-hop neighbourhoods).
The graph has a skewed (hub-heavy) degree distribution and 10 edges per node; 2,000 concepts are candidates,
10,000 training samples (64-d vectors, MLP encoder) are labelled with them; batch 512; node features 128-d.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path


def one(n: int, mode: str, seed: int = 0) -> dict:
    import torch
    from types import SimpleNamespace

    from kgdistill.gnn import GNNS
    from kgdistill.gnn.concepts import GraphConcepts
    from kgdistill.gnn.sampling import NeighbourSampler
    from kgdistill.losses import WeightedLoss
    from kgdistill.train.trainer import StageData, StageSettings, fit_stage

    from bench_speed import peak_rss_gib  # this folder's speed benchmark: VmHWM, this process's own peak

    torch.set_num_threads(1)  # CPU seconds on one thread: comparable on a shared machine
    g = torch.Generator().manual_seed(seed)
    m = 10 * n
    src = (n * torch.rand(m, generator=g) ** 3).long()          # hubs: low ids are sources of many edges
    dst = torch.randint(0, n, (m,), generator=g)
    ei = torch.stack([src, dst])
    data = SimpleNamespace(edge_index=ei, edge_type=torch.zeros(m, dtype=torch.long), edge_weight=torch.ones(m))
    x = torch.randn(n, 128, generator=g)
    cands = torch.randperm(n, generator=g)[:2000]
    samples, k = 10_000, len(cands)
    y = torch.randint(0, k, (samples,), generator=g)
    feats = torch.randn(k, 64, generator=g)[y] + 0.5 * torch.randn(samples, 64, generator=g)
    torch.manual_seed(seed)
    sampler = NeighbourSampler(ei, n, [15, 10]) if mode == "sampled" else None
    gnn = GNNS.build("gcn", in_dim=128, out_dim=128, hidden=256, layers=2, dropout=0.1, fixed_graph=sampler is None)
    concepts = GraphConcepts(gnn, x, data, cands, sampler=sampler)
    enc = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.GELU(), torch.nn.Linear(256, 128))
    settings = StageSettings(epochs=1, batch_size=512, lr=1e-3, weight_decay=0.0, patience=5, temperature=0.05,
                             progress=False)
    t, cpu = time.perf_counter(), time.process_time()
    fit_stage("bench", enc, concepts, torch.arange(k), WeightedLoss([{"name": "ce"}]),
              StageData(x=feats, labels=y, x_val=feats[:1000], y_val=y[:1000]), settings, device=torch.device("cpu"))
    epoch, epoch_cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"nodes": n, "edges": m, "mode": mode, "epoch_cpu_s": round(epoch_cpu, 2), "epoch_wall_s": round(epoch, 2),
            "steps": -(-samples // 512), "peak_rss_gib": round(peak_rss_gib(), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--modes", nargs="+", default=["full", "sampled"])
    ap.add_argument("--out", type=Path, default=Path("runs/bench-large/summary.json"))
    ap.add_argument("--one", nargs=2, metavar=("N", "MODE"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(int(a.one[0]), a.one[1])))
        return
    rows = []
    for n in a.sizes:
        for mode in a.modes:
            r = subprocess.run([sys.executable, __file__, "--one", str(n), mode], capture_output=True, text=True)
            row = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {
                "nodes": n, "mode": mode, "error": (r.stderr.strip().splitlines() or ["killed"])[-1][:200]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    import torch
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"date": str(date.today()), "machine": platform.processor() or platform.machine(),
                                 "torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}, indent=2))
    print("| nodes | edges | mode | CPU s per epoch (1 thread) | steps | peak RSS (GiB) |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['nodes']:,} | {r.get('edges', 0):,} | {r['mode']} | {r.get('epoch_cpu_s', r.get('error'))} | "
              f"{r.get('steps', '')} | {r.get('peak_rss_gib', '')} |")


if __name__ == "__main__":
    main()
