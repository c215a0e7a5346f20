#!/usr/bin/env python3
"""Frozen vs LoRA vs full fine-tuning of the text student (issue 18): trainable parameters, seconds per epoch,
peak memory and quality, on a small HPO medical task, one run per (mode, seed), each in its own process.

    .venv/bin/python scripts/bench_lora.py [--seeds 0 1 2] [--modes frozen lora finetune] [--runs runs/bench-lora]
        [--set key=value ...]

Every run trains the same teacher and the kg_guided student only, calibration off (the modes are compared as
trained), ``train.num_threads=1``.  Peak memory: the run process's maximum resident set size (``wait4``), the
whole run (teacher, text model, student).  Writes RUNS/lora.json (every run) and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np

# the quick medical task cut to a size a CPU fine-tunes MiniLM on in minutes
TASK = ["data.hpo.num_diseases=16", "data.hpo.train_per_disease=8", "data.hpo.val_per_disease=3",
        "data.hpo.test_per_disease=3", "teacher.epochs=8", "student.epochs=5", "student.patience=5", "student.batch_size=16",
        "teacher.batch_size=16",
        "calibration.enabled=false", "eval.plots=false", "train.num_threads=1",
        "student.methods={kg_guided: {concepts: gnn, fusion: false, losses: [{name: ce}, {name: kd, temperature: 4.0},"
        " {name: anchor, weight: 0.5}, {name: graph_relational, alpha: 0.5}]}}"]
MODES = {"frozen": ["student.encoder.mode=frozen"],
         "lora": ["student.encoder.mode=lora", "student.encoder.lora={rank: 8, alpha: 16, target_modules: [query, value]}"],
         "finetune": ["student.encoder.mode=finetune"]}


def run_one(out: Path, overrides: list[str]) -> int:
    """Train in a child process; returns its peak resident memory in bytes."""
    cmd = [sys.executable, "-m", "kgdistill", "train", "kgdistill/configs/quick.yaml", "--out", str(out),
           "--overwrite", "--quiet", *[a for o in overrides for a in ("--set", o)]]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench_lora: {' '.join(cmd)} failed ({os.waitstatus_to_exitcode(status)})")
    return usage.ru_maxrss * 1024


def trainable(run: Path) -> tuple[int, int]:
    """Trainable and total parameters of the kg_guided student's encoder, as the run built it."""
    from kgdistill.model import DistilledModel

    enc = DistilledModel.load(run, methods=["kg_guided"]).students["kg_guided"].encoder
    return (sum(p.numel() for p in enc.parameters() if p.requires_grad), sum(p.numel() for p in enc.parameters()))


def measure(mode: str, seed: int, runs: Path, extra: list[str]) -> dict:
    out = runs / f"{mode}-seed{seed}"
    peak = run_one(out, [*TASK, *MODES[mode], f"seed={seed}", *extra])
    m = json.loads((out / "metrics.json").read_text())
    st, kg = m["training"]["kg_guided"], m["methods"]["kg_guided"]
    train, total = trainable(out)
    return {"mode": mode, "seed": seed, "trainable": train, "parameters": total,
            "seconds_per_epoch": st["seconds"] / st["epochs_run"], "peak_rss_mb": peak / 2**20,
            "adapter_file_bytes": (out / "checkpoints" / "student_kg_guided.safetensors").stat().st_size,
            "seen_top1": kg["seen"]["top1"], "unseen_top1": kg["unseen"]["top1"], "all_top1": kg["all"]["top1"],
            "seen_mrr": kg["seen"]["mrr"]}


def step_cost(steps: int = 5, notes: int = 16) -> dict[str, float]:
    """CPU seconds (this process, one thread) of one training step of the text encoder alone, per mode, on the
    same batch of notes: a load-independent cost, since wall time on a shared machine follows the others' load."""
    import time

    import torch

    from kgdistill.data.hpo_benchmark import generate_hpo_benchmark
    from kgdistill.config import HPOBenchmarkConfig
    from kgdistill.data.paired import load_paired
    from kgdistill.data.prepare import PreparedModality, sentence_index
    from kgdistill.encoders import ENCODERS
    from kgdistill.encoders.text_embedder import TextEmbedder, default_model_path

    torch.set_num_threads(1)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        ds = load_paired(generate_hpo_benchmark(Path(tmp), HPOBenchmarkConfig(num_diseases=16, train_per_disease=8),
                                                seed=0))
    texts = ds.modalities[ds.student].values[:notes]
    x, sentences, _ = sentence_index(list(texts))
    table = torch.from_numpy(TextEmbedder().embed(sentences))
    prep = PreparedModality("note", "text", x, {"sentences": table}, sentences=sentences,
                            text_model=default_model_path())
    out = {}
    for mode, extra in (("frozen", {}), ("lora", {"lora": {"rank": 8, "alpha": 16}}), ("finetune", {})):
        torch.manual_seed(0)
        enc = ENCODERS.get("text").from_modality(prep, 128, hidden=256, mode=mode, **extra)
        opt = torch.optim.AdamW([p for p in enc.parameters() if p.requires_grad], lr=1e-4)
        enc.train()
        t0 = time.process_time()
        for _ in range(steps):
            opt.zero_grad()
            enc(x).pow(2).mean().backward()
            opt.step()
        out[mode] = (time.process_time() - t0) / steps
    return {"notes": notes, "sentences": len(sentences), "cpu_seconds_per_step": out}


def table(rows: list[dict]) -> str:
    out = ["| mode | seeds | trainable params | saved student file | s/epoch | peak RSS (MB) | seen top-1 | "
           "unseen top-1 | all top-1 |", "|---|---|---|---|---|---|---|---|---|"]
    for mode in MODES:
        r = [x for x in rows if x["mode"] == mode]
        if not r:
            continue

        def ms(k, scale=100.0):
            v = scale * np.array([x[k] for x in r])
            return f"{v.mean():.1f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.1f}"
        out.append(f"| {mode} | {len(r)} | {r[0]['trainable']:,} of {r[0]['parameters']:,} | "
                   f"{r[0]['adapter_file_bytes'] / 1e6:.2f} MB | {ms('seconds_per_epoch', 1.0)} | "
                   f"{ms('peak_rss_mb', 1.0)} | {ms('seen_top1')} | {ms('unseen_top1')} | {ms('all_top1')} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    ap.add_argument("--runs", type=Path, default=Path("runs/bench-lora"))
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--step-cost", action="store_true", help="only the CPU cost of one text-encoder step per mode")
    args = ap.parse_args(argv)
    if args.step_cost:
        print(json.dumps(step_cost()))
        return
    args.runs.mkdir(parents=True, exist_ok=True)
    path = args.runs / "lora.json"
    rows = json.loads(path.read_text())["runs"] if path.is_file() else []
    meta = {"command": "python scripts/bench_lora.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "date": date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    for seed in args.seeds:      # seed-major: an interrupted benchmark still has every mode of the first seeds
        for mode in args.modes:
            if any(r["mode"] == mode and r["seed"] == seed for r in rows):
                continue
            rows.append(measure(mode, seed, args.runs, args.overrides))
            path.write_text(json.dumps({"meta": meta, "task": TASK, "modes": MODES, "runs": rows}, indent=1))
            print(f"[bench_lora] {mode} seed {seed}: {json.dumps(rows[-1])}", flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
