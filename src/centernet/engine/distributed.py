"""Distributed data parallel training through torchrun: process group set-up and small collectives.

``torchrun --nproc_per_node N -m centernet train ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in their environment; each calls
:func:`init_distributed`, which joins the process group (NCCL on GPUs, gloo on CPU) and, on
GPUs, pins the process to its local device. Without those variables everything here is a
no-op for a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0        # this process among all
    world_size: int = 1  # number of processes
    local_rank: int = 0  # this process on its node (its GPU index)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, validates and writes files."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: str) -> DistributedContext:
    """Join the process group torchrun set up (once per process); a single process gets the default context.

    ``device``: 'cpu' (gloo) or 'cuda' (NCCL, one GPU per process: cuda:LOCAL_RANK).
    """
    if not launched_by_torchrun():
        return DistributedContext()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistributedContext(rank, world, local_rank)


def broadcast_flags(flags: list[bool], context: DistributedContext) -> list[bool]:
    """Rank 0's booleans on every rank (stop decisions must agree, or the others wait forever)."""
    if not context.enabled:
        return flags
    tensor = torch.tensor([float(f) for f in flags])
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.broadcast(tensor, src=0)
    return [bool(v) for v in tensor.tolist()]


def broadcast_value(value: float, context: DistributedContext) -> float:
    """Rank 0's number on every rank."""
    if not context.enabled:
        return value
    tensor = torch.tensor([float(value)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def all_finite(loss: torch.Tensor, context: DistributedContext) -> bool:
    """Whether the loss is finite on every rank."""
    finite = bool(torch.isfinite(loss))
    if not context.enabled:
        return finite
    flag = torch.tensor([1.0 if finite else 0.0], device=loss.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def barrier(context: DistributedContext) -> None:
    if context.enabled:
        dist.barrier()
