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
Logged names follow one schema for every space (docs/rnn.md, "Outputs").
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import torch

from wpl.dist import SINGLE, Dist
from wpl.fileio import finite, write_json
from wpl.forgetting import ForgettingMonitor
from wpl.plasticity import WplConfig
from wpl.progress import bar as progress_bar
from wpl.rundir import RunDir
from wpl.runlog import NullRunLog, RunLog
from wpl.runtime import clock
from wpl.viz import save_cell_drawing

from .. import spaces
from ..config import ControllerConfig, SearchConfig
from ..configs import Configs
from ..metrics import perplexity
from ..task import Arch, Task
from . import state
from .fisher_map import fisher_groups, fisher_mass
from .progress import Checkpointing, SearchStopped
from .sampler import Sampler
from .trainer import SharedTrainer

log = logging.getLogger("wpl")
__all__ = ["PHASES", "Search", "SearchStopped"]
PHASES = ("shared", "controller", "derive", "eval", "forgetting")




class Search:
    """One search run on ``task`` in ``run_dir`` (plain-file logs unless ``runlog`` says otherwise); ``flags``
    (plain data) is saved in checkpoints as the run's flags. Its parts: the :class:`Sampler` (the controller or
    uniform draws), the :class:`SharedTrainer` (the shared weights, their optimizer and the WPL policy), the
    :class:`Checkpointing` (where the epoch is, when to checkpoint or stop), the forgetting monitor, the logs."""

    def __init__(self, task: Task, search: SearchConfig, wpl: WplConfig, controller: ControllerConfig,
                 run_dir: Path | None, configs: Configs | None = None, runlog: RunLog | None = None) -> None:
        self.space = spaces.get(task.kind)
        self.space.check_estimator(search.fisher_estimator)  # a Search built without Configs checks it here
        self.cfg, self.task, self.dir, self.configs = search, task, run_dir, configs
        self.dist: Dist = getattr(task, "dist", SINGLE)  # data parallelism: the task's ranks
        self.writes = self.dist.main and run_dir is not None  # only rank 0 writes the run's files
        self.supernet = task.supernet
        seed = task.config.random_seed
        # the sampler first: the controller's initialisation draws from torch's RNG before anything else here
        self.sampler = Sampler(task, search, controller, self.dist, seed, self._diverged)
        self.trainer = SharedTrainer(task, search, wpl, self.dist, self._diverged)
        self.monitor = ForgettingMonitor(top_k=search.forgetting_top_k)
        self.fisher_groups = fisher_groups(task)  # where WPL holds: the "fisher" events group F by these
        self.checkpoints = Checkpointing(search.checkpoint_every_steps, self.dist, run_dir, self.save)
        self.epoch = 0
        self.warmed_up = False
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.best: dict | None = None
        self.history: list[dict] = []
        if runlog is None and self.writes:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            runlog = RunLog(Path(run_dir), tensorboard=False)
        self.runlog = runlog if runlog is not None and self.dist.main else NullRunLog()

    # ---- the parts' members, as the search's (benchmarks, tests and the state read them here) ------------
    controller = property(lambda self: self.sampler.controller)
    reinforce = property(lambda self: self.sampler.reinforce)
    arch_gen = property(lambda self: self.sampler.arch_gen)
    policy_batch_size = property(lambda self: self.sampler.policy_batch_size)
    shared_opt = property(lambda self: self.trainer.shared_opt)
    wpl = property(lambda self: self.trainer.wpl)
    policy = property(lambda self: self.trainer.policy)
    weight_ema = property(lambda self: self.trainer.weight_ema)
    shared_steps = property(lambda self: self.trainer.steps, lambda self, v: setattr(self.trainer, "steps", v))
    controller_steps = property(lambda self: self.sampler.steps, lambda self, v: setattr(self.sampler, "steps", v))
    progress = property(lambda self: self.checkpoints.progress,
                        lambda self, v: setattr(self.checkpoints, "progress", v))
    boundaries = property(lambda self: self.checkpoints.boundaries,
                          lambda self, v: setattr(self.checkpoints, "boundaries", v))
    stop_signal = property(lambda self: self.checkpoints.stop_signal,
                           lambda self, v: setattr(self.checkpoints, "stop_signal", v))

    def sample_archs(self, n: int) -> list[Arch]:
        """``n`` architectures from the sampler (the controller's policy, or uniform)."""
        return self.sampler.sample(n)

    def controller_step(self) -> dict[str, float]:
        """One controller step (:meth:`Sampler.controller_step`)."""
        return self.sampler.controller_step()

    def shared_batch(self, arch: Arch, protect: Sequence[str], wpl: bool, fold_fisher: bool = False,
                     where: str = "") -> tuple[float, float]:
        """One optimizer step of the shared weights (:meth:`SharedTrainer.batch`)."""
        return self.trainer.batch(arch, protect, wpl, fold_fisher, where)

    def shared_step(self, arch: Arch, wpl: bool, where: str = "") -> list[tuple[float, float]]:
        """``arch`` trained on ``num_batch_per_iter`` batches (:meth:`SharedTrainer.step`)."""
        return self.trainer.step(arch, wpl, where)

    def fisher_step(self, arch: Arch) -> None:
        """``arch``'s Fisher and anchors after its shared step (:meth:`SharedTrainer.fisher_step`)."""
        self.trainer.fisher_step(arch)

    def snapshot_anchors(self, epoch: int, step: int) -> None:
        """Snapshot anchors when due (:meth:`SharedTrainer.snapshot_anchors`)."""
        self.trainer.snapshot_anchors(epoch, step)

    def skip_valid(self, epoch: int, wpl: bool) -> None:
        """The validation stream's skip after a shared step (:meth:`SharedTrainer.skip_valid`)."""
        self.trainer.skip_valid(epoch, wpl)

    def request_stop(self, name: str, exit_code: int) -> None:
        """Stop at the next step boundary, after a checkpoint (what the signal handlers call)."""
        self.checkpoints.request_stop(name, exit_code)

    # ---- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue bit-identically (tensors and plain data only)."""
        return state.state_of(self)

    def save(self, copy: bool, epoch: int | None = None) -> Path:
        """``checkpoint.pt`` (latest) and, when ``copy``, ``checkpoint_epoch_XXX.pt`` (keep ``max_save_num``)."""
        return state.save(self, copy, epoch)

    def load_state_dict(self, saved: dict, source: Path, cut_logs: bool = True) -> None:
        """Restore from a checkpoint (``source`` names it in errors); ``cut_logs`` cuts the run's logs back."""
        state.load(self, saved, source, cut_logs)

    def score(self, arch: Arch, where: str = "") -> tuple[float, float]:
        """(error in the task's metric, loss) of ``arch`` on the fixed validation slice; a non-finite loss (a
        diverged supernet) is an error. The error may still overflow (perplexity of a loss above ≈709)."""
        err, loss = self.task.score(arch)
        if not math.isfinite(loss):
            raise FloatingPointError(self._diverged("validation loss", loss, where))
        return err, loss

    def _diverged(self, what: str, value: float, where: str) -> str:
        """The one-line message for a non-finite ``what``: where, the last good checkpoint, the fix."""
        ckpt = None if self.dir is None else RunDir(self.dir).checkpoint
        last = (f"the last good checkpoint is {ckpt}" if ckpt is not None and ckpt.is_file()
                else "there is no checkpoint yet")
        return (f"non-finite {what} ({value}){where}; {last}; lower the shared learning rate (--shared_lr="
                f"{self.shared_opt.param_groups[0]['lr']:g}) or WPL's alpha")

    # ---- helpers -------------------------------------------------------------------------------
    @property
    def global_step(self) -> int:
        """TensorBoard x-axis: shared + controller steps (monotone across phases)."""
        return self.shared_steps + self.controller_steps

    @property
    def metric(self) -> str:
        """The task's error unit: ``ppl`` or ``error``."""
        return self.space.metric

    @property
    def dataset(self) -> str | None:
        """The data's folder name (``--dataset``; None for a search built without its configs)."""
        return None if self.configs is None else self.configs.run.dataset

    def _clock(self) -> float:
        return clock(self.task.device)

    def _timed(self, phase: str, t0: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + self._clock() - t0  # "rank" only when it runs

    # ---- phases --------------------------------------------------------------------------------
    def shared_phase(self, epoch: int, steps: int, telemetry: bool) -> dict:
        """Train ``steps`` sampled architectures; returns the phase's mean loss and WPL value (and ppl)."""
        active = self.cfg.wpl_active(epoch)
        cur = self.checkpoints.cursor("shared")
        start = cur["step"] if cur else 0
        sums = dict(cur["acc"]["sums"]) if cur else {"loss": 0.0, "wpl": 0.0, "n": 0}
        window = dict(cur["acc"]["window"]) if cur else dict(sums)
        bar = progress_bar(range(start, steps), desc=f"epoch {epoch} shared", leave=False, dynamic_ncols=True,
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
            t0 = self._clock()
            if active:
                self.fisher_step(arch)
            self.skip_valid(epoch, active)
            self._timed("shared", t0)
            if (step + 1) % self.cfg.log_step == 0 or step + 1 == steps:
                self._log_shared(epoch, window, active)
                window = {"loss": 0.0, "wpl": 0.0, "n": 0}
            bar.set_postfix_str(f"loss {sums['loss'] / max(sums['n'], 1):.3f}", refresh=False)
            self.checkpoints.boundary("shared", step + 1, {"sums": sums, "window": window})
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
        cur = self.checkpoints.cursor("controller")
        start = cur["step"] if cur else 0
        window: dict[str, list[float]] = ({k: list(v) for k, v in cur["acc"]["window"].items()} if cur else
                                          {"reward": [], "entropy": [], "adv": [], "loss": []})
        all_rewards = list(cur["acc"]["rewards"]) if cur else []
        bar = progress_bar(range(start, steps), desc=f"epoch {epoch} controller", leave=False, dynamic_ncols=True,
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
            self.checkpoints.boundary("controller", step + 1, {"window": window, "rewards": all_rewards})
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
        cur = self.checkpoints.cursor("derive")
        if cur:
            archs = {js: self.task.arch_from_json(js) for js in cur["acc"]["candidates"]}
            scored = [(tuple(sc), js) for sc, js in cur["acc"]["scored"]]
        else:
            archs = {x.to_json(): x for x in self.sample_archs(self.cfg.derive_num_sample)}
            scored = []
        for js in list(archs)[len(scored):]:
            scored.append((self.score(archs[js], f" at epoch {epoch} (derive)")[::-1], js))
            self.checkpoints.boundary("derive", len(scored),
                                      {"candidates": list(archs), "scored": [list(x) for x in scored]})
        scored.sort()
        (loss, err), best_js = scored[0]
        arch = archs[best_js]
        if self.writes:
            stem = RunDir(self.dir).network(name or f"epoch_{epoch:03d}").with_suffix("")
            stem.parent.mkdir(exist_ok=True)
            write_json(stem.with_suffix(".json"), {"epoch": epoch, "arch": arch.to_dict(), "metric": self.metric,
                                                   "slice": err, "slice_loss": loss, "candidates": len(archs)})
            _, png = save_cell_drawing(*self.space.graph(arch), stem, title=f"epoch {epoch}: {self.metric} "
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
            done = self.checkpoints.begin("warmup")
            if "shared" not in done:
                warmup = min(c.shared_initial_step, c.shared_max_step)
                self.checkpoints.phase_done("shared", self.shared_phase(0, warmup, telemetry=False))
            self.controller_phase(0, c.controller_max_step)
            self.progress = None
        self.warmed_up = True
        bar = progress_bar(range(self.epoch, c.max_epoch), desc="search", initial=self.epoch, total=c.max_epoch,
                   dynamic_ncols=True, disable=not self.dist.main)
        for epoch in bar:
            self.run_epoch(epoch)
            bar.set_postfix_str(f"best valid {self.metric} {self.best['valid']:.4g}" if self.best else "")
            stop = self.dist.broadcast(self.stop_signal)  # rank 0 decides, for every rank alike
            if stop and epoch + 1 < c.max_epoch:  # asked during the epoch's last part: saved just now
                self.checkpoints.stop(stop, f"after epoch {epoch}")
        return self.finish()

    def run_epoch(self, epoch: int) -> None:
        """One epoch, then a checkpoint."""
        c = self.cfg
        lr = c.shared_lr_at(epoch)
        for g in self.shared_opt.param_groups:
            g["lr"] = lr
        active = c.wpl_active(epoch)
        if active:
            self.policy.set_epoch(epoch)
        telemetry = epoch >= c.start_evaluate_diff
        done = self.checkpoints.begin(epoch)  # a resumed epoch skips the phases it has done
        if "shared" not in done:
            self.checkpoints.phase_done("shared", self.shared_phase(epoch, c.shared_max_step, telemetry))
            if active:
                self.runlog.event("fisher", epoch=epoch, mass=fisher_mass(self.wpl.fisher, self.fisher_groups))
        shared = done["shared"]
        if "forgetting" not in done:
            self.checkpoints.phase_done("forgetting", self.finish_forgetting(epoch) if telemetry else {})
        forgetting = done["forgetting"]
        if "controller" not in done:
            self.checkpoints.phase_done("controller", self.controller_phase(epoch, c.controller_max_step)
                             if c.controller_trains(epoch) else {})
        ctrl = done["controller"]
        last = epoch == c.max_epoch - 1
        if "derive" not in done:
            self.checkpoints.phase_done("derive", self.derive(epoch) if epoch % c.save_epoch == 0 or last else {})
        derived = done["derive"]
        every = self.space.rank_period(self.task.config)
        if every and (epoch % every == 0 or last):
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

    def finish(self) -> dict:
        """Test numbers of the best derived architecture; ``summary.json`` (schema: docs/rnn.md, "Outputs")."""
        m = self.metric
        t0 = self._clock()
        test = None
        if self.best is not None:
            test = self.task.evaluate(self.task.arch_from_json(self.best["arch"]), "test")
        self._timed("eval", t0)
        best_valid = None if self.best is None else self.best["valid"]
        test_value = None if test is None else test[m]
        summary = {
            "model_name": self.dir.name, "network_type": self.task.kind, "dataset": self.dataset,
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
            "configs": None if self.configs is None else self.configs.to_dict(),
        }
        if self.writes:
            write_json(RunDir(self.dir).summary, finite(summary))
        self.runlog.event("done", metric=m, best_valid=best_valid, test=test_value)
        self.runlog.flush()
        return summary

# the forgetting summary's keys that each epoch event repeats (as forgetting_<key>)
EPOCH_FORGETTING = ("diff_mean", "diff_median", "diff_best_mean", "loss_diff_mean", "loss_diff_median",
                    "loss_diff_best_mean")
ALIAS = {"ppl": "ppl", "error": "err"}
