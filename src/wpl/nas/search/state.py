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


def state_of(search) -> dict:
    """Everything needed to continue bit-identically (tensors and plain data only)."""
    return {
        "configs": None if search.configs is None else search.configs.to_dict(),
        "decisions": search.task.decisions,
        "epoch": search.epoch, "shared_step": search.shared_steps, "controller_step": search.controller_steps,
        "warmed_up": search.warmed_up,
        "supernet": search.supernet.state_dict(), "controller": search.controller.state_dict(),
        "shared_opt": search.shared_opt.state_dict(), "ctrl_opt": search.reinforce.optimizer.state_dict(),
        "baseline": search.reinforce.baseline, "wpl": search.wpl.state_dict(), "monitor": search.monitor.state_dict(),
        "task": search.task.state_dict(), "rng": rng_state(), "log_sizes": search.runlog.sizes(),
        "arch_gen": None if search.arch_gen is None else search.arch_gen.get_state(),
        "weight_ema": search.weight_ema,
        "seconds": search.seconds, "best": search.best, "history": search.history,
        "progress": search.progress, "boundaries": search.boundaries,
        # which weights hold a .grad: with --shared_zero_grad=zero the optimizer steps exactly those
        "grad_holders": [n for n, p in search.supernet.named_parameters() if p.grad is not None],
        # data-parallel: each rank's own RNG and data-stream state (its dropout, its carried hidden state)
        "ranks": search.dist.gather({"rng": rng_state(), "task": search.task.state_dict()}) if search.dist.active
        else None,
    }


def save(search, copy: bool, epoch: int | None = None) -> Path:
    """``checkpoint.pt`` (latest) and, when ``copy``, ``checkpoint_epoch_XXX.pt`` (keep ``max_save_num``)."""
    t0 = time.monotonic()
    search.runlog.flush()
    state = state_of(search)  # every rank: it gathers their states
    run = RunDir(search.dir)
    path = run.checkpoint
    if not search.writes:
        return path
    save_checkpoint(path, state, keep_previous=True)
    if copy:
        save_checkpoint(run.epoch_checkpoint(epoch), state)
        copies = run.epoch_checkpoints()
        for old in copies[: max(len(copies) - search.cfg.max_save_num, 0)]:
            old.unlink()
    search.checkpoints.saved(t0)
    return path


def _rank_state(search, state: dict, source: Path) -> dict:
    """This rank's RNG and task state in ``state`` (rank 0's for a run of one process)."""
    mine = rank_entry(state.get("ranks"), search.dist, source)
    return state if mine is None else mine


def _load_wpl(search, saved: dict, source: Path) -> None:
    """The regularizer's state; one that tracks other weights (another ``wpl_scope``) is only accepted
    while WPL has never run (all its Fisher is zero): then WPL starts fresh here, with a warning."""
    try:
        search.wpl.load_state_dict(saved, check_config=False)  # the run's flags were merged and checked
    except ValueError as exc:
        if any(bool(t.any()) for t in saved.get("fisher", {}).values()):
            raise WplError(f"{source}: its WPL state does not fit this configuration ({exc}); resume with the "
                           "run's own --wpl_scope") from exc
        log.warning("%s: WPL had not run yet and tracked other weights; it starts fresh with this "
                    "configuration's (%d tensors)", source, len(search.wpl.params))


def load(search, state: dict, source: Path, cut_logs: bool = True) -> None:
    """Restore from a checkpoint (``source`` names it in errors); ``cut_logs`` cuts the run's logs
    back to what the checkpoint had seen (for a resume)."""
    if state["decisions"] != search.task.decisions:
        raise WplError(f"{source}: its search space ({len(state['decisions'])} decisions) differs from this "
                       "command's; resume with the run's own flags (--resume_with_new_params=False)")
    try:
        search.supernet.load_state_dict(state["supernet"])
        search.controller.load_state_dict(state["controller"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise WplError(f"{source}: the saved model does not match this configuration "
                       f"({first[1].strip() if len(first) > 1 else first[0]}); resume with the run's own sizes "
                       "(drop --resume_with_new_params, or the flags that change them)") from exc
    search.shared_opt.load_state_dict(state["shared_opt"])
    if search.cfg.shared_zero_grad == "zero":  # the .grad tensors the optimizer steps (zeroed before each use)
        holders = set(state.get("grad_holders", ()))
        for name, p in search.supernet.named_parameters():
            p.grad = torch.zeros_like(p) if name in holders else None
    baseline = state["baseline"]
    search.reinforce.load_state_dict({"optimizer": state["ctrl_opt"],
                                    "baseline": None if baseline is None else baseline.to(search.task.device)})
    _load_wpl(search, state["wpl"], source)
    search.monitor.load_state_dict(state["monitor"])
    own = _rank_state(search, state, source)
    search.task.load_state_dict(own["task"])
    search.epoch, search.shared_steps = state["epoch"], state["shared_step"]
    search.controller_steps, search.warmed_up = state["controller_step"], state["warmed_up"]
    search.seconds = dict(state["seconds"])
    search.best, search.history = state["best"], list(state["history"])
    if cut_logs:
        search.runlog.truncate(state["log_sizes"])
    set_rng_state(own["rng"])
    if search.weight_ema is not None and state.get("weight_ema") is not None:  # else: it starts here
        for name, t in state["weight_ema"].items():
            search.weight_ema[name].copy_(t)
    if search.arch_gen is not None and state.get("arch_gen") is not None:  # else: a fresh stream from the seed
        search.arch_gen.set_state(state["arch_gen"])
    search.progress, search.boundaries = state.get("progress"), int(state.get("boundaries", 0))
