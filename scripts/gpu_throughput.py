#!/usr/bin/env python3
"""Throughput of the real training steps on one device: teacher and graph-guided student, GNN forward+backward.

    .venv/bin/python scripts/gpu_throughput.py [--device cuda] [--config quick] [--out runs/gpu-check/throughput.json]

Builds the task of a packaged config (the quick demo by default: HPO, MiniLM text), then times
``fit_stage`` for the teacher (concept-set encoder + GNN over the graph) and for the ``kg_guided``
student (text encoder, KD + anchor + graph-relational terms) after one warm-up epoch, and the GNN alone.
Samples per second count training samples; peak memory is the device's (CUDA) or the process's RSS (CPU).
Run by scripts/gpu_check.sh; also runs on the CPU for a same-script baseline.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--config", default="quick")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("runs/gpu-check/throughput.json"))
    a = ap.parse_args()

    from kgdistill.config import load_config, packaged_config
    from kgdistill.losses import WeightedLoss
    from kgdistill.model import build_student
    from kgdistill.results import KG_GUIDED
    from kgdistill.task import build_task
    from kgdistill.train.device import pick_device
    from kgdistill.train.distill import build_teacher, pass_data, student_data, teacher_data, teacher_targets
    from kgdistill.train.trainer import StageSettings, fit_stage

    cfg = load_config(packaged_config(a.config), [f"train.device={a.device}"])
    device = pick_device(cfg.train.device)
    with tempfile.TemporaryDirectory() as tmp:
        task = build_task(cfg, Path(tmp), device)
    p = pass_data(task, task.seen, device)
    cand, sim = p.cand, p.sim
    out: dict = {"device": str(device), "config": a.config, "torch": torch.__version__,
                 "name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                          else platform.processor() or platform.machine()),
                 "train_samples": len(p.tr), "graph_nodes": int(task.node_features.shape[0]),
                 "graph_edges": int(task.graph_data.edge_index.shape[1]), "amp_bf16": cfg.train.amp and device.type == "cuda"}

    def timed(name, enc, concepts, losses, data, stage):
        settings = StageSettings(epochs=1, batch_size=stage.batch_size, lr=stage.lr, weight_decay=stage.weight_decay,
                                 patience=10**6, temperature=cfg.space.temperature, amp=cfg.train.amp, progress=False)
        fit_stage(name, enc, concepts, cand, losses, data, settings, device=device, concept_sim=sim)  # warm-up
        settings.epochs = a.epochs
        _sync(device)
        t = time.perf_counter()
        fit_stage(name, enc, concepts, cand, losses, data, settings, device=device, concept_sim=sim)
        _sync(device)
        dt = time.perf_counter() - t
        out[name] = {"samples_per_s": round(a.epochs * len(data.x) / dt, 1), "seconds_per_epoch": round(dt / a.epochs, 3),
                     "batch_size": stage.batch_size}

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    t_enc, t_concepts = build_teacher(cfg, task)
    t_data = teacher_data(task, p, device)
    timed("teacher", t_enc, t_concepts, WeightedLoss.from_specs(cfg.teacher.losses), t_data, cfg.teacher)
    concepts, z_t, logits_t = teacher_targets(t_enc, t_concepts, t_data, cand, cfg.space.temperature)
    method = cfg.student.methods[KG_GUIDED]
    st = build_student(cfg, method, task.student, concepts)
    timed("student_kg_guided", st.encoder, st.concepts, WeightedLoss.from_specs(method.losses),
          student_data(task, p, device, z_t, logits_t),
          cfg.student)

    t_concepts.train()
    for _ in range(2):  # warm-up
        t_concepts().float().square().mean().backward()
    _sync(device)
    reps = 10
    t = time.perf_counter()
    for _ in range(reps):
        t_concepts().float().square().mean().backward()
    _sync(device)
    out["gnn_forward_backward_s"] = round((time.perf_counter() - t) / reps, 4)
    out["peak_memory_gib"] = round((torch.cuda.max_memory_allocated(device) if device.type == "cuda" else
                                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**30, 2)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
