"""Weight Plasticity Loss: ``(α/2)·Σ F_i (θ_i − θ̂_i)²`` over the shared parameters a model uses."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import fisher as _fisher
from .errors import ConfigError
from .fields import check_choices, flag
from .schedule import AlphaSchedule

NamedParams = nn.Module | Mapping[str, Tensor] | Iterable[tuple[str, Tensor]]
Importance = Literal["fisher", "uniform"]
Normalise = Literal["none", "mean"]


class _Penalty(torch.autograd.Function):
    """Forward: Σ F·d² with d = θ − θ̂ (fused foreach); backward: the closed form 2·F·d·g."""

    @staticmethod
    def forward(ctx, anchors, fishers, *params):  # type: ignore[override]
        diffs = torch._foreach_sub(list(params), anchors)
        weighted = torch._foreach_mul(diffs, fishers)
        ctx.save_for_backward(*weighted)
        return sum(torch.dot(w.reshape(-1), d.reshape(-1)) for w, d in zip(weighted, diffs))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):  # type: ignore[override]
        grads = torch._foreach_mul(list(ctx.saved_tensors), 2.0 * grad_out)
        return (None, None, *grads)


def _as_named(named_params: NamedParams) -> dict[str, Tensor]:
    if isinstance(named_params, nn.Module):
        items = list(named_params.named_parameters())
    elif isinstance(named_params, Mapping):
        items = list(named_params.items())
    else:
        items = list(named_params)
    out: dict[str, Tensor] = {}
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Tensor)):
            raise TypeError(
                "named_params must be an nn.Module, a mapping name -> Parameter, or an iterable of "
                f"(name, Parameter) pairs; got an item {item!r}"
            )
        name, p = item
        if name in out:
            raise ValueError(f"parameter name {name!r} appears twice in named_params")
        if not p.is_floating_point():
            raise TypeError(f"parameter {name!r} is not floating point ({p.dtype})")
        out[name] = p
    if not out:
        raise ValueError("WeightPlasticity needs at least one parameter to track")
    return out


@dataclass(frozen=True)
class WplConfig:
    """The regularizer's options, checked: α₀ and its schedule, the Fisher update, the reset cadence. Each is a
    search flag (its name, and the original's default where that differs from the library's, in its metadata)."""

    alpha: float = flag(1.0, "WPL strength α", name="alpha_fisher")
    lambda_fisher: float = flag(0.9, "weight of the new estimate in the Fisher EMA (or of each added one)")
    momentum: bool = flag(True, "Fisher as EMA (True: F <- (1-λ)F + λ·est) or accumulated sum (False: F <- F + "
                          "λ·est); not the optimizer's momentum")
    fisher_clip_by_norm: float = flag(0.0, "clip each Fisher tensor to this L2 norm (0 = no clip)")
    alpha_decay: float = flag(0.0, "α decay per epoch after --alpha_decay_after", cli=2.0)
    alpha_decay_after: float = flag(math.inf, "epoch at which α starts to decay", cli=15.0)
    alpha_decay_mode: int = flag(1, "1 = linear decay, 2 = exponential (α·decay^k)", choices=[1, 2])
    alpha_small_scale: float = flag(0.0, "floor α never decays below")
    set_fisher_zero_per_iter: int = flag(-1, "reset the Fisher every N epochs (N > 0)")
    importance: Importance = "fisher"  # "uniform": F = 1, the L2-to-anchor baseline
    legacy_compound_alpha: bool = flag(
        False, "the original's Fisher update (α multiplied into the stored F at every update, so the original's α "
        "and clip mean what they meant); False = α/2·ΣF·d² with F = EMA of g² (see docs/rnn.md)", cli=True)
    fisher_normalise: Normalise = flag(
        "none", "none, or mean: each tensor's Fisher divided by its mean, so α does not depend on the model's "
        "gradient scale (needs --legacy_compound_alpha=False)", choices=["none", "mean"])

    def __post_init__(self) -> None:
        if not 0.0 < self.lambda_fisher <= 1.0:
            raise ConfigError("lambda_fisher", self.lambda_fisher, "must be in (0, 1]")
        if not self.fisher_clip_by_norm >= 0:
            raise ConfigError("fisher_clip_by_norm", self.fisher_clip_by_norm, "must be >= 0 (0 = no clip)")
        if self.importance not in ("fisher", "uniform"):
            raise ConfigError("importance", self.importance, "must be 'fisher' or 'uniform'")
        check_choices(self)
        if self.fisher_normalise != "none" and self.legacy_compound_alpha:
            raise ConfigError("fisher_normalise", self.fisher_normalise, "normalises F, but with "
                              "legacy_compound_alpha=True the stored F carries α: set legacy_compound_alpha=False")
        self.schedule()  # checks α and its decay

    def schedule(self) -> AlphaSchedule:
        """The α schedule these options describe."""
        return AlphaSchedule(alpha=self.alpha, alpha_decay=self.alpha_decay, alpha_decay_after=self.alpha_decay_after,
                             alpha_decay_mode=self.alpha_decay_mode, alpha_small_scale=self.alpha_small_scale)


def refuse_other_options(what: str, saved: Mapping, mine: Mapping, fix: str) -> None:
    """A ValueError in one line naming the first saved option that differs from ``mine`` (and how many more do),
    then ``fix``; nothing when they agree."""
    missing = object()
    differ = sorted(k for k, v in saved.items() if mine.get(k, missing) != v)
    if differ:
        k = differ[0]
        raise ValueError(f"the saved {what} has {k}={saved[k]!r}, this one {mine.get(k)!r}"
                         + (f" (and {len(differ) - 1} more option(s) differ)" if len(differ) > 1 else "")
                         + f"; {fix}")


class WeightPlasticity:
    """Fisher-weighted pull of shared weights toward their anchors (Benyahia, Yu et al., ICML 2019).

    ``named_params`` is an ``nn.Module`` or ``(name, parameter)`` pairs: the shared parameters to
    protect. State (Fisher ``F`` and anchors ``θ̂``) is keyed by name and lives on each parameter's
    device. ``alpha`` is α₀; the other options are :class:`WplConfig`'s (the original flag names).
    ``importance="uniform"`` gives the L2-to-anchor baseline (F ≡ 1, Fisher updates ignored).
    ``legacy_compound_alpha=True`` reproduces the original code, which stores α·F after every update
    (so α compounds) and applies no α in the penalty; it exists only to compare against that code.
    ``fisher_normalise="mean"`` weighs each tensor by ``F / mean(F)`` instead of ``F`` (the raw Fisher's
    scale depends on the model and the loss; normalised, α's useful range does not).
    """

    def __init__(
        self,
        named_params: NamedParams,
        alpha: float = 1.0,
        *,
        lambda_fisher: float = 0.9,
        momentum: bool = True,
        fisher_clip_by_norm: float = 0.0,
        alpha_decay: float = 0.0,
        alpha_decay_after: float = math.inf,
        alpha_decay_mode: int = 1,
        alpha_small_scale: float = 0.0,
        set_fisher_zero_per_iter: int = -1,
        importance: Importance = "fisher",
        legacy_compound_alpha: bool = False,
        fisher_normalise: Normalise = "none",
    ) -> None:
        options = {k: v for k, v in locals().items() if k not in ("self", "named_params")}
        # numbers as their field's type (a numpy float, an int α), so the options save as plain data
        cfg = self._config = WplConfig(**{k: v if isinstance(getattr(WplConfig, k), str) else
                                          type(getattr(WplConfig, k))(v) for k, v in options.items()})
        self.schedule = cfg.schedule()
        for f in fields(cfg):  # the options as attributes (α is the schedule's current value, set below)
            if f.name != "alpha":
                setattr(self, f.name, getattr(cfg, f.name))
        self.params = _as_named(named_params)
        fill = 1.0 if self.importance == "uniform" else 0.0
        self.fisher = {n: torch.full_like(p, fill).detach() for n, p in self.params.items()}
        self._scale = dict.fromkeys(self.params, 1.0)  # per-tensor factor on F (1 / mean F when normalised)
        self.anchor = {n: p.detach().clone() for n, p in self.params.items()}
        self.alpha = self.schedule(0)
        self.epoch = 0
        self._last_reset_epoch: int | None = None
        self._work: dict[str, Tensor] = {}

    @classmethod
    def from_config(cls, named_params: NamedParams, config: WplConfig) -> WeightPlasticity:
        """The regularizer over ``named_params`` with the options of ``config``."""
        return cls(named_params, **asdict(config))

    # ---- selection -------------------------------------------------------------------------
    def _names(self, names: Iterable[str] | None) -> list[str]:
        if names is None:
            return list(self.params)
        if isinstance(names, str):
            names = [names]
        out = list(dict.fromkeys(names))
        unknown = [n for n in out if n not in self.params]
        if unknown:
            raise KeyError(
                f"WeightPlasticity does not track {unknown[0]!r}"
                + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
                + f"; it tracks {len(self.params)} parameters, e.g. {next(iter(self.params))!r}"
            )
        return out

    # ---- the penalty -----------------------------------------------------------------------
    @property
    def penalty_scale(self) -> float:
        """The factor in front of Σ F·(θ−θ̂)²: α/2 (1/2 in legacy mode, where α lives in F)."""
        return 0.5 if self.legacy_compound_alpha else 0.5 * self.alpha

    def penalty(self, names: Iterable[str] | None = None) -> Tensor:
        """``(α/2)·Σ F (θ − θ̂)²`` over ``names`` (default all); its gradient is ``α·F·(θ − θ̂)``."""
        sel = self._names(names)
        if not sel:
            any_p = next(iter(self.params.values()))
            return torch.zeros((), device=any_p.device, dtype=any_p.dtype)
        total = None
        for group in self._by_device(sel):
            value = _Penalty.apply(
                [self.anchor[n] for n in group],
                [self.fisher[n] if self._scale[n] == 1.0 else self.fisher[n] * self._scale[n] for n in group],
                *[self.params[n] for n in group],
            )
            total = value if total is None else total + value.to(total.device)
        return self.penalty_scale * total

    def add_penalty_grad_(self, names: Iterable[str] | None = None, with_value: bool = False) -> Tensor | None:
        """Add the penalty's gradient ``α·F·(θ − θ̂)`` straight into ``.grad`` (no autograd graph).

        The fastest path: one subtraction into a reused buffer and one fused multiply-add.
        Returns the penalty value when ``with_value`` (one extra reduction per tensor, summed on the
        device: read it once per batch), else ``None``. A weight without a ``.grad`` (unused by this
        batch's loss) gets one only where its penalty's gradient is non-zero: a zero ``.grad`` would
        make the optimizer apply its momentum and weight decay to a weight nothing pulled.
        """
        sel = self._names(names)
        scale = 2.0 * self.penalty_scale
        value = None
        with torch.no_grad():
            diffs = {}
            for n in sel:
                d = diffs[n] = self._workspace(n)
                torch.sub(self.params[n], self.anchor[n], out=d)
                if with_value:
                    f = self.fisher[n]
                    v = torch.dot((f * d).reshape(-1), d.reshape(-1)) * self._scale[n]
                    value = v if value is None else value + v.to(value.device)
            for n in self._pulled_without_grad(sel, diffs, scale):
                self.params[n].grad = torch.zeros_like(self.params[n])
            for n in sel:
                p = self.params[n]
                if p.grad is not None:
                    p.grad.addcmul_(self.fisher[n], diffs[n], value=scale * self._scale[n])
        if with_value:
            if value is None:
                any_p = next(iter(self.params.values()))
                return torch.zeros((), device=any_p.device, dtype=any_p.dtype)
            return self.penalty_scale * value
        return None

    def _pulled_without_grad(self, sel: list[str], diffs: Mapping[str, Tensor], scale: float) -> list[str]:
        """The weights in ``sel`` without a ``.grad`` whose penalty gradient is non-zero: one device read for
        all of them, none when every weight has a gradient (a search step's case)."""
        maybe = [n for n in sel if self.params[n].grad is None and scale * self._scale[n] != 0.0]
        if not maybe:
            return []
        pulled = torch.stack([(self.fisher[n] * diffs[n]).any().to(self.fisher[maybe[0]].device)
                              for n in maybe]).tolist()
        return [n for n, yes in zip(maybe, pulled, strict=True) if yes]

    def proximal_(self, lr: float, names: Iterable[str] | None = None) -> None:
        """The implicit WPL step, after the optimizer's: ``θ ← (θ + c·θ̂) / (1 + c)`` with ``c = lr·α·F``.

        It is the exact minimiser of ``‖θ − θ_opt‖² / (2·lr) + (α/2)·F·(θ − θ̂)²``: it pulls each
        weight toward its anchor by a fraction ``c / (1 + c)`` < 1, so it is stable for any α and
        learning rate (the explicit gradient overshoots once ``lr·α·F`` > 2).
        """
        if lr < 0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        scale = 2.0 * self.penalty_scale * float(lr)
        with torch.no_grad():
            for n in self._names(names):
                p, c = self.params[n], self._workspace(n)
                torch.mul(self.fisher[n], scale * self._scale[n], out=c)
                p.addcmul_(c, self.anchor[n])  # θ + c·θ̂
                p.div_(c.add_(1.0))

    def ema_anchors_(self, rate: float, names: Iterable[str] | None = None) -> None:
        """θ̂ ← θ̂ + rate·(θ − θ̂) for ``names``: anchors that follow the weights slowly (rate 1: θ̂ ← θ)."""
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"rate must be in (0, 1], got {rate}")
        sel = self._names(names)
        if not sel:
            return
        with torch.no_grad():
            torch._foreach_lerp_([self.anchor[n] for n in sel], [self.params[n].detach() for n in sel], rate)

    def _workspace(self, name: str) -> Tensor:
        """A reusable buffer shaped like the parameter (fresh 40 MB allocations cost page faults)."""
        buf = self._work.get(name)
        p = self.params[name]
        if buf is None or buf.shape != p.shape or buf.device != p.device or buf.dtype != p.dtype:
            buf = self._work[name] = torch.empty_like(p, memory_format=torch.contiguous_format)
        return buf

    def _by_device(self, names: list[str]) -> list[list[str]]:
        groups: dict[tuple, list[str]] = {}
        for n in names:
            p = self.params[n]
            groups.setdefault((p.device, p.dtype), []).append(n)
        return list(groups.values())

    # ---- Fisher and anchors ----------------------------------------------------------------
    def update_fisher(self, names: Iterable[str] | None = None) -> None:
        """Fold the current ``.grad``² (the paper code's squared batch gradient) into F.

        Parameters whose ``.grad`` is None received no gradient and keep their Fisher.
        """
        sel = [n for n in self._names(names) if self.params[n].grad is not None]
        with torch.no_grad():
            self._fold({n: self.params[n].grad.pow(2) for n in sel})

    def estimate_fisher(
        self,
        model_fn: Callable[[Tensor], Tensor],
        batches: Iterable[tuple[Tensor, Tensor]],
        names: Iterable[str] | None = None,
        estimator: str = "empirical",
        *,
        loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
        generator: torch.Generator | None = None,
        mode: _fisher.Mode = "eval",
        reduce: Callable[[list[Tensor]], None] | None = None,
    ) -> dict[str, Tensor]:
        """Estimate the Fisher of ``names`` on ``batches`` of ``(x, y)``, fold it into F, return it
        (``reduce``: the in-place mean over data-parallel ranks, see :func:`wpl.fisher.estimate`).

        ``estimator`` is ``"batch_sq"``, ``"empirical"`` (per-sample, torch.func) or ``"true"``
        (labels sampled from the model); see :mod:`wpl.fisher`. ``mode`` sets train/eval during it.
        An empty ``names`` estimates nothing (and returns ``{}``).
        """
        sel = self._names(names)
        if not sel:  # an architecture with no protected weights (e.g. only pools and skips): nothing to estimate
            return {}
        est = _fisher.estimate(
            estimator,
            model_fn,
            {n: self.params[n] for n in sel},
            batches,
            loss_fn=loss_fn,
            generator=generator,
            mode=mode,
            reduce=reduce,
        )
        with torch.no_grad():
            self._fold(est)
        return est

    def _fold(self, estimate: Mapping[str, Tensor]) -> None:
        """F ← (1−λ)F + λ·est (momentum) or F + λ·est; per-tensor norm clip; legacy: F ← α·F."""
        if self.importance == "uniform" or not estimate:
            return
        names = list(estimate)
        fs = [self.fisher[n] for n in names]
        new = [estimate[n].to(self.fisher[n].device, self.fisher[n].dtype) for n in names]
        if self.momentum:
            torch._foreach_mul_(fs, 1.0 - self.lambda_fisher)
        torch._foreach_add_(fs, new, alpha=self.lambda_fisher)
        if self.fisher_clip_by_norm > 0:
            norms = torch._foreach_norm(fs)
            for f, norm in zip(fs, norms):
                f.mul_(torch.clamp(self.fisher_clip_by_norm / (norm + 1e-12), max=1.0))
        if self.legacy_compound_alpha:
            torch._foreach_mul_(fs, self.alpha)
        self._rescale(names)

    def _rescale(self, names: list[str]) -> None:
        """With ``fisher_normalise="mean"``: each tensor's factor 1 / mean(F) (0 for an all-zero F)."""
        if self.fisher_normalise == "none" or not names:
            return
        means = torch.stack([self.fisher[n].mean().to(torch.float64).cpu() for n in names]).tolist()
        for n, m in zip(names, means, strict=True):
            self._scale[n] = 1.0 / m if m > 0 else 0.0

    def update_anchors(self, names: Iterable[str] | None = None) -> None:
        """θ̂ ← θ for ``names`` (default all)."""
        sel = self._names(names)
        if not sel:
            return
        with torch.no_grad():
            torch._foreach_copy_([self.anchor[n] for n in sel], [self.params[n].detach() for n in sel])

    def reset_fisher(self, names: Iterable[str] | None = None) -> None:
        """F ← 0 (F ← 1 for the uniform baseline)."""
        fill = 1.0 if self.importance == "uniform" else 0.0
        sel = self._names(names)
        for n in sel:
            self.fisher[n].fill_(fill)
        self._rescale(sel)

    def set_epoch(self, epoch: int) -> float:
        """Start ``epoch``: α from the schedule; reset F every ``set_fisher_zero_per_iter`` epochs.

        Calling it again for the same epoch does not reset twice. Returns the new α.
        """
        self.epoch = int(epoch)
        self.alpha = self.schedule(self.epoch)
        n = self.set_fisher_zero_per_iter
        if n > 0 and self.epoch % n == 0 and self._last_reset_epoch != self.epoch:
            self.reset_fisher()
            self._last_reset_epoch = self.epoch
        return self.alpha

    # ---- persistence -----------------------------------------------------------------------
    def config(self) -> dict:
        """The constructor options (:class:`WplConfig`'s fields), as plain data."""
        return asdict(self._config)

    def state_dict(self) -> dict:
        """Fisher, anchors, α, epoch and options; tensors are copies (safe to save)."""
        return {
            "version": 1,
            "fisher": {n: t.detach().clone() for n, t in self.fisher.items()},
            "anchor": {n: t.detach().clone() for n, t in self.anchor.items()},
            "alpha": self.alpha,
            "epoch": self.epoch,
            "last_reset_epoch": self._last_reset_epoch,
            "config": self.config(),
        }

    def load_state_dict(self, state: Mapping, check_config: bool = True) -> None:
        """Restore what :meth:`state_dict` saved; names and shapes must match the tracked parameters, and (unless
        ``check_config=False``) the saved options this regularizer's: a difference is one line naming it."""
        for key in ("fisher", "anchor", "alpha", "epoch"):
            if key not in state:
                raise ValueError(f"WeightPlasticity state is missing {key!r}; was it saved by state_dict()?")
        if check_config:
            refuse_other_options("WeightPlasticity", state.get("config") or {}, self.config(),
                                 "build it with the saved options to resume, or pass check_config=False")
        for part in ("fisher", "anchor"):
            saved = state[part]
            missing = sorted(set(self.params) - set(saved))
            unexpected = sorted(set(saved) - set(self.params))
            if missing or unexpected:
                raise ValueError(
                    f"WeightPlasticity state does not match the tracked parameters: "
                    f"missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
                    f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''}"
                )
            for n, t in saved.items():
                if tuple(t.shape) != tuple(self.params[n].shape):
                    raise ValueError(
                        f"WeightPlasticity state for {n!r} has shape {tuple(t.shape)}, "
                        f"the parameter has {tuple(self.params[n].shape)}"
                    )
        with torch.no_grad():
            for n in self.params:
                self.fisher[n].copy_(state["fisher"][n])
                self.anchor[n].copy_(state["anchor"][n])
        self._rescale(list(self.params))
        self.alpha = float(state["alpha"])
        self.epoch = int(state["epoch"])
        self._last_reset_epoch = state.get("last_reset_epoch")

    def __repr__(self) -> str:
        numel = sum(p.numel() for p in self.params.values())
        return (
            f"WeightPlasticity({len(self.params)} tensors, {numel:,} weights, alpha={self.alpha:g}, "
            f"importance={self.importance!r}, lambda_fisher={self.lambda_fisher}, momentum={self.momentum})"
        )
