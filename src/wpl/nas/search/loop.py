"""The ENAS search loop with Weight Plasticity Loss, for any :class:`~wpl.nas.task.Task`.

Per epoch: the shared phase (sample an architecture, :meth:`Search.shared_step` trains it on
``num_batch_per_iter`` batches with CE + WPL over the shared weights it uses, record its error,
then — with WPL on — :meth:`Search.fisher_step` folds its Fisher on one validation batch and moves
its anchors), the forgetting summary, the controller phase (:meth:`Search.controller_step`:
REINFORCE with an EMA baseline, :class:`~wpl.nas.search.controller.Reinforce`), and every ``save_epoch``
a derive step. A full-state checkpoint is written atomically after every epoch and every
``checkpoint_every_steps`` steps inside one (with where the epoch is: the phases done, the step of the
one in progress and its running sums), so a run resumes exactly from any of them; a stop asked for by
a signal (:meth:`Search.request_stop`) checkpoints at the next step and raises :class:`SearchStopped`.
Logged names follow one schema for every space (README, "Outputs").
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import torch
from tqdm import tqdm

from wpl.checkpoint import rng_state, save_checkpoint, set_rng_state
from wpl.dist import SINGLE, Dist, rank_entry
from wpl.errors import ConfigError, WplError
from wpl.fileio import finite, write_json
from wpl.forgetting import ForgettingMonitor
from wpl.plasticity import WeightPlasticity, WplConfig
from wpl.runlog import NullRunLog, RunLog
from wpl.runtime import clock, model_mode
from wpl.signals import Stopped
from wpl.viz import save_cell_drawing

from .. import spaces
from ..batchnorm import batch_statistics
from ..config import ControllerConfig, SearchConfig
from ..metrics import perplexity
from ..task import Arch, Task
from .controller import Controller, Reinforce
from .fisher_map import fisher_groups, fisher_mass

log = logging.getLogger("wpl")
PHASES = ("shared", "controller", "derive", "eval", "forgetting")
# checkpoint_every_steps=-1: write when the time since the last write is this many times its duration
# (writing then costs at most 1/RATIO = 2% of the run) and at least MIN_S seconds
AUTO_CHECKPOINT_RATIO, AUTO_CHECKPOINT_MIN_S = 50.0, 10.0


class SearchStopped(Stopped):
    """The search stopped at a step boundary when asked (a signal), after writing a checkpoint."""


class Search:
    """One search run on ``task`` in ``run_dir`` (plain-file logs unless ``runlog`` says otherwise); ``flags``
    (plain data) is saved in checkpoints as the run's flags."""

    def __init__(self, task: Task, search: SearchConfig, wpl: WplConfig, controller: ControllerConfig,
                 run_dir: Path | None, flags: dict | None = None, runlog: RunLog | None = None) -> None:
        if search.fisher_estimator not in task.fisher_estimators:
            raise ConfigError("fisher_estimator", search.fisher_estimator, f"is not available for the {task.kind} "
                              f"space (it has {', '.join(task.fisher_estimators)})")
        self.cfg, self.task, self.dir, self.flags = search, task, run_dir, dict(flags or {})
        self.space = spaces.get(task.kind)
        self.dist: Dist = getattr(task, "dist", SINGLE)  # data parallelism: the task's ranks
        self.writes = self.dist.main and run_dir is not None  # only rank 0 writes the run's files
        self.supernet = task.supernet
        self.controller = Controller.from_config(task.decisions, controller, task.reset_at).to(task.device)
        weights, decay = self.supernet.parameters(), search.shared_l2_reg
        if search.shared_optim == "sgd":
            m = search.shared_momentum
            self.shared_opt = torch.optim.SGD(weights, lr=search.shared_lr, weight_decay=decay, momentum=m,
                                              nesterov=m > 0)
        else:
            self.shared_opt = torch.optim.Adam(weights, lr=search.shared_lr, weight_decay=decay)
        self.reinforce = Reinforce(self.controller, controller)
        self.policy_batch_size = controller.policy_batch_size
        params = dict(self.supernet.named_parameters())
        self.wpl = WeightPlasticity.from_config([(n, params[n]) for n in task.all_protected_names()], wpl)
        self.monitor = ForgettingMonitor(top_k=search.forgetting_top_k)
        self.fisher_groups = fisher_groups(task)  # where WPL holds: the "fisher" events group F by these
        # --arch_stream=own: uniform architectures from their own generator (same sequence whatever else runs)
        seed = int(self.flags.get("random_seed", getattr(task.config, "random_seed", 0)))
        self.arch_gen = torch.Generator().manual_seed(seed + 7919) if search.arch_stream == "own" else None
        self.epoch = 0
        self.shared_steps = self.controller_steps = 0
        self.warmed_up = False
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.best: dict | None = None
        self.history: list[dict] = []
        # where the epoch in progress is: {"where": epoch or "warmup", "done": {phase: result}, "phase": the one
        # running, "step": its steps done, "acc": its running sums}; None between epochs
        self.progress: dict | None = None
        self.boundaries = 0  # steps of any phase so far (the mid-phase checkpoint clock)
        self.stop_signal: tuple[str, int] | None = None
        self._saved_at, self._save_cost = time.monotonic(), 0.0  # the auto checkpoint clock (wall time)
        if runlog is None and self.writes:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            runlog = RunLog(Path(run_dir), tensorboard=False)
        self.runlog = runlog if runlog is not None and self.dist.main else NullRunLog()

    # ---- helpers -------------------------------------------------------------------------------
    @property
    def global_step(self) -> int:
        """TensorBoard x-axis: shared + controller steps (monotone across phases)."""
        return self.shared_steps + self.controller_steps

    @property
    def metric(self) -> str:
        """The task's error unit: ``ppl`` or ``error``."""
        return self.task.metric

    def _clock(self) -> float:
        return clock(self.task.device)

    def _timed(self, phase: str, t0: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + self._clock() - t0  # "rank" only when it runs

    def request_stop(self, name: str, exit_code: int) -> None:
        """Stop at the next step boundary, after a checkpoint (what the signal handlers call)."""
        log.warning("%s: stopping after the current step, with a checkpoint (send it again to stop at once, "
                    "losing the steps since the last checkpoint)", name)
        self.stop_signal = (name, exit_code)

    def _cursor(self, phase: str) -> dict | None:
        """The saved position inside ``phase`` when the run resumes in the middle of it, else None."""
        p = self.progress
        return p if p is not None and p.get("phase") == phase else None

    def _boundary(self, phase: str, step: int, acc: dict) -> None:
        """After each step of a phase: note where the epoch is; checkpoint every ``checkpoint_every_steps``
        steps, and when a stop was asked for (then raise :class:`SearchStopped`)."""
        p = self.progress
        if p is None:  # outside a run (e.g. derive on a loaded run)
            return
        p.update(phase=phase, step=step, acc=acc)
        self.boundaries += 1
        # rank 0 decides, so every rank takes part in the same checkpoints and stops at the same step: the
        # decision is what the broadcast returned, never this rank's flag read again (a signal handled between
        # the two would stop this rank alone); a stop asked for since waits for the next boundary
        save, stop = self.dist.broadcast((bool(self.stop_signal) or self._checkpoint_due(), self.stop_signal))
        if self.dir is not None and save:
            self.save(copy=False)
        if stop:
            where = "the warm-up" if p["where"] == "warmup" else f"epoch {p['where']}"
            self._stop(stop, f"in {where}, {phase} step {step}")

    def _checkpoint_due(self) -> bool:
        """A mid-phase checkpoint now? Every ``checkpoint_every_steps`` steps, or (-1) once the time since the
        last write is :data:`AUTO_CHECKPOINT_RATIO` times its duration and at least :data:`AUTO_CHECKPOINT_MIN_S`."""
        n = self.cfg.checkpoint_every_steps
        if n >= 0:
            return n > 0 and self.boundaries % n == 0
        since = time.monotonic() - self._saved_at
        return since >= max(AUTO_CHECKPOINT_MIN_S, AUTO_CHECKPOINT_RATIO * self._save_cost)

    def _stop(self, stop: tuple[str, int], where: str) -> None:
        """Raise :class:`SearchStopped` for the stop (signal name, exit code) rank 0 decided (the checkpoint is
        written)."""
        name, code = stop
        raise SearchStopped(f"stopped by {name} {where}; checkpoint written to "
                            f"{self.dir / 'checkpoint.pt' if self.dir else None}: continue with the same command "
                            "and --resume=True", code)

    def _phase_done(self, phase: str, result: dict) -> dict:
        """Record ``phase``'s result in the epoch's progress (a resumed epoch does not run it again)."""
        if self.progress is not None:
            self.progress["done"][phase] = result
            self.progress.update(phase=None, step=0, acc=None)
        return result

    @torch.no_grad()
    def sample_archs(self, n: int) -> list[Arch]:
        """``n`` architectures from the current policy (uniformly, with ``search_strategy="random"``)."""
        actions = None
        if self.dist.main:  # data-parallel: rank 0 samples, every rank trains the same architectures
            if self.cfg.search_strategy == "random":
                own = getattr(self.task, "random_actions", None)  # the Task protocol's optional member
                actions = None if own is None else own(n, self.arch_gen)
                if actions is None:
                    actions = torch.stack([torch.randint(0, k, (n,), generator=self.arch_gen)
                                           for k in self.task.decisions], 1).tolist()
            else:
                self.controller.eval()
                actions = self.controller.sample(n)[0].tolist()
        return [self.task.decode(a) for a in self.dist.broadcast(actions)]

    # ---- step-level methods --------------------------------------------------------------------
    def shared_batch(self, arch: Arch, protect: Sequence[str], wpl: bool, fold_fisher: bool = False,
                     where: str = "") -> tuple[float, float]:
        """One optimizer step of the shared weights on the next training batch: CE (+ the task's
        regularizers) and, with ``wpl``, the WPL gradient over ``protect``; ``fold_fisher`` also
        folds this batch's gradient into the Fisher first. Returns (CE, WPL value)."""
        total, ce = self.task.train_loss(arch)
        if not torch.isfinite(total):
            raise FloatingPointError(self._diverged("training loss", total.item(), where))
        self.shared_opt.zero_grad(set_to_none=True)
        total.backward()
        if self.dist.active:  # the global batch's gradient (and its CE, for the logs): one flat all-reduce
            ce = ce.reshape(1).clone()
            self.dist.mean_grads_(self.supernet.parameters(), [ce])
        value = 0.0
        if fold_fisher:
            self.wpl.update_fisher(protect)
        how = self.cfg.wpl_update
        if wpl and how == "gradient":
            value = float(self.wpl.add_penalty_grad_(protect, with_value=True))
        grads = [p for p in self.supernet.parameters() if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(grads, self.cfg.shared_grad_clip)
        if wpl and how == "after_clip":
            value = float(self.wpl.add_penalty_grad_(protect, with_value=True))
        if wpl and how == "proximal":
            with torch.no_grad():
                value = float(self.wpl.penalty(protect))
        self.shared_opt.step()
        if wpl and how == "proximal":
            self.wpl.proximal_(self.shared_opt.param_groups[0]["lr"], protect)
        return ce.item(), value

    def shared_step(self, arch: Arch, wpl: bool, where: str = "") -> list[tuple[float, float]]:
        """Train ``arch`` on ``num_batch_per_iter`` consecutive batches (the supernet in train mode);
        returns each batch's (CE, WPL value). With WPL on and ``fisher_source="train"`` — or, as the
        original's extra estimate, without ``shared_valid_fisher`` — the last batch's gradient (taken
        before the optimizer steps on it) is folded into the Fisher."""
        c = self.cfg
        protect = self.task.protected_names(arch)
        self.supernet.train()
        out = []
        for i in range(c.num_batch_per_iter):
            fold = (wpl and i == c.num_batch_per_iter - 1 and self._fisher_due(self.shared_steps)
                    and (c.fisher_source == "train" or not c.shared_valid_fisher))
            out.append(self.shared_batch(arch, protect, wpl, fold, where))
        self.shared_steps += 1
        return out

    def fisher_step(self, arch: Arch) -> None:
        """After ``arch``'s shared step with WPL on: with ``fisher_source="valid"``, fold its Fisher on
        one validation batch (``fisher_estimator``, supernet in ``fisher_mode``) and advance the
        validation stream (with ``"train"`` the Fisher was folded during the step); then move its anchors:
        to its weights (``wpl_anchor="step"``) or part way (``"ema"``); snapshots move in the shared phase."""
        protect = self.task.protected_names(arch)
        if self.cfg.fisher_source == "valid" and self._fisher_due(self.shared_steps - 1):
            batch = self.task.fisher_batch(arch)
            # per-sample estimators map the net over single samples: each normalised with its batch's statistics
            stats = nullcontext() if self.cfg.fisher_estimator == "batch_sq" else batch_statistics(
                self.supernet, lambda: batch.model(torch.cat([x for x, _ in batch.batches])))
            with model_mode(self.supernet, self.cfg.fisher_mode), stats:
                self.wpl.estimate_fisher(batch.model, batch.batches, names=protect,
                                         estimator=self.cfg.fisher_estimator, loss_fn=batch.loss_fn, mode="keep",
                                         reduce=self.dist.mean_ if self.dist.active else None)
            self.task.advance_valid(len(batch.batches))
        fisher = [self.wpl.fisher[n] for n in protect if n in self.wpl.fisher]
        if fisher and not bool(torch.isfinite(torch.stack([f.sum() for f in fisher])).all()):
            raise FloatingPointError(self._diverged("Fisher", float("nan"), f" at shared step {self.shared_steps}"))
        if self.cfg.wpl_anchor == "step":
            self.wpl.update_anchors(protect)
        elif self.cfg.wpl_anchor == "ema":
            self.wpl.ema_anchors_(self.cfg.wpl_anchor_rate, protect)

    def _fisher_due(self, step: int) -> bool:
        """Whether shared step ``step`` (counted over the run, from 0) folds the Fisher (``fisher_every``)."""
        return step % self.cfg.fisher_every == 0

    def snapshot_anchors(self, epoch: int, step: int) -> None:
        """``wpl_anchor="snapshot"``: θ̂ ← θ for every protected weight when WPL starts and every
        ``wpl_anchor_every`` shared steps (a rule of the step counters, so a resumed run agrees)."""
        c = self.cfg
        if c.wpl_anchor == "snapshot" and ((epoch == c.start_using_fisher and step == 0)
                                           or self.shared_steps % c.wpl_anchor_every == 0):
            self.wpl.update_anchors()

    def controller_step(self) -> dict[str, float]:
        """Sample ``policy_batch_size`` architectures, reward each on the validation batches at the
        stream's position (the task scores in eval mode), advance the stream, and take one REINFORCE
        step; returns its statistics."""
        self.controller.train()
        d = self.dist
        actions = logp = ent = None
        if d.main:  # data-parallel: rank 0 samples and updates; every rank scores its shard of the rewards
            actions, logp, ent = self.controller.sample(self.policy_batch_size)
        n = self.cfg.nb_batch_reward_controller
        listed = d.broadcast(None if actions is None else actions.tolist())
        scored = [self.task.reward(self.task.decode(a), n) for a in listed]
        bad = [loss for _, loss in scored if not math.isfinite(loss)]
        if bad:
            raise FloatingPointError(self._diverged("validation loss of a reward", bad[0],
                                                    f" at controller step {self.controller_steps}"))
        self.task.advance_valid(n)
        stats = None
        if d.main:
            rewards = torch.tensor([r for r, _ in scored], device=logp.device)
            stats = self.reinforce.update(logp, ent, rewards)
        stats = d.broadcast(stats)
        self.controller_steps += 1
        return stats

    def score(self, arch: Arch, where: str = "") -> tuple[float, float]:
        """(error in the task's metric, loss) of ``arch`` on the fixed validation slice; a non-finite loss (a
        diverged supernet) is an error. The error may still overflow (perplexity of a loss above ≈709)."""
        err, loss = self.task.score(arch)
        if not math.isfinite(loss):
            raise FloatingPointError(self._diverged("validation loss", loss, where))
        return err, loss

    def _diverged(self, what: str, value: float, where: str) -> str:
        """The one-line message for a non-finite ``what``: where, the last good checkpoint, the fix."""
        ckpt = None if self.dir is None else self.dir / "checkpoint.pt"
        last = (f"the last good checkpoint is {ckpt}" if ckpt is not None and ckpt.is_file()
                else "there is no checkpoint yet")
        return (f"non-finite {what} ({value}){where}; {last}; lower the shared learning rate (--shared_lr="
                f"{self.shared_opt.param_groups[0]['lr']:g}) or WPL's alpha")

    # ---- phases --------------------------------------------------------------------------------
    def shared_phase(self, epoch: int, steps: int, telemetry: bool) -> dict:
        """Train ``steps`` sampled architectures; returns the phase's mean loss and WPL value (and ppl)."""
        active = self.cfg.wpl_active(epoch)
        cur = self._cursor("shared")
        start = cur["step"] if cur else 0
        sums = dict(cur["acc"]["sums"]) if cur else {"loss": 0.0, "wpl": 0.0, "n": 0}
        window = dict(cur["acc"]["window"]) if cur else dict(sums)
        bar = tqdm(range(start, steps), desc=f"epoch {epoch} shared", leave=False, dynamic_ncols=True,
                   mininterval=1.0, initial=start, total=steps, disable=not self.dist.main)
        for step in bar:
            t0 = self._clock()
            arch = self.sample_archs(1)[0]
            if active:
                self.snapshot_anchors(epoch, step)
            for ce, value in self.shared_step(arch, active, where=f" at epoch {epoch}, shared step {step}"):
                for acc in (sums, window):
                    acc["loss"] += ce
                    acc["wpl"] += value
                    acc["n"] += 1
            self._timed("shared", t0)
            t0 = self._clock()
            if telemetry and step % self.cfg.forgetting_every == 0:
                err, loss = self.score(arch, f" at epoch {epoch}, shared step {step} (forgetting telemetry)")
                self.monitor.before(epoch, step, arch.to_json(), err, loss)
            self._timed("forgetting", t0)
            if active:
                t0 = self._clock()
                self.fisher_step(arch)
                self._timed("shared", t0)
            if (step + 1) % self.cfg.log_step == 0 or step + 1 == steps:
                self._log_shared(epoch, window, active)
                window = {"loss": 0.0, "wpl": 0.0, "n": 0}
            bar.set_postfix_str(f"loss {sums['loss'] / max(sums['n'], 1):.3f}", refresh=False)
            self._boundary("shared", step + 1, {"sums": sums, "window": window})
        n = max(sums["n"], 1)
        out = {"loss": sums["loss"] / n, "wpl": sums["wpl"] / n}
        if self.metric == "ppl":
            out["ppl"] = perplexity(out["loss"])
        return out

    def _log_shared(self, epoch: int, window: dict, active: bool) -> None:
        n = max(window["n"], 1)
        loss = window["loss"] / n
        vals = {"loss": loss, "wpl": window["wpl"] / n,
                "alpha": self.wpl.alpha if active else 0.0, "lr": self.shared_opt.param_groups[0]["lr"]}
        if self.metric == "ppl":
            vals["ppl"] = perplexity(loss)
        self.runlog.event("shared", epoch=epoch, shared_step=self.shared_steps, **vals)
        self.runlog.scalars(self.global_step, {f"shared/{k}": v for k, v in vals.items()})
        ppl = f" ppl {vals['ppl']:.1f}" if "ppl" in vals else ""
        log.info("epoch %d shared step %d | loss %.3f%s wpl %.4f α %.4g lr %.4g", epoch, self.shared_steps,
                 loss, ppl, vals["wpl"], vals["alpha"], vals["lr"])

    def controller_phase(self, epoch: int, steps: int) -> dict:
        """``steps`` controller steps; returns the phase's mean reward."""
        cur = self._cursor("controller")
        start = cur["step"] if cur else 0
        window: dict[str, list[float]] = ({k: list(v) for k, v in cur["acc"]["window"].items()} if cur else
                                          {"reward": [], "entropy": [], "adv": [], "loss": []})
        all_rewards = list(cur["acc"]["rewards"]) if cur else []
        bar = tqdm(range(start, steps), desc=f"epoch {epoch} controller", leave=False, dynamic_ncols=True,
                   mininterval=1.0, initial=start, total=steps, disable=not self.dist.main)
        for step in bar:
            t0 = self._clock()
            stats = self.controller_step()
            for k in window:
                window[k].append(stats[k])
            all_rewards.append(stats["reward"])
            self._timed("controller", t0)
            if (step + 1) % self.cfg.log_step == 0 or step + 1 == steps:
                vals = {k: sum(v) / len(v) for k, v in window.items()}
                self.runlog.event("controller", epoch=epoch, controller_step=self.controller_steps, **vals)
                self.runlog.scalars(self.global_step, {f"controller/{k}": v for k, v in vals.items()})
                log.info("epoch %d controller step %d | reward %.4f entropy %.3f adv %.4f", epoch,
                         self.controller_steps, vals["reward"], vals["entropy"], vals["adv"])
                window = {k: [] for k in window}
            bar.set_postfix_str(f"reward {all_rewards[-1]:.3f}", refresh=False)
            self._boundary("controller", step + 1, {"window": window, "rewards": all_rewards})
        return {"reward": sum(all_rewards) / max(len(all_rewards), 1)}

    # ---- forgetting, derive, evaluation --------------------------------------------------------
    def finish_forgetting(self, epoch: int) -> dict:
        """err2 for every architecture of the epoch; CSV rows, summary event and TB scalars."""
        t0 = self._clock()
        records = self.monitor.after(lambda js: self.score(self.task.arch_from_json(js),
                                                           f" at epoch {epoch} (forgetting, err2)"))
        self._timed("forgetting", t0)
        if not records:
            return {}
        summ = self.monitor.summary(records)
        self.runlog.forgetting_rows(records)
        self.runlog.event("forgetting", epoch=epoch, metric=self.metric, top_k=self.monitor.top_k, **summ)
        self.runlog.scalars(self.global_step, {f"forgetting/{k}": v for k, v in summ.items() if k != "archs"})
        log.info("epoch %d forgetting | %s diff mean %.3f median %.3f max %.3f (best-%d %.3f) | loss diff mean %.4f",
                 epoch, self.metric, summ["diff_mean"], summ["diff_median"], summ["diff_max"], self.monitor.top_k,
                 summ["diff_best_mean"], summ["loss_diff_mean"])
        return summ

    @torch.no_grad()
    def derive(self, epoch: int, name: str | None = None) -> dict:
        """Sample ``derive_num_sample`` architectures, keep the best on the validation slice, draw it
        as ``networks/<name>.*`` (default ``epoch_XXX``), and score it on the whole validation split."""
        t0 = self._clock()
        cur = self._cursor("derive")
        if cur:
            archs = {js: self.task.arch_from_json(js) for js in cur["acc"]["candidates"]}
            scored = [(tuple(sc), js) for sc, js in cur["acc"]["scored"]]
        else:
            archs = {x.to_json(): x for x in self.sample_archs(self.cfg.derive_num_sample)}
            scored = []
        for js in list(archs)[len(scored):]:
            scored.append((self.score(archs[js], f" at epoch {epoch} (derive)")[::-1], js))
            self._boundary("derive", len(scored), {"candidates": list(archs), "scored": [list(x) for x in scored]})
        scored.sort()
        (loss, err), best_js = scored[0]
        arch = archs[best_js]
        if self.writes:
            nets = self.dir / "networks"
            nets.mkdir(exist_ok=True)
            stem = nets / (name or f"epoch_{epoch:03d}")
            write_json(stem.with_suffix(".json"), {"epoch": epoch, "arch": arch.to_dict(), "metric": self.metric,
                                                   "slice": err, "slice_loss": loss, "candidates": len(archs)})
            _, png = save_cell_drawing(*self.task.graph(arch), stem, title=f"epoch {epoch}: {self.metric} "
                                       f"{err:.4g} on the validation slice")
            self.runlog.image("derive/best", png, self.global_step)
        self._timed("derive", t0)
        t0 = self._clock()
        val = self.task.evaluate(arch, "valid")
        if not math.isfinite(val["loss"]):
            raise FloatingPointError(self._diverged("validation loss of the derived cell", val["loss"],
                                                    f" at epoch {epoch} (derive)"))
        self._timed("eval", t0)
        rec = {"epoch": epoch, "arch": best_js, "metric": self.metric, "valid": val[self.metric],
               "valid_loss": val["loss"]}
        self.runlog.event("derive", **rec, candidates=len(archs))
        self.runlog.scalars(self.global_step, {"derive/valid": val[self.metric], "derive/valid_loss": val["loss"]})
        log.info("epoch %d derive | best of %d: valid %s %.4g | %s", epoch, len(archs), self.metric,
                 val[self.metric], best_js)
        if self.best is None or val["loss"] < self.best["valid_loss"]:
            self.best = rec
        return rec

    def rank(self, epoch: int) -> dict:
        """Ranking fidelity of the supernet now, against the space's ground truth (its ``rank``)."""
        t0 = self._clock()
        m = self.space.rank(self)
        self._timed("rank", t0)
        self.runlog.event("rank", epoch=epoch, **m)
        self.runlog.scalars(self.global_step, {f"rank/{k}": v for k, v in m.items() if k != "num_archs"})
        log.info("epoch %d rank | %d cells: Kendall τ %.3f, Spearman %.3f, τ top-10%% %.3f, top-1 true acc %.2f",
                 epoch, m["num_archs"], m["kendall_tau"], m["spearman"], m["tau_top10"], m["top1_true_acc"])
        return m

    # ---- the run -------------------------------------------------------------------------------
    def run(self) -> dict:
        """Run (or continue) the search to ``max_epoch``; write ``summary.json``; return it."""
        c = self.cfg
        if c.shared_initial_step > 0 and not self.warmed_up and self.epoch == 0:
            log.info("warm-up: %d shared steps and one controller phase", min(c.shared_initial_step, c.shared_max_step))
            done = self._begin("warmup")
            if "shared" not in done:
                self._phase_done("shared", self.shared_phase(0, min(c.shared_initial_step, c.shared_max_step),
                                                             telemetry=False))
            self.controller_phase(0, c.controller_max_step)
            self.progress = None
        self.warmed_up = True
        bar = tqdm(range(self.epoch, c.max_epoch), desc="search", initial=self.epoch, total=c.max_epoch,
                   dynamic_ncols=True, disable=not self.dist.main)
        for epoch in bar:
            self.run_epoch(epoch)
            bar.set_postfix_str(f"best valid {self.metric} {self.best['valid']:.4g}" if self.best else "")
            stop = self.dist.broadcast(self.stop_signal)  # rank 0 decides, for every rank alike
            if stop and epoch + 1 < c.max_epoch:  # asked during the epoch's last part: saved just now
                self._stop(stop, f"after epoch {epoch}")
        return self.finish()

    def run_epoch(self, epoch: int) -> None:
        """One epoch, then a checkpoint."""
        c = self.cfg
        lr = c.shared_lr_at(epoch)
        for g in self.shared_opt.param_groups:
            g["lr"] = lr
        active = c.wpl_active(epoch)
        if active:
            self.wpl.set_epoch(epoch)
        telemetry = epoch >= c.start_evaluate_diff
        done = self._begin(epoch)  # a resumed epoch skips the phases it has done
        if "shared" not in done:
            self._phase_done("shared", self.shared_phase(epoch, c.shared_max_step, telemetry))
            if active:
                self.runlog.event("fisher", epoch=epoch, mass=fisher_mass(self.wpl.fisher, self.fisher_groups))
        shared = done["shared"]
        if "forgetting" not in done:
            self._phase_done("forgetting", self.finish_forgetting(epoch) if telemetry else {})
        forgetting = done["forgetting"]
        if "controller" not in done:
            self._phase_done("controller", self.controller_phase(epoch, c.controller_max_step)
                             if c.controller_trains(epoch) else {})
        ctrl = done["controller"]
        last = epoch == c.max_epoch - 1
        if "derive" not in done:
            self._phase_done("derive", self.derive(epoch) if epoch % c.save_epoch == 0 or last else {})
        derived = done["derive"]
        if c.rank_every and (epoch % c.rank_every == 0 or last):
            self.rank(epoch)
        summary = {"epoch": epoch, "metric": self.metric, "lr": lr, "wpl_active": active,
                   "alpha": self.wpl.alpha if active else 0.0, "shared_loss": shared["loss"],
                   **({"shared_ppl": shared["ppl"]} if "ppl" in shared else {}), "wpl": shared["wpl"],
                   "reward": ctrl.get("reward"), "valid": derived.get("valid"),
                   **{f"forgetting_{k}": forgetting.get(k) for k in EPOCH_FORGETTING}}
        self.history.append(summary)
        self.runlog.event("epoch", **summary)
        self.runlog.scalars(self.global_step, {"epoch/alpha": summary["alpha"], "epoch/lr": lr})
        self.epoch = epoch + 1
        self.progress = None
        self.save(copy=epoch % c.save_epoch == 0 or last, epoch=epoch)

    def _begin(self, where: int | str) -> dict:
        """Start (or, after a mid-epoch resume, continue) the epoch ``where``; its phases done so far."""
        if self.progress is None or self.progress["where"] != where:
            self.progress = {"where": where, "done": {}, "phase": None, "step": 0, "acc": None}
        return self.progress["done"]

    def finish(self) -> dict:
        """Test numbers of the best derived architecture; ``summary.json`` (schema: README, "Outputs")."""
        m = self.metric
        t0 = self._clock()
        test = None
        if self.best is not None:
            test = self.task.evaluate(self.task.arch_from_json(self.best["arch"]), "test")
        self._timed("eval", t0)
        best_valid = None if self.best is None else self.best["valid"]
        test_value = None if test is None else test[m]
        summary = {
            "model_name": self.dir.name, "network_type": self.task.kind, "dataset": self.flags.get("dataset"),
            "metric": m, "best_valid": best_valid, "test": test_value,
            "best_arch": None if self.best is None else self.task.arch_from_json(self.best["arch"]).to_dict(),
            "best_epoch": None if self.best is None else self.best["epoch"],
            "test_metrics": test,
            "epochs_done": self.epoch, "max_epoch": self.cfg.max_epoch,
            "wpl_active": any(h["wpl_active"] for h in self.history),
            "use_wpl": self.cfg.use_wpl, "start_using_fisher": self.cfg.start_using_fisher,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "device": str(self.task.device),
            # aliases of best_valid / test under the metric's old short name (best_valid_ppl, test_err, ...)
            f"best_valid_{ALIAS[m]}": best_valid, f"test_{ALIAS[m]}": test_value,
            "epochs": self.history,
        }
        if self.writes:
            write_json(self.dir / "summary.json", finite(summary))
        self.runlog.event("done", metric=m, best_valid=best_valid, test=test_value)
        self.runlog.flush()
        return summary

    # ---- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue bit-identically (tensors and plain data only)."""
        return {
            "args": self.flags,
            "decisions": self.task.decisions,
            "epoch": self.epoch, "shared_step": self.shared_steps, "controller_step": self.controller_steps,
            "warmed_up": self.warmed_up,
            "supernet": self.supernet.state_dict(), "controller": self.controller.state_dict(),
            "shared_opt": self.shared_opt.state_dict(), "ctrl_opt": self.reinforce.optimizer.state_dict(),
            "baseline": self.reinforce.baseline, "wpl": self.wpl.state_dict(), "monitor": self.monitor.state_dict(),
            "task": self.task.state_dict(), "rng": rng_state(), "log_sizes": self.runlog.sizes(),
            "arch_gen": None if self.arch_gen is None else self.arch_gen.get_state(),
            "seconds": self.seconds, "best": self.best, "history": self.history,
            "progress": self.progress, "boundaries": self.boundaries,
            # data-parallel: each rank's own RNG and data-stream state (its dropout, its carried hidden state)
            "ranks": self.dist.gather({"rng": rng_state(), "task": self.task.state_dict()}) if self.dist.active
            else None,
        }

    def save(self, copy: bool, epoch: int | None = None) -> Path:
        """``checkpoint.pt`` (latest) and, when ``copy``, ``checkpoint_epoch_XXX.pt`` (keep ``max_save_num``)."""
        t0 = time.monotonic()
        self.runlog.flush()
        state = self.state_dict()  # every rank: it gathers their states
        path = self.dir / "checkpoint.pt"
        if not self.writes:
            return path
        save_checkpoint(path, state, keep_previous=True)
        if copy:
            save_checkpoint(self.dir / f"checkpoint_epoch_{epoch:03d}.pt", state)
            copies = sorted(self.dir.glob("checkpoint_epoch_*.pt"))
            for old in copies[: max(len(copies) - self.cfg.max_save_num, 0)]:
                old.unlink()
        self._saved_at = time.monotonic()
        self._save_cost = self._saved_at - t0
        return path

    def _rank_state(self, state: dict, source: Path) -> dict:
        """This rank's RNG and task state in ``state`` (rank 0's for a run of one process)."""
        mine = rank_entry(state.get("ranks"), self.dist, source)
        return state if mine is None else mine

    def _load_wpl(self, saved: dict, source: Path) -> None:
        """The regularizer's state; one that tracks other weights (another ``wpl_scope``) is only accepted
        while WPL has never run (all its Fisher is zero): then WPL starts fresh here, with a warning."""
        try:
            self.wpl.load_state_dict(saved)
        except ValueError as exc:
            if any(bool(t.any()) for t in saved.get("fisher", {}).values()):
                raise WplError(f"{source}: its WPL state does not fit this configuration ({exc}); resume with the "
                               "run's own --wpl_scope") from exc
            log.warning("%s: WPL had not run yet and tracked other weights; it starts fresh with this "
                        "configuration's (%d tensors)", source, len(self.wpl.params))

    def load_state_dict(self, state: dict, source: Path, cut_logs: bool = True) -> None:
        """Restore from a checkpoint (``source`` names it in errors); ``cut_logs`` cuts the run's logs
        back to what the checkpoint had seen (for a resume)."""
        if state["decisions"] != self.task.decisions:
            raise WplError(f"{source}: its search space ({len(state['decisions'])} decisions) differs from this "
                           "command's; resume with the run's own flags (--resume_with_new_params=False)")
        try:
            self.supernet.load_state_dict(state["supernet"])
            self.controller.load_state_dict(state["controller"])
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise WplError(f"{source}: the saved model does not match this configuration "
                           f"({first[1].strip() if len(first) > 1 else first[0]}); resume with the run's own sizes "
                           "(drop --resume_with_new_params, or the flags that change them)") from exc
        self.shared_opt.load_state_dict(state["shared_opt"])
        baseline = state["baseline"]
        self.reinforce.load_state_dict({"optimizer": state["ctrl_opt"],
                                        "baseline": None if baseline is None else baseline.to(self.task.device)})
        self._load_wpl(state["wpl"], source)
        self.monitor.load_state_dict(state["monitor"])
        own = self._rank_state(state, source)
        self.task.load_state_dict(own["task"])
        self.epoch, self.shared_steps = state["epoch"], state["shared_step"]
        self.controller_steps, self.warmed_up = state["controller_step"], state["warmed_up"]
        self.seconds = dict(state["seconds"])
        self.best, self.history = state["best"], list(state["history"])
        if cut_logs:
            self.runlog.truncate(state["log_sizes"])
        set_rng_state(own["rng"])
        if self.arch_gen is not None and state.get("arch_gen") is not None:  # else: a fresh stream from the seed
            self.arch_gen.set_state(state["arch_gen"])
        self.progress, self.boundaries = state.get("progress"), int(state.get("boundaries", 0))


# the forgetting summary's keys that each epoch event repeats (as forgetting_<key>)
EPOCH_FORGETTING = ("diff_mean", "diff_median", "diff_best_mean", "loss_diff_mean", "loss_diff_median",
                    "loss_diff_best_mean")
ALIAS = {"ppl": "ppl", "error": "err"}
