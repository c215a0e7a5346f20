"""Teacher stage, then every student variant, on a chosen set of trained concepts.

The teacher (rich modality) and the GNN are trained together, so the GNN's concept
embeddings become the shared space.  Students (cheap modality) are then trained
against those frozen embeddings (``prototypes: gnn``) or against a free prototype
table (``prototypes: learned``, the classic baselines), with the teacher's outputs
precomputed once for the whole training set.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import RunConfig
from ..encoders import build_encoder
from ..gnn import GNNS
from ..gnn.concepts import FixedConcepts, GraphConcepts, LearnedConcepts, ResidualConcepts, cosine_logits
from ..gnn.features import principal_components
from ..gnn.sampling import NeighbourSampler
from ..losses import WeightedLoss
from ..task import Task
from .device import to_device
from .distributed import DistContext, context
from .logger import StageLogger
from .state import StageCheckpoint
from .trainer import StageData, StageResult, StageSettings, embed, fit_stage


@dataclass
class Fitted:
    trained: np.ndarray                       # [K] bool: concepts trained on in this pass
    teacher: torch.nn.Module
    teacher_concepts: GraphConcepts | None    # None when loaded for evaluation, which reads ``concepts``
    concepts: torch.Tensor                    # [K, d] frozen GNN embeddings
    students: dict[str, tuple[torch.nn.Module, torch.nn.Module]] = field(default_factory=dict)
    results: dict[str, StageResult] = field(default_factory=dict)


def _loss(specs) -> WeightedLoss:
    return WeightedLoss([{"name": s.name, "weight": s.weight, **s.params} for s in specs])


def build_teacher_encoder(cfg: RunConfig, task: Task) -> torch.nn.Module:
    return build_encoder(cfg.teacher.encoder, task.teacher, cfg.space.dim, "teacher.encoder")


def build_teacher(cfg: RunConfig, task: Task) -> tuple[torch.nn.Module, GraphConcepts]:
    enc = build_teacher_encoder(cfg, task)
    sampled = bool(cfg.gnn.num_neighbors)
    x = task.node_features
    if cfg.gnn.input_dim is not None:
        x = principal_components(x, cfg.gnn.input_dim)
    gnn = GNNS.build(cfg.gnn.name, in_dim=x.shape[1], out_dim=cfg.space.dim, hidden=cfg.gnn.hidden,
                     layers=cfg.gnn.layers, dropout=cfg.gnn.dropout,
                     num_relations=len(task.graph_data.relations), heads=cfg.gnn.heads, fixed_graph=not sampled)
    sampler = NeighbourSampler(task.graph_data.edge_index, x.shape[0], cfg.gnn.num_neighbors) if sampled else None
    return enc, GraphConcepts(gnn, x, task.graph_data, torch.as_tensor(task.cand_nodes),
                              cfg.gnn.self_feature_dropout, sampler, cfg.gnn.eval_chunk)


def build_student(cfg: RunConfig, task: Task, prototypes: str, concepts: torch.Tensor | None):
    enc = build_encoder(cfg.student.encoder, task.student, cfg.space.dim, "student.encoder")
    src = {"gnn": FixedConcepts, "gnn_residual": ResidualConcepts}.get(prototypes)
    src = src(concepts) if src is not None else LearnedConcepts(task.num_candidates, cfg.space.dim)
    return enc, src


@dataclass
class PassData:
    """What every stage of one training pass reads: which concepts it trains and each sample's label among them."""

    tr: np.ndarray               # training samples (of trained concepts, or unlabelled)
    va: np.ndarray               # validation samples
    cand: torch.Tensor           # [K_train] candidate index of each trained concept
    y_tr: torch.Tensor           # labels as positions in ``cand``, -1: none
    y_va: torch.Tensor
    sim: torch.Tensor            # [K_train, K_train] graph similarity of the trained concepts


def pass_data(task: Task, trained: np.ndarray, device: torch.device) -> PassData:
    trained_idx = np.flatnonzero(trained)
    remap = np.full(task.num_candidates, -1, dtype=np.int64)
    remap[trained_idx] = np.arange(len(trained_idx))
    y = task.y
    tr = task.idx("train")
    tr = tr[(y[tr] < 0) | trained[np.maximum(y[tr], 0)]]
    va = task.idx("val")
    return PassData(tr, va, torch.as_tensor(trained_idx, device=device),
                    torch.as_tensor(np.where(y[tr] >= 0, remap[np.maximum(y[tr], 0)], -1), device=device),
                    torch.as_tensor(np.where(y[va] >= 0, remap[np.maximum(y[va], 0)], -1), device=device),
                    task.concept_sim[trained_idx][:, trained_idx])


def teacher_data(task: Task, p: PassData, device: torch.device) -> StageData:
    tx = to_device(task.teacher.x, device)
    return StageData(x=tx[p.tr], labels=p.y_tr, x_val=tx[p.va], y_val=p.y_va)


