"""Data parallelism under ``torchrun``: who this process is, and the few collectives the search needs.

Launched by torchrun (``WORLD_SIZE`` > 1 in the environment), :func:`from_env` joins the process group —
NCCL on CUDA, Gloo on the CPU — with a timeout, so a rank that dies makes the others fail with an error
instead of waiting forever. Every operation is a no-op for a single process, so code written against
:class:`Dist` runs unchanged without torchrun.

A job joins for a block, ``with joined(device) as dist:``, and leaves the group on the way out
(:meth:`Dist.leave`). Leaving matters: Gloo's worker threads finish each collective after the caller has
its result, and the last one frees the collective's tensors, which needs Python's GIL. A process that
exits with the group still alive can reach interpreter shutdown while a worker is still doing that; the
worker is then ended inside a C++ destructor and the process aborts ("terminate called without an active
exception", SIGABRT) after its work is done. Leaving joins those threads first.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

DEFAULT_TIMEOUT_S = 600.0  # how long a collective waits for a rank that has stopped answering


@dataclass(frozen=True)
class Dist:
    """This process's place in the job: ``rank`` of ``world`` (``world == 1``: no process group)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that samples architectures, trains the controller, logs and checkpoints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """More than one process."""
        return self.world > 1

    def part(self, batch: Tensor) -> Tensor:
        """This rank's part of a global batch (rows split in rank order; all of it in one process)."""
        return batch.tensor_split(self.world)[self.rank] if self.active else batch

    def seed(self, seed: int) -> int:
        """The seed of this rank's own randomness (dropout masks): ``seed`` on rank 0, distinct on the others."""
        return seed + 7919 * self.rank

    def broadcast(self, obj: object) -> object:
        """Rank 0's ``obj`` on every rank (picklable plain data)."""
        if not self.active:
            return obj
        box = [obj if self.main else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: object) -> list[object] | None:
        """Every rank's ``obj``, in rank order, on rank 0 (None on the others)."""
        if not self.active:
            return [obj]
        out = [None] * self.world if self.main else None
        torch.distributed.gather_object(obj, out, dst=0)
        return out

    def scatter(self, objs: list[object] | None) -> object:
        """Rank 0's ``objs[r]`` on rank r."""
        if not self.active:
            return objs[0]
        box = [None]
        torch.distributed.scatter_object_list(box, objs if self.main else None, src=0)
        return box[0]

    def sum_(self, tensors: list[Tensor]) -> None:
        """Sum ``tensors`` over ranks, in place, with one flat all-reduce."""
        if not self.active or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        torch.distributed.all_reduce(flat)
        offset = 0
        for t in tensors:
            t.copy_(flat[offset: offset + t.numel()].view_as(t))
            offset += t.numel()

    def mean_grads_(self, params, extra: list[Tensor] | tuple = ()) -> None:
        """Average the gradients of ``params`` (those that have one: every rank trains the same ones) and
        ``extra`` over ranks, in place, with one flat all-reduce: the global batch's gradient."""
        if self.active:
            self.mean_([p.grad for p in params if p.grad is not None] + list(extra))

    def mean_(self, tensors: list[Tensor]) -> None:
        """Average ``tensors`` over ranks, in place (one flat all-reduce)."""
        if not self.active or not tensors:
            return
        self.sum_(tensors)
        torch._foreach_div_(tensors, float(self.world))

    def sum_floats(self, *values: float) -> list[float]:
        """``values`` summed over ranks (float64)."""
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
        torch.distributed.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.active:
            torch.distributed.barrier()

    def leave(self) -> None:
        """Leave the job: destroy the process group, which joins its worker threads. No barrier first: the
        ranks have finished their last collective together, and a barrier would tie every rank's exit to
        rank 0's work alone after it (testing, writing), under the collectives' timeout."""
        if self.active and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


SINGLE = Dist()


def rank_entry(ranks: list | None, dist: Dist, source: object) -> object | None:
    """This rank's entry of a checkpoint's per-rank list (None for a one-process run's checkpoint read by one
    process); a checkpoint of another number of processes is refused, since its data shards differ."""
    from .errors import WplError

    if not dist.active and not ranks:
        return None
    if not ranks or len(ranks) != dist.world:
        raise WplError(f"{source}: written by a run of {len(ranks) if ranks else 1} process(es); resume it with as "
                       f"many (this one has {dist.world}): torchrun --nproc_per_node=N, N the same")
    return ranks[dist.rank]


def launched() -> bool:
    """This process was started by torchrun (or another launcher that sets ``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def from_env(device: torch.device, timeout_s: float | None = None) -> Dist:
    """Join the torchrun job (NCCL for CUDA, Gloo otherwise), or :data:`SINGLE` when not launched by it;
    collectives time out after ``timeout_s`` (default ``$WPL_DIST_TIMEOUT_S`` or :data:`DEFAULT_TIMEOUT_S`)."""
    if not launched():
        return SINGLE
    if timeout_s is None:
        timeout_s = float(os.environ.get("WPL_DIST_TIMEOUT_S", DEFAULT_TIMEOUT_S))
    dist = torch.distributed
    if not dist.is_initialized():
        # torch.distributed.nn.functional writes the default group into its functions' default arguments when it
        # is imported (torch._dynamo imports it, and torch.optim imports that on the first optimizer); imported
        # after the group exists, it holds the group alive past destroy_process_group(), Gloo's threads with
        # it, until the interpreter's shutdown. Imported before, it holds None.
        importlib.import_module("torch.distributed.nn.functional")

        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return Dist(dist.get_rank(), dist.get_world_size())


@contextlib.contextmanager
def joined(device: torch.device) -> Iterator[Dist]:
    """:func:`from_env` for the block, then :meth:`Dist.leave`, however the block ends."""
    dist = from_env(device)
    try:
        yield dist
    finally:
        dist.leave()


def _collective_device() -> torch.device:
    """Where the process group's tensors live (CUDA for NCCL)."""
    return torch.device("cuda", torch.cuda.current_device()) if torch.distributed.get_backend() == "nccl" \
        else torch.device("cpu")
