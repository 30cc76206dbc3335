"""WPL as a policy a training loop drives: two calls around the optimizer step, one after each model.

:class:`WplPolicy` owns everything about how the Weight Plasticity Loss acts — the update (the penalty's
gradient, or the exact proximal step after the optimizer's), the anchors (moved after each model, snapshotted
every k steps, or an EMA), the importance (the Fisher's estimator, its source and cadence, its normalisation)
and the α schedule — around a :class:`~wpl.plasticity.WeightPlasticity`. Named presets give the settings that
were measured: ``original`` (the paper's code), ``recommended`` (the search's ``--wpl_recipe=recommended``) and
``persistent`` (snapshot anchors, the best random-search variant on NAS-Bench-201). The search uses this object.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import ConfigError
from .fisher import ESTIMATORS
from .plasticity import NamedParams, WeightPlasticity, WplConfig, refuse_other_options

Update = Literal["proximal", "gradient"]
Anchor = Literal["model", "snapshot", "ema"]
Source = Literal["valid", "train"]
UNSTABLE = 2.0  # the explicit gradient overshoots a weight once lr·α·F (its pull per step) passes 2


@dataclass(frozen=True)
class PolicyConfig:
    """How the loss acts: the update, where the anchors are, where and how often the Fisher comes from."""

    update: Update = "proximal"  # proximal: θ ← (θ + c·θ̂)/(1 + c) after the step, stable for any α; gradient: α·F·d
    anchor: Anchor = "model"  # model: at the weights after each model; snapshot: every anchor_every steps; ema
    anchor_every: int = 700  # snapshot: optimizer steps between snapshots
    anchor_rate: float = 0.1  # ema: θ̂ ← θ̂ + rate·(θ − θ̂) after each model
    estimator: str = "empirical"  # the Fisher of held-out batches: batch_sq, empirical or true (wpl.fisher)
    source: Source = "valid"  # valid: consolidate() estimates it on held-out batches; train: each step's gradient²
    every: int = 1  # consolidate() (or the training gradient) folds the Fisher every N-th time only

    def __post_init__(self) -> None:
        for name, allowed in (("update", ("proximal", "gradient")), ("anchor", ("model", "snapshot", "ema")),
                              ("source", ("valid", "train")), ("estimator", ESTIMATORS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(name, getattr(self, name), f"must be one of {', '.join(allowed)}")
        for name in ("anchor_every", "every"):
            if getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be >= 1")
        if not 0.0 < self.anchor_rate <= 1.0:
            raise ConfigError("anchor_rate", self.anchor_rate, "must be in (0, 1]")
        if self.source == "train" and self.estimator != "batch_sq":
            raise ConfigError("estimator", self.estimator, "with source='train' the Fisher is each step's squared "
                              "gradient: use estimator='batch_sq' (or source='valid')")


# name -> (the regularizer's options, the policy's), α left to the user where it depends on the learning rate
PRESETS: dict[str, tuple[WplConfig, PolicyConfig]] = {
    # the paper's code: squared batch gradient of a held-out batch, EMA 0.9, per-tensor clip 10, α stored in F
    # after every update (so it compounds), the explicit gradient, anchors at each model's weights
    "original": (WplConfig(alpha=60.0, fisher_clip_by_norm=10.0, legacy_compound_alpha=True),
                 PolicyConfig(update="gradient", anchor="model", estimator="batch_sq")),
    # the mechanism study's best: F normalised to mean 1 per tensor, the proximal step, α = 1/lr (a weight of
    # mean Fisher moves half as far per step as the task gradient alone would take it)
    "recommended": (WplConfig(alpha=1.0, fisher_normalise="mean"), PolicyConfig(update="proximal", anchor="model")),
    # NAS-Bench-201's best random-search variant: anchors snapshotted every 700 steps, the training gradient's
    # square as the Fisher (EMA 0.1), a small explicit pull
    "persistent": (WplConfig(alpha=0.005, fisher_normalise="mean", lambda_fisher=0.1),
                   PolicyConfig(update="gradient", anchor="snapshot", anchor_every=700, estimator="batch_sq",
                                source="train")),
}
_ALPHA_FROM_LR = {"recommended"}  # α = 1/lr unless given


def _lr_of(lr_or_optimizer: float | torch.optim.Optimizer) -> float:
    if isinstance(lr_or_optimizer, torch.optim.Optimizer):
        return float(lr_or_optimizer.param_groups[0]["lr"])
    return float(lr_or_optimizer)


class WplPolicy:
    """WPL in a training loop: ``before_step()`` after ``backward()``, ``after_step(optimizer)`` after
    ``optimizer.step()``, ``consolidate(model, batches)`` after each model (see the module docstring)."""

    def __init__(self, named_params: NamedParams | WeightPlasticity, config: WplConfig | None = None,
                 policy: PolicyConfig | None = None) -> None:
        if isinstance(named_params, WeightPlasticity):
            if config is not None:
                raise ValueError("pass either a WeightPlasticity or named parameters with a WplConfig, not both")
            self.wpl = named_params
        else:
            self.wpl = WeightPlasticity.from_config(named_params, config or WplConfig())
        self.config = policy or PolicyConfig()
        self.steps = 0  # optimizer steps seen by after_step()
        self.consolidations = 0  # consolidate() calls
        self._warned = False
        self._check_due = False

    @classmethod
    def preset(cls, name: str, named_params: NamedParams, *, lr: float | None = None, **overrides) -> WplPolicy:
        """The named settings (``original``, ``recommended``, ``persistent``) over ``named_params``; ``overrides``
        are fields of :class:`WplConfig` or :class:`PolicyConfig` (e.g. ``alpha=…``, ``anchor_every=…``).
        ``recommended`` sets α = 1/``lr`` (the optimizer's learning rate) unless ``alpha`` is given."""
        if name not in PRESETS:
            raise ConfigError("preset", name, f"must be one of {', '.join(PRESETS)}")
        wcfg, pcfg = PRESETS[name]
        wnames, pnames = {f.name for f in fields(WplConfig)}, {f.name for f in fields(PolicyConfig)}
        unknown = sorted(set(overrides) - wnames - pnames)
        if unknown:
            raise ConfigError(unknown[0], overrides[unknown[0]], "is not an option of WplConfig or PolicyConfig")
        if name in _ALPHA_FROM_LR and "alpha" not in overrides:
            if lr is None or lr <= 0:
                raise ConfigError("lr", lr, f"the {name!r} preset sets α = 1/lr: pass lr=<your optimizer's learning "
                                  "rate> (or alpha=...)")
            overrides["alpha"] = 1.0 / lr
        wcfg = replace(wcfg, **{k: v for k, v in overrides.items() if k in wnames})
        pcfg = replace(pcfg, **{k: v for k, v in overrides.items() if k in pnames})
        return cls(named_params, wcfg, pcfg)

    # ---- around the optimizer step -----------------------------------------------------------
    def before_step(self, names: Iterable[str] | None = None, with_value: bool = False) -> Tensor | None:
        """After ``backward()``, before ``optimizer.step()``: with ``source="train"`` (when due) the gradient's square
        into the Fisher, then :meth:`push`. ``with_value``: the penalty's value now (a device tensor, no sync)."""
        if self.config.source == "train" and self.steps % self.config.every == 0:
            self.fold_gradient(names)
        return self.push(names, with_value)

    def after_step(self, lr_or_optimizer: float | torch.optim.Optimizer, names: Iterable[str] | None = None) -> None:
        """After ``optimizer.step()``: :meth:`pull`; with the gradient update, a one-time warning if it overshoots;
        then the step is counted and the anchors snapshotted when due (``anchor="snapshot"``)."""
        lr = _lr_of(lr_or_optimizer)
        self.pull(lr, names)
        if self.config.update == "gradient" and self._check_due:
            self.check_stability(lr)
        self.steps += 1
        self.snapshot_due(self.steps)

    def push(self, names: Iterable[str] | None = None, with_value: bool = False) -> Tensor | None:
        """The gradient update's half: the penalty's gradient added into ``.grad`` (nothing with the proximal
        update); ``with_value``: the penalty's value (before the step)."""
        if self.config.update == "gradient":
            return self.wpl.add_penalty_grad_(names, with_value=with_value)
        if with_value:
            with torch.no_grad():
                return self.wpl.penalty(names)
        return None

    def pull(self, lr: float, names: Iterable[str] | None = None) -> None:
        """The proximal update's half, after the optimizer's step: θ ← (θ + c·θ̂)/(1 + c), c = lr·α·F (nothing with
        the gradient update)."""
        if self.config.update == "proximal":
            self.wpl.proximal_(lr, names)

    def snapshot_due(self, step: int, starting: bool = False) -> bool:
        """``anchor="snapshot"``: θ̂ ← θ for every tracked weight when WPL starts (``starting``) and at every
        ``anchor_every``-th step (``step`` counted by the caller's rule); whether it snapshotted."""
        if self.config.anchor == "snapshot" and (starting or step % self.config.anchor_every == 0):
            self.wpl.update_anchors()
            return True
        return False

    # ---- after each model --------------------------------------------------------------------
    def consolidate(self, model_fn: Callable[[Tensor], Tensor], batches: Iterable[tuple[Tensor, Tensor]],
                    names: Iterable[str] | None = None, *, due: bool | None = None,
                    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy, mode: str = "eval",
                    generator: torch.Generator | None = None,
                    reduce: Callable[[list[Tensor]], None] | None = None) -> None:
        """After a model's training: fold its Fisher on held-out ``batches`` (``source="valid"``, every ``every``-th
        call, or when ``due`` says so), then move its anchors (``model``: to its weights; ``ema``: part way)."""
        if due is None:
            due = self.consolidations % self.config.every == 0
        self.consolidations += 1
        if self.config.source == "valid" and due:
            self.estimate(model_fn, batches, names, loss_fn=loss_fn, mode=mode, generator=generator, reduce=reduce)
        self.move_anchors(names)

    def estimate(self, model_fn: Callable[[Tensor], Tensor], batches: Iterable[tuple[Tensor, Tensor]],
                 names: Iterable[str] | None = None, **kw) -> dict[str, Tensor]:
        """Fold the Fisher of ``batches`` with the policy's estimator (see :meth:`WeightPlasticity.estimate_fisher`)."""
        out = self.wpl.estimate_fisher(model_fn, batches, names, estimator=self.config.estimator, **kw)
        self._check_due = True
        return out

    def fold_gradient(self, names: Iterable[str] | None = None) -> None:
        """Fold the current ``.grad``² into the Fisher (``source="train"``; call after ``backward()``)."""
        self.wpl.update_fisher(names)
        self._check_due = True

    def move_anchors(self, names: Iterable[str] | None = None) -> None:
        """``anchor="model"``: θ̂ ← θ for ``names``; ``"ema"``: part way; ``"snapshot"``: nothing here."""
        if self.config.anchor == "model":
            self.wpl.update_anchors(names)
        elif self.config.anchor == "ema":
            self.wpl.ema_anchors_(self.config.anchor_rate, names)

    # ---- the rest ----------------------------------------------------------------------------
    def penalty(self, names: Iterable[str] | None = None) -> Tensor:
        """``(α/2)·Σ F (θ − θ̂)²`` now (to log; the policy's update acts on its own)."""
        return self.wpl.penalty(names)

    def set_epoch(self, epoch: int) -> float:
        """The α schedule and the Fisher's periodic reset for ``epoch`` (:meth:`WeightPlasticity.set_epoch`)."""
        self._check_due = True
        return self.wpl.set_epoch(epoch)

    def check_stability(self, lr: float) -> None:
        """Warn once when the explicit gradient overshoots: lr·α·F > 2 for some weight (one device read; after_step
        calls it only after the Fisher or α changed, and never again after the warning)."""
        self._check_due = False
        if self._warned or self.config.update != "gradient":
            return
        w = self.wpl
        scale = 2.0 * w.penalty_scale * float(lr)
        peaks = torch.stack([w.fisher[n].max().float() * w._scale[n] for n in w.params]).max().item()
        if scale * peaks > UNSTABLE:
            self._warned = True
            warnings.warn(f"WPL's explicit gradient overshoots: lr·α·max F = {scale * peaks:.3g} > {UNSTABLE:g}, so "
                          "the most protected weights oscillate or diverge instead of returning to their anchors; use "
                          "update='proximal' (stable for any α: WplPolicy.preset('recommended', ...)) or a smaller "
                          "α or learning rate", RuntimeWarning, stacklevel=4)

    def state_dict(self) -> dict:
        """The regularizer's state, the policy's options and its counters."""
        return {"wpl": self.wpl.state_dict(), "policy": asdict(self.config), "steps": self.steps,
                "consolidations": self.consolidations}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore :meth:`state_dict`'s output; options that differ from this policy's are refused in one line."""
        refuse_other_options("WplPolicy", state.get("policy", {}), asdict(self.config),
                             "build the policy with the saved options to resume it")
        self.wpl.load_state_dict(state["wpl"])
        self.steps, self.consolidations = int(state.get("steps", 0)), int(state.get("consolidations", 0))

    def __repr__(self) -> str:
        c = self.config
        return (f"WplPolicy(update={c.update!r}, anchor={c.anchor!r}, estimator={c.estimator!r}, "
                f"source={c.source!r}, {self.wpl!r})")
