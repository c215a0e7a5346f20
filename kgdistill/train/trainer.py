"""One training stage: an encoder (and optionally the concept source) fitted by a weighted loss.

The same loop trains the teacher (encoder + GNN, cross-entropy) and every student
variant (encoder only, against frozen concept embeddings and precomputed teacher
outputs).  All data lives on the device; a step is gathers and matrix products, and
metrics are accumulated on the device and read once per epoch (no per-step host sync).
"""
from __future__ import annotations

import copy
import math
import signal
import time
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import TrainingError, TrainingInterrupted
from ..gnn.concepts import cosine_logits
from ..losses import DistillBatch, WeightedLoss
from ..encoders import embed
from .device import autocast
from .distributed import DistContext
from .logger import StageLogger
from .state import StageCheckpoint, rng_state, set_rng_state, stop_requested


@dataclass
class StageData:
    """Training inputs of one stage; labels index the K_train training candidates (-1: no label)."""

    x: torch.Tensor
    labels: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor                      # index into training candidates, -1 for val samples of other concepts
    z_teacher: torch.Tensor | None = None
    logits_teacher: torch.Tensor | None = None


@dataclass
class StageSettings:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    patience: int
    temperature: float
    amp: bool = True
    grad_clip: float = 5.0
    progress: bool = True
    nan_check_every: int = 0  # steps between host checks for a non-finite loss; 0: every step on CPU, 25 on CUDA
    checkpoint_every: int = 1  # epochs between resume checkpoints (0: only at interruption and stage end)
    compile: bool = False


@dataclass
class StageResult:
    best_epoch: int
    best_val: float
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def _batches(n: int, batch_size: int, generator: torch.Generator, device: torch.device):
    perm = torch.randperm(n, generator=generator).to(device)
    for s in range(0, n, batch_size):
        idx = perm[s:s + batch_size]
        if idx.numel() >= 2:  # BatchNorm and relational terms need pairs
            yield idx


def _mrr(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    keep = y >= 0
    target = logits.gather(1, y.clamp_min(0).unsqueeze(1))
    rank = (logits > target).sum(1) + 1
    return ((1.0 / rank.float()) * keep).sum() / keep.sum().clamp_min(1)


class _StageModel(nn.Module):
    """Encoder plus concept source as one module, so DistributedDataParallel sees every trained parameter."""

    def __init__(self, encoder: nn.Module, concepts: nn.Module, candidates: torch.Tensor, frozen: torch.Tensor | None):
        super().__init__()
        self.encoder, self.concepts = encoder, concepts
        self.candidates, self.frozen = candidates, frozen

    def concept_matrix(self) -> torch.Tensor:
        if self.frozen is not None:
            return self.frozen
        if getattr(self.concepts, "computes_rows", False):  # e.g. AnnotationConcepts: only the trained rows
            return self.concepts(self.candidates)
        return self.concepts()[self.candidates]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x), self.concept_matrix()


@dataclass
class StageState:
    """Where a stage stands.  Saved whole at every checkpoint (the weights, optimiser, scheduler and every rank's
    RNG state filled in then), so continuing from it gives exactly the result of never stopping."""

    stage: str = ""
    epoch: int = 0                               # the epoch running (or next)
    batches_done: int = 0                        # its batches already taken
    step: int = 0                                # optimiser steps so far
    generator: torch.Tensor | None = None        # the batch-order generator as it was when ``epoch`` began
    best_state: tuple | None = None              # (encoder, concepts or None) weights of the best epoch
    best_val: float = -float("inf")
    best_epoch: int = -1
    bad: int = 0                                 # epochs since the best
    history: list[dict] = field(default_factory=list)
    sums: dict[str, torch.Tensor] = field(default_factory=dict)   # loss sums of the running epoch
    n_steps: int = 0                             # steps in those sums
    seconds: float = 0.0                         # training time before this process
    encoder: dict | None = None
    concepts: dict | None = None
    optimizer: dict | None = None
    scheduler: dict | None = None
    rng: list | None = None

    def saved(self) -> dict[str, Any]:
        return dict(vars(self))


