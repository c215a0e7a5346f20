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
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import TrainingError, TrainingInterrupted
from ..gnn.concepts import cosine_logits
from ..losses import DistillBatch, WeightedLoss
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


@torch.no_grad()
def embed(encoder: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    encoder.eval()
    out = [encoder(x[s:s + batch_size]).float() for s in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.zeros(0)


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
        return self.frozen if self.frozen is not None else self.concepts()[self.candidates]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x), self.concept_matrix()


def _restore_done(done: dict, encoder: nn.Module, concepts: nn.Module, logger: StageLogger | None) -> StageResult:
    encoder.load_state_dict(done["encoder"])
    if done["concepts"] is not None:
        concepts.load_state_dict(done["concepts"])
    if logger is not None:
        logger.restore(done["history"])
    encoder.eval()
    concepts.eval()
    return StageResult(done["best_epoch"], done["best_val"], list(done["history"]), done["seconds"])


def fit_stage(name: str, encoder: nn.Module, concepts: nn.Module, train_candidates: torch.Tensor,
              loss: WeightedLoss, data: StageData, settings: StageSettings, *, device: torch.device,
              concept_sim: torch.Tensor | None = None, logger: StageLogger | None = None,
              seed: int = 0, checkpoint: StageCheckpoint | None = None, dist: DistContext | None = None) -> StageResult:
    """Fit ``encoder`` (and ``concepts`` if it has trainable parameters); keeps the best validation state.

    With ``checkpoint``, a finished stage is restored instead of trained, an unfinished one continues
    exactly where its last checkpoint left it, a checkpoint is written every ``checkpoint_every``
    epochs, and SIGTERM/Ctrl-C (inside :func:`graceful_stop`) writes one and raises
    :class:`TrainingInterrupted`.  With ``dist``, each rank trains on its slice of every global batch."""
    dist = dist or DistContext()
    encoder.to(device)
    concepts.to(device)
    if checkpoint is not None and (done := checkpoint.load_done()) is not None:
        return _restore_done(done, encoder, concepts, logger)
    start = time.perf_counter()
    trainable_concepts = any(p.requires_grad for p in concepts.parameters())
    params = list(encoder.parameters()) + (list(concepts.parameters()) if trainable_concepts else [])
    params = [p for p in params if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(data.x) / settings.batch_size))
    total_steps = settings.epochs * steps_per_epoch + 1
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=total_steps,
                                                pct_start=min(0.5, max(0.1, 2.0 / total_steps)), anneal_strategy="cos")
    gen = torch.Generator().manual_seed(seed)
    cand = train_candidates.to(device)
    needs_sim = "concept_sim" in loss.required_fields
    sim = concept_sim.to(device) if (concept_sim is not None and needs_sim) else None
    frozen_c = None
    if not trainable_concepts:
        with torch.no_grad():
            concepts.eval()
            frozen_c = concepts()[cand].float()

    stage = _StageModel(encoder, concepts, cand, frozen_c)
    model: nn.Module = stage
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                        broadcast_buffers=False)  # graph buffers are identical on every rank
    if settings.compile:
        model = torch.compile(model)

    check_every = settings.nan_check_every or (1 if device.type == "cpu" else 25)
    nonfinite = torch.zeros((), dtype=torch.bool, device=device)
    step = 0

    def check_finite(parts: dict[str, torch.Tensor], epoch: int) -> None:
        if bool(nonfinite):  # one host sync every `check_every` steps
            bad_terms = [k for k, v in parts.items() if k != "total" and not bool(torch.isfinite(v))]
            where = f"epoch {epoch}, step {step}" if check_every == 1 else f"epoch {epoch}, by step {step}"
            raise TrainingError(f"stage {name!r}: loss {'term ' + repr(bad_terms[0]) if bad_terms else 'total'} became "
                                f"NaN or infinite ({where}); lower the learning rate or check the inputs. "
                                "Nothing of this stage was kept.")

    def should_stop() -> bool:
        """A signal arrived; under torch.distributed all ranks decide together, every ``check_every`` steps."""
        if not dist.enabled:
            return stop_requested() is not None
        return step % check_every == 0 and dist.any(stop_requested() is not None)

    best_state, best_val, best_epoch, bad = None, -float("inf"), -1, 0
    history: list[dict] = []
    start_epoch, skip, elapsed = 0, 0, 0.0
    sums: dict[str, torch.Tensor] = {}
    n_steps = 0
    state = checkpoint.load() if checkpoint is not None else None
    if state is not None:  # continue exactly where the checkpoint left off
        encoder.load_state_dict(state["encoder"])
        if trainable_concepts:
            concepts.load_state_dict(state["concepts"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        best_state, best_val, best_epoch, bad = state["best_state"], state["best_val"], state["best_epoch"], state["bad"]
        history, step, elapsed = list(state["history"]), state["step"], state["seconds"]
        start_epoch, skip = state["epoch"], state["batches_done"]
        sums = {k: v.to(device) for k, v in state["sums"].items()}
        n_steps = state["n_steps"]
        rngs = state["rng"]  # one per rank; resuming with more ranks than saved is allowed but not bit-exact
        set_rng_state(rngs[dist.rank] if dist.rank < len(rngs) else rngs[0])
        if logger is not None:
            logger.restore(history)

    def snapshot(epoch: int, batches_done: int, gen_state: torch.Tensor) -> None:
        if checkpoint is None:
            return
        rngs = dist.gather(rng_state())  # every rank takes part; rank 0 writes
        if not dist.is_main:
            return
        checkpoint.save({
            "stage": name, "epoch": epoch, "batches_done": batches_done, "step": step, "generator": gen_state,
            "encoder": encoder.state_dict(), "concepts": concepts.state_dict() if trainable_concepts else None,
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": rngs,
            "best_state": best_state, "best_val": best_val, "best_epoch": best_epoch, "bad": bad,
            "history": history, "sums": {k: v.detach().cpu() for k, v in sums.items()}, "n_steps": n_steps,
            "seconds": elapsed + time.perf_counter() - start})

    bar = tqdm(range(start_epoch, settings.epochs), desc=name, disable=not settings.progress or not dist.is_main,
               leave=False, dynamic_ncols=True, initial=start_epoch, total=settings.epochs)
    for epoch in bar:
        encoder.train()
        concepts.train(trainable_concepts)
        gen_at_epoch = gen.get_state()
        parts: dict[str, torch.Tensor] = {}
        for b, idx in enumerate(_batches(len(data.x), settings.batch_size, gen, device)):
            if b < skip:
                continue
            mine = dist.shard(idx)
            with autocast(device, settings.amp):
                z, c = model(data.x[mine])
                batch = DistillBatch(
                    z_student=z, logits_student=cosine_logits(z.float(), c.float(), settings.temperature),
                    labels=data.labels[mine],
                    z_teacher=None if data.z_teacher is None else data.z_teacher[mine],
                    logits_teacher=None if data.logits_teacher is None else data.logits_teacher[mine],
                    concept_emb=c, concept_sim=sim,
                )
                total, parts = loss(batch)
            if dist.enabled:  # weight by slice size: the ranks' averaged gradient is the global batch's
                w = mine.numel() * dist.world_size / idx.numel()
                total, parts = total * w, {k: v * w for k, v in parts.items()}
            nonfinite |= ~torch.isfinite(total.detach())
            step += 1
            if step % check_every == 0:
                check_finite(parts, epoch)
            opt.zero_grad(set_to_none=True)
            total.backward()
            nn.utils.clip_grad_norm_(params, settings.grad_clip)
            opt.step()
            sched.step()
            parts["total"] = total.detach()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0) + v.float()
            n_steps += 1
            if should_stop():
                snapshot(epoch, b + 1, gen_at_epoch)
                sig = stop_requested() or signal.SIGTERM
                raise TrainingInterrupted(f"stage {name!r} stopped by {signal.Signals(sig).name} at epoch {epoch}, "
                                          f"step {step}; a checkpoint was written", sig)
        skip = 0
        check_finite(parts, epoch)
        # validation: MRR over the training candidates, on samples of those concepts
        encoder.eval()
        concepts.eval()
        with torch.no_grad(), autocast(device, settings.amp):
            c = stage.concept_matrix().float()
            zv = embed(encoder, data.x_val)
            val = _mrr(cosine_logits(zv, c, settings.temperature), data.y_val)
        totals = dist.sum_(sums)
        row = {"epoch": epoch, "lr": sched.get_last_lr()[0]}
        row.update({f"loss_{k}": float(v) / dist.world_size / max(n_steps, 1) for k, v in totals.items()})
        row["val_mrr"] = float(val)
        history.append(row)
        if logger is not None and dist.is_main:
            logger.log(row)
        bar.set_postfix(loss=f"{row.get('loss_total', 0):.3f}", val_mrr=f"{row['val_mrr']:.3f}")
        if row["val_mrr"] > best_val + 1e-4:
            best_val, best_epoch, bad = row["val_mrr"], epoch, 0
            best_state = (copy.deepcopy(encoder.state_dict()),
                          copy.deepcopy(concepts.state_dict()) if trainable_concepts else None)
        else:
            bad += 1
            if bad >= settings.patience:
                break
        sums, n_steps = {}, 0
        if settings.checkpoint_every and (epoch + 1) % settings.checkpoint_every == 0 and epoch + 1 < settings.epochs:
            snapshot(epoch + 1, 0, gen.get_state())
    bar.close()
    if best_state is not None:
        encoder.load_state_dict(best_state[0])
        if best_state[1] is not None:
            concepts.load_state_dict(best_state[1])
    encoder.eval()
    concepts.eval()
    result = StageResult(best_epoch, best_val, history, elapsed + time.perf_counter() - start)
    if checkpoint is not None and dist.is_main:
        checkpoint.finish({"encoder": encoder.state_dict(),
                           "concepts": concepts.state_dict() if trainable_concepts else None,
                           "best_epoch": best_epoch, "best_val": best_val, "history": history,
                           "seconds": result.seconds})
    return result
