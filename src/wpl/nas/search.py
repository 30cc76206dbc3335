"""The ENAS search loop with Weight Plasticity Loss, for any task (recurrent or convolutional space).

Per epoch: the shared phase (sample an architecture, train it on ``num_batch_per_iter`` batches with
CE + WPL over the shared weights it uses, record its error, then — with WPL on — fold its Fisher on
one validation batch and move its anchors), the forgetting summary, the controller phase
(REINFORCE with an EMA baseline), and every ``save_epoch`` a derive step. A full-state checkpoint
is written atomically after every epoch, so a run resumes exactly at an epoch boundary.
"""

from __future__ import annotations

import logging
import math
import time
from argparse import Namespace
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ..checkpoint import rng_state, save_checkpoint, set_rng_state
from ..errors import WplError
from ..fileio import write_json
from ..forgetting import ForgettingMonitor
from ..plasticity import WeightPlasticity
from ..runlog import RunLog
from ..viz import save_cell_drawing
from .controller import Controller
from .metrics import perplexity

log = logging.getLogger("wpl")
PHASES = ("shared", "controller", "derive", "eval", "forgetting")


def shared_lr(args: Namespace, epoch: int) -> float:
    """The shared learning rate of ``epoch``: constant, then ×decay per epoch after ``shared_decay_after``."""
    return args.shared_lr * args.shared_decay ** max(epoch - args.shared_decay_after, 0)


