"""Decoder + softmax cross-entropy in one autograd node (the language model's most expensive part).

``linear_cross_entropy(h, weight, bias, target)`` equals
``F.cross_entropy(F.linear(h, weight, bias), target)`` (mean over rows) but

- when a gradient is needed it turns the logits into ``softmax − onehot`` in place during the
  forward, so the backward is two matrix products: no log-softmax output, no zero-filled NLL
  gradient, no log-softmax backward pass over the ``[N, V]`` matrix;
- on the CPU the ``[N, V]`` buffer is reused from call to call: a fresh 90 MB allocation is
  page-faulted in by the OS every time, which costs as much as a pass over it.

A graph through it can be backpropagated once (the buffer goes back to the pool in the backward).
On the CPU in float32 the softmax runs as one C++ pass per row (:mod:`.cpp_ops`, ``softmax_ce.cpp``:
bias, max, exp, normalise and the bias gradient while the row is in cache) instead of seven torch
passes over the ``[N, V]`` matrix; elsewhere it runs in torch ops.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import cpp_ops
from .cpp_ops import applies

_FREE: list[Tensor] = []  # flat CPU buffers ready for reuse
_MAX_FREE = 2


def _acquire(numel: int, like: Tensor) -> Tensor:
    if like.device.type == "cpu":
        fits = [i for i, b in enumerate(_FREE) if b.numel() >= numel and b.dtype == like.dtype]
        if fits:
            return _FREE.pop(min(fits, key=lambda i: _FREE[i].numel()))
    return torch.empty(numel, dtype=like.dtype, device=like.device)


def _release(buf: Tensor) -> None:
    if buf.device.type == "cpu":
        _FREE.append(buf)
        if len(_FREE) > _MAX_FREE:
            _FREE.pop(min(range(len(_FREE)), key=lambda i: _FREE[i].numel()))


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor, bias: Tensor, target: Tensor) -> Tensor:  # noqa: D102
        n, v = h.size(0), weight.size(0)
        buf = _acquire(n * v, h)
        logits = buf[: n * v].view(n, v)
        grad = any(ctx.needs_input_grad[:3])
        ops = cpp_ops.load() if applies(h, weight, bias) else None
        if ops is not None and not torch.isfinite(h.sum() + weight.sum() + bias.sum()):
            ops = None  # the C++ pass does not propagate NaN; torch ops do
        if ops is not None:
            torch.mm(h, weight.t(), out=logits)
            losses, colsum = ops.softmax_ce_(logits, bias.contiguous(), target, grad)
            if grad:
                ctx.save_for_backward(h, weight, logits)
                ctx.buf, ctx.done, ctx.colsum = buf, False, colsum
            else:
                _release(buf)
            return losses.mean()
        torch.addmm(bias, h, weight.t(), out=logits)
        picked = logits.gather(1, target.unsqueeze(1)).squeeze(1)
        top = logits.amax(dim=1, keepdim=True)
        # clamped so exp never yields denormals (below ~1e-38), which slow every later pass and
        # product over the buffer by an order of magnitude once the logits spread out in training
        exp = logits.sub_(top).clamp_(min=-80.0).exp_()
        total = exp.sum(dim=1, keepdim=True)
        loss = (top.squeeze(1) + total.log().squeeze(1) - picked).mean()
        if grad:
            probs = exp.div_(total)
            probs.scatter_add_(1, target.unsqueeze(1), probs.new_full((n, 1), -1.0))
            ctx.save_for_backward(h, weight, probs)
            ctx.buf, ctx.done, ctx.colsum = buf, False, None
        else:
            _release(buf)
        return loss

    @staticmethod
    def backward(ctx, grad_loss: Tensor):  # noqa: D102
        if ctx.done:
            raise RuntimeError("linear_cross_entropy's graph can be backpropagated only once (no retain_graph)")
        h, weight, dlogits = ctx.saved_tensors
        scale = grad_loss / dlogits.size(0)
        grad_h = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_h = (dlogits @ weight).mul_(scale)
        if ctx.needs_input_grad[1]:
            grad_w = (dlogits.t() @ h).mul_(scale)
        if ctx.needs_input_grad[2]:
            grad_b = (dlogits.sum(0) if ctx.colsum is None else ctx.colsum).mul_(scale)
        ctx.done = True
        _release(ctx.buf)
        return grad_h, grad_w, grad_b, None



def linear_cross_entropy(h: Tensor, weight: Tensor, bias: Tensor, target: Tensor) -> Tensor:
    """Mean cross-entropy of ``h @ weight.T + bias`` (``[N, V]`` logits) against ``target [N]``."""
    if h.dim() != 2 or target.dim() != 1 or h.size(0) != target.size(0):
        raise ValueError(f"expected h [N, D] and target [N], got {tuple(h.shape)} and {tuple(target.shape)}")
    return _LinearCrossEntropy.apply(h, weight, bias, target)
