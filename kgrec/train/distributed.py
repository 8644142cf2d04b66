"""Data-parallel training across processes: the process group, who this rank is, and the collectives
training needs (gradient sums, agreed decisions, the main rank writing alone).

A job started by ``torchrun`` (environment ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``) or any code
that called ``torch.distributed.init_process_group`` trains data-parallel: every rank propagates
over the whole graph, draws the same global batch, negatives and ID-dropout masks (same seed), and
computes the loss of its own contiguous slice of the batch's rows (:class:`RowShard`). The slices'
losses are divided by the *global* row counts, so the sum of the ranks' gradients
(:func:`sum_gradients`, one ``all_reduce`` per step) is the gradient of the whole batch's loss, and
every rank takes the same Adam step. Without a process group (or with one rank) nothing here runs
and training is the single-process loop.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class RowShard:
    """Rank ``rank`` of ``world`` computes rows ``[n * rank // world, n * (rank + 1) // world)`` of a
    batch of ``n`` rows: contiguous slices, sizes differing by at most one, every row in exactly one."""

    rank: int
    world: int

    def bounds(self, n: int) -> tuple[int, int]:
        """``(start, stop)`` of this rank's rows in a batch of ``n``."""
        return n * self.rank // self.world, n * (self.rank + 1) // self.world

    def take(self, rows: Tensor) -> Tensor:
        """This rank's slice of ``rows`` (first dimension)."""
        lo, hi = self.bounds(len(rows))
        return rows[lo:hi]

    def positions(self, global_rows: Tensor, n: int) -> tuple[Tensor, Tensor]:
        """For ``global_rows`` (sorted row numbers of a batch of ``n``): ``(which, local)``, the
        positions in ``global_rows`` of the rows this rank holds and their row numbers in its slice."""
        lo, hi = self.bounds(n)
        which = torch.nonzero((global_rows >= lo) & (global_rows < hi)).squeeze(1)
        return which, global_rows[which] - lo


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the running process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def current_shard() -> RowShard | None:
    """This rank's :class:`RowShard` in a process group of two or more ranks, else ``None`` (the
    single-process path)."""
    rank, size = world()
    return RowShard(rank, size) if size > 1 else None


def is_main() -> bool:
    """Whether this process is rank 0 (always, without a process group): the one that writes."""
    return world()[0] == 0


def launched_world_size() -> int:
    """``WORLD_SIZE`` of a launcher's environment (``torchrun``, SLURM via ``torchrun``); 1 when unset."""
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"WORLD_SIZE={value!r} in the environment is not a whole number. Fix: start the job with "
                         "torchrun, which sets it, or unset it") from None


def init_from_env(device: str = "auto") -> str:
    """Join the process group a launcher described (``WORLD_SIZE`` > 1 and no group yet) and return the
    device this rank trains on: backend ``nccl`` and ``cuda:LOCAL_RANK`` where CUDA is present and
    ``device`` allows it, else ``gloo`` and the CPU. Returns ``device`` unchanged outside such a job
    (or when a group already exists, e.g. one the caller made)."""
    if launched_world_size() <= 1 or dist.is_initialized():
        return device
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise ValueError(f"WORLD_SIZE is {os.environ['WORLD_SIZE']} but {name} is not set. Fix: start the job "
                             "with torchrun (or set RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT on every process)")
    cuda = torch.cuda.is_available() and str(device).split(":")[0] in ("auto", "cuda")
    if cuda:
        local = int(os.environ["LOCAL_RANK"])
        torch.cuda.set_device(local)
        dist.init_process_group("nccl", device_id=torch.device("cuda", local))
        return f"cuda:{local}"
    dist.init_process_group("gloo")
    return "cpu"


def shutdown() -> None:
    """Leave the process group, if this process is in one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def sum_gradients(params: Iterable[torch.nn.Parameter], *values: Tensor) -> Tensor:
    """Replace every parameter's gradient by its sum over the ranks and return ``values`` (scalars)
    summed over the ranks, ``[len(values)]``, in one ``all_reduce`` of one flat buffer. A rank
    without a gradient for a parameter adds zeros; a parameter no rank has a gradient for keeps
    none, so the optimiser skips it as it would in one process. Each rank's loss is its rows'
    share of the global batch's loss, so the sums are that loss and its gradient."""
    params = [p for p in params if p.requires_grad]
    dtype, device = params[0].dtype, params[0].device
    parts = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
    has = torch.tensor([p.grad is not None for p in params], dtype=dtype, device=device)
    flat = torch.cat(parts + [has] + [v.detach().reshape(1).to(device=device, dtype=dtype) for v in values])
    dist.all_reduce(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p)  # views of one buffer, as DDP's buckets: no second copy
        offset += n
    for p, had in zip(params, flat[offset:offset + len(params)].tolist()):
        if had == 0:
            p.grad = None
    return flat[offset + len(params):]


def broadcast_value(value: float) -> float:
    """Rank 0's ``value`` on every rank (for decisions only rank 0 computes, such as validation)."""
    if world()[1] == 1:
        return value
    on_gpu = dist.get_backend() == "nccl"  # NCCL moves CUDA tensors only
    t = torch.tensor([value], dtype=torch.float64,
                     device=torch.device("cuda", torch.cuda.current_device()) if on_gpu else "cpu")
    dist.broadcast(t, 0)
    return float(t)


def broadcast_module(module: torch.nn.Module) -> None:
    """Overwrite every parameter and buffer of ``module`` with rank 0's (every rank then holds
    identical weights for the steps after training)."""
    if world()[1] == 1:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, 0)


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first, the other ranks after it finished (e.g. rank 0 fills an on-disk
    cache the others then read); a plain block without a process group."""
    rank, size = world()
    if size > 1 and rank != 0:
        dist.barrier()
    try:
        yield
    finally:
        if size > 1 and rank == 0:
            dist.barrier()
