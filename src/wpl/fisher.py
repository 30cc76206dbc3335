"""Diagonal Fisher estimators: pure functions ``(model, params, batches) -> {name: Tensor}``.

Every estimator returns the *mean* over its data, so estimates from different amounts of data are
on one scale:

- ``batch_sq``   — the squared gradient of the mean batch loss, averaged over batches (what the
  paper's code does; cheap, but it squares a mean, so it shrinks as batches grow);
- ``empirical``  — per-sample squared gradients of ``-log p(y|x)`` at the true labels, averaged over
  samples (``torch.func`` + ``vmap``);
- ``true``       — the same with labels sampled from the model's own predictive distribution.

Gradients are taken with ``torch.autograd.grad`` / ``torch.func``: ``.grad`` and the optimizer are
never touched. Per-sample estimators need an ``nn.Module`` that returns class logits ``[N, C]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .runtime import Mode, model_mode

Batch = tuple[Tensor, Tensor]
Estimator = Literal["batch_sq", "empirical", "true"]
ESTIMATORS: tuple[str, ...] = ("batch_sq", "empirical", "true")


def batch_sq_fisher(
    model: Callable[[Tensor], Tensor],
    params: Mapping[str, Tensor],
    batches: Iterable[Batch],
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    reduce: Callable[[list[Tensor]], None] | None = None,
) -> dict[str, Tensor]:
    """Mean over batches of the squared gradient of the batch loss; ``reduce`` (data parallelism: the mean
    over ranks, in place) turns each rank's gradient into the global batch's before it is squared."""
    names = list(params)
    tensors = [params[n] for n in names]
    total = [torch.zeros_like(t, memory_format=torch.preserve_format) for t in tensors]
    count = 0
    for x, y in batches:
        loss = loss_fn(model(x), y)
        grads = torch.autograd.grad(loss, tensors, allow_unused=True)
        if reduce is not None:  # every rank must hand over the same tensors: unused ones as zeros
            grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, tensors)]
            reduce(grads)
        for acc, g in zip(total, grads):
            if g is not None:
                acc.addcmul_(g, g)
        count += 1
    if count == 0:
        raise ValueError("batch_sq_fisher got no batches")
    return {n: t.div_(count) for n, t in zip(names, total)}


def _module_names(model: nn.Module, params: Mapping[str, Tensor]) -> dict[str, str]:
    """Map each tracked name to the name the module knows the same Parameter by."""
    by_id = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
    out = {}
    for name, p in params.items():
        if id(p) not in by_id:
            raise ValueError(
                f"parameter {name!r} is not a parameter of the model given to the Fisher estimator; "
                "pass the module whose forward uses it"
            )
        out[name] = by_id[id(p)]
    return out


def _per_sample_sq_grads(
    model: nn.Module, params: Mapping[str, Tensor], x: Tensor, y: Tensor
) -> dict[str, Tensor]:
    """Sum over the batch of per-sample squared gradients of the cross-entropy."""
    from torch.func import functional_call, grad, vmap

    mod_names = _module_names(model, params)
    detached = {mod_names[n]: p.detach() for n, p in params.items()}

    def sample_loss(p: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
        out = functional_call(model, p, (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    # outside autograd: the model's other parameters (not in ``params``) would otherwise tie every estimate to
    # a graph through them (``grad`` still differentiates inside, whatever the outer mode)
    with torch.no_grad():
        grads = vmap(grad(sample_loss), in_dims=(None, 0, 0))(detached, x, y)
    return {n: grads[mn].pow(2).sum(0) for n, mn in mod_names.items()}


def _require_module(model: object, estimator: str) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"the {estimator!r} Fisher estimator needs an nn.Module (it computes per-sample gradients "
            f"with torch.func.functional_call); got {type(model).__name__}. Use estimator='batch_sq' "
            "for an arbitrary callable"
        )
    return model


def empirical_fisher(
    model: nn.Module,
    params: Mapping[str, Tensor],
    batches: Iterable[Batch],
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Mean over samples of the squared gradient of ``-log p(y|x)`` at the true label."""
    return _per_sample_mean(model, params, batches, sample_labels=False, generator=generator)


def true_fisher(
    model: nn.Module,
    params: Mapping[str, Tensor],
    batches: Iterable[Batch],
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Mean over samples of the squared gradient of ``-log p(ŷ|x)`` with ``ŷ ~ p(·|x)``."""
    return _per_sample_mean(model, params, batches, sample_labels=True, generator=generator)


def _per_sample_mean(
    model: nn.Module,
    params: Mapping[str, Tensor],
    batches: Iterable[Batch],
    sample_labels: bool,
    generator: torch.Generator | None,
) -> dict[str, Tensor]:
    model = _require_module(model, "true" if sample_labels else "empirical")
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    count = 0
    for x, y in batches:
        if sample_labels:
            with torch.no_grad():
                probs = torch.softmax(model(x).float(), dim=-1)
            y = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(x.device)
        for n, g in _per_sample_sq_grads(model, params, x, y).items():
            total[n].add_(g)
        count += x.shape[0]
    if count == 0:
        raise ValueError("the Fisher estimator got no samples")
    return {n: t.div_(count) for n, t in total.items()}


def estimate(
    estimator: str,
    model: Callable[[Tensor], Tensor],
    params: Mapping[str, Tensor],
    batches: Iterable[Batch],
    *,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    generator: torch.Generator | None = None,
    mode: Mode = "eval",
    reduce: Callable[[list[Tensor]], None] | None = None,
) -> dict[str, Tensor]:
    """Run the named estimator with ``model`` in ``mode`` (restored afterwards); ``reduce`` averages over
    data-parallel ranks (``batch_sq``: each batch's gradient; per-sample estimators: their means)."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown Fisher estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    with model_mode(model, mode):
        if estimator == "batch_sq":
            return batch_sq_fisher(model, params, batches, loss_fn=loss_fn, reduce=reduce)
        if loss_fn is not F.cross_entropy:
            raise ValueError(f"the {estimator!r} estimator is defined for cross-entropy classifiers only")
        est = (empirical_fisher if estimator == "empirical" else true_fisher)(model, params, batches,
                                                                               generator=generator)
        if reduce is not None:  # equal shards: the mean of the ranks' per-sample means is the global one
            reduce(list(est.values()))
        return est
