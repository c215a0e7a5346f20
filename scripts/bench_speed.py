#!/usr/bin/env python3
"""Speed and scale benchmark: step and epoch costs, GNN scaling, text cache, demo peak memory.

What it measures: the cost per epoch of the graph terms (kg_guided vs kd student), kgdistill's training loop
against torchdistill and a plain PyTorch loop on one KD job, the GNN over the whole HPO graph and over
synthetic graphs up to 10^6 nodes, the text-embedding cache cold and warm, and the quick demo's peak memory.

    .venv/bin/python scripts/bench_speed.py [--quick] [--out runs/bench-speed/summary.json] [--only gnn ...]

Every ratio compares runs made in this process, interleaved, each side taking the fastest of its repeats
(as timeit advises: slower repeats measure interference, not the code; all repeats are in the JSON).  Torch
runs on one thread (--threads) and costs are CPU seconds of this process: on a machine shared with other
jobs, OpenMP threads spin-waiting for a descheduled sibling make multi-thread wall times swing 3-20x, while
single-thread CPU time stays what the work costs on an idle core.  Wall seconds are recorded too, and the
whole-HPO GNN step is also timed (wall) with every core.
Peak memory is the max RSS of a fresh subprocess (torch allocates outside tracemalloc's view).  Offline:
the text model ships in a package and every workload is generated here.  torchdistill is optional
(`pip install -e .[bench]`); without it that column is reported as missing.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kgdistill.config import load_config, packaged_config
from kgdistill.data.modalities import split_sentences
from kgdistill.encoders.mlp import MLPEncoder
from kgdistill.encoders.text_embedder import TextEmbedder
from kgdistill.gnn import GNNS
from kgdistill.gnn.concepts import FixedConcepts, GraphConcepts, LearnedConcepts, cosine_logits
from kgdistill.gnn.features import principal_components
from kgdistill.losses import WeightedLoss
from kgdistill.fileio import write_json_atomic
from kgdistill.model import build_student
from kgdistill.train.distill import build_teacher, pass_data, student_data, teacher_data, teacher_targets
from kgdistill.train.trainer import StageData, StageSettings, embed, fit_stage

GIB = 2**30
RSS_LIMIT_GIB = 12.0
# the whole-HPO GNN step at four widths: every 768-d node feature into hidden 256 (the default before session 6),
# their 128 principal components (gnn.input_dim), then hidden 192 (today's default) and 128
HPO_VARIANTS = {"hpo_full": {"input_dim": None, "hidden": 256}, "hpo_full_reduced": {"input_dim": 128, "hidden": 256},
                "hpo_full_mid": {"input_dim": 128, "hidden": 192},
                "hpo_full_narrow": {"input_dim": 128, "hidden": 128}}
PARTS = ("epoch", "gnn", "frameworks", "text_cache", "demo")
CPU = torch.device("cpu")
SEED = 0
# the classic KD objective, as the `kd` method of kgdistill/configs/default.yaml writes it
KD_TERMS = [{"name": "ce", "weight": 1.0}, {"name": "kd", "weight": 1.0, "temperature": 4.0}]

TORCHDISTILL_YAML = """\
train_data_loader:
  dataset_id: train
  kwargs: {num_workers: 0, drop_last: false}
teacher:
  forward_proc: bench_teacher_view
  requires_grad: false
student:
  forward_proc: bench_student_view
optimizer:
  key: AdamW
  kwargs: {}
  max_grad_norm: 5.0
scheduler:
  key: OneCycleLR
  kwargs: {anneal_strategy: cos}
  scheduling_step: 1
criterion:
  key: WeightedSumLoss
  kwargs:
    sub_terms:
      kd:
        criterion:
          key: KDLoss
          kwargs: {student_module_path: ., student_module_io: output, teacher_module_path: ., teacher_module_io: output,
                   temperature: 4.0, alpha: 1.0, beta: 1.0, reduction: batchmean}
        weight: 1.0
