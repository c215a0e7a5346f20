#!/usr/bin/env python3
"""The whole-HPO GNN step of two checkouts of kgdistill, side by side in one run (a same-run baseline).

    git worktree add /tmp/kgdistill-base e26c7be
    .venv/bin/python scripts/bench_gnn_ab.py /tmp/kgdistill-base . [--rounds 2]

Each checkout's own ``scripts/bench_speed.py --gnn-worker`` times forward+backward of the default config's GCN
over the whole HPO graph (every annotated disease a candidate, 768-d node features), in a fresh process, on 1
and on 2 threads; checkouts and thread counts alternate, every round, and each side keeps its fastest round.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from kgdistill.graph.hpo import build_hpo_graph


def worker(tree: Path, spec: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONWARNINGS": "ignore"}  # that checkout's kgdistill
    proc = subprocess.run([sys.executable, str(tree / "scripts" / "bench_speed.py"), "--gnn-worker", json.dumps(spec)],
                          capture_output=True, text=True, cwd=tree, env=env, timeout=1800)
    if proc.returncode != 0:
        sys.exit(f"bench_gnn_ab: {tree}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", type=Path, help="the baseline checkout")
    ap.add_argument("new", type=Path, help="the checkout measured against it")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    trees = {"base": args.base.resolve(), "new": args.new.resolve()}
    for name, tree in trees.items():
        if not (tree / "scripts" / "bench_speed.py").is_file():
            sys.exit(f"bench_gnn_ab: {tree}: not a kgdistill checkout (no scripts/bench_speed.py)")
    kg = build_hpo_graph(None, restrict=False)
    data = kg.to_pyg()
    best: dict[tuple[str, int], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="gnn-ab-") as tmp:
        path = Path(tmp) / "hpo_full.pt"
        torch.save({"num_nodes": kg.num_nodes, "edge_index": data.edge_index, "edge_weight": data.edge_weight,
                    "candidates": torch.as_tensor([i for i, t in enumerate(kg.types) if t == "disease"])}, path)
        for _ in range(args.rounds):
            for name, tree in trees.items():
                for threads in (1, 2):
                    r = worker(tree, {"graph": "file", "path": str(path), "features": 768, "repeats": 5,
                                      "threads": threads})
                    cpu, wall = best.get((name, threads), (float("inf"), float("inf")))
                    best[(name, threads)] = (min(cpu, r["step_cpu_s"]), min(wall, r["step_wall_s"]))
    print(f"whole HPO graph: {kg.num_nodes:,} nodes, {int(data.edge_index.shape[1]):,} directed edges; "
          f"load average {os.getloadavg()[0]:.2f}")
    print("| checkout | 1 thread, CPU s | 2 threads, wall s |\n|---|---:|---:|")
    for name in trees:
        print(f"| {name} ({trees[name]}) | {best[(name, 1)][0]:.3f} | {best[(name, 2)][1]:.3f} |")
    print(f"| new / base | {best[('new', 1)][0] / best[('base', 1)][0]:.2f}x | "
          f"{best[('new', 2)][1] / best[('base', 2)][1]:.2f}x |")


if __name__ == "__main__":
    main()
