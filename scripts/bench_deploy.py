#!/usr/bin/env python3
"""Deployment benchmark: fp32, int8 and pruned exports of a text student and a sensor student.

For each variant: model file size, latency at batch 1 and 32 (p50, p95; wall and process CPU time), throughput
at batch 32, and top-1 / top-10 on the run's test set with the change against fp32 (a change over 1 point is
flagged).  Variants are timed interleaved (round-robin), so load from other processes falls on all of them.

    .venv/bin/python scripts/bench_deploy.py --text-run RUN [--sensor-run RUN] [--work runs/bench-deploy]
        [--repeats 40] [--threads 1] [--prune 0.3]

Without --sensor-run it trains the test suite's synthetic two-channel sensor task (tests/deploy_fixtures.py,
1-D CNN student) into --work.  Latency is scoring only (tokenising included for text; no HTTP: see
scripts/load_test.py for the served figures)."""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def test_set(run: Path):
    from kgdistill.data.paired import load_paired
    from kgdistill.run_dir import RunDir

    data = run / "data" if (run / "data" / "dataset.yaml").is_file() else Path(RunDir.open(run).config().data.path)
    ds = load_paired(data)
    idx = ds.split_idx("test")
    values = ds.modalities[ds.student].values
    x = [values[i] for i in idx] if ds.modalities[ds.student].kind == "text" else np.asarray(values[idx], np.float32)
    return x, [ds.labels[i] for i in idx]


def batches(x, size: int):
    return [x[s:s + size] for s in range(0, len(x), size)]


def quality(model, x, labels) -> dict[str, float]:
    score = (lambda b: model.score_texts(b)[0]) if model.kind == "text" else model.score_inputs
    s = np.concatenate([score(b) for b in batches(x, 32)])
    truth = np.asarray([model.index[y] for y in labels])
    rank = (s > s[np.arange(len(s)), truth][:, None]).sum(1) + 1
    return {"top1": 100 * float((rank == 1).mean()), "top10": 100 * float((rank <= 10).mean()), "n": len(s)}


def timed(model, batch) -> tuple[float, float]:
    score = (lambda b: model.score_texts(b)[0]) if model.kind == "text" else model.score_inputs
    w, c = time.perf_counter(), time.process_time()
    score(batch)
    return time.perf_counter() - w, time.process_time() - c


