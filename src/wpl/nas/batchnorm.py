"""Batch norms synchronised over data-parallel ranks: the image supernets' (batch statistics only) and
the final networks' (affine, running statistics).

The supernets normalise with each batch's own statistics (no running buffers, no affine). Under
``torchrun`` a rank holds only its shard of the global batch, so :func:`batch_norm` computes the mean
and variance over every rank's shard — two all-reduces per layer, differentiable (the backward
all-reduces the statistics' gradients, as ``torch.nn.SyncBatchNorm`` does) — and N ranks at batch b
normalise exactly as one process at batch N·b. Torch's own ``SyncBatchNorm`` is not used: it refuses
CPU tensors, and Gloo on the CPU is what the tests and small clusters run.

Inside :func:`local_stats` every layer uses its own shard's statistics again (per-sample Fisher
estimators map the network over single samples, where no collective can run), and inside
:func:`batch_statistics` every layer normalises with the statistics a whole batch gave it, so that a
network mapped over single samples normalises each one as its batch did.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..dist import SINGLE, Dist

_LOCAL = [False]


@contextlib.contextmanager
def local_stats() -> Iterator[None]:
    """Inside: batch norms use their own rank's statistics (no collectives)."""
    before = _LOCAL[0]
    _LOCAL[0] = True
    try:
        yield
    finally:
        _LOCAL[0] = before


@contextlib.contextmanager
def batch_statistics(model: nn.Module, forward: Callable[[], object]) -> Iterator[None]:
    """Inside: every batch-statistics norm of ``model`` (a layer with a ``dist``) normalises with the mean and
    variance it computed in ``forward()`` (run here once, without gradients; over every rank's shard under
    data parallelism), call by call, and no collective runs. The per-sample Fisher estimators need it: a
    network mapped over single samples would otherwise normalise each sample by its own statistics, and a
    micro-CNN cell's output normalised over one image averages to exactly 0 in the global pool, which leaves
    every weight before it without a gradient."""
    layers = [m for m in model.modules() if isinstance(getattr(m, "dist", None), Dist)]
    seen: dict[nn.Module, list[tuple[Tensor, Tensor]]] = {m: [] for m in layers}
    calls = dict.fromkeys(layers, 0)

    def record(m: nn.Module, args: tuple, out: Tensor) -> None:
        x = args[0]
        if m.dist.active and not _LOCAL[0]:
            seen[m].append(_global_norm(x, m.eps, m.dist)[1:3])
        else:
            dims = [0, *range(2, x.dim())]
            seen[m].append((x.mean(dims), x.var(dims, unbiased=False)))

    def fixed(m: nn.Module, args: tuple, out: Tensor) -> Tensor:
        mean, var = seen[m][calls[m] % len(seen[m])]  # the same calls in the same order, forward after forward
        calls[m] += 1
        return F.batch_norm(args[0], mean, var, getattr(m, "weight", None), getattr(m, "bias", None),
                            training=False, eps=m.eps)

    handles = [m.register_forward_hook(record) for m in layers]
    try:
        if layers:
            with torch.no_grad():
                forward()
    finally:
        for h in handles:
            h.remove()
    handles = [m.register_forward_hook(fixed) for m in layers if seen[m]]
    try:
        with local_stats():
            yield
    finally:
        for h in handles:
            h.remove()


class _AllSum(torch.autograd.Function):
    """Sum over ranks whose backward sums the gradients over ranks (each rank's loss depends on every
    rank's input through the shared statistics)."""

    @staticmethod
    def forward(ctx, t: Tensor) -> Tensor:  # noqa: D102
        out = t.clone()
        torch.distributed.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: D102
        grad = grad.contiguous().clone()
        torch.distributed.all_reduce(grad)
        return grad


def _all_sum(t: Tensor) -> Tensor:
    """``t`` summed over ranks; differentiable."""
    return _AllSum.apply(t)


def _shape(x: Tensor) -> list[int]:
    """How a per-channel vector broadcasts against ``x`` ([N, C, ...])."""
    return [1, -1] + [1] * (x.dim() - 2)


def _global_norm(x: Tensor, eps: float, dist: Dist) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(``x`` normalised with the global per-channel mean and biased variance, that mean, that variance,
    the global count per channel)."""
    dims = [0, *range(2, x.dim())]
    count = torch.full((1,), float(x.numel() // max(x.shape[1], 1)), dtype=x.dtype, device=x.device)
    total = _all_sum(torch.cat([x.sum(dims), count]))
    n = total[-1].clamp_min(1.0)
    mean = total[:-1] / n
    centred = x - mean.view(_shape(x))
    var = _all_sum((centred * centred).sum(dims)) / n
    return centred * torch.rsqrt(var + eps).view(_shape(x)), mean, var, n


def batch_norm(x: Tensor, eps: float, dist: Dist = SINGLE) -> Tensor:
    """``x`` ([N, C, ...]) normalised per channel with the batch's mean and biased variance — the whole
    global batch's when ``dist`` has several ranks (every rank must call it, with the same C)."""
    if not dist.active or _LOCAL[0]:
        return F.batch_norm(x, None, None, training=True, eps=eps)
    return _global_norm(x, eps, dist)[0]


class BatchStatNorm(nn.BatchNorm2d):
    """``nn.BatchNorm2d(c, affine=False, track_running_stats=False)`` whose statistics span every rank
    of ``dist`` (set by :func:`use_dist`); the same layer as torch's when run as one process."""

    def __init__(self, c: int) -> None:
        super().__init__(c, affine=False, track_running_stats=False)
        self.dist: Dist = SINGLE

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        if not self.dist.active:
            return super().forward(x)
        return batch_norm(x, self.eps, self.dist)


def use_dist(model: nn.Module, dist: Dist) -> None:
    """Make every batch-statistics norm of ``model`` (those with a ``dist`` attribute) span ``dist``'s ranks."""
    for m in model.modules():
        if isinstance(getattr(m, "dist", None), Dist):
            m.dist = dist


class SyncBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (affine, running statistics; the same parameters and buffers) whose training
    statistics span every rank of ``dist``: the running mean and variance advance identically on every
    rank, as one process at the global batch would advance them. Evaluation uses the running statistics."""

    def __init__(self, c: int) -> None:
        super().__init__(c)
        self.dist: Dist = SINGLE

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        if not (self.training and self.dist.active) or _LOCAL[0]:
            return super().forward(x)
        y, mean, var, n = _global_norm(x, self.eps, self.dist)
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1).clamp_min(1.0)), alpha=m)
        return y * self.weight.view(_shape(x)) + self.bias.view(_shape(x))
