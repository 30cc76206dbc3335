"""A search's full state: what a checkpoint holds, writing it (atomically, with per-epoch copies) and loading
it back (the logs cut back to it), so a run resumes exactly."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from wpl.checkpoint import rng_state, save_checkpoint, set_rng_state
from wpl.dist import rank_entry
from wpl.errors import WplError
from wpl.rundir import RunDir

log = logging.getLogger("wpl")


class State:
    """The :class:`~wpl.nas.search.loop.Search` methods that save and load its state."""

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
            "weight_ema": self.weight_ema,
            "seconds": self.seconds, "best": self.best, "history": self.history,
            "progress": self.progress, "boundaries": self.boundaries,
            # which weights hold a .grad: with --shared_zero_grad=zero the optimizer steps exactly those
            "grad_holders": [n for n, p in self.supernet.named_parameters() if p.grad is not None],
            # data-parallel: each rank's own RNG and data-stream state (its dropout, its carried hidden state)
            "ranks": self.dist.gather({"rng": rng_state(), "task": self.task.state_dict()}) if self.dist.active
            else None,
        }

    def save(self, copy: bool, epoch: int | None = None) -> Path:
        """``checkpoint.pt`` (latest) and, when ``copy``, ``checkpoint_epoch_XXX.pt`` (keep ``max_save_num``)."""
        t0 = time.monotonic()
        self.runlog.flush()
        state = self.state_dict()  # every rank: it gathers their states
        run = RunDir(self.dir)
        path = run.checkpoint
        if not self.writes:
            return path
        save_checkpoint(path, state, keep_previous=True)
        if copy:
            save_checkpoint(run.epoch_checkpoint(epoch), state)
            copies = run.epoch_checkpoints()
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
            self.wpl.load_state_dict(saved, check_config=False)  # the run's flags were merged and checked
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
        if self.cfg.shared_zero_grad == "zero":  # the .grad tensors the optimizer steps (zeroed before each use)
            holders = set(state.get("grad_holders", ()))
            for name, p in self.supernet.named_parameters():
                p.grad = torch.zeros_like(p) if name in holders else None
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
        if self.weight_ema is not None and state.get("weight_ema") is not None:  # else: it starts here
            for name, t in state["weight_ema"].items():
                self.weight_ema[name].copy_(t)
        if self.arch_gen is not None and state.get("arch_gen") is not None:  # else: a fresh stream from the seed
            self.arch_gen.set_state(state["arch_gen"])
        self.progress, self.boundaries = state.get("progress"), int(state.get("boundaries", 0))
