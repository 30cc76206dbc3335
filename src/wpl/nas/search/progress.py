"""Where a search is inside an epoch, and when it checkpoints or stops: the resumable phase cursor, the
mid-phase checkpoint policy (every N steps, or by the time writing costs), and stops asked for by signals."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from wpl.rundir import RunDir
from wpl.signals import Stopped

log = logging.getLogger("wpl")

# checkpoint_every_steps=-1: write when the time since the last write is this many times its duration
# (writing then costs at most 1/RATIO = 2% of the run) and at least MIN_S seconds
AUTO_CHECKPOINT_RATIO, AUTO_CHECKPOINT_MIN_S = 50.0, 10.0


class SearchStopped(Stopped):
    """The search stopped at a step boundary when asked (a signal), after writing a checkpoint."""


class Checkpointing:
    """Where the search is inside an epoch, and when it checkpoints (through ``save``) or stops: the phase
    cursor (``progress``), the steps so far (``boundaries``), the checkpoint clock, a stop asked for."""

    def __init__(self, every_steps: int, dist, run_dir: Path | None, save: Callable[..., object]) -> None:
        self.every, self.dist, self.dir, self.save = every_steps, dist, run_dir, save
        # {"where": epoch or "warmup", "done": {phase: result}, "phase": the one running, "step": its steps done,
        # "acc": its running sums}; None between epochs
        self.progress: dict | None = None
        self.boundaries = 0  # steps of any phase so far (the mid-phase checkpoint clock)
        self.stop_signal: tuple[str, int] | None = None
        self._saved_at, self._save_cost = time.monotonic(), 0.0  # the auto checkpoint clock (wall time)

    def saved(self, started: float) -> None:
        """A checkpoint write that began at ``started`` (time.monotonic) has ended: the clock restarts."""
        self._saved_at = time.monotonic()
        self._save_cost = self._saved_at - started

    def request_stop(self, name: str, exit_code: int) -> None:
        """Stop at the next step boundary, after a checkpoint (what the signal handlers call)."""
        log.warning("%s: stopping after the current step, with a checkpoint (send it again to stop at once, "
                    "losing the steps since the last checkpoint)", name)
        self.stop_signal = (name, exit_code)

    def cursor(self, phase: str) -> dict | None:
        """The saved position inside ``phase`` when the run resumes in the middle of it, else None."""
        p = self.progress
        return p if p is not None and p.get("phase") == phase else None

    def boundary(self, phase: str, step: int, acc: dict) -> None:
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
        save, stop = self.dist.broadcast((bool(self.stop_signal) or self.due(), self.stop_signal))
        if self.dir is not None and save:
            self.save(copy=False)
        if stop:
            where = "the warm-up" if p["where"] == "warmup" else f"epoch {p['where']}"
            self.stop(stop, f"in {where}, {phase} step {step}")

    def due(self) -> bool:
        """A mid-phase checkpoint now? Every ``checkpoint_every_steps`` steps, or (-1) once the time since the
        last write is :data:`AUTO_CHECKPOINT_RATIO` times its duration and at least :data:`AUTO_CHECKPOINT_MIN_S`."""
        n = self.every
        if n >= 0:
            return n > 0 and self.boundaries % n == 0
        since = time.monotonic() - self._saved_at
        return since >= max(AUTO_CHECKPOINT_MIN_S, AUTO_CHECKPOINT_RATIO * self._save_cost)

    def stop(self, stop: tuple[str, int], where: str) -> None:
        """Raise :class:`SearchStopped` for the stop (signal name, exit code) rank 0 decided (the checkpoint is
        written)."""
        name, code = stop
        raise SearchStopped(f"stopped by {name} {where}; checkpoint written to "
                            f"{RunDir(self.dir).checkpoint if self.dir else None}: continue with the same command "
                            "and --resume=True", code)

    def phase_done(self, phase: str, result: dict) -> dict:
        """Record ``phase``'s result in the epoch's progress (a resumed epoch does not run it again)."""
        if self.progress is not None:
            self.progress["done"][phase] = result
            self.progress.update(phase=None, step=0, acc=None)
        return result

    def begin(self, where: int | str) -> dict:
        """Start (or, after a mid-epoch resume, continue) the epoch ``where``; its phases done so far."""
        if self.progress is None or self.progress["where"] != where:
            self.progress = {"where": where, "done": {}, "phase": None, "step": 0, "acc": None}
        return self.progress["done"]