@torch.no_grad()
def teacher_targets(t_enc: torch.nn.Module, t_concepts: GraphConcepts, t_data: StageData, cand: torch.Tensor,
                    temperature: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The frozen concept embeddings [K, d], and the teacher's embeddings and logits of the training samples."""
    concepts = t_concepts.eval()().float().detach()
    z_t = embed(t_enc, t_data.x)
    return concepts, z_t, cosine_logits(z_t, concepts[cand], temperature)


def student_data(task: Task, p: PassData, device: torch.device, z_t: torch.Tensor,
                 logits_t: torch.Tensor) -> StageData:
    """The cheap modality, labelled only where the dataset says the student sees the label."""
    sx = to_device(task.student.x, device)
    sl = torch.as_tensor(task.ds.student_labelled[p.tr], device=device)
    return StageData(x=sx[p.tr], labels=torch.where(sl, p.y_tr, torch.full_like(p.y_tr, -1)), x_val=sx[p.va],
                     y_val=p.y_va, z_teacher=z_t, logits_teacher=logits_t)


def fit_models(cfg: RunConfig, task: Task, trained: np.ndarray, device: torch.device, log_dir: Path | None,
               progress: bool = True, methods: list[str] | None = None, state_dir: Path | None = None,
               dist: DistContext | None = None) -> Fitted:
    """Train the teacher, then each student; with ``state_dir`` every stage resumes from (and writes) checkpoints
    there, so a finished stage is never trained twice."""
    seed = cfg.seed
    dist = dist or context()
    log_dir = log_dir if dist.is_main else None

    def checkpoint(stage: str) -> StageCheckpoint | None:  # every rank reads it; fit_stage writes on rank 0 only
        return None if state_dir is None else StageCheckpoint(Path(state_dir), stage)

    p = pass_data(task, trained, device)

    def settings(stage) -> StageSettings:
        return StageSettings(epochs=stage.epochs, batch_size=stage.batch_size, lr=stage.lr,
                             weight_decay=stage.weight_decay, patience=stage.patience,
                             temperature=cfg.space.temperature, amp=cfg.train.amp, progress=progress,
                             checkpoint_every=cfg.train.checkpoint_every, compile=cfg.train.compile)

    torch.manual_seed(seed)
    t_enc, t_concepts = build_teacher(cfg, task)
    t_data = teacher_data(task, p, device)
    fitted_results: dict[str, StageResult] = {}
    fitted_results["teacher"] = fit_stage(
        "teacher", t_enc, t_concepts, p.cand, _loss(cfg.teacher.losses), t_data, settings(cfg.teacher),
        device=device, concept_sim=p.sim, logger=StageLogger(log_dir, "teacher") if log_dir else None, seed=seed,
        checkpoint=checkpoint("teacher"), dist=dist)
    concepts, z_t, logits_t = teacher_targets(t_enc, t_concepts, t_data, p.cand, cfg.space.temperature)
    fitted = Fitted(trained=trained, teacher=t_enc, teacher_concepts=t_concepts, concepts=concepts,
                    results=fitted_results)
    s_data = student_data(task, p, device, z_t, logits_t)
    for i, (name, method) in enumerate(cfg.student.methods.items()):
        if methods is not None and name not in methods:
            continue
        torch.manual_seed(seed + 1 + i)
        enc, src = build_student(cfg, task, method.prototypes, concepts)
        fitted_results[name] = fit_stage(
            f"student:{name}", enc, src, p.cand, _loss(method.losses), s_data, settings(cfg.student), device=device,
            concept_sim=p.sim, logger=StageLogger(log_dir, f"student_{name}") if log_dir else None,
            seed=seed + 1 + i, checkpoint=checkpoint(f"student_{name}"), dist=dist)
        fitted.students[name] = (enc, src)
    return fitted


@torch.no_grad()
def score_samples(task: Task, fitted: Fitted, idx: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
    """Cosine scores [n, K] over all candidates for the teacher and every student variant."""
    out: dict[str, torch.Tensor] = {}
    idx_t = torch.as_tensor(idx)
    z_t = embed(fitted.teacher, task.teacher.x[idx_t].to(device))
    out["teacher"] = cosine_logits(z_t, fitted.concepts, 1.0).cpu()
    for name, (enc, src) in fitted.students.items():
        z = embed(enc, task.student.x[idx_t].to(device))
        out[name] = cosine_logits(z, src().float(), 1.0).cpu()
    return out


@torch.no_grad()
def sample_embeddings(task: Task, fitted: Fitted, idx: np.ndarray, method: str, device: torch.device):
    idx_t = torch.as_tensor(idx)
    z_t = embed(fitted.teacher, task.teacher.x[idx_t].to(device)).cpu()
    z_s = embed(fitted.students[method][0], task.student.x[idx_t].to(device)).cpu()
    return torch.nn.functional.normalize(z_t, dim=-1), torch.nn.functional.normalize(z_s, dim=-1)


def load_fitted(cfg: RunConfig, task: Task, checkpoints: Path) -> Fitted:
    """Rebuild the final pass's encoders from a run's safetensors checkpoints.  The teacher's GNN is not
    rebuilt (nor, with ``gnn.input_dim``, its principal components): its output is the saved ``concepts``."""
    from .checkpoint import load_state, load_tensors

    t_enc = build_teacher_encoder(cfg, task)
    load_state(t_enc, checkpoints / "teacher.safetensors", prefix="encoder.")
    concepts = load_tensors(checkpoints / "concepts.safetensors")["concepts"]
    fitted = Fitted(trained=task.seen, teacher=t_enc.eval(), teacher_concepts=None, concepts=concepts)
    for name, method in cfg.student.methods.items():
        enc, src = build_student(cfg, task, method.prototypes, concepts)
        load_state(enc, checkpoints / f"student_{name}.safetensors", prefix="encoder.")
        load_state(src, checkpoints / f"student_{name}.safetensors", prefix="concepts.")
        fitted.students[name] = (enc.eval(), src.eval())
    return fitted
