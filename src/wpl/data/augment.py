"""Batched image augmentation on tensors, on whatever device the batch is on (no per-image loop):
random crop with zero padding, horizontal flip, per-channel normalisation, optional cutout."""

from __future__ import annotations

import torch
from torch import Tensor


def normalise(x: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """uint8 ``[N, C, H, W]`` → float, per-channel ``(x/255 − mean) / std``."""
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x.float().div_(255.0) - m).div_(s)


def augment(x: Tensor, mean: tuple[float, ...], std: tuple[float, ...], generator: torch.Generator,
            pad: int = 4, flip: bool = True, cutout: int = 0, per_batch: bool = False) -> Tensor:
    """Training view of a uint8 batch: crop with ``pad``-pixel padding, flip, normalise, cutout.

    Random draws come from ``generator`` (a CPU generator, so results do not depend on the device).
    ``per_batch``: one crop offset, one flip and one cutout square for the whole batch (a milder
    augmentation) instead of one per image.
    """
    n, c, h, w = x.shape
    dev = x.device
    k = 1 if per_batch else n  # independent draws

    def draw(high: int) -> Tensor:
        return torch.randint(0, high, (k,), generator=generator).expand(n).to(dev)

    out = normalise(x, mean, std)
    if pad > 0:
        padded = torch.nn.functional.pad(out, (pad, pad, pad, pad))  # zero = the mean after normalising
        oy, ox = draw(2 * pad + 1), draw(2 * pad + 1)
        rows = (oy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, None, :]
        idx = torch.arange(n, device=dev)[:, None, None, None]
        out = padded[idx, torch.arange(c, device=dev)[None, :, None, None], rows, cols]
    if flip:
        mirror = (torch.rand(k, generator=generator) < 0.5).expand(n).to(dev).view(n, 1, 1, 1)
        out = torch.where(mirror, out.flip(3), out)
    if cutout > 0:
        cy, cx = draw(h).view(n, 1, 1, 1), draw(w).view(n, 1, 1, 1)
        ys = torch.arange(h, device=dev).view(1, 1, h, 1)
        xs = torch.arange(w, device=dev).view(1, 1, 1, w)
        half = cutout // 2
        hole = ((ys >= cy - half) & (ys < cy - half + cutout)) & ((xs >= cx - half) & (xs < cx - half + cutout))
        out = out.masked_fill(hole, 0.0)
    return out
