"""Batch-statistics batch norm for the image supernets, synchronised over data-parallel ranks.

The supernets normalise with each batch's own statistics (no running buffers, no affine). Under
``torchrun`` a rank holds only its shard of the global batch, so :func:`batch_norm` computes the mean
and variance over every rank's shard — two all-reduces per layer, differentiable (the backward
all-reduces the statistics' gradients, as ``torch.nn.SyncBatchNorm`` does) — and N ranks at batch b
normalise exactly as one process at batch N·b. Torch's own ``SyncBatchNorm`` is not used: it refuses
CPU tensors, and Gloo on the CPU is what the tests and small clusters run.

Inside :func:`local_stats` every layer uses its own shard's statistics again (per-sample Fisher
estimators map the network over single samples, where no collective can run).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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


def _all_sum(t: Tensor) -> Tensor:
    """``t`` summed over ranks; differentiable when ``t`` needs a gradient."""
    if torch.is_grad_enabled() and t.requires_grad:
        from torch.distributed.nn.functional import all_reduce

        return all_reduce(t)
    t = t.clone()
    torch.distributed.all_reduce(t)
    return t


def batch_norm(x: Tensor, eps: float, dist: Dist = SINGLE) -> Tensor:
    """``x`` ([N, C, ...]) normalised per channel with the batch's mean and biased variance — the whole
    global batch's when ``dist`` has several ranks (every rank must call it, with the same C)."""
    if not dist.active or _LOCAL[0]:
        return F.batch_norm(x, None, None, training=True, eps=eps)
    dims = [0, *range(2, x.dim())]
    shape = [1, -1] + [1] * (x.dim() - 2)
    count = torch.full((1,), float(x.numel() // max(x.shape[1], 1)), dtype=x.dtype, device=x.device)
    total = _all_sum(torch.cat([x.sum(dims), count]))
    n = total[-1].clamp_min(1.0)
    centred = x - (total[:-1] / n).view(shape)
    var = _all_sum((centred * centred).sum(dims)) / n
    return centred * torch.rsqrt(var + eps).view(shape)


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