"""


# --------------------------------------------------------------------------- helpers
def peak_rss_gib(pid: int | str = "self") -> float:
    """Peak RSS (VmHWM) of a process.  Not ru_maxrss: Linux carries that over fork and exec, so every child of
    this (large) process would start at the parent's size; VmHWM starts afresh with the exec'd program."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / GIB  # kB
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo")
    names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
             if ln.startswith("model name")] if cpuinfo.is_file() else []
    try:
        td = metadata.version("torchdistill")
    except metadata.PackageNotFoundError:
        td = None
    return {"date": date.today().isoformat(), "cpu": names[0] if names else platform.processor(),
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "torchdistill": td, "python": platform.python_version(), "platform": platform.platform(),
            "ram_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB, 1),
            "load_avg_start": [round(v, 2) for v in os.getloadavg()]}


class Clock:
    """Wall and CPU seconds of a block (CPU: all threads of this process)."""

    def __enter__(self) -> "Clock":
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu


def best(values: list[float]) -> float:
    return float(min(values))


def one_cycle(s: StageSettings, steps_per_epoch: int) -> dict:
    """OneCycleLR arguments exactly as fit_stage sets them, so every loop follows the same schedule."""
    total = s.epochs * steps_per_epoch + 1
    return {"max_lr": s.lr, "total_steps": total, "pct_start": min(0.5, max(0.1, 2.0 / total))}


def val_mrr(logits: torch.Tensor, y: torch.Tensor) -> float:
    rank = (logits > logits.gather(1, y.unsqueeze(1))).sum(1) + 1
    return float((1.0 / rank.float()).mean())