def _restore_done(done: dict, encoder: nn.Module, concepts: nn.Module, logger: StageLogger | None) -> StageResult:
    encoder.load_state_dict(done["encoder"])
    if done["concepts"] is not None:
        concepts.load_state_dict(done["concepts"])
    if logger is not None:
        logger.restore(done["history"])
    encoder.eval()
    concepts.eval()
    return StageResult(done["best_epoch"], done["best_val"], list(done["history"]), done["seconds"])


def param_groups(encoder: nn.Module, lr: float, extra: list[nn.Parameter]) -> list[dict[str, Any]]:
    """The optimiser's groups: the stage's rate for the encoder's own layers and ``extra`` (the first group,
    whose rate the logs report), and the rate an encoder asks for some of its parameters (a pretrained
    transformer fine-tuned at a head's rate is wrecked: ``Encoder.param_groups``)."""
    own = getattr(encoder, "param_groups", None)
    groups = own(lr) if own is not None else [{"params": [p for p in encoder.parameters() if p.requires_grad],
                                               "lr": lr}]
    groups[0]["params"] = list(groups[0]["params"]) + extra
    return [g for g in groups if g["params"]]


class StageLoop:
    """One stage's training: optimiser, schedule, batches, validation, early stopping and checkpoints, over a
    :class:`StageState`.  See :func:`fit_stage`."""

    def __init__(self, name: str, encoder: nn.Module, concepts: nn.Module, train_candidates: torch.Tensor,
                 loss: WeightedLoss, data: StageData, settings: StageSettings, *, device: torch.device,
                 concept_sim: torch.Tensor | None = None, logger: StageLogger | None = None, seed: int = 0,
                 checkpoint: StageCheckpoint | None = None, dist: DistContext | None = None):
        self.name, self.encoder, self.concepts, self.loss, self.data = name, encoder, concepts, loss, data
        self.settings, self.device, self.logger, self.checkpoint = settings, device, logger, checkpoint
        self.dist = dist or DistContext()
        self.start = time.perf_counter()
        self.trainable_concepts = any(p.requires_grad for p in concepts.parameters())
        shared = {id(p) for p in encoder.parameters()}  # a source may read through the encoder (AnnotationConcepts)
        groups = param_groups(encoder, settings.lr, [p for p in concepts.parameters()
                                                     if p.requires_grad and id(p) not in shared])
        self.params = [p for g in groups for p in g["params"]]
        self.opt = torch.optim.AdamW(groups, lr=settings.lr, weight_decay=settings.weight_decay)
        total_steps = settings.epochs * max(1, math.ceil(len(data.x) / settings.batch_size)) + 1
        self.sched = torch.optim.lr_scheduler.OneCycleLR(
            self.opt, max_lr=[g["lr"] for g in groups], total_steps=total_steps,
            pct_start=min(0.5, max(0.1, 2.0 / total_steps)), anneal_strategy="cos")
        self.gen = torch.Generator().manual_seed(seed)
        cand = train_candidates.to(device)
        needs_sim = "concept_sim" in loss.required_fields
        self.sim = concept_sim.to(device) if (concept_sim is not None and needs_sim) else None
        frozen = None
        if not self.trainable_concepts:
            with torch.no_grad():
                concepts.eval()
                frozen = concepts()[cand].float()
        self.stage = _StageModel(encoder, concepts, cand, frozen)
        self.model = self._wrap(self.stage)
        self.check_every = settings.nan_check_every or (1 if device.type == "cpu" else 25)
        self.nonfinite = torch.zeros((), dtype=torch.bool, device=device)
        self.state = StageState(stage=name)

    def _wrap(self, model: nn.Module) -> nn.Module:
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                            broadcast_buffers=False)  # graph buffers are identical on every rank
        return torch.compile(model) if self.settings.compile else model

    # ------------------------------------------------------------------ state
    def restore(self, saved: dict) -> None:
        """Continue exactly where a checkpoint left off."""
        st = StageState(**saved)
        self.encoder.load_state_dict(st.encoder)
        if self.trainable_concepts:
            self.concepts.load_state_dict(st.concepts)
        self.opt.load_state_dict(st.optimizer)
        self.sched.load_state_dict(st.scheduler)
        self.gen.set_state(st.generator)
        st.history = list(st.history)
        st.sums = {k: v.to(self.device) for k, v in st.sums.items()}
        rngs = st.rng  # one per rank; resuming with more ranks than saved is allowed but not bit-exact
        set_rng_state(rngs[self.dist.rank] if self.dist.rank < len(rngs) else rngs[0])
        if self.logger is not None:
            self.logger.restore(st.history)
        self.state = st

    def snapshot(self, epoch: int, batches_done: int, generator: torch.Tensor) -> None:
        if self.checkpoint is None:
            return
        rngs = self.dist.gather(rng_state())  # every rank takes part; rank 0 writes
        if not self.dist.is_main:
            return
        st = self.state
        self.checkpoint.save(replace(
            st, epoch=epoch, batches_done=batches_done, generator=generator, encoder=self.encoder.state_dict(),
            concepts=self.concepts.state_dict() if self.trainable_concepts else None, optimizer=self.opt.state_dict(),
            scheduler=self.sched.state_dict(), rng=rngs, sums={k: v.detach().cpu() for k, v in st.sums.items()},
            seconds=st.seconds + time.perf_counter() - self.start).saved())

    # ------------------------------------------------------------------ steps
    def _check_finite(self, parts: dict[str, torch.Tensor], epoch: int) -> None:
        if bool(self.nonfinite):  # one host sync every `check_every` steps
            bad_terms = [k for k, v in parts.items() if k != "total" and not bool(torch.isfinite(v))]
            step = self.state.step
            where = f"epoch {epoch}, step {step}" if self.check_every == 1 else f"epoch {epoch}, by step {step}"
            raise TrainingError(f"stage {self.name!r}: loss {'term ' + repr(bad_terms[0]) if bad_terms else 'total'} "
                                f"became NaN or infinite ({where}); lower the learning rate or check the inputs. "
                                "Nothing of this stage was kept.")

    def _should_stop(self) -> bool:
        """A signal arrived; under torch.distributed all ranks decide together, every ``check_every`` steps."""
        if not self.dist.enabled:
            return stop_requested() is not None
        return self.state.step % self.check_every == 0 and self.dist.any(stop_requested() is not None)

    def _step(self, idx: torch.Tensor, epoch: int) -> dict[str, torch.Tensor]:
        d, st, s = self.data, self.state, self.settings
        mine = self.dist.shard(idx)
        with autocast(self.device, s.amp):
            z, c = self.model(d.x[mine])
            batch = DistillBatch(
                z_student=z, logits_student=cosine_logits(z.float(), c.float(), s.temperature), labels=d.labels[mine],
                z_teacher=None if d.z_teacher is None else d.z_teacher[mine],
                logits_teacher=None if d.logits_teacher is None else d.logits_teacher[mine],
                concept_emb=c, concept_sim=self.sim)
            total, parts = self.loss(batch)
        if self.dist.enabled:  # weight by slice size: the ranks' averaged gradient is the global batch's
            w = mine.numel() * self.dist.world_size / idx.numel()
            total, parts = total * w, {k: v * w for k, v in parts.items()}
        self.nonfinite |= ~torch.isfinite(total.detach())
        st.step += 1
        if st.step % self.check_every == 0:
            self._check_finite(parts, epoch)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        nn.utils.clip_grad_norm_(self.params, s.grad_clip)
        self.opt.step()
        self.sched.step()
        parts["total"] = total.detach()
        for k, v in parts.items():
            st.sums[k] = st.sums.get(k, 0) + v.float()
        st.n_steps += 1
        return parts

    def _train_epoch(self, epoch: int, skip: int) -> None:
        self.encoder.train()
        self.concepts.train(self.trainable_concepts)
        gen_at_epoch = self.gen.get_state()
        parts: dict[str, torch.Tensor] = {}
        for b, idx in enumerate(_batches(len(self.data.x), self.settings.batch_size, self.gen, self.device)):
            if b < skip:
                continue
            parts = self._step(idx, epoch)
            if self._should_stop():
                self.snapshot(epoch, b + 1, gen_at_epoch)
                sig = stop_requested() or signal.SIGTERM
                raise TrainingInterrupted(f"stage {self.name!r} stopped by {signal.Signals(sig).name} at epoch "
                                          f"{epoch}, step {self.state.step}; a checkpoint was written", sig)
        self._check_finite(parts, epoch)

    def _validate(self, epoch: int) -> dict[str, Any]:
        """MRR over the training candidates, on validation samples of those concepts; the epoch's log row."""
        self.encoder.eval()
        self.concepts.eval()
        with torch.no_grad(), autocast(self.device, self.settings.amp):
            c = self.stage.concept_matrix().float()
            zv = embed(self.encoder, self.data.x_val)
            val = _mrr(cosine_logits(zv, c, self.settings.temperature), self.data.y_val)
        st = self.state
        totals = self.dist.sum_(st.sums)
        row = {"epoch": epoch, "lr": self.sched.get_last_lr()[0]}
        row.update({f"loss_{k}": float(v) / self.dist.world_size / max(st.n_steps, 1) for k, v in totals.items()})
        row["val_mrr"] = float(val)
        st.history.append(row)
        if self.logger is not None and self.dist.is_main:
            self.logger.log(row)
        return row

    def _keep_best(self, row: dict[str, Any], epoch: int) -> bool:
        """Remember the best epoch's weights; True when patience has run out."""
        st = self.state
        if row["val_mrr"] > st.best_val + 1e-4:
            st.best_val, st.best_epoch, st.bad = row["val_mrr"], epoch, 0
            st.best_state = (copy.deepcopy(self.encoder.state_dict()),
                             copy.deepcopy(self.concepts.state_dict()) if self.trainable_concepts else None)
            return False
        st.bad += 1
        return st.bad >= self.settings.patience

    # ------------------------------------------------------------------ run
    def run(self) -> StageResult:
        s, st = self.settings, self.state
        bar = tqdm(range(st.epoch, s.epochs), desc=self.name, disable=not s.progress or not self.dist.is_main,
                   leave=False, dynamic_ncols=True, initial=st.epoch, total=s.epochs)
        skip = st.batches_done
        for epoch in bar:
            self._train_epoch(epoch, skip)
            skip = 0
            row = self._validate(epoch)
            bar.set_postfix(loss=f"{row.get('loss_total', 0):.3f}", val_mrr=f"{row['val_mrr']:.3f}")
            if self._keep_best(row, epoch):
                break
            st.sums, st.n_steps = {}, 0
            if s.checkpoint_every and (epoch + 1) % s.checkpoint_every == 0 and epoch + 1 < s.epochs:
                self.snapshot(epoch + 1, 0, self.gen.get_state())
        bar.close()
        return self._finish()

    def _finish(self) -> StageResult:
        st = self.state
        if st.best_state is not None:
            self.encoder.load_state_dict(st.best_state[0])
            if st.best_state[1] is not None:
                self.concepts.load_state_dict(st.best_state[1])
        self.encoder.eval()
        self.concepts.eval()
        result = StageResult(st.best_epoch, st.best_val, st.history, st.seconds + time.perf_counter() - self.start)
        if self.checkpoint is not None and self.dist.is_main:
            self.checkpoint.finish({"encoder": self.encoder.state_dict(),
                                    "concepts": self.concepts.state_dict() if self.trainable_concepts else None,
                                    "best_epoch": st.best_epoch, "best_val": st.best_val, "history": st.history,
                                    "seconds": result.seconds})
        return result


