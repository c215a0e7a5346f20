#!/usr/bin/env python3
"""Run the demo over several seeds and summarise mean and spread for docs/benchmarks/simulated_demo.md.

    .venv/bin/python scripts/bench_demo.py [--quick] [--seeds 0 1 2] [--out runs/bench-demo]

Writes OUT/summary.json (every figure of every seed) and OUT/summary.md (the table pasted into
docs/benchmarks/simulated_demo.md).  Settings are the packaged configs' (chosen on validation data only).
"""
from __future__ import annotations

import argparse
import json
import platform
from datetime import date
from pathlib import Path

import numpy as np
import torch

from kgdistill.config import load_config, packaged_config
from bench_quality import run_or_reuse  # noqa: E402 (scripts/ is on sys.path)

ORDER = ("teacher", "text_baseline", "prototype", "student_alone", "kd", "kg_guided", "kg_guided_no_fusion")


def cell(values: list[float]) -> str:
    a = 100 * np.asarray(values, dtype=float)
    return f"{a.mean():.1f} ± {a.std(ddof=1) if len(a) > 1 else 0.0:.1f}"


def summarise(runs: list[dict]) -> str:
    names = [m for m in ORDER if m in runs[0]["methods"]]
    rows = ["| method | seen top-1 | seen top-10 | unseen top-1 | unseen top-10 | unseen MRR | H (top-1) | mistake severity |",
            "|---|---|---|---|---|---|---|---|"]
    for m in names:
        es = [r["methods"][m] for r in runs]

        def get(group, key):
            vals = [e[group][key] for e in es if group in e]
            return cell(vals) if vals else "–"

        h = [e["harmonic_top1"] for e in es if "harmonic_top1" in e]
        sev = np.asarray([e["mistake_severity"] for e in es])
        rows.append(f"| {m} | {get('seen', 'top1')} | {get('seen', 'top10')} | {get('unseen', 'top1')} | "
                    f"{get('unseen', 'top10')} | {get('unseen', 'mrr')} | {cell(h) if h else '–'} | "
                    f"{sev.mean():.3f} ± {sev.std(ddof=1) if len(sev) > 1 else 0:.3f} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=Path("runs/bench-demo"))
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    cfg_name = "quick" if args.quick else "default"
    runs, secs = [], []
    for seed in args.seeds:
        cfg = load_config(packaged_config(cfg_name), [f"seed={seed}", *args.overrides])
        # a complete run of this config is reused, an interrupted one continued, another config's never deleted
        rd = run_or_reuse(cfg.model_dump(mode="json"), args.out / f"seed{seed}", print)
        runs.append(rd.metrics())
        secs.append(runs[-1]["seconds"])
    meta = {"command": f"python scripts/bench_demo.py {'--quick ' if args.quick else ''}--seeds {' '.join(map(str, args.seeds))}",
            "date": date.today().isoformat(), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
            f"{platform.python_implementation()} {platform.python_version()}, torch {torch.__version__}",
            "seconds_per_run": [round(s, 1) for s in secs], "chance_top1": runs[0]["chance_top1"],
            "num_candidates": runs[0]["num_candidates"], "num_unseen": runs[0]["num_unseen"]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=2))
    md = summarise(runs)
    (args.out / "summary.md").write_text(md + "\n")
    print(json.dumps(meta, indent=2))
    print(md)


if __name__ == "__main__":
    main()