# --------------------------------------------------------------------------- 1. graph terms per epoch
def student_epoch_cost(cfg, task, epochs: int, repeats: int) -> dict:
    """Seconds per epoch of the `kd` and `kg_guided` students through fit_stage, on the demo task.

    The data are prepared as fit_models prepares them; the teacher is left untrained (step costs do not
    depend on its values) and early stopping is off, so both students run the same number of epochs.
    """
    p = pass_data(task, task.seen, CPU)
    tr, cand, sim = p.tr, p.cand, p.sim
    torch.manual_seed(SEED)
    t_enc, t_concepts = build_teacher(cfg, task)
    concepts, z_t, logits_t = teacher_targets(t_enc, t_concepts, teacher_data(task, p, CPU), cand,
                                              cfg.space.temperature)
    data = student_data(task, p, CPU, z_t, logits_t)
    settings = StageSettings(epochs=epochs, batch_size=cfg.student.batch_size, lr=cfg.student.lr,
                             weight_decay=cfg.student.weight_decay, patience=epochs + 1,
                             temperature=cfg.space.temperature, amp=cfg.train.amp, progress=False)
    names = ("kd", "kg_guided")
    per_epoch: dict[str, list[float]] = {n: [] for n in names}
    wall: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:  # alternate the order: drifting load hits both
            method = cfg.student.methods[name]
            torch.manual_seed(SEED + 1)
            st = build_student(cfg, method, task.student, concepts)
            enc, src = st.encoder, st.concepts
            loss = WeightedLoss.from_specs(method.losses)
            with Clock() as clock:
                res = fit_stage(f"student:{name}", enc, src, cand, loss, data, settings, device=CPU,
                                concept_sim=sim, seed=SEED + 1)
            per_epoch[name].append(clock.cpu / len(res.history))
            wall[name].append(clock.wall / len(res.history))
    kd, kg = best(per_epoch["kd"]), best(per_epoch["kg_guided"])
    return {"config": cfg.name, "train_samples": len(tr), "candidates": len(cand),
            "steps_per_epoch": -(-len(tr) // settings.batch_size), "epochs": epochs, "repeats": repeats,
            "kd_s_per_epoch": kd, "kg_guided_s_per_epoch": kg, "ratio": kg / kd,
            "cpu_s_per_epoch": per_epoch, "wall_s_per_epoch": wall, "kg_guided_terms": [s.name for s in cfg.student.methods["kg_guided"].losses]}


# --------------------------------------------------------------------------- 2. kgdistill vs torchdistill vs plain
class CosineClassifier(nn.Module):
    """Encoder + concept embeddings -> cosine logits: what fit_stage computes, as one module for the other loops."""

    def __init__(self, encoder: nn.Module, concepts: nn.Module, temperature: float):
        super().__init__()
        self.encoder, self.concepts, self.temperature = encoder, concepts, temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cosine_logits(self.encoder(x), self.concepts(), self.temperature)


class PairedVectors(torch.utils.data.Dataset):
    """((teacher view, student view), label) per sample: the cross-modal pairing, as torchdistill reads data."""

    def __init__(self, x_t: torch.Tensor, x_s: torch.Tensor, y: torch.Tensor):
        self.x_t, self.x_s, self.y = x_t, x_s, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return (self.x_t[i], self.x_s[i]), self.y[i]


class SameOrderSampler(torch.utils.data.Sampler):
    """One randperm per epoch from a seeded generator: the batch order fit_stage draws."""

    def __init__(self, data_source, seed: int):
        self.n = len(data_source)
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(torch.randperm(self.n, generator=self.gen).tolist())


def kd_workload(n: int, features: int, classes: int, dim: int, temperature: float) -> SimpleNamespace:
    """Paired in-memory vectors (two views of `classes` clusters), one teacher and one student initialisation."""
    g = torch.Generator().manual_seed(SEED)
    n_val = n // 20
    y = torch.randint(classes, (n + n_val,), generator=g)
    centres = torch.randn(2, classes, features, generator=g)
    x_t = centres[0][y] + torch.randn(len(y), features, generator=g)
    x_s = centres[1][y] + 2.0 * torch.randn(len(y), features, generator=g)
    torch.manual_seed(SEED)
    teacher = CosineClassifier(MLPEncoder(features, dim, hidden=512), FixedConcepts(torch.randn(classes, dim)),
                               temperature).eval()
    student = CosineClassifier(MLPEncoder(features, dim, hidden=256), LearnedConcepts(classes, dim), temperature)
    return SimpleNamespace(x_t=x_t[:n], x_s=x_s[:n], y=y[:n], x_val=x_s[n:], y_val=y[n:],
                           teacher=teacher, student=student, classes=classes, temperature=temperature)


def run_kgdistill(w: SimpleNamespace, s: StageSettings) -> float:
    """fit_stage as the library runs a KD student: teacher logits computed once, batches gathered by index."""
    logits_t = embed(w.teacher, w.x_t)
    student = copy.deepcopy(w.student)
    data = StageData(x=w.x_s, labels=w.y, x_val=w.x_val, y_val=w.y_val, logits_teacher=logits_t)
    res = fit_stage("bench", student.encoder, student.concepts, torch.arange(w.classes), WeightedLoss(KD_TERMS),
                    data, s, device=CPU, seed=SEED)
    return res.history[-1]["loss_total"]


def run_plain(w: SimpleNamespace, s: StageSettings) -> float:
    """The same algorithm written by hand: the floor any training framework is measured against."""
    logits_t = embed(w.teacher, w.x_t)
    model = copy.deepcopy(w.student)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)
    n = len(w.y)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, **one_cycle(s, -(-n // s.batch_size)), anneal_strategy="cos")
    gen = torch.Generator().manual_seed(SEED)
    t = KD_TERMS[1]["temperature"]
    for _ in range(s.epochs):
        model.train()
        total, steps = torch.zeros(()), 0
        for idx in torch.randperm(n, generator=gen).split(s.batch_size):
            logits = model(w.x_s[idx])
            kl = F.kl_div(F.log_softmax(logits / t, -1), F.log_softmax(logits_t[idx] / t, -1),
                          reduction="batchmean", log_target=True)
            loss = F.cross_entropy(logits, w.y[idx]) + t * t * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, s.grad_clip)
            opt.step()
            sched.step()
            total += loss.detach()
            steps += 1
        val_mrr(embed(model, w.x_val), w.y_val)
    return float(total) / steps


def run_torchdistill(w: SimpleNamespace, s: StageSettings, config_path: Path) -> float:
    """torchdistill's config-driven DistillationBox with its data loader, KDLoss and step processes."""
    from torchdistill.common.yaml_util import load_yaml_file
    from torchdistill.core.distillation import get_distillation_box

    cfg = load_yaml_file(str(config_path))
    n = len(w.y)
    cfg["num_epochs"] = s.epochs
    cfg["train_data_loader"]["kwargs"]["batch_size"] = s.batch_size
    cfg["train_data_loader"]["sampler"] = {"class_or_func": SameOrderSampler, "kwargs": {"seed": SEED}}
    cfg["optimizer"]["kwargs"].update(lr=s.lr, weight_decay=s.weight_decay)
    cfg["scheduler"]["kwargs"].update(one_cycle(s, -(-n // s.batch_size)))
    student = copy.deepcopy(w.student)
    box = get_distillation_box(w.teacher, student, {"train": PairedVectors(w.x_t, w.x_s, w.y)}, cfg, CPU,
                               None, False, 1.0)
    for epoch in range(s.epochs):
        box.pre_epoch_process(epoch=epoch)
        total, steps = torch.zeros(()), 0
        for sample_batch, targets, supp_dict in box.train_data_loader:
            loss = box.forward_process(sample_batch, targets, supp_dict)
            box.post_forward_process(loss=loss)
            total += loss.detach()
            steps += 1
        box.post_epoch_process()
        val_mrr(embed(student, w.x_val), w.y_val)
    return float(total) / steps


def register_torchdistill_views() -> str | None:
    """Teacher and student read different views of each pair; torchdistill picks forward procs by key."""
    try:
        from torchdistill.core.interfaces.registry import register_forward_proc_func
    except ImportError as exc:
        return f"torchdistill not importable: {exc}"

    @register_forward_proc_func(key="bench_teacher_view")
    def teacher_view(model, sample_batch, targets=None, supp_dict=None, **kwargs):
        return model(sample_batch[0])

    @register_forward_proc_func(key="bench_student_view")
    def student_view(model, sample_batch, targets=None, supp_dict=None, **kwargs):
        return model(sample_batch[1])

    return None


def framework_cost(n: int, epochs: int, repeats: int, tmp: Path) -> dict:
    """Seconds per step of one KD student trained by kgdistill, torchdistill and a plain loop, same everything."""
    w = kd_workload(n, features=256, classes=100, dim=128, temperature=0.05)
    s = StageSettings(epochs=epochs, batch_size=128, lr=2e-3, weight_decay=1e-4, patience=epochs + 1,
                      temperature=w.temperature, progress=False)
    steps = epochs * -(-n // s.batch_size)
    runners = {"kgdistill": lambda: run_kgdistill(w, s), "plain": lambda: run_plain(w, s)}
    missing = register_torchdistill_views()
    if missing is None:
        config_path = tmp / "torchdistill_kd.yaml"
        config_path.write_text(TORCHDISTILL_YAML)
        runners["torchdistill"] = lambda: run_torchdistill(w, s, config_path)
    names = list(runners)
    cpu: dict[str, list[float]] = {k: [] for k in names}
    wall: dict[str, list[float]] = {k: [] for k in names}
    last_loss: dict[str, float] = {}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate who runs first
            with Clock() as clock:  # each runner's time includes its setup (teacher logits, config, box)
                last_loss[name] = runners[name]()
            cpu[name].append(clock.cpu)
            wall[name].append(clock.wall)
    ms = {k: 1000 * best(v) / steps for k, v in cpu.items()}
    out = {"train_samples": n, "val_samples": len(w.y_val), "features": 256, "classes": 100, "dim": 128,
           "batch_size": s.batch_size, "epochs": epochs, "steps": steps, "repeats": repeats,
           "ms_per_step": ms,
           "wall_ms_per_step": {k: 1000 * best(v) / steps for k, v in wall.items()},
           "cpu_seconds": cpu, "wall_seconds": wall, "last_epoch_loss": last_loss,
           "kgdistill_vs_plain": ms["kgdistill"] / ms["plain"], "torchdistill_missing": missing}
    if "torchdistill" in ms:
        out["kgdistill_vs_torchdistill"] = ms["kgdistill"] / ms["torchdistill"]
    return out


# --------------------------------------------------------------------------- 3. the GNN at scale
def synthetic_graph(n: int, degree: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n * degree / 2 edges, one end uniform and the other drawn with density ~ rank^(-2/3): a few hubs, a long
    tail (power-law-ish), stored both ways as KnowledgeGraph.to_pyg does."""
    m = n * degree // 2
    src = torch.randint(n, (m,), generator=gen)
    dst = (torch.rand(m, generator=gen) ** 3 * n).long()
    edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], dim=1)
    return edge_index, torch.ones(edge_index.shape[1])


def gnn_worker(spec: dict) -> dict:
    """In a fresh process: forward+backward of the demo's GCN over one graph, and this graph's peak RSS."""
    cfg = load_config(packaged_config("default"))
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(SEED)
    if spec["graph"] == "file":
        g = torch.load(spec["path"], weights_only=True)
        n, edge_index, weight, candidates = g["num_nodes"], g["edge_index"], g["edge_weight"], g["candidates"]
        x = g["x"] if "x" in g else torch.randn(n, spec["features"])  # the task's real features where given
    else:
        n = spec["nodes"]
        edge_index, weight = synthetic_graph(n, spec["degree"], torch.Generator().manual_seed(SEED))
        candidates = torch.randperm(n)[:min(n // 3, 10_000)]
        x = torch.randn(n, spec["features"])
    input_dim = spec.get("input_dim", cfg.gnn.input_dim)  # the packaged default unless the spec says
    if input_dim:  # gnn.input_dim: principal components, computed once before training
        with Clock() as reduce_clock:
            x = principal_components(x, input_dim)
    hidden = spec.get("hidden", cfg.gnn.hidden)
    gnn = GNNS.build(cfg.gnn.name, in_dim=x.shape[1], out_dim=cfg.space.dim, num_relations=1,
                     **(cfg.gnn.build_params() | {"hidden": hidden}))
    graph = SimpleNamespace(edge_index=edge_index, edge_type=torch.zeros(edge_index.shape[1], dtype=torch.long),
                            edge_weight=weight)
    concepts = GraphConcepts(gnn, x, graph, candidates, cfg.gnn.self_feature_dropout).train()
    z = torch.randn(cfg.teacher.batch_size, cfg.space.dim)  # one teacher batch scored against every candidate
    labels = torch.randint(len(candidates), (len(z),))
    base = peak_rss_gib()
    clocks = []
    for _ in range(spec["repeats"] + 1):  # the first step also builds the cached normalised adjacency
        with Clock() as clock:
            loss = F.cross_entropy(cosine_logits(z, concepts(), cfg.space.temperature), labels)
            loss.backward()
        clocks.append(clock)
        gnn.zero_grad(set_to_none=True)
    peak = peak_rss_gib()
    return {"nodes": n, "edges": int(edge_index.shape[1]), "candidates": len(candidates),
            "features": x.shape[1], "hidden": hidden, "threads": spec["threads"], "first_step_cpu_s": clocks[0].cpu,
            "first_step_wall_s": clocks[0].wall, "step_cpu_s": best([c.cpu for c in clocks[1:]]),
            "step_wall_s": best([c.wall for c in clocks[1:]]),
            "all_steps_cpu_s": [c.cpu for c in clocks[1:]], "rss_before_gib": base, "peak_rss_gib": peak,
            "step_rss_gib": peak - base, **({"reduce_cpu_s": reduce_clock.cpu} if input_dim else {})}


def run_worker(spec: dict, checkout: Path | None = None) -> dict:
    """``gnn_worker(spec)`` in a fresh process; with ``checkout``, that checkout's own script and kgdistill."""
    script, cwd, env = Path(__file__), None, None
    if checkout is not None:
        script, cwd = checkout / "scripts" / "bench_speed.py", checkout
        env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(script), "--gnn-worker", json.dumps(spec)], capture_output=True,
                          text=True, timeout=1800, cwd=cwd, env=env)
    if proc.returncode != 0:
        return {**spec, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"rc {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def save_whole_hpo(path: Path):
    """The whole HPO graph, every annotated disease a candidate, as a ``gnn_worker`` graph file; returns it."""
    from kgdistill.graph.hpo import build_hpo_graph

    kg = build_hpo_graph(None, restrict=False)
    data = kg.to_pyg()
    torch.save({"num_nodes": kg.num_nodes, "edge_index": data.edge_index, "edge_weight": data.edge_weight,
                "candidates": torch.as_tensor([i for i, t in enumerate(kg.types) if t == "disease"])}, path)
    return kg


def gnn_cost(task, sizes: list[int], repeats: int, threads: int, tmp: Path) -> dict:
    """The demo task's graph, the whole HPO graph with every annotated disease (default settings, reduced
    features, reduced features with narrower GNNs; 1 thread and every core), then synthetic graphs."""
    path = tmp / "task_graph.pt"
    torch.save({"num_nodes": task.kg.num_nodes, "edge_index": task.graph_data.edge_index, "x": task.node_features,
                "edge_weight": task.graph_data.edge_weight, "candidates": torch.as_tensor(task.cand_nodes)}, path)
    demo_graph = run_worker({"graph": "file", "path": str(path), "repeats": repeats, "threads": threads})
    kg = save_whole_hpo(tmp / "hpo_full.pt")
    spec = {"graph": "file", "path": str(tmp / "hpo_full.pt"), "features": 768, "repeats": repeats}
    out: dict = {"demo_graph": demo_graph}
    for key, variant in HPO_VARIANTS.items():
        out[key] = run_worker({**spec, **variant, "threads": threads})
        out[f"{key}_all_cores"] = run_worker({**spec, **variant, "threads": os.cpu_count()})
    out["hpo_full"].update(graph_edges=kg.num_edges, node_types=kg.type_counts())
    growth: list[dict] = []
    for n in sizes:
        done = [g for g in growth if "peak_rss_gib" in g]
        if len(done) >= 2:  # peak RSS grows about linearly in n: extrapolate from the last two sizes
            a, b = done[-2], done[-1]
            est = b["peak_rss_gib"] + (b["peak_rss_gib"] - a["peak_rss_gib"]) * (n - b["nodes"]) / (b["nodes"] - a["nodes"])
            if est > RSS_LIMIT_GIB:
                growth.append({"nodes": n, "skipped": f"estimated peak RSS {est:.1f} GiB > {RSS_LIMIT_GIB:g} GiB"})
                continue
        growth.append(run_worker({"graph": "synthetic", "nodes": n, "degree": 10, "features": 768, "threads": threads,
                                  "input_dim": None, "hidden": 256,  # the growth table's fixed setting
                                  "repeats": repeats if n < 10**5 else 2}))
    return {**out, "synthetic": growth}


# --------------------------------------------------------------------------- 4. text cache, 5. demo memory
def text_cache_cost(notes: list[str], tmp: Path) -> dict:
    """Embedding notes as the pipeline does (unique sentences) into an empty cache, then again from it."""
    sentences = list(dict.fromkeys(s for note in notes for s in split_sentences(note)))
    cache = tmp / "text-cache"
    with Clock() as cold_clock:
        cold = TextEmbedder(cache_dir=cache)
        first = cold.embed(sentences)
    with Clock() as same_clock:
        cold.embed(sentences)
    with Clock() as warm_clock:
        warm = TextEmbedder(cache_dir=cache)  # a new run: reads the cache shards from disk, never loads the model
        again = warm.embed(sentences)
    if not np.array_equal(first, again):
        raise RuntimeError("cached vectors differ from the computed ones")
    return {"notes": len(notes), "sentences": len(sentences), "cold_cpu_s": cold_clock.cpu, "cold_wall_s": cold_clock.wall,
            "warm_cpu_s": warm_clock.cpu, "warm_wall_s": warm_clock.wall, "warm_same_embedder_cpu_s": same_clock.cpu,
            "speedup": cold_clock.cpu / warm_clock.cpu, "cold_sentences_per_cpu_s": len(sentences) / cold_clock.cpu,
            "warm_stats": warm.stats}


def demo_memory(quick: bool, tmp: Path) -> dict:
    """`kgdistill demo --quick` in a child process (warm text cache, as after setup); its peak RSS is polled from
    /proc, VmHWM being a high-water mark, until the process has exited (only a peak in its last 0.1 s is missed)."""
    args = ["demo", "--quick", "--quiet"] + (["--set", "teacher.epochs=2", "--set", "student.epochs=2"] if quick else [])
    log = tmp / "demo.stderr"
    start = time.perf_counter()
    peak = 0.0
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "kgdistill", *args, "--out", str(tmp / "demo")],
                                stdout=subprocess.DEVNULL, stderr=err)
        while proc.poll() is None:
            try:
                peak = max(peak, peak_rss_gib(proc.pid))
            except (FileNotFoundError, ProcessLookupError, RuntimeError):  # exiting between poll and read
                pass
            time.sleep(0.1)
    out = {"command": " ".join(["kgdistill", *args]), "seconds": time.perf_counter() - start,
           "peak_rss_gib": peak, "exit_status": proc.returncode}
    if out["exit_status"] != 0:
        lines = log.read_text(errors="replace").strip().splitlines()
        out["error"] = lines[-1] if lines else ""
    return out


# --------------------------------------------------------------------------- report
def markdown(res: dict) -> str:
    m, ep, fw, gnn, txt, demo = (res[k] for k in ("machine", "epoch", "frameworks", "gnn", "text_cache", "demo"))
    ms, hpo, dg = fw["ms_per_step"], gnn["hpo_full"], gnn["demo_graph"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    if "torchdistill" in ms:
        td = (f"{ms['kgdistill']:.2f} ms vs {ms['torchdistill']:.2f} ms: **{fw['kgdistill_vs_torchdistill']:.2f}x**",
              verdict(fw["kgdistill_vs_torchdistill"] < 1))
    else:
        td = (f"not measured ({fw['torchdistill_missing']})", "–")
    default = load_config(packaged_config("default")).gnn

    def gnn_row(key: str) -> str:
        r, r_all = gnn[key], gnn.get(f"{key}_all_cores", {})
        input_dim = r["features"] if "reduce_cpu_s" in r else None  # reduced rows record the reduction's cost
        what = (f"`gnn.input_dim: {input_dim}` (principal components: {r['reduce_cpu_s']:.2f} s once)"
                if input_dim else f"all {r['features']} node features") + f", `gnn.hidden: {r['hidden']}`"
        if (default.input_dim, default.hidden) == (input_dim, r["hidden"]):
            what += " (the default)"
        fastest = min(r["step_cpu_s"], r_all.get("step_wall_s", float("inf")))
        return (f"| GCN forward+backward, whole HPO graph ({r['nodes']:,} nodes, {r['edges']:,} directed edges), "
                f"{what} | {r['step_cpu_s']:.3f} s on 1 thread; {r_all.get('step_wall_s', float('nan')):.3f} s wall "
                f"on {r_all.get('threads', '?')} threads | < 0.25 s | {verdict(fastest < 0.25)} |")

    rows = [
        "| measure | figure | target | |",
        "|---|---|---|---|",
        f"| epoch, `kg_guided` vs `kd` student (fit_stage, `{ep['config']}` task, {ep['steps_per_epoch']} steps) | "
        f"{ep['kg_guided_s_per_epoch']:.3f} s vs {ep['kd_s_per_epoch']:.3f} s: **{ep['ratio']:.2f}x** | <= 1.3x | "
        f"{verdict(ep['ratio'] <= 1.3)} |",
        f"| KD step, kgdistill vs torchdistill {m['torchdistill'] or ''} | {td[0]} | < 1x | {td[1]} |",
        f"| KD step, kgdistill vs plain PyTorch loop | {ms['kgdistill']:.2f} ms vs {ms['plain']:.2f} ms: "
        f"**{fw['kgdistill_vs_plain']:.2f}x** | <= 1.05x | {verdict(fw['kgdistill_vs_plain'] <= 1.05)} |",
        *(gnn_row(key) for key in HPO_VARIANTS if key in gnn),  # older results lack the variants
        f"| GCN forward+backward, the `{ep['config']}` task's graph ({dg['nodes']:,} nodes, {dg['edges']:,} directed "
        f"edges, its {dg['features']}-d features) | {dg['step_cpu_s']:.3f} s on 1 thread | – | |",
        f"| peak RSS of the whole-HPO GCN process | {hpo['peak_rss_gib']:.2f} GiB (+{hpo['step_rss_gib']:.2f} GiB for the steps) "
        f"| – | |",
        f"| text embeddings, {txt['sentences']:,} unique sentences of {txt['notes']:,} notes | empty cache "
        f"{txt['cold_cpu_s']:.1f} s, from the cache {txt['warm_cpu_s']:.3f} s: **{txt['speedup']:.0f}x** | – | |",
        f"| `{demo['command']}` | peak RSS **{demo['peak_rss_gib']:.2f} GiB** ({demo['seconds']:.0f} s wall) | – | |",
    ]
    growth = ["| nodes | directed edges | forward+backward (s) | first step (s) | peak RSS (GiB) | of which steps (GiB) |",
              "|---:|---:|---:|---:|---:|---:|"]
    for g in gnn["synthetic"]:
        if "step_cpu_s" in g:
            growth.append(f"| {g['nodes']:,} | {g['edges']:,} | {g['step_cpu_s']:.3f} | {g['first_step_cpu_s']:.3f} | "
                          f"{g['peak_rss_gib']:.2f} | {g['step_rss_gib']:.2f} |")
        else:
            growth.append(f"| {g['nodes']:,} | – | not run: {g.get('skipped') or g.get('error')} | | | |")
    dates = {part: day for part, day in res.get("measured", {}).items() if day != m["date"]}
    head = (f"{m['date']}{''.join(f' ({p} measured {d})' for p, d in sorted(dates.items()))}; {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM; Python {m['python']}, "
            f"torch {m['torch']}; timed on {m['torch_threads']} torch thread(s), CPU seconds unless marked wall; "
            f"load average at start {m['load_avg_start']}, at end {m['load_avg_end']}; {res['seconds']:.0f} s in all.")
    return "\n".join([head, "", *rows, "", *growth])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (< 3 minutes)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-speed/summary.json"))
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per measurement (default 5, quick 2)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the timed work (default 1)")
    ap.add_argument("--only", nargs="+", choices=PARTS, help="measure these parts again and keep the others "
                    "from the existing --out file")
    ap.add_argument("--gnn-worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.gnn_worker:
        print(json.dumps(gnn_worker(json.loads(args.gnn_worker))))
        return
    from kgdistill.task import build_task

    repeats = args.repeats or (2 if args.quick else 5)
    torch.set_num_threads(args.threads)  # before machine(), which records it
    started = time.perf_counter()
    parts = set(args.only or PARTS)
    res: dict = {}
    if args.only:
        if not args.out.is_file():
            sys.exit(f"bench_speed: --only needs the earlier results in {args.out}; run without --only first")
        res = json.loads(args.out.read_text())
        if res.get("quick", False) != args.quick:
            sys.exit(f"bench_speed: {args.out} holds {'--quick' if res.get('quick') else 'full'} results; "
                     "--only must use the same mode")
        res.setdefault("measured", {p: res["machine"]["date"] for p in PARTS})
    res.update(command=" ".join(["python", *sys.argv]), machine=machine(), quick=args.quick)
    res.setdefault("measured", {}).update({p: res["machine"]["date"] for p in parts})
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp_name:
        tmp = Path(tmp_name)
        cfg = load_config(packaged_config("quick" if args.quick else "default"))
        task = build_task(cfg, tmp / "task", CPU) if parts & {"epoch", "gnn", "text_cache"} else None
        if "epoch" in parts:
            res["epoch"] = student_epoch_cost(cfg, task, epochs=3 if args.quick else 5, repeats=repeats)
        if "gnn" in parts:
            sizes = [10**3, 10**4] if args.quick else [10**3, 10**4, 10**5, 2 * 10**5, 5 * 10**5, 10**6]
            res["gnn"] = gnn_cost(task, sizes, repeats=3 if args.quick else 5, threads=args.threads, tmp=tmp)
        notes = list(task.ds.modalities[task.ds.student].values)[:200 if args.quick else 2000] if task else []
        del task
        if "frameworks" in parts:
            res["frameworks"] = framework_cost(4000 if args.quick else 20000, epochs=2 if args.quick else 3,
                                               repeats=repeats, tmp=tmp)
        if "text_cache" in parts:
            res["text_cache"] = text_cache_cost(notes, tmp)
        if "demo" in parts:
            res["demo"] = demo_memory(args.quick, tmp)
    res["machine"]["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]
    res["seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, res)
    print(markdown(res))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
