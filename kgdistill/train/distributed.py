"""torch.distributed for torchrun: one process per device, each global batch split across ranks.

``torchrun --nproc_per_node N -m kgdistill train CONFIG`` sets RANK/WORLD_SIZE/LOCAL_RANK;
we join the process group (NCCL on GPUs, gloo on CPUs) and every rank runs the same
pipeline on the same data.  In a training step each rank takes its contiguous slice of
the global batch (the role a DistributedSampler plays, but keeping the single-process
batch order), gradients are averaged by DistributedDataParallel, and losses are
re-weighted by slice size so the averaged gradient is the global batch's gradient.
Control messages (stop flags, RNG states, loss sums) use a gloo group, so they never
need a device sync; only rank 0 writes logs, checkpoints and results.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..errors import ConfigError


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    cpu_group: Any = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of a global batch of indices."""
        return idx.tensor_split(self.world_size)[self.rank] if self.enabled else idx

    def any(self, flag: bool) -> bool:
        """True on every rank if it is True on any (collective stop decisions never deadlock)."""
        if not self.enabled:
            return flag
        t = torch.tensor([int(flag)])
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.cpu_group)
        return bool(t.item())

    def sum_(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Sum per-rank loss sums (once per epoch, on the CPU)."""
        if not self.enabled or not tensors:
            return tensors
        keys = sorted(tensors)
        t = torch.stack([tensors[k].detach().float().cpu() for k in keys])
        dist.all_reduce(t, group=self.cpu_group)
        return dict(zip(keys, t.unbind(0)))

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (e.g. RNG states for a checkpoint)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self.cpu_group)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier(group=self.cpu_group)


_CONTEXT = DistContext()


def context() -> DistContext:
    return _CONTEXT


def init_from_env(device_name: str = "auto") -> tuple[DistContext, str]:
    """Join the process group torchrun describes (no-op in a plain process); returns the context and the device."""
    global _CONTEXT
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _CONTEXT, device_name
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    if device_name == "cuda" and not use_cuda:
        raise ConfigError("train.device: 'cuda' requested but no CUDA device is available")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=60))
    group = dist.new_group(backend="gloo") if use_cuda else dist.group.WORLD
    _CONTEXT = DistContext(rank, world, local, group)
    if use_cuda:
        torch.cuda.set_device(local)
        return _CONTEXT, f"cuda:{local}"
    return _CONTEXT, "cpu"


def shutdown() -> None:
    global _CONTEXT
    if dist.is_initialized():
        dist.destroy_process_group()
    _CONTEXT = DistContext()