class Search:
    """One search run in ``run_dir`` on ``task`` (see :class:`wpl.nas.lm_task.LanguageModelTask`)."""

    def __init__(self, args: Namespace, task, run_dir: Path) -> None:
        self.args, self.task, self.dir = args, task, run_dir
        self.supernet: nn.Module = task.supernet
        dev = task.device
        self.controller = Controller(task.decisions, args.controller_hid, args.softmax_temperature, args.tanh_c,
                                     task.reset_at).to(dev)
        opt = torch.optim.SGD if args.shared_optim == "sgd" else torch.optim.Adam
        self.shared_opt = opt(self.supernet.parameters(), lr=args.shared_lr, weight_decay=args.shared_l2_reg)
        copt = torch.optim.Adam if args.controller_optim == "adam" else torch.optim.SGD
        self.ctrl_opt = copt(self.controller.parameters(), lr=args.controller_lr)
        params = dict(self.supernet.named_parameters())
        self.wpl = WeightPlasticity(
            [(n, params[n]) for n in task.all_protected_names()],
            alpha_fisher=args.alpha_fisher, lambda_fisher=args.lambda_fisher, momentum=args.momentum,
            fisher_clip_by_norm=args.fisher_clip_by_norm, alpha_decay=args.alpha_decay,
            alpha_decay_after=args.alpha_decay_after, alpha_decay_mode=args.alpha_decay_mode,
            alpha_small_scale=args.alpha_small_scale, set_fisher_zero_per_iter=args.set_fisher_zero_per_iter,
            legacy_compound_alpha=args.legacy_compound_alpha,
        )
        self.monitor = ForgettingMonitor()
        self.baseline: torch.Tensor | None = None
        self.epoch = 0
        self.shared_step = self.controller_step = 0
        self.warmed_up = False
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.best: dict | None = None
        self.history: list[dict] = []
        self.runlog: RunLog | None = None

    # ---- helpers -------------------------------------------------------------------------------
    @property
    def global_step(self) -> int:
        """TensorBoard x-axis: shared + controller steps (monotone across phases)."""
        return self.shared_step + self.controller_step

    def wpl_active(self, epoch: int) -> bool:
        """WPL is on from ``start_using_fisher`` on (never with ``--use_wpl=False``)."""
        return self.args.use_wpl and epoch >= self.args.start_using_fisher

    @torch.no_grad()
    def sample_archs(self, n: int) -> list:
        """``n`` architectures from the current policy."""
        self.controller.eval()
        actions, _, _ = self.controller.sample(n)
        return [self.task.decode(a.tolist()) for a in actions]

    def _timed(self, phase: str, t0: float) -> None:
        self.seconds[phase] += time.time() - t0

    # ---- shared phase --------------------------------------------------------------------------
    def shared_phase(self, epoch: int, steps: int, telemetry: bool) -> dict:
        """Train ``steps`` sampled architectures; returns the phase's mean loss, ppl, wpl."""
        a = self.args
        self.supernet.train()
        active = self.wpl_active(epoch)
        sums = {"loss": 0.0, "wpl": 0.0, "n": 0}
        window = {"loss": 0.0, "wpl": 0.0, "n": 0}
        bar = tqdm(range(steps), desc=f"epoch {epoch} shared", leave=False, dynamic_ncols=True, mininterval=1.0)
        for step in bar:
            t0 = time.time()
            arch = self.sample_archs(1)[0]
            protect = self.task.protected_names(arch)
            for i in range(a.num_batch_per_iter):
                total, ce = self.task.train_loss(arch)
                if not torch.isfinite(total):
                    raise FloatingPointError(
                        f"non-finite training loss ({total.item()}) at epoch {epoch}, shared step {step}; the last "
                        f"good checkpoint is {self.dir / 'checkpoint.pt'}; lower --shared_lr or --alpha_fisher")
                self.shared_opt.zero_grad(set_to_none=True)
                total.backward()
                wpl_value = 0.0
                if active and not a.shared_valid_fisher and i == a.num_batch_per_iter - 1:
                    self.wpl.update_fisher(protect)  # the original's extra Fisher from the last training batch
                if active:
                    wpl_value = float(self.wpl.add_penalty_grad_(protect, with_value=True))
                grads = [p for p in self.supernet.parameters() if p.grad is not None]
                torch.nn.utils.clip_grad_norm_(grads, a.shared_grad_clip)
                self.shared_opt.step()
                for acc in (sums, window):
                    acc["loss"] += ce.item()
                    acc["wpl"] += wpl_value
                    acc["n"] += 1
            self.shared_step += 1
            self._timed("shared", t0)
            t0 = time.time()
            if telemetry:
                err, loss = self.task.score(arch)
                self.monitor.before(epoch, step, arch.to_json(), err, loss)
            self._timed("forgetting", t0)
            if active:
                t0 = time.time()
                model_fn, batches, loss_fn = self.task.fisher_batch(arch)
                self.wpl.estimate_fisher(model_fn, batches, names=protect, estimator="batch_sq",
                                         loss_fn=loss_fn, mode="keep")
                self.wpl.update_anchors(protect)
                self._timed("shared", t0)
            if (step + 1) % a.log_step == 0 or step + 1 == steps:
                self._log_shared(epoch, window, active)
                window = {"loss": 0.0, "wpl": 0.0, "n": 0}
            bar.set_postfix_str(f"loss {sums['loss'] / max(sums['n'], 1):.3f}", refresh=False)
        n = max(sums["n"], 1)
        return {"loss": sums["loss"] / n, "ppl": perplexity(sums["loss"] / n), "wpl": sums["wpl"] / n}

    def _log_shared(self, epoch: int, window: dict, active: bool) -> None:
        n = max(window["n"], 1)
        loss = window["loss"] / n
        vals = {"loss": loss, "wpl": window["wpl"] / n,
                "alpha": self.wpl.alpha if active else 0.0, "lr": self.shared_opt.param_groups[0]["lr"]}
        if self.task.err_name == "ppl":
            vals["ppl"] = perplexity(loss)
        self.runlog.event("shared", epoch=epoch, shared_step=self.shared_step, **vals)
        self.runlog.scalars(self.global_step, {f"shared/{k}": v for k, v in vals.items()})
        ppl = f" ppl {vals['ppl']:.1f}" if "ppl" in vals else ""
        log.info("epoch %d shared step %d | loss %.3f%s wpl %.4f α %.4g lr %.4g", epoch, self.shared_step,
                 loss, ppl, vals["wpl"], vals["alpha"], vals["lr"])

    # ---- controller phase ----------------------------------------------------------------------
    def controller_phase(self, epoch: int, steps: int) -> dict:
        """REINFORCE: reward from the moving validation stream, EMA baseline, entropy bonus."""
        a = self.args
        self.supernet.eval()
        self.controller.train()
        window: dict[str, list[float]] = {"reward": [], "entropy": [], "adv": [], "loss": []}
        all_rewards = []
        bar = tqdm(range(steps), desc=f"epoch {epoch} controller", leave=False, dynamic_ncols=True, mininterval=1.0)
        for step in bar:
            t0 = time.time()
            actions, logp, ent = self.controller.sample(a.policy_batch_size)
            archs = [self.task.decode(x.tolist()) for x in actions]
            rewards = torch.tensor([self.task.reward(arch)[0] for arch in archs], device=logp.device)
            self.task.advance_valid(a.nb_batch_reward_controller)
            r = rewards[:, None].expand_as(logp).clone()
            if a.entropy_mode == "reward":
                r = r + a.entropy_coeff * ent.detach()
            if 0 < a.discount < 1:
                r = _discount(r, a.discount)
            mean_r = r.mean(0)
            if self.baseline is None:
                self.baseline = mean_r.clone()
            else:
                self.baseline = a.ema_baseline_decay * self.baseline + (1 - a.ema_baseline_decay) * mean_r
            adv = r - self.baseline
            loss = -(logp * adv).sum(1).mean()
            if a.entropy_mode == "regularizer":
                loss = loss - a.entropy_coeff * ent.sum(1).mean()
            self.ctrl_opt.zero_grad(set_to_none=True)
            loss.backward()
            if a.controller_grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.controller.parameters(), a.controller_grad_clip)
            self.ctrl_opt.step()
            self.controller_step += 1
            for k, v in (("reward", rewards.mean()), ("entropy", ent.sum(1).mean()), ("adv", adv.mean()),
                         ("loss", loss.detach())):
                window[k].append(float(v.detach()))
            all_rewards.append(float(rewards.mean()))
            self._timed("controller", t0)
            if (step + 1) % a.log_step == 0 or step + 1 == steps:
                vals = {k: sum(v) / len(v) for k, v in window.items()}
                self.runlog.event("controller", epoch=epoch, controller_step=self.controller_step, **vals)
                self.runlog.scalars(self.global_step, {f"controller/{k}": v for k, v in vals.items()})
                log.info("epoch %d controller step %d | reward %.4f entropy %.3f adv %.4f", epoch,
                         self.controller_step, vals["reward"], vals["entropy"], vals["adv"])
                window = {k: [] for k in window}
            bar.set_postfix_str(f"reward {all_rewards[-1]:.3f}", refresh=False)
        self.supernet.train()
        return {"reward": sum(all_rewards) / max(len(all_rewards), 1)}

    # ---- forgetting, derive, evaluation --------------------------------------------------------
    def finish_forgetting(self, epoch: int) -> dict:
        """err2 for every architecture of the epoch; CSV rows, summary event and TB scalars."""
        t0 = time.time()
        records = self.monitor.after(lambda js: self.task.score(self.task.arch_from_json(js)))
        self._timed("forgetting", t0)
        if not records:
            return {}
        summ = self.monitor.summary(records)
        self.runlog.forgetting_rows(records)
        self.runlog.event("forgetting", epoch=epoch, unit=self.task.err_name, **summ)
        self.runlog.scalars(self.global_step, {f"forgetting/{k}": v for k, v in summ.items() if k != "archs"})
        log.info("epoch %d forgetting | %s diff mean %.3f median %.3f max %.3f (best-5 %.3f) | loss diff mean %.4f",
                 epoch, self.task.err_name, summ["diff_mean"], summ["diff_median"], summ["diff_max"],
                 summ["diff_best5_mean"], summ["loss_diff_mean"])
        return summ

    @torch.no_grad()
    def derive(self, epoch: int, name: str | None = None) -> dict:
        """Sample ``derive_num_sample`` architectures, keep the best on the validation slice, draw it
        as ``networks/<name>.*`` (default ``epoch_XXX``)."""
        t0 = time.time()
        archs = {x.to_json(): x for x in self.sample_archs(self.args.derive_num_sample)}
        scored = sorted((self.task.score(arch)[::-1], js) for js, arch in archs.items())
        (loss, err), best_js = scored[0]
        arch = archs[best_js]
        nets = self.dir / "networks"
        nets.mkdir(exist_ok=True)
        stem = nets / (name or f"epoch_{epoch:03d}")
        write_json(stem.with_suffix(".json"), {"epoch": epoch, "arch": arch.to_dict(), "slice_loss": loss,
                                               "slice_" + self.task.err_name: err,
                                               "candidates": len(archs)})
        _, png = save_cell_drawing(*self.task.graph(arch), stem, title=f"epoch {epoch}: {self.task.err_name} "
                                   f"{err:.4g} on the validation slice")
        self.runlog.image("derive/best", png, self.global_step)
        self._timed("derive", t0)
        t0 = time.time()
        val = self.task.evaluate(arch, "valid")
        self._timed("eval", t0)
        e = self.task.err_name
        rec = {"epoch": epoch, "arch": best_js, "valid_loss": val["loss"], f"valid_{e}": val[e]}
        self.runlog.event("derive", **rec, candidates=len(archs))
        self.runlog.scalars(self.global_step, {"eval/val_best_loss": val["loss"], f"eval/val_best_{e}": val[e]})
        log.info("epoch %d derive | best of %d: valid %s %.4g | %s", epoch, len(archs), e, val[e], best_js)
        if self.best is None or val["loss"] < self.best["valid_loss"]:
            self.best = rec
        return rec

    # ---- the run -------------------------------------------------------------------------------
    def run(self) -> dict:
        """Run (or continue) the search to ``max_epoch``; write ``summary.json``; return it."""
        a = self.args
        if a.shared_initial_step > 0 and not self.warmed_up and self.epoch == 0:
            log.info("warm-up: %d shared steps and one controller phase", min(a.shared_initial_step, a.shared_max_step))
            self.shared_phase(0, min(a.shared_initial_step, a.shared_max_step), telemetry=False)
            self.controller_phase(0, a.controller_max_step)
        self.warmed_up = True
        bar = tqdm(range(self.epoch, a.max_epoch), desc="search", initial=self.epoch, total=a.max_epoch,
                   dynamic_ncols=True)
        for epoch in bar:
            self.run_epoch(epoch)
            e = self.task.err_name
            bar.set_postfix_str(f"best valid {e} {self.best[f'valid_{e}']:.4g}" if self.best else "")
        return self.finish()

    def run_epoch(self, epoch: int) -> None:
        """One epoch, then a checkpoint."""
        a = self.args
        lr = shared_lr(a, epoch)
        for g in self.shared_opt.param_groups:
            g["lr"] = lr
        active = self.wpl_active(epoch)
        if active:
            self.wpl.set_epoch(epoch)
        telemetry = epoch >= a.start_evaluate_diff
        shared = self.shared_phase(epoch, a.shared_max_step, telemetry)
        forgetting = self.finish_forgetting(epoch) if telemetry else {}
        ctrl = {}
        if a.train_controller and a.start_training_controller <= epoch < a.stop_training_controller:
            ctrl = self.controller_phase(epoch, a.controller_max_step)
        derived = {}
        last = epoch == a.max_epoch - 1
        if epoch % a.save_epoch == 0 or last:
            derived = self.derive(epoch)
        e = self.task.err_name
        summary = {"epoch": epoch, "lr": lr, "wpl_active": active, "alpha": self.wpl.alpha if active else 0.0,
                   "shared_loss": shared["loss"], "shared_ppl": shared["ppl"], "wpl": shared["wpl"],
                   "reward": ctrl.get("reward"), f"valid_{e}": derived.get(f"valid_{e}"),
                   "forgetting_diff_mean": forgetting.get("diff_mean"),
                   "forgetting_diff_median": forgetting.get("diff_median"),
                   "forgetting_loss_diff_mean": forgetting.get("loss_diff_mean"),
                   "forgetting_loss_diff_median": forgetting.get("loss_diff_median"),
                   "forgetting_loss_diff_best5_mean": forgetting.get("loss_diff_best5_mean")}
        self.history.append(summary)
        self.runlog.event("epoch", **summary)
        self.runlog.scalars(self.global_step, {"epoch/alpha": summary["alpha"], "epoch/lr": lr})
        self.epoch = epoch + 1
        self.save(copy=epoch % a.save_epoch == 0 or last, epoch=epoch)

    def finish(self) -> dict:
        """Test numbers of the best derived architecture; ``summary.json``."""
        e = self.task.err_name
        t0 = time.time()
        test = None
        if self.best is not None:
            test = self.task.evaluate(self.task.arch_from_json(self.best["arch"]), "test")
        self._timed("eval", t0)
        summary = {
            "model_name": self.dir.name, "network_type": self.task.kind, "dataset": self.args.dataset,
            "epochs_done": self.epoch, "max_epoch": self.args.max_epoch,
            "best_arch": None if self.best is None else self.task.arch_from_json(self.best["arch"]).to_dict(),
            "best_epoch": None if self.best is None else self.best["epoch"],
            f"best_valid_{e}": None if self.best is None else self.best[f"valid_{e}"],
            f"test_{e}": None if test is None else test[e],
            "test": test,
            "wpl_active": any(h["wpl_active"] for h in self.history),
            "use_wpl": self.args.use_wpl, "start_using_fisher": self.args.start_using_fisher,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "device": str(self.task.device),
            "epochs": self.history,
        }
        write_json(self.dir / "summary.json", _finite(summary))
        self.runlog.event("done", **{k: summary[k] for k in (f"test_{e}", f"best_valid_{e}")})
        self.runlog.flush()
        return summary

    # ---- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue bit-identically."""
        return {
            "args": {k: v for k, v in vars(self.args).items() if k != "explicit"},
            "decisions": self.task.decisions,
            "epoch": self.epoch, "shared_step": self.shared_step, "controller_step": self.controller_step,
            "warmed_up": self.warmed_up,
            "supernet": self.supernet.state_dict(), "controller": self.controller.state_dict(),
            "shared_opt": self.shared_opt.state_dict(), "ctrl_opt": self.ctrl_opt.state_dict(),
            "baseline": self.baseline, "wpl": self.wpl.state_dict(), "monitor": self.monitor.state_dict(),
            "task": self.task.state_dict(), "rng": rng_state(), "log_sizes": self.runlog.sizes(),
            "seconds": self.seconds, "best": self.best, "history": self.history,
        }

    def save(self, copy: bool, epoch: int) -> Path:
        """``checkpoint.pt`` (latest) and, when ``copy``, ``checkpoint_epoch_XXX.pt`` (keep ``max_save_num``)."""
        self.runlog.flush()
        state = self.state_dict()
        path = save_checkpoint(self.dir / "checkpoint.pt", state)
        if copy:
            save_checkpoint(self.dir / f"checkpoint_epoch_{epoch:03d}.pt", state)
            copies = sorted(self.dir.glob("checkpoint_epoch_*.pt"))
            for old in copies[: max(len(copies) - self.args.max_save_num, 0)]:
                old.unlink()
        return path

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
                           f"({first[1].strip() if len(first) > 1 else first[0]})") from exc
        self.shared_opt.load_state_dict(state["shared_opt"])
        self.ctrl_opt.load_state_dict(state["ctrl_opt"])
        self.baseline = state["baseline"]
        self.wpl.load_state_dict(state["wpl"])
        self.monitor.load_state_dict(state["monitor"])
        self.task.load_state_dict(state["task"])
        self.epoch, self.shared_step = state["epoch"], state["shared_step"]
        self.controller_step, self.warmed_up = state["controller_step"], state["warmed_up"]
        self.seconds = dict(state["seconds"])
        self.best, self.history = state["best"], list(state["history"])
        if cut_logs:
            self.runlog.truncate(state["log_sizes"])
        set_rng_state(state["rng"])


def _discount(r: torch.Tensor, gamma: float) -> torch.Tensor:
    """Reverse discounted cumulative sum along the decision axis."""
    out = torch.empty_like(r)
    acc = torch.zeros_like(r[:, 0])
    for t in range(r.size(1) - 1, -1, -1):
        acc = r[:, t] + gamma * acc
        out[:, t] = acc
    return out


def _finite(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj
