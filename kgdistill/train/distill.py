"""Teacher stage, then every student variant, on a chosen set of trained concepts.

The teacher (rich modality) and its concept source (the GNN, or the teacher's own encoder
reading each concept's links: ``teacher.concepts``) are trained together, so their concept
embeddings become the shared space.  Students (cheap modality) are then trained
against those frozen embeddings (``concepts: gnn``) or against a free embedding
table (``concepts: learned``, the classic baselines), with the teacher's outputs
precomputed once for the whole training set.  The result is a :class:`DistilledModel`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import RunConfig
from ..encoders import embed
from ..encoders.adabn import adapt_batch_norm
from ..gnn.concepts import cosine_logits
from ..gnn.teacher_concepts import TEACHER_CONCEPTS
from ..losses import WeightedLoss
from ..model import DistilledModel, Roles, build_student, build_teacher_encoder, input_tables
from ..task import Task
from .device import to_device
from .distributed import DistContext, context
from .logger import StageLogger
from .state import StageCheckpoint
from .trainer import StageData, StageResult, StageSettings, fit_stage


def build_teacher(cfg: RunConfig, task: Task) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The teacher's encoder and the concept source trained with it (``teacher.concepts``)."""
    enc = build_teacher_encoder(cfg, task.teacher)
    src = cfg.teacher.concepts
    return enc, TEACHER_CONCEPTS.build(src.name, cfg=cfg, task=task, encoder=enc, **src.params)


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
def teacher_targets(t_enc: torch.nn.Module, t_concepts: torch.nn.Module, t_data: StageData, cand: torch.Tensor,
                    temperature: float, adabn_unlabelled: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The frozen concept embeddings [K, d], and the teacher's embeddings and logits of the training samples.
    ``adabn_unlabelled``: the samples without a label (another domain's) are embedded by the teacher with its
    batch norms re-estimated on them, the labelled ones by the teacher as trained (one statistic per domain)."""
    concepts = t_concepts.eval()().float().detach()
    z_t = embed(t_enc, t_data.x)
    free = t_data.labels < 0
    if adabn_unlabelled and bool(free.any()):
        z_t[free] = embed(adapt_batch_norm(t_enc, t_data.x[free]), t_data.x[free])
    return concepts, z_t, cosine_logits(z_t, concepts[cand], temperature)


def student_data(task: Task, p: PassData, device: torch.device, z_t: torch.Tensor,
                 logits_t: torch.Tensor) -> StageData:
    """The cheap modality, labelled only where the dataset says the student sees the label."""
    sx = to_device(task.student.x, device)
    sl = torch.as_tensor(task.ds.student_labelled[p.tr], device=device)
    return StageData(x=sx[p.tr], labels=torch.where(sl, p.y_tr, torch.full_like(p.y_tr, -1)), x_val=sx[p.va],
                     y_val=p.y_va, z_teacher=z_t, logits_teacher=logits_t)


def stage_settings(cfg: RunConfig, stage, progress: bool) -> StageSettings:
    """``stage``: the config's ``teacher`` or ``student`` section."""
    return StageSettings(epochs=stage.epochs, batch_size=stage.batch_size, lr=stage.lr,
                         weight_decay=stage.weight_decay, patience=stage.patience,
                         temperature=cfg.space.temperature, amp=cfg.train.amp, progress=progress,
                         checkpoint_every=cfg.train.checkpoint_every, compile=cfg.train.compile)


def task_roles(task: Task) -> Roles:
    return Roles(task.teacher_modality, task.teacher.kind, task.student_modality, task.student.kind)


def fit_models(cfg: RunConfig, task: Task, trained: np.ndarray, device: torch.device, log_dir: Path | None,
               progress: bool = True, methods: list[str] | None = None, state_dir: Path | None = None,
               dist: DistContext | None = None) -> tuple[DistilledModel, dict[str, StageResult]]:
    """Train the teacher, then each student (``methods``: only these); with ``state_dir`` every stage resumes
    from (and writes) checkpoints there, so a finished stage is never trained twice.  Returns the model (its
    calibration not chosen yet) and each stage's training record."""
    seed = cfg.seed
    dist = dist or context()
    log_dir = log_dir if dist.is_main else None

    def run(stage: str, enc, src, losses, data: StageData, section, stage_seed: int) -> StageResult:
        file = stage.replace(":", "_")  # logs/<file>.csv, state/<pass>/<file>.pt
        return fit_stage(stage, enc, src, p.cand, WeightedLoss.from_specs(losses), data,
                         stage_settings(cfg, section, progress), device=device, concept_sim=p.sim,
                         logger=StageLogger(log_dir, file, "tensorboard" in cfg.train.tracking) if log_dir else None, seed=stage_seed,
                         checkpoint=None if state_dir is None else StageCheckpoint(Path(state_dir), file), dist=dist)

    p = pass_data(task, trained, device)
    torch.manual_seed(seed)
    t_enc, t_concepts = build_teacher(cfg, task)
    t_data = teacher_data(task, p, device)
    results = {"teacher": run("teacher", t_enc, t_concepts, cfg.teacher.losses, t_data, cfg.teacher, seed)}
    concepts, z_t, logits_t = teacher_targets(t_enc, t_concepts, t_data, p.cand, cfg.space.temperature,
                                              cfg.teacher.adabn_unlabelled)
    model = DistilledModel(cfg, task.candidates, torch.as_tensor(task.seen), concepts, {}, task_roles(task),
                           teacher=t_enc, teacher_gnn=getattr(t_concepts, "gnn", None),
                           text_baseline=task.text_baseline,
                           input_scaling=input_tables(task.student))
    s_data = student_data(task, p, device, z_t, logits_t)
    for i, (name, method) in enumerate(cfg.student.methods.items()):
        if methods is not None and name not in methods:
            continue
        torch.manual_seed(seed + 1 + i)
        st = build_student(cfg, method, task.student, concepts)
        results[name] = run(f"student:{name}", st.encoder, st.concepts, method.losses, s_data, cfg.student,
                            seed + 1 + i)
        model.students[name] = st
    return model, results