def fit_stage(name: str, encoder: nn.Module, concepts: nn.Module, train_candidates: torch.Tensor,
              loss: WeightedLoss, data: StageData, settings: StageSettings, *, device: torch.device,
              concept_sim: torch.Tensor | None = None, logger: StageLogger | None = None,
              seed: int = 0, checkpoint: StageCheckpoint | None = None, dist: DistContext | None = None) -> StageResult:
    """Fit ``encoder`` (and ``concepts`` if it has trainable parameters); keeps the best validation state.

    With ``checkpoint``, a finished stage is restored instead of trained, an unfinished one continues
    exactly where its last checkpoint left it, a checkpoint is written every ``checkpoint_every``
    epochs, and SIGTERM/Ctrl-C (inside :func:`graceful_stop`) writes one and raises
    :class:`TrainingInterrupted`.  With ``dist``, each rank trains on its slice of every global batch."""
    encoder.to(device)
    concepts.to(device)
    if checkpoint is not None and (done := checkpoint.load_done()) is not None:
        return _restore_done(done, encoder, concepts, logger)
    loop = StageLoop(name, encoder, concepts, train_candidates, loss, data, settings, device=device,
                     concept_sim=concept_sim, logger=logger, seed=seed, checkpoint=checkpoint, dist=dist)
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        loop.restore(saved)
    return loop.run()
