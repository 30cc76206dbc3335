"""``wpl train-final``: train a cell from scratch and score it once on the test split.

The cell comes from a search run (``--model_name RUN``, its best derived cell by default), from an
architecture's JSON file, from a named preset, or ``random:SEED`` (``--arch``). The run folder
(``RUN/final/`` or ``log_dir/<name>``) gets ``config.json``, ``metrics.jsonl``, TensorBoard events,
``checkpoint.pt`` after every epoch (atomic, full state: ``--resume=True`` continues bit-identically),
``best.pt`` (the best-validation weights) and, at the end, ``summary.json`` with the test score of
the best-validation weights — the only time the test split is read.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from wpl.checkpoint import load_checkpoint, load_resumable, rng_state, save_checkpoint, set_rng_state
from wpl.dist import SINGLE, Dist, joined, rank_entry
from wpl.errors import WplError
from wpl.fileio import ensure_writable_dir, finite, remove_stale_temporaries, write_json
from wpl.rundir import FINAL_OUTPUTS, RunDir
from wpl.runlock import run_lock
from wpl.runtime import resolve_device, seed_everything, set_deterministic
from wpl.signals import Stopped, stop_on_signals

from .. import spaces
from ..space import FinalTraining, Space
from ..spaces import arch_from_dict
from ..task import Arch

log = logging.getLogger("wpl")


@dataclass
class FinalJob:
    """What to train, where, and how long; ``recipe`` is the space's (its ``final.recipe`` dataclass; default: its
    defaults)."""

    arch: Arch
    out_dir: Path
    source: str  # "RUN (best derived cell)", "preset enas-ptb", "file x.json", "random:0"
    dataset: str
    data_dir: str | None
    max_epoch: int = 40
    patience: int = 0  # stop after this many epochs without a better validation score (0: never)
    seed: int = 0
    device: str = "auto"
    deterministic: bool = False  # deterministic CUDA kernels (the CPU always is)
    resume: bool = False
    use_tensorboard: bool = True
    valid_size: int = 5000
    split_seed: int | None = None  # the seed of the held-out validation images (a run's: its own)
    recipe: Any = None

    def __post_init__(self) -> None:
        if self.recipe is None:
            self.recipe = self.training.recipe()

    @property
    def space(self) -> str:
        """The ``--network_type`` of the cell."""
        return spaces.of_arch(self.arch).kind

    @property
    def training(self) -> FinalTraining:
        """The cell's space's from-scratch training; WplError where the space has none."""
        sp: Space = spaces.of_arch(self.arch)
        if sp.final is None:
            raise WplError(sp.no_final(self.arch))
        return sp.final

    def config(self) -> dict:
        """The job as plain data (``config.json``, the checkpoint's record of what was asked)."""
        recipe = asdict(self.recipe)
        return {"arch": self.arch.to_dict(), "source": self.source, "network_type": self.space,
                "dataset": self.dataset, "data_dir": self.data_dir, "max_epoch": self.max_epoch,
                "patience": self.patience, "seed": self.seed, "valid_size": self.valid_size,
                "split_seed": self.split_seed, "recipe": recipe}


# ---- where the cell comes from ---------------------------------------------------------------------
def list_runs(log_dir: Path) -> list[str]:
    """Run folders under ``log_dir`` (those holding a search's config.json)."""
    if not log_dir.is_dir():
        return []
    return sorted(p.name for p in log_dir.iterdir() if RunDir(p).is_search())


def run_folder(log_dir: Path, name: str) -> Path:
    """``log_dir/name`` if it is a search run; else a WplError listing the runs there."""
    run = Path(name) if Path(name).is_absolute() else log_dir / name
    if not RunDir(run).config.is_file():
        runs = list_runs(log_dir)
        listing = ", ".join(runs[:20]) + (" …" if len(runs) > 20 else "") if runs else "none"
        raise WplError(f"--model_name={name}: no search run at {run}; runs under {log_dir}: {listing}")
    return run


def arch_of_run(run: Path, which: str = "best") -> Arch:
    """The run's ``best`` derived cell (best whole-validation score), its ``derived`` cell (``--mode=derive``)
    or the one derived after epoch N (``epoch_NNN``)."""
    rd = RunDir(run)
    if which == "best":
        summary = rd.summary
        if summary.is_file():
            best = json.loads(summary.read_text()).get("best_arch")
            if best:
                return arch_from_dict(json.loads(best) if isinstance(best, str) else best, str(summary))
        ckpt = rd.checkpoint
        if ckpt.is_file():
            best = load_checkpoint(ckpt).get("best")
            if best:
                return arch_from_dict(json.loads(best["arch"]), str(ckpt))
        raise WplError(f"{run}: the run has no derived cell yet (derive runs every --save_epoch); let the search "
                       "reach its first derive, run --mode=derive, or pass --arch_from epoch_NNN")
    if which == "derived" or which.startswith("epoch_"):
        path = rd.network(which)
        if not path.is_file():
            have = sorted(p.stem for p in rd.networks.glob("*.json")) if rd.networks.is_dir() else []
            raise WplError(f"--arch_from={which}: {path} does not exist; this run has {', '.join(have) or 'none'}"
                           + ("" if which != "derived" else " (run --mode=derive to write derived.json)"))
        d = json.loads(path.read_text())
        return arch_from_dict(d.get("arch", d), str(path))
    raise WplError(f"--arch_from={which}: must be best, derived or epoch_NNN (e.g. epoch_004)")


# ---- the training loop -----------------------------------------------------------------------------
def _build(job: FinalJob, device: torch.device, dist: Dist = SINGLE):
    return job.training.build(job, device, dist)


def _is_better(metric_value: float, best: float | None) -> bool:
    return best is None or metric_value < best


def train_final(job: FinalJob) -> dict:
    """Train, checkpoint every epoch, stop early when asked, test the best weights once; the summary.
    Under torchrun, data-parallel: rank 0 holds the folder and writes it; the other ranks return ``{}``."""
    device = resolve_device(job.device)
    set_deterministic(job.deterministic)
    stop = stop_on_signals(_StopNow(RunDir(job.out_dir).checkpoint))
    with joined(device) as dist:
        if not dist.main:
            log.setLevel(logging.WARNING)  # one rank reports
            with stop:
                return _train_final(job, device, dist)
        with run_lock(ensure_writable_dir(job.out_dir, "log_dir"), hint="choose another --name"), stop:
            return _train_final(job, device, dist)


class _StopNow:
    """A final training stops at a signal at once: its checkpoint is the last finished epoch's."""

    stop_signal: tuple[str, int] | None = None

    def __init__(self, ckpt: Path) -> None:
        self.ckpt = ckpt

    def request_stop(self, name: str, exit_code: int) -> None:
        """Raise :class:`~wpl.signals.Stopped` now (a write in progress is left unfinished, atomically)."""
        self.stop_signal = (name, exit_code)
        last = f"the last checkpoint is {self.ckpt} (one per epoch)" if self.ckpt.is_file() else "no epoch had ended"
        raise Stopped(f"stopped by {name}; {last}: continue with the same command and --resume=True", exit_code)


def _train_final(job: FinalJob, device: torch.device, dist: Dist = SINGLE) -> dict:
    """:func:`train_final` in its folder, held by this process (rank 0 of ``dist``)."""
    out = job.out_dir
    run = RunDir(out)
    ckpt = run.checkpoint
    if run.summary.is_file() and not job.resume:
        raise WplError(f"{out} already holds a finished final training; pass --resume=True to extend it (with a "
                       "larger --max_epoch) or choose another --name")
    if ckpt.is_file() and not job.resume:
        raise WplError(f"{out} already holds a final training; pass --resume=True to continue it")
    state = load_resumable(ckpt)[0] if job.resume and ckpt.is_file() else None
    if state is not None and state["config"]["arch"] != job.arch.to_dict():
        raise WplError(f"{ckpt}: it trains another architecture; resume with the same --arch / --model_name")
    rank_rng = None if state is None else _rank_rng(state, ckpt, dist)
    if state is None:
        seed_everything(job.seed)
    trainer = _build(job, device, dist)
    if state is None and not dist.main:
        seed_everything(dist.seed(job.seed))  # the same weights, each rank its own dropout masks
    from wpl.runlog import NullRunLog, RunLog

    if dist.main:
        remove_stale_temporaries(out)
    runlog = RunLog(out, job.use_tensorboard, purge_step=None if state is None else state["epoch"]) \
        if dist.main else NullRunLog()
    m = trainer.metric
    epoch, best, best_epoch, bad, seconds, history = 0, None, None, 0, 0.0, []
    if state is not None:
        trainer.load_state_dict(state["trainer"])
        epoch, best, best_epoch, bad = state["epoch"], state["best"], state["best_epoch"], state["bad"]
        seconds, history = state["seconds"], list(state["history"])
        runlog.truncate(state["log_sizes"])
        set_rng_state(rank_rng)
        log.info("resuming %s at epoch %d (to --max_epoch=%d)", out, epoch, job.max_epoch)
    elif dist.main:
        run.remove_stale(FINAL_OUTPUTS)
    if dist.main:
        write_json(run.config, job.config())
    validate = job.training.validates(job.recipe)
    log.info("final training of %s (%s) in %s on %s: %d parameters, %s", job.arch.to_json(), job.source, out,
             device, trainer.params, "validation picks the best epoch" if validate else
             "trained on train+valid: the last epoch is tested")
    from wpl.progress import bar as progress_bar

    stopped_early = False
    bar = progress_bar(total=job.max_epoch, initial=epoch, desc="final", dynamic_ncols=True, leave=False,
               disable=not dist.main)
    try:
        while epoch < job.max_epoch:
            t0 = time.perf_counter()
            train = trainer.train_epoch()
            val = trainer.evaluate("valid") if validate else {"loss": math.nan, m: math.nan}
            val = dist.broadcast(val)  # every rank evaluated the same weights; rank 0's numbers decide
            note = trainer.end_epoch(val["loss"]) if validate else None
            seconds += time.perf_counter() - t0
            score = val[m] if validate else -epoch  # without validation the latest epoch is the best
            improved = _is_better(score, best)
            if improved:
                best, best_epoch, bad = score, epoch, 0
                if dist.main:
                    save_checkpoint(run.best_weights, {"weights": trainer.weights(), "epoch": epoch})
            else:
                bad += 1
            rec = {"epoch": epoch, **train, "valid": val[m] if validate else None,
                   "valid_loss": val["loss"] if validate else None, "seconds": round(seconds, 1)}
            history.append(rec)
            runlog.event("final_epoch", **rec, **({"note": note} if note else {}))
            valid_scalars = {f"final/valid_{m}": val[m], "final/valid_loss": val["loss"]} if validate else {}
            runlog.scalars(epoch, {"final/train_loss": train["train_loss"], **valid_scalars})
            log.info("final epoch %d | train loss %.4f | valid %s %s%s%s", epoch, train["train_loss"], m,
                     f"{val[m]:.4g}" if validate else "n/a", " (best)" if improved and validate else "",
                     f" | {note}" if note else "")
            epoch += 1
            bar.set_postfix_str(f"valid {m} {val[m]:.4g}" if validate else f"train loss {train['train_loss']:.3f}",
                                refresh=False)
            bar.update(1)
            ranks = dist.gather(rng_state()) if dist.active else None  # each rank's dropout RNG
            if dist.main:
                save_checkpoint(ckpt, {"config": job.config(), "epoch": epoch, "trainer": trainer.state_dict(),
                                       "best": best, "best_epoch": best_epoch, "bad": bad, "seconds": seconds,
                                       "history": history, "rng": rng_state(), "log_sizes": runlog.sizes(),
                                       **({"ranks": ranks} if ranks else {})}, keep_previous=True)
            if validate and job.patience and bad >= job.patience:
                stopped_early = True
                log.info("no better validation %s for %d epochs: stopping early", m, bad)
                break
        bar.close()
        if not dist.main:
            return {}
        return _finish(job, trainer, out, runlog, epoch, best_epoch, seconds, history, stopped_early, validate)
    finally:
        bar.close()  # cleared, so an error message starts its own line
        runlog.close()


def _rank_rng(state: dict, source: Path, dist: Dist) -> dict:
    """This rank's RNG state in a final training's checkpoint (refused from a run of another world size)."""
    mine = rank_entry(state.get("ranks"), dist, source)
    return state["rng"] if mine is None else mine


def _finish(job: FinalJob, trainer, out: Path, runlog, epochs_done: int, best_epoch: int | None, seconds: float,
            history: list[dict], stopped_early: bool, validate: bool) -> dict:
    """Test the best weights once; write and return ``summary.json``."""
    m = trainer.metric
    if best_epoch is None:
        raise WplError(f"{out}: no epoch was trained (--max_epoch={job.max_epoch})")
    trainer.load_weights(load_checkpoint(RunDir(out).best_weights)["weights"])
    t0 = time.perf_counter()
    test = trainer.evaluate("test")
    valid = trainer.evaluate("valid") if validate else None
    seconds += time.perf_counter() - t0
    summary = {
        "metric": m, "best_valid": None if valid is None else valid[m], "test": test[m],
        "best_epoch": best_epoch, "test_metrics": test, "valid_metrics": valid, "params": trainer.params,
        "epochs_done": epochs_done, "max_epoch": job.max_epoch, "stopped_early": stopped_early,
        "arch": job.arch.to_dict(), "source": job.source, "network_type": job.space, "dataset": job.dataset,
        "seconds": round(seconds, 1), "epochs": history,
    }
    write_json(RunDir(out).summary, finite(summary))
    runlog.event("done", metric=m, best_valid=summary["best_valid"], test=test[m], params=trainer.params)
    return summary
