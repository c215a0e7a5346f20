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

import numpy as np
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
    from kgdistill.pipeline import KG_GUIDED
    from kgdistill.task import build_task
    from kgdistill.train.device import pick_device, to_device
    from kgdistill.train.distill import _loss, build_student, build_teacher
    from kgdistill.train.trainer import StageData, StageSettings, embed, fit_stage
    from kgdistill.gnn.concepts import cosine_logits

    cfg = load_config(packaged_config(a.config), [f"train.device={a.device}"])
    device = pick_device(cfg.train.device)
    with tempfile.TemporaryDirectory() as tmp:
        task = build_task(cfg, Path(tmp), device)
    tr, va = task.idx("train"), task.idx("val")
    y = torch.as_tensor(np.where(task.seen[np.maximum(task.y, 0)] & (task.y >= 0), task.y, -1))
    cand = torch.as_tensor(np.flatnonzero(task.seen), device=device)
    remap = torch.full((task.num_candidates,), -1, dtype=torch.long)
    remap[cand.cpu()] = torch.arange(len(cand))
    y_tr = to_device(torch.where(y[tr] >= 0, remap[y[tr].clamp_min(0)], -1), device)
    y_va = to_device(torch.where(y[va] >= 0, remap[y[va].clamp_min(0)], -1), device)
    sim = task.concept_sim[cand.cpu()][:, cand.cpu()]
    out: dict = {"device": str(device), "config": a.config, "torch": torch.__version__,
                 "name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                          else platform.processor() or platform.machine()),
                 "train_samples": len(tr), "graph_nodes": int(task.node_features.shape[0]),
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
    tx = to_device(task.teacher.x, device)
    timed("teacher", t_enc, t_concepts, _loss(cfg.teacher.losses),
          StageData(x=tx[tr], labels=y_tr, x_val=tx[va], y_val=y_va), cfg.teacher)
    with torch.no_grad():
        concepts = t_concepts().float()
        z_t = embed(t_enc, tx[tr])
        logits_t = cosine_logits(z_t, concepts[cand], cfg.space.temperature)
    method = cfg.student.methods[KG_GUIDED]
    s_enc, s_src = build_student(cfg, task, method.prototypes, concepts)
    sx = to_device(task.student.x, device)
    sl = torch.as_tensor(task.ds.student_labelled[tr], device=device)
    timed("student_kg_guided", s_enc, s_src, _loss(method.losses),
          StageData(x=sx[tr], labels=torch.where(sl, y_tr, -1), x_val=sx[va], y_val=y_va, z_teacher=z_t,
                    logits_teacher=logits_t), cfg.student)

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
