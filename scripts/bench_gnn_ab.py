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
import os
import sys
import tempfile
from pathlib import Path

from bench_speed import run_worker, save_whole_hpo  # this folder's speed benchmark


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
    best: dict[tuple[str, int], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="gnn-ab-") as tmp:
        path = Path(tmp) / "hpo_full.pt"
        kg = save_whole_hpo(path)
        for _ in range(args.rounds):
            for name, tree in trees.items():
                for threads in (1, 2):
                    r = run_worker({"graph": "file", "path": str(path), "features": 768, "repeats": 5,
                                    "threads": threads}, checkout=tree)
                    if "error" in r:
                        sys.exit(f"bench_gnn_ab: {tree}: {r['error']}")
                    cpu, wall = best.get((name, threads), (float("inf"), float("inf")))
                    best[(name, threads)] = (min(cpu, r["step_cpu_s"]), min(wall, r["step_wall_s"]))
    print(f"whole HPO graph: {kg.num_nodes:,} nodes, {r['edges']:,} directed edges; "
          f"load average {os.getloadavg()[0]:.2f}")
    print("| checkout | 1 thread, CPU s | 2 threads, wall s |\n|---|---:|---:|")
    for name in trees:
        print(f"| {name} ({trees[name]}) | {best[(name, 1)][0]:.3f} | {best[(name, 2)][1]:.3f} |")
    print(f"| new / base | {best[('new', 1)][0] / best[('base', 1)][0]:.2f}x | "
          f"{best[('new', 2)][1] / best[('base', 2)][1]:.2f}x |")


if __name__ == "__main__":
    main()
