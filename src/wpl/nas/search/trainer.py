"""The shared weights' training: their optimizer, the WPL policy acting on them, their moving average, and one
shared step (CE and the policy's update), the Fisher fold and the anchors — what benchmarks and tests drive one
step at a time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext

import torch

from wpl.plasticity import WeightPlasticity, WplConfig
from wpl.policy import WplPolicy
from wpl.runtime import model_mode

from ..batchnorm import batch_statistics
from ..config import SearchConfig
from ..task import Arch


class SharedTrainer:
    """Trains the supernet's shared weights: ``steps`` counts shared steps over the run (the rules of the Fisher
    cadence, the validation skips and the anchor snapshots read it, so a resumed run agrees)."""

    def __init__(self, task, cfg: SearchConfig, wpl: WplConfig, dist,
                 diverged: Callable[[str, float, str], str]) -> None:
        self.task, self.cfg, self.dist, self.diverged = task, cfg, dist, diverged
        self.supernet = task.supernet
        weights, decay = self.supernet.parameters(), cfg.shared_l2_reg
        if cfg.shared_optim == "sgd":
            m = cfg.shared_momentum
            self.shared_opt = torch.optim.SGD(weights, lr=cfg.shared_lr, weight_decay=decay, momentum=m,
                                              nesterov=m > 0)
        else:
            self.shared_opt = torch.optim.Adam(weights, lr=cfg.shared_lr, weight_decay=decay)
        params = dict(self.supernet.named_parameters())
        self.wpl = WeightPlasticity.from_config([(n, params[n]) for n in task.all_protected_names()], wpl)
        self.policy = WplPolicy(self.wpl, policy=cfg.policy())  # how WPL acts: the library's policy object
        # --weight_ema: a moving average of the shared weights (name → tensor), scored by wpl rank --weights=ema
        self.weight_ema = ({n: p.detach().clone() for n, p in self.supernet.named_parameters()}
                           if cfg.weight_ema else None)
        self.steps = 0

    def batch(self, arch: Arch, protect: Sequence[str], wpl: bool, fold_fisher: bool = False,
                     where: str = "") -> tuple[float, float]:
        """One optimizer step of the shared weights on the next training batch: CE (+ the task's
        regularizers) and, with ``wpl``, the WPL gradient over ``protect``; ``fold_fisher`` also
        folds this batch's gradient into the Fisher first. Returns (CE, WPL value)."""
        total, ce = self.task.train_loss(arch)
        if not torch.isfinite(total):
            raise FloatingPointError(self.diverged("training loss", total.item(), where))
        self.shared_opt.zero_grad(set_to_none=self.cfg.shared_zero_grad == "none")
        total.backward()
        if self.dist.active:  # the global batch's gradient (and its CE, for the logs): one flat all-reduce
            ce = ce.reshape(1).clone()
            self.dist.mean_grads_(self.supernet.parameters(), [ce])
        value = None  # the WPL value, read from the device once with the CE below
        if fold_fisher:
            self.policy.fold_gradient(protect)
        before_clip = self.cfg.wpl_update == "gradient"  # after_clip and proximal act on the clipped gradient
        if wpl and before_clip:
            value = self.policy.push(protect, with_value=True)
        grads = [p for p in self.supernet.parameters() if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(grads, self.cfg.shared_grad_clip)
        if wpl and not before_clip:
            value = self.policy.push(protect, with_value=True)
        self.shared_opt.step()
        if wpl:
            self.policy.pull(self.shared_opt.param_groups[0]["lr"], protect)
        if value is None:
            return ce.item(), 0.0
        read = torch.stack([ce.detach().reshape(()).double(), value.detach().reshape(()).to(ce.device).double()])
        ce_value, wpl_value = read.tolist()
        return ce_value, wpl_value

    def step(self, arch: Arch, wpl: bool, where: str = "") -> list[tuple[float, float]]:
        """Train ``arch`` on ``num_batch_per_iter`` consecutive batches (the supernet in train mode);
        returns each batch's (CE, WPL value). With WPL on and ``fisher_source="train"`` — or, as the
        original's extra estimate, without ``shared_valid_fisher`` — the last batch's gradient (taken
        before the optimizer steps on it) is folded into the Fisher."""
        c = self.cfg
        protect = self.task.protected_names(arch)
        self.supernet.train()
        out = []
        for i in range(c.num_batch_per_iter):
            fold = (wpl and i == c.num_batch_per_iter - 1 and self._fisher_due(self.steps)
                    and (c.fisher_source == "train" or not c.shared_valid_fisher))
            out.append(self.batch(arch, protect, wpl, fold, where))
        self.steps += 1
        if self.weight_ema is not None:
            with torch.no_grad():
                torch._foreach_lerp_(list(self.weight_ema.values()),
                                     [p.detach() for p in self.supernet.parameters()], 1.0 - self.cfg.weight_ema)
        return out

    def fisher_step(self, arch: Arch) -> None:
        """After ``arch``'s shared step with WPL on: with ``fisher_source="valid"``, fold its Fisher on
        one validation batch (``fisher_estimator``, supernet in ``fisher_mode``) and advance the
        validation stream (with ``"train"`` the Fisher was folded during the step); then move its anchors:
        to its weights (``wpl_anchor="step"``) or part way (``"ema"``); snapshots move in the shared phase."""
        protect = self.task.protected_names(arch)
        if self._valid_pass_due():
            batch = self.task.fisher_batch(arch)
            # per-sample estimators map the net over single samples: each normalised with its batch's statistics
            stats = nullcontext() if self.cfg.fisher_estimator == "batch_sq" else batch_statistics(
                self.supernet, lambda: batch.model(torch.cat([x for x, _ in batch.batches])))
            with model_mode(self.supernet, self.cfg.fisher_mode), stats:
                self.policy.estimate(batch.model, batch.batches, names=protect, loss_fn=batch.loss_fn, mode="keep",
                                     reduce=self.dist.mean_ if self.dist.active else None)
            self.task.advance_valid(len(batch.batches))
        fisher = [self.wpl.fisher[n] for n in protect if n in self.wpl.fisher]
        if fisher and not bool(torch.isfinite(torch.stack([f.sum() for f in fisher])).all()):
            raise FloatingPointError(self.diverged("Fisher", float("nan"), f" at shared step {self.steps}"))
        self.policy.move_anchors(protect)

    def _valid_pass_due(self) -> bool:
        """Whether the shared step just taken (with WPL on) is followed by a validation-batch Fisher pass."""
        return self.cfg.fisher_source == "valid" and self._fisher_due(self.steps - 1)

    def skip_valid(self, epoch: int, wpl: bool) -> None:
        """``valid_skip_every``: after the shared step just taken, advance the validation stream by one batch
        when that step is due, unless its validation Fisher pass already did (so with that pass on, nothing
        more moves: plain with the original's ``fisher_every`` reads the original's reward batches)."""
        k = self.cfg.valid_skip_every
        if (k and epoch >= self.cfg.start_using_fisher and (self.steps - 1) % k == 0
                and not (wpl and self._valid_pass_due())):
            self.task.advance_valid(1)

    def _fisher_due(self, step: int) -> bool:
        """Whether shared step ``step`` (counted over the run, from 0) folds the Fisher (``fisher_every``)."""
        return step % self.cfg.fisher_every == 0

    def snapshot_anchors(self, epoch: int, step: int) -> None:
        """``wpl_anchor="snapshot"``: θ̂ ← θ for every protected weight when WPL starts and every
        ``wpl_anchor_every`` shared steps (a rule of the step counters, so a resumed run agrees)."""
        self.policy.snapshot_due(self.steps, starting=epoch == self.cfg.start_using_fisher and step == 0)
