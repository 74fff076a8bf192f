"""Distributed data parallel through ``torchrun``: read its environment, reduce, gather.

``torchrun`` (one node or many) starts the processes and sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and the rendezvous address; this module only joins the process group it
describes (NCCL on GPU, gloo on CPU). Started as a plain ``python``/``kgclip`` process,
everything runs as a world of one with no process group at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from kgclip_core.backbone import resolve_device


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistEnv:
    """Join the process group ``torchrun`` described, if any, and pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank if dev.index is None else dev.index)
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistEnv(rank, world, local_rank, dev)


def shard(count: int, env: DistEnv) -> range:
    """This rank's share of ``count`` items, every ``world_size``-th from its rank: the shares
    cover every item exactly once (no padding, no duplicates) and differ in size by one at most."""
    return range(env.rank, count, env.world_size)


def all_reduce_sum(values: list[float], env: DistEnv) -> list[float]:
    """Sum a few numbers over all ranks (identity in a world of one)."""
    if not env.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=env.device)
    dist.all_reduce(t)
    return t.tolist()


def all_gather(obj: Any, env: DistEnv) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if not env.distributed:
        return [obj]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def average_gradients(params: list[torch.nn.Parameter], env: DistEnv) -> None:
    """Average ``.grad`` over ranks by hand: for a window whose last micro-batch was skipped,
    DDP's own synchronisation never ran."""
    if not env.distributed:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad.div_(env.world_size)


def shutdown(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()