def latencies(models: dict, x, repeats: int) -> dict[str, dict]:
    """Round-robin over the variants: batch 1 (cycling over test inputs) and batch 32."""
    big = (x * (32 // len(x) + 1))[:32] if isinstance(x, list) else np.resize(x, (32, *x.shape[1:]))
    out = {v: {"b1": [], "b32": []} for v in models}
    for m in models.values():   # warm-up
        timed(m, x[:1]), timed(m, big)
    for r in range(repeats):
        for v, m in models.items():
            out[v]["b1"].append(timed(m, x[r % len(x):r % len(x) + 1]))
            if r % 2 == 0:
                out[v]["b32"].append(timed(m, big))
    return out


def summarise(samples: list[tuple[float, float]], batch: int) -> dict[str, float]:
    wall, cpu = np.asarray(samples).T * 1000
    return {"wall_p50_ms": float(np.percentile(wall, 50)), "wall_p95_ms": float(np.percentile(wall, 95)),
            "cpu_p50_ms": float(np.percentile(cpu, 50)), "cpu_p95_ms": float(np.percentile(cpu, 95)),
            "throughput_per_s": batch * 1000 / float(np.percentile(wall, 50)),
            "cpu_throughput_per_s": batch * 1000 / float(np.percentile(cpu, 50)), "repeats": len(samples)}


def bench_student(name: str, run: Path, work: Path, args) -> dict:
    from kgdistill.deploy.export import export_run
    from kgdistill.deploy.onnx_model import ExportedModel

    variants = {"fp32": {}, "int8": {"quantize": "int8"}, f"pruned{args.prune:g}": {"prune": args.prune}}
    models = {}
    for v, opts in variants.items():
        folder = work / "exports" / f"{name}-{v}"
        if not (folder / "manifest.json").is_file():
            export_run(run, folder, log=lambda *_: None, **opts)
        models[v] = ExportedModel(folder, threads=args.threads)
    x, labels = test_set(run)
    lat = latencies(models, x, args.repeats)
    rows = {}
    for v, m in models.items():
        rows[v] = {"size_mb": sum(f.stat().st_size for f in m.folder.glob("*.onnx")) / 1e6, **quality(m, x, labels),
                   "b1": summarise(lat[v]["b1"], 1), "b32": summarise(lat[v]["b32"], 32)}
    for v in rows:
        rows[v]["top1_change"] = rows[v]["top1"] - rows["fp32"]["top1"]
        rows[v]["top10_change"] = rows[v]["top10"] - rows["fp32"]["top10"]
        rows[v]["speedup_b32"] = rows[v]["b32"]["throughput_per_s"] / rows["fp32"]["b32"]["throughput_per_s"]
        rows[v]["cpu_speedup_b32"] = (rows[v]["b32"]["cpu_throughput_per_s"]
                                      / rows["fp32"]["b32"]["cpu_throughput_per_s"])
    return {"run": str(run), "kind": models["fp32"].kind, "candidates": len(models["fp32"].candidates),
            "test_samples": len(labels), "variants": rows}


def table(results: dict) -> str:
    head = ("| student | variant | ONNX files MB | b1 p50 / p95 ms | b32 p50 / p95 ms | b32 inputs/s "
            "(x fp32; CPU-time x) | top-1 % (change) | top-10 % (change) |\n|---|---|---|---|---|---|---|---|")
    lines = [head]
    for s, r in results["students"].items():
        for v, x in r["variants"].items():
            flag = " **> 1 point**" if x["top1_change"] < -1 else ""
            lines.append(f"| {s} | {v} | {x['size_mb']:.1f} | {x['b1']['wall_p50_ms']:.1f} / "
                         f"{x['b1']['wall_p95_ms']:.1f} | {x['b32']['wall_p50_ms']:.1f} / {x['b32']['wall_p95_ms']:.1f}"
                         f" | {x['b32']['throughput_per_s']:.0f} ({x['speedup_b32']:.2f}x; {x['cpu_speedup_b32']:.2f}x)"
                         f" | {x['top1']:.1f} ({x['top1_change']:+.1f}){flag} | {x['top10']:.1f} "
                         f"({x['top10_change']:+.1f}) |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--text-run", type=Path, help="Without it, the sensor student only.")
    p.add_argument("--sensor-run", type=Path)
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-deploy")
    p.add_argument("--repeats", type=int, default=40)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--prune", type=float, default=0.3)
    p.add_argument("--no-sensor", action="store_true", help="The text student only.")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    sensor = args.sensor_run
    if sensor is None and not args.no_sensor:
        sys.path.insert(0, str(ROOT / "tests"))
        from deploy_fixtures import train_sensor_run

        sensor = args.work / "sensor" / "run"
        if not (sensor / "run.json").is_file():
            train_sensor_run(args.work / "sensor", per_class=(20, 10, 50))   # 200 test signals
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    results = {"date": datetime.now(timezone.utc).isoformat(timespec="minutes"), "commit": commit.stdout.strip(),
               "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores (shared)",
               "threads": args.threads, "repeats": args.repeats,
               "students": {}}
    if args.text_run:
        results["students"]["text"] = bench_student("text", args.text_run, args.work, args)
    if sensor:
        results["students"]["sensor"] = bench_student("sensor", sensor, args.work, args)
    name = "-".join(results["students"])
    (args.work / f"summary-{name}.json").write_text(json.dumps(results, indent=2))
    print(table(results))
    print(f"\n{results['date']}, commit {results['commit']}, {results['machine']}, ORT threads {args.threads}")


if __name__ == "__main__":
    main()
