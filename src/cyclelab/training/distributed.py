"""Data-parallel training over several processes (``train.gpus``), launched by ``torchrun``.

Every rank holds the same networks (same seed), trains on its contiguous slice of each global
batch (:class:`~cyclelab.data.dataset.UnpairedBatches` shards it), and before each optimiser
step the gradients are averaged over the ranks with one all-reduce per parameter: the update of
DistributedDataParallel. We all-reduce by hand instead of wrapping the networks in DDP because
a CycleGAN step runs each generator two or three times (translation, reconstruction, identity)
before one backward, which DDP's reducer does not support. NCCL on CUDA, gloo on the CPU.

Only rank 0 logs and writes outputs and checkpoints; a checkpoint resumes with any world size,
since the batches depend only on the seed, the epoch and the global batch size.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:  # noqa: D102
        return self.rank == 0


def under_torchrun() -> bool:
    """True inside a process that ``torchrun`` started."""
    return "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


def relaunch_under_torchrun(nproc: int, argv: list[str]) -> None:
    """Replace this process by ``torchrun --standalone --nproc_per_node nproc argv`` (one node;
    several nodes: start torchrun yourself with its rendezvous flags, see the README)."""
    os.execv(sys.executable, [sys.executable, "-m", "torch.distributed.run", "--standalone",
                              f"--nproc_per_node={nproc}", *argv])


def init(device_type: str) -> Distributed:
    """Join the process group torchrun describes (NCCL on CUDA, gloo otherwise)."""
    if not under_torchrun():
        return Distributed()
    local_rank = int(os.environ["LOCAL_RANK"])
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), local_rank)


def gradient_averager(world_size: int) -> Callable[[torch.optim.Optimizer], None] | None:
    """A hook that averages the gradients of an optimiser's parameters over all ranks."""
    if world_size == 1:
        return None

    def average(optimizer: torch.optim.Optimizer) -> None:
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                    p.grad.div_(world_size)

    return average


def broadcast_parameters(nets: Iterable[torch.nn.Module]) -> None:
    """Start every rank from rank 0's weights (they agree already when seeded alike)."""
    if dist.is_available() and dist.is_initialized():
        for net in nets:
            for tensor in [*net.parameters(), *net.buffers()]:
                dist.broadcast(tensor.data, src=0)


def shutdown() -> None:  # noqa: D103
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
